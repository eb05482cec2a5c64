package command

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Command
		err  string // substring; "" = no error
	}{
		{"approve with reason", "/guard approve reviewed the diff by hand", Command{Kind: Approve, Reason: "reviewed the diff by hand"}, ""},
		{"override with reason", "Looks fine.\n/guard override hotfix for INC-42", Command{Kind: Override, Reason: "hotfix for INC-42"}, ""},
		{"freeze with duration", "/guard freeze 2h database migration", Command{Kind: Freeze, Duration: 2 * time.Hour, Reason: "database migration"}, ""},
		{"freeze in days", "/guard freeze 1d release", Command{Kind: Freeze, Duration: 24 * time.Hour, Reason: "release"}, ""},
		{"freeze combined", "/guard freeze 1h30m x", Command{Kind: Freeze, Duration: 90 * time.Minute, Reason: "x"}, ""},
		{"freeze without duration", "/guard freeze incident 7", Command{Kind: Freeze, Reason: "incident 7"}, ""},
		{"unfreeze", "/guard unfreeze", Command{Kind: Unfreeze}, ""},
		{"status", "  /guard status  ", Command{Kind: Status}, ""},
		{"verb is case-insensitive", "/guard APPROVE ok", Command{Kind: Approve, Reason: "ok"}, ""},
		{"approve without reason", "/guard approve", Command{}, "needs a reason"},
		{"override without reason", "/guard override   ", Command{}, "needs a reason"},
		{"freeze without reason", "/guard freeze 2h", Command{}, "needs a reason"},
		{"bad duration unit", "/guard freeze 2w long", Command{}, "use forms like"},
		{"zero duration", "/guard freeze 0m x", Command{}, "must be positive"},
		{"too long", "/guard freeze 100d x", Command{}, "longer than 90 days"},
		{"too many digits to count", "/guard freeze 99999999999d x", Command{}, "longer than 90 days"},
		{"many digits, no unit", "/guard freeze 99999999999w x", Command{}, "use forms like"},
		{"unknown verb", "/guard merge now", Command{}, "unknown command"},
		{"bare /guard", "/guard", Command{}, "needs a command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.body)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseNotACommand(t *testing.T) {
	for _, body := range []string{
		"",
		"LGTM",
		"please run /guard approve later",
		"> /guard approve quoted from someone else",
		"```\n/guard approve in a code block\n```",
		"/guardian approve",
	} {
		if _, err := Parse(body); !errors.Is(err, ErrNotCommand) {
			t.Errorf("Parse(%q) = %v, want ErrNotCommand", body, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"/guard approve x", "/guard freeze 2h y", "/guard freeze 99999999999d z", "```\n/guard status", "/guard \t unfreeze"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		c, err := Parse(body)
		if err != nil {
			return
		}
		switch c.Kind {
		case Approve, Override:
			if c.Reason == "" {
				t.Fatal("approve/override without reason accepted")
			}
		case Freeze:
			if c.Duration < 0 || c.Duration > MaxDuration || c.Reason == "" {
				t.Fatalf("bad freeze %+v", c)
			}
		case Unfreeze, Status:
		default:
			t.Fatalf("unknown kind %q", c.Kind)
		}
	})
}
