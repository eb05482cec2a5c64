package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/config"
	"github.com/mergeguard/guard/internal/guard"
	"github.com/mergeguard/guard/internal/policy"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/policies"
)

// evalOutput is what `guard eval` prints: the decision, and with --input the
// policy input it was made from.
type evalOutput struct {
	Outcome string `json:"outcome"`
	Reasons any    `json:"reasons"`
	Input   any    `json:"input,omitempty"`
}

func runEval(ctx context.Context, args []string, s stdio) error {
	fs := newFlagSet("eval", "eval --event FILE [--event-name NAME] [--facts FILE] [--at RFC3339] [--config FILE] [--policy-dir DIR]\n       guard eval --replay DECISION_ID [--db FILE] [--policy-dir DIR]", s)
	event := fs.String("event", "", "webhook payload `file` (JSON)")
	name := fs.String("event-name", "", "webhook event `name` (X-GitHub-Event); default: guessed from the file name (EVENT.ACTION.json) or the payload")
	factsFile := fs.String("facts", "", "JSON `file` with what the API and database would supply: pull_request, reviews, commits, files, overrides, teams, permissions, freezes, agent_pushed (see README.md; unknown fields are refused)")
	at := fs.String("at", "", "evaluate as of this `time` (RFC 3339); default now")
	cfgPath := fs.String("config", envOr("GUARD_CONFIG", ""), "policy settings `file` (GUARD_CONFIG; default guard.yaml if present)")
	policyDir := fs.String("policy-dir", envOr("GUARD_POLICY_DIR", ""), "Rego policy `dir` instead of the embedded policies (GUARD_POLICY_DIR)")
	withInput := fs.Bool("input", false, "also print the policy input document")
	replay := fs.String("replay", "", "decide again the decision with this `id` (the check run's Details page and the trail name it) from the input the trail recorded; exit 1 when the outcome or rules differ")
	db := fs.String("db", envOr("GUARD_DB", "guard.db"), "SQLite database `file` of --replay (GUARD_DB; read only)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if *replay != "" {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if given["event"] || given["facts"] || given["at"] || given["event-name"] || given["config"] {
			return usageErr("--replay decides from the recorded input, configuration included: leave out --event, --event-name, --facts, --at and --config")
		}
		return replayDecision(ctx, *db, *replay, *policyDir, *withInput, s)
	}
	if *event == "" {
		return usageErr("--event FILE is required (or --replay DECISION_ID)")
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usageErr("--at %q is not an RFC 3339 time (like 2026-11-27T03:17:00-05:00)", *at)
		}
		now = t
	}
	payload, err := os.ReadFile(*event)
	if err != nil {
		return fmt.Errorf("read --event: %w", err)
	}
	if !json.Valid(payload) {
		return fmt.Errorf("--event %s is not valid JSON", *event)
	}
	evName := *name
	if evName == "" {
		evName = guessEvent(*event, payload)
		if evName == "" {
			return usageErr("cannot tell the event from %s: pass --event-name (pull_request, pull_request_review, ...)", *event)
		}
	}
	var facts guard.OfflineFacts
	if *factsFile != "" {
		data, err := os.ReadFile(*factsFile)
		if err != nil {
			return fmt.Errorf("read --facts: %w", err)
		}
		if facts, err = guard.ParseOfflineFacts(data); err != nil {
			return fmt.Errorf("%s: %w", *factsFile, err)
		}
	}
	path := *cfgPath
	if path == "" {
		if _, err := os.Stat("guard.yaml"); err == nil {
			path = "guard.yaml"
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	pfs, err := policyFS(*policyDir)
	if err != nil {
		return err
	}
	eng, err := policy.Compile(ctx, pfs)
	if err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	in, d, err := guard.Offline(ctx, cfg, eng, evName, payload, facts, now)
	if err != nil {
		return err
	}
	for _, n := range servedNotes(cfg, in, d) {
		fmt.Fprintln(s.err, "note:", n)
	}
	out := evalOutput{Outcome: string(d.Outcome), Reasons: d.Reasons}
	if *withInput {
		out.Input = in
	}
	return out.print(s.out)
}

// print writes o as eval prints it: indented JSON, "<" and ">" as is.
func (o evalOutput) print(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(o)
}

// replayDecision decides the recorded decision id again from the input the
// trail kept (patch text only for the lines a rule matched, which is all
// the policies act on) with the policies of policyDir (default: the
// embedded ones), prints it as eval does, and compares it with the record.
func replayDecision(ctx context.Context, db, id, policyDir string, withInput bool, s stdio) error {
	store, err := openAuditDB(ctx, db)
	if err != nil {
		return err
	}
	defer store.Close()
	rec, err := store.Record(ctx, id)
	if err != nil {
		return err
	}
	var details struct {
		Input json.RawMessage `json:"input"`
	}
	if rec.Kind != audit.KindDecision || json.Unmarshal(rec.Details, &details) != nil || len(details.Input) == 0 || string(details.Input) == "null" {
		return fmt.Errorf("record %s is a %s record without a recorded policy input: only a pull request's decision can be replayed", id, rec.Kind)
	}
	var in pr.Input
	if err := json.Unmarshal(details.Input, &in); err != nil {
		return fmt.Errorf("decision %s: recorded input: %w", id, err)
	}
	// A guard before --replay recorded no "markers" of the files: the
	// policies would see no skipped test where there was one.
	var files struct {
		Files []map[string]json.RawMessage `json:"files"`
	}
	if json.Unmarshal(details.Input, &files) == nil {
		for _, f := range files.Files {
			if _, ok := f["markers"]; !ok {
				return fmt.Errorf("decision %s was recorded by an older guard, which kept no markers of the changed files: it cannot be replayed faithfully", id)
			}
		}
	}
	pfs, err := policyFS(policyDir)
	if err != nil {
		return err
	}
	eng, err := policy.Compile(ctx, pfs)
	if err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	d, err := eng.Decide(ctx, &in)
	if err != nil {
		return fmt.Errorf("decision %s: %w", id, err)
	}
	out := evalOutput{Outcome: string(d.Outcome), Reasons: d.Reasons}
	if withInput {
		out.Input = &in
	}
	if err := out.print(s.out); err != nil {
		return err
	}
	recorded := rec.Outcome + " (" + strings.Join(rec.Rules, ", ") + ")"
	replayed := string(d.Outcome) + " (" + strings.Join(d.Rules(), ", ") + ")"
	// The record's revision is POLICYREV+CONFIGDIGEST; the settings are in
	// the recorded input already, so only the policies' half compares.
	then, _, _ := strings.Cut(rec.PolicyRevision, "+")
	same := "the same policies"
	if then != eng.Revision() {
		same = "other policies: revision " + eng.Revision()
	}
	if recorded != replayed {
		return fmt.Errorf("decision %s replayed as %s, but the trail has %s, decided under policy revision %s (%s); replayed with %s",
			id, replayed, recorded, then, rec.PolicyRevision, same)
	}
	fmt.Fprintf(s.err, "decision %s replayed: %s, as recorded (policy revision %s; replayed with %s)\n", id, replayed, then, same)
	return nil
}

// servedNotes say where `guard serve` would not publish the decision as it
// is printed: a repository the configuration leaves out, a closed pull
// request, advisory mode. eval prints them on stderr, so that stdout stays
// the decision JSON.
func servedNotes(cfg *config.Config, in *pr.Input, d pr.Decision) []string {
	var notes []string
	if repo := in.Repository.FullName; repo != "" && !cfg.RepoIncluded(repo) {
		notes = append(notes, fmt.Sprintf("repos.include/repos.exclude leave out %s: `guard serve` would not evaluate this pull request or post a check run", repo))
	}
	if in.PullRequest.State == "closed" {
		notes = append(notes, "the pull request is closed: `guard serve` would post no check run (a merge is recorded, as a bypass when the last decision was not allow)")
	}
	if cfg.Mode == config.Advisory && d.Outcome != pr.Allow {
		notes = append(notes, fmt.Sprintf("mode: advisory: `guard serve` would post this %s as a passing check run (conclusion success)", d.Outcome))
	}
	return notes
}

// policyFS is the policy set: dir, or the embedded one. A dir that is not
// a directory is an error naming it.
func policyFS(dir string) (fs.FS, error) {
	if dir == "" {
		return policies.FS, nil
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("--policy-dir %s: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("--policy-dir %s is not a directory", dir)
	}
	return os.DirFS(dir), nil
}

// guessEvent derives the event name from a file named EVENT.ACTION.json or
// from the payload's shape.
func guessEvent(file string, payload []byte) string {
	base := file[strings.LastIndex(file, "/")+1:]
	if i := strings.Index(base, "."); i > 0 {
		switch ev := base[:i]; ev {
		case "pull_request", "pull_request_review", "issue_comment":
			return ev
		}
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(payload, &probe) != nil {
		return ""
	}
	switch {
	case probe["review"] != nil:
		return "pull_request_review"
	case probe["comment"] != nil:
		return "issue_comment"
	case probe["pull_request"] != nil:
		return "pull_request"
	}
	return ""
}
