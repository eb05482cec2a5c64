package main

// The floor: what this machine allows an acknowledgement, measured with the
// same senders, schedule and deliveries as the guard. With -floor the load
// tool starts, instead of the guard, a receiver that does only what every
// webhook receiver must (read the body, check its signature, answer 202),
// and with -floor fsync also what a durable one must (the delivery on disk,
// a group fdatasync, before the answer). On a shared 2-core VM the
// open-loop p99 of that receiver moves with the minute; comparing the
// guard's with it in the same minutes tells the guard's own share.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/klauspost/compress/s2"

	"github.com/mergeguard/guard/internal/webhook"
)

// receiverEnv, set in the child's environment, makes the load tool's own
// binary run as the floor receiver ("null" or "fsync") instead.
const receiverEnv = "GUARD_LOAD_RECEIVER"

// journalWrap is where the fsync receiver's journal starts over: after one
// lap it rewrites its blocks, as SQLite's WAL does, instead of growing.
const journalWrap = 64 << 20

// receiver is the floor's HTTP handler.
type receiver struct {
	secret []byte
	j      *journal // nil: answer without writing anything
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/readyz":
		return
	case "/metrics":
		// The load tool's drain waits for an empty queue: there is none.
		io.WriteString(w, "guard_queue_depth 0\n")
		return
	case "/webhook":
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.MaxBody))
	if err != nil {
		http.Error(w, "body over 25 MiB or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	if err := webhook.Verify(r.Header.Get("X-Hub-Signature-256"), body, rc.secret); err != nil {
		http.Error(w, "signature: "+err.Error(), http.StatusUnauthorized)
		return
	}
	if rc.j != nil {
		// Compressed as the guard stores payloads, so that both write
		// about as many bytes per delivery.
		if err := rc.j.append(s2.Encode(nil, body)); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

// journal appends records to one file with a group commit: every append
// waiting while a flush runs shares the next write and fdatasync.
type journal struct {
	f       *os.File
	mu      sync.Mutex
	pending []entry
	kick    chan struct{}
	off     int64
}

type entry struct {
	rec  []byte
	done chan error
}

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	j := &journal{f: f, kick: make(chan struct{}, 1)}
	go j.run()
	return j, nil
}

// append returns once rec is on disk.
func (j *journal) append(rec []byte) error {
	done := make(chan error, 1)
	j.mu.Lock()
	j.pending = append(j.pending, entry{rec, done})
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return <-done
}

func (j *journal) run() {
	var buf []byte
	for range j.kick {
		j.mu.Lock()
		batch := j.pending
		j.pending = nil
		j.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		buf = buf[:0]
		for _, e := range batch {
			buf = strconv.AppendInt(buf, int64(len(e.rec)), 10)
			buf = append(buf, '\n')
			buf = append(buf, e.rec...)
		}
		if j.off+int64(len(buf)) > journalWrap {
			j.off = 0
		}
		_, err := j.f.WriteAt(buf, j.off)
		if err == nil {
			err = j.f.Sync()
		}
		j.off += int64(len(buf))
		for _, e := range batch {
			e.done <- err
		}
	}
}

// runReceiver serves the floor receiver on GUARD_ADDR until killed.
func runReceiver(mode string) error {
	rc := &receiver{secret: []byte(os.Getenv("GUARD_WEBHOOK_SECRET"))}
	if len(bytes.TrimSpace(rc.secret)) == 0 {
		return errors.New("GUARD_WEBHOOK_SECRET is empty")
	}
	switch mode {
	case "null":
	case "fsync":
		j, err := openJournal(filepath.Join(os.Getenv("GUARD_LOAD_DIR"), "journal"))
		if err != nil {
			return err
		}
		rc.j = j
	default:
		return fmt.Errorf("%s=%q: want null or fsync", receiverEnv, mode)
	}
	return http.ListenAndServe(os.Getenv("GUARD_ADDR"), rc)
}
