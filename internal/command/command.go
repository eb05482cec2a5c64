// Package command parses the /guard comment commands of SPEC §5:
//
//	/guard approve <reason>
//	/guard override <reason>
//	/guard freeze [<duration>] <reason>
//	/guard unfreeze
//	/guard status
//
// A command is the first line of a comment that starts with "/guard",
// outside fenced code blocks and quotes (so quoting someone's command in a
// reply does not run it again). Parsing is pure: who may run a command is
// decided by the caller.
package command

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kind is a command's verb.
type Kind string

// The commands.
const (
	Approve  Kind = "approve"
	Override Kind = "override"
	Freeze   Kind = "freeze"
	Unfreeze Kind = "unfreeze"
	Status   Kind = "status"
)

// Command is a parsed /guard command.
type Command struct {
	Kind     Kind
	Reason   string
	Duration time.Duration // freeze only; 0 means until unfrozen
}

// MaxDuration bounds a freeze declared by comment.
const MaxDuration = 90 * 24 * time.Hour

// Usage is the reply to a malformed command.
const Usage = "Usage: `/guard approve <reason>`, `/guard override <reason>`, `/guard freeze [<duration>] <reason>` (durations like 30m, 2h, 1d), `/guard unfreeze`, `/guard status`."

// ErrNotCommand is returned when the comment holds no /guard command.
var ErrNotCommand = errors.New("not a /guard command")

// Parse finds and parses the /guard command of a comment body. It returns
// ErrNotCommand when there is none, and a descriptive error for a /guard
// line that is not a valid command.
func Parse(body string) (Command, error) {
	line, ok := commandLine(body)
	if !ok {
		return Command{}, ErrNotCommand
	}
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return Command{}, fmt.Errorf("`/guard` needs a command. %s", Usage)
	}
	verb := strings.ToLower(fields[1])
	rest := strings.TrimSpace(strings.Join(fields[2:], " "))
	switch Kind(verb) {
	case Approve, Override:
		if rest == "" {
			return Command{}, fmt.Errorf("`/guard %s` needs a reason, for the audit trail: `/guard %s <reason>`", verb, verb)
		}
		return Command{Kind: Kind(verb), Reason: limit(rest)}, nil
	case Freeze:
		c := Command{Kind: Freeze}
		if len(fields) > 2 && looksLikeDuration(fields[2]) {
			d, err := ParseDuration(fields[2])
			if err != nil {
				return Command{}, err
			}
			c.Duration = d
			rest = strings.TrimSpace(strings.Join(fields[3:], " "))
		}
		if rest == "" {
			return Command{}, errors.New("`/guard freeze` needs a reason: `/guard freeze [<duration>] <reason>`")
		}
		c.Reason = limit(rest)
		return c, nil
	case Unfreeze, Status:
		return Command{Kind: Kind(verb), Reason: limit(rest)}, nil
	}
	return Command{}, fmt.Errorf("unknown command `/guard %s`. %s", truncate(verb, 40), Usage)
}

// commandLine returns the first line starting with /guard outside code
// fences and quotes.
func commandLine(body string) (string, bool) {
	fenced := false
	for _, raw := range strings.Split(body, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "```") || strings.HasPrefix(line, "~~~") {
			fenced = !fenced
			continue
		}
		if fenced || strings.HasPrefix(line, ">") {
			continue
		}
		if line == "/guard" || strings.HasPrefix(line, "/guard ") || strings.HasPrefix(line, "/guard\t") {
			return line, true
		}
	}
	return "", false
}

func looksLikeDuration(s string) bool {
	return s != "" && s[0] >= '0' && s[0] <= '9'
}

// ErrTooLong and ErrNotPositive are the durations ParseDuration refuses
// for their length rather than their form.
var (
	ErrTooLong     = errors.New("longer than 90 days")
	ErrNotPositive = errors.New("must be positive")
)

// ParseDuration parses 30m, 2h, 1d, 1h30m (days are 24 hours).
func ParseDuration(s string) (time.Duration, error) {
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, fmt.Errorf("duration %q: use forms like 30m, 2h, 1d", truncate(s, 40))
		}
		var unit time.Duration
		switch rest[i] {
		case 'm':
			unit = time.Minute
		case 'h':
			unit = time.Hour
		case 'd':
			unit = 24 * time.Hour
		default:
			return 0, fmt.Errorf("duration %q: use forms like 30m, 2h, 1d", truncate(s, 40))
		}
		n := 0
		if i <= 6 { // 7 digits of minutes are already over 90 days
			n, _ = strconv.Atoi(rest[:i])
		}
		total += time.Duration(n) * unit
		if i > 6 || total > MaxDuration {
			return 0, fmt.Errorf("duration %q is %w; declare it without a duration and end it with /guard unfreeze", truncate(s, 40), ErrTooLong)
		}
		rest = rest[i+1:]
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration %q %w", truncate(s, 40), ErrNotPositive)
	}
	return total, nil
}

func limit(s string) string { return truncate(s, 500) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
