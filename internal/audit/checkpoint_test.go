package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Under a stream of Accepts the WAL is copied beside the writer and
// restarted: the -wal file stays a few MiB where, never restarted, it would
// hold every delivery (4,800 compressed 27 KiB payloads here, ~60 MiB).
func TestCheckpointsRestartTheWAL(t *testing.T) {
	payload, err := os.ReadFile("../../testdata/webhooks/pull_request.reopened.json")
	if err != nil {
		t.Fatal(err)
	}
	s, path := mustOpenFile(t)
	ctx := context.Background()
	const senders, each = 8, 600
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("d-%d-%d", g, i)
				if _, _, err := s.Accept(ctx, Delivery{ID: id, Event: "pull_request", Key: id, Payload: payload}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	depth, _, err := s.InboxStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if depth != senders*each {
		t.Fatalf("%d pending, want %d", depth, senders*each)
	}
	if s.ckpt.copies.Load() == 0 || s.ckpt.finishes.Load() == 0 {
		t.Fatalf("checkpointer copied %d times, writer finished %d times; want both", s.ckpt.copies.Load(), s.ckpt.finishes.Load())
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 16<<20 {
		t.Fatalf("WAL is %d MiB after %d deliveries: it was not restarted", fi.Size()>>20, senders*each)
	}
}

// After a write the checkpointer copies the WAL into the database file on
// its own: a copy of that file alone, without the WAL, holds the delivery.
func TestCheckpointCopiesIntoTheDatabaseFile(t *testing.T) {
	s, path := mustOpenFile(t)
	ctx := context.Background()
	if _, _, err := s.Accept(ctx, Delivery{ID: "one", Event: "ping", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	// Poll a copy of the database file alone until it holds the delivery.
	deadline := time.Now().Add(10 * time.Second)
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(copyPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var id string
		db := rawDB(t, copyPath)
		err = db.QueryRow("SELECT id FROM deliveries").Scan(&id)
		db.Close()
		if err == nil && id == "one" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file alone after 10 s: delivery %q, %v; want \"one\"", id, err)
		}
		os.Remove(copyPath)
		time.Sleep(checkpointEvery)
	}
}

// A read-write store that only reads (say `guard freeze end` finding
// nothing to end, beside a serving guard) does not checkpoint: it would only
// compete with the writer's. (OpenReadOnly has no checkpointer at all.)
func TestReadOnlyStoreDoesNotCheckpoint(t *testing.T) {
	s, path := mustOpenFile(t)
	if _, _, err := s.Accept(context.Background(), Delivery{ID: "x", Event: "ping", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	reader, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.Verify(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * checkpointEvery)
	if n := reader.ckpt.copies.Load(); n != 0 {
		t.Fatalf("a store that never wrote ran %d checkpoints", n)
	}
}
