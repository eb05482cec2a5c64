package doctor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Mark is the symbol WriteText shows for a status.
func (s Status) Mark() string {
	switch s {
	case StatusOK:
		return "✓"
	case StatusProblem:
		return "✗"
	case StatusUnknown:
		return "?"
	case StatusWarning:
		return "!"
	case StatusSkipped:
		return "-"
	}
	return "i"
}

// WriteText writes the report for people: the app, the configuration, the
// policies (when checked), one line per installation finding (permissions,
// events, teams) and per repository (✓ enforced, ✗ problem,
// ? cannot tell, ! warning, - not checked) with what to do under each line
// that needs it, and a summary.
func (r *Report) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "Merge Guard doctor\n")
	fmt.Fprintf(b, "  app     %s (%s, id %d)%s\n", r.App.Name, r.App.Slug, r.App.ID, prefixed("  ", r.App.HTMLURL))
	fmt.Fprintf(b, "  check   %s, mode %s\n", r.CheckName, r.Mode)
	fmt.Fprintf(b, "  config  %s\n", r.ConfigSource)
	if r.Policies != nil {
		fmt.Fprintf(b, "  policy  %s\n", r.Policies.Source)
	}
	fmt.Fprintf(b, "\n%s credentials: GitHub accepted the app's id and private key\n", StatusOK.Mark())
	for _, f := range r.Config {
		writeFinding(b, "", f.Status, f.Message, f.Fix)
	}
	if r.Policies != nil {
		for _, f := range r.Policies.Findings {
			writeFinding(b, "", f.Status, f.Message, f.Fix)
		}
	}
	for _, inst := range r.Installations {
		fmt.Fprintf(b, "\nInstallation %d on %s%s\n", inst.ID, inst.Account, prefixed("  ", inst.HTMLURL))
		for _, f := range inst.Findings {
			writeFinding(b, "  ", f.Status, f.Message, f.Fix)
		}
		width := 0
		for _, rp := range inst.Repos {
			width = max(width, len(rp.FullName)+len(rp.DefaultBranch)+3)
		}
		for _, rp := range inst.Repos {
			label := fmt.Sprintf("%s (%s)", rp.FullName, rp.DefaultBranch)
			writeFinding(b, "  ", rp.Status, fmt.Sprintf("%-*s  %s", width, label, rp.Message), rp.Fix)
		}
		if len(inst.Repos) == 0 && !hasFailing(inst.Findings) {
			fmt.Fprintf(b, "  %s no repositories selected\n", StatusInfo.Mark())
		}
	}
	s := r.Summary
	checked := s.Repositories - s.Skipped
	fmt.Fprintf(b, "\nSummary: %d of %d checked repositories enforced", s.Enforced, checked)
	if s.Skipped > 0 {
		fmt.Fprintf(b, ", %d not checked (excluded by the configuration or archived)", s.Skipped)
	}
	if s.OtherProblems > 0 {
		fmt.Fprintf(b, ", %d other problem(s)", s.OtherProblems)
	}
	fmt.Fprintln(b, ".")
	switch {
	case s.OK:
		fmt.Fprintf(b, "OK: %s is required and pinned to this app wherever the guard acts.\n", r.CheckName)
	case s.NothingGuarded && s.OtherProblems == 0 && len(s.AdvisoryOnly) == 0:
		fmt.Fprintf(b, "The guard guards no repository: the app is installed on none, or repos.include/repos.exclude in the configuration leave none (check them for a typo), so no pull request gets %s.\n", r.CheckName)
	default:
		if s.NothingGuarded {
			fmt.Fprintln(b, "The guard guards no repository yet.")
		}
		if len(s.AdvisoryOnly) > 0 {
			what := "repositories"
			if len(s.AdvisoryOnly) == 1 {
				what = "repository"
			}
			fmt.Fprintf(b, "The guard is advisory only in %d %s: %s.\n", len(s.AdvisoryOnly), what, strings.Join(s.AdvisoryOnly, ", "))
		}
		fmt.Fprintf(b, "Fix the %s and %s lines above (docs/install.md, section 4), then run guard doctor again.\n",
			StatusProblem.Mark(), StatusUnknown.Mark())
	}
	return b.Flush()
}

func writeFinding(b *bufio.Writer, indent string, s Status, msg, fix string) {
	fmt.Fprintf(b, "%s%s %s\n", indent, s.Mark(), msg)
	if fix != "" {
		fmt.Fprintf(b, "%s    → %s\n", indent, fix)
	}
}

func hasFailing(fs []Finding) bool {
	for _, f := range fs {
		if f.Status.failing() {
			return true
		}
	}
	return false
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// WriteJSON writes the report as one indented JSON document (the Report
// struct's fields; the app's key material is never part of it).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
