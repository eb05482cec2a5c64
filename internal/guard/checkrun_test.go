package guard

import (
	"strings"
	"testing"

	"github.com/mergeguard/guard/internal/pr"
)

// TestBlockTitle: a blocked check run's title names every freeze that
// blocks and when the last of them ends, not the first freeze's own end.
func TestBlockTitle(t *testing.T) {
	in := &pr.Input{AgentPR: true, Time: pr.Clock{Timezone: "America/New_York"}}
	weekly := pr.Reason{Rule: "merge_freeze", Outcome: pr.Block, Freeze: "friday-deploys", Until: "2026-03-09T12:00:00Z", Message: "Merge freeze friday-deploys ..."}
	incident := pr.Reason{Rule: "incident_freeze", Outcome: pr.Block, Freeze: "incident-42", Until: "2026-03-10T17:30:00Z", Message: "Incident freeze ..."}
	open := pr.Reason{Rule: "incident_freeze", Outcome: pr.Block, Freeze: "db-migration", Message: "Incident freeze db-migration ..."}
	custom := pr.Reason{Rule: "no_friday_sql", Outcome: pr.Block, Message: "SQL migrations wait for Monday."}
	escalate := pr.Reason{Rule: "agent_self_merge", Outcome: pr.Escalate, Message: "needs a human"}
	for _, tt := range []struct {
		name    string
		reasons []pr.Reason
		want    string
	}{
		{"one freeze", []pr.Reason{weekly, escalate}, `Blocked: freeze "friday-deploys" until Mon 9 Mar 08:00 EDT`},
		{"chained freezes: the last end", []pr.Reason{weekly, incident}, `Blocked: freezes "friday-deploys", "incident-42" until Tue 10 Mar 13:30 EDT (the last to end)`},
		{"a freeze without end", []pr.Reason{weekly, open}, `Blocked: freezes "friday-deploys", "db-migration" until ended by hand`},
		{"a rule bound to no freeze", []pr.Reason{custom}, "Blocked: SQL migrations wait for Monday."},
		{"both", []pr.Reason{incident, custom}, `Blocked: freeze "incident-42" until Tue 10 Mar 13:30 EDT; SQL migrations wait for Monday.`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := title(in, pr.Decision{Outcome: pr.Block, Reasons: tt.reasons})
			if got != tt.want {
				t.Errorf("title = %q\nwant    %q", got, tt.want)
			}
		})
	}
	long := custom
	long.Message = strings.Repeat("x", 400)
	if got := title(in, pr.Decision{Outcome: pr.Block, Reasons: []pr.Reason{incident, long}}); len(got) > 255 || !strings.HasSuffix(got, "...") {
		t.Errorf("title of %d bytes, want at most 255 ending in ...", len(got))
	}
}
