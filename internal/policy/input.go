package policy

import (
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mergeguard/guard/internal/pr"
)

// inputValue builds the policy input document for in directly as an OPA
// value: exactly what encoding/json would produce for *in (nil slices and
// pointers are null, times are RFC 3339 with nanoseconds, Patch is left
// out), without the JSON round trip. TestInputValueMatchesJSON keeps the two
// in step, field by field, whenever pr.Input grows.
func inputValue(in *pr.Input) ast.Value {
	return ast.NewObject(
		item("version", num(int64(in.Version))),
		item("event", obj(
			item("name", strTerm(in.Event.Name)),
			item("action", strTerm(in.Event.Action)),
			item("sender", account(in.Event.Sender)),
		)),
		item("repository", obj(
			item("owner", strTerm(in.Repository.Owner)),
			item("name", strTerm(in.Repository.Name)),
			item("full_name", strTerm(in.Repository.FullName)),
			item("default_branch", strTerm(in.Repository.DefaultBranch)),
			item("private", ast.InternedTerm(in.Repository.Private)),
		)),
		item("pull_request", pullRequest(&in.PullRequest)),
		item("agent_pr", ast.InternedTerm(in.AgentPR)),
		item("agent_reasons", stringsTerm(in.AgentReasons)),
		item("commits", list(in.Commits, commit)),
		item("reviews", list(in.Reviews, review)),
		item("files", list(in.Files, file)),
		item("overrides", list(in.Overrides, override)),
		item("time", clock(&in.Time)),
		item("quarantine_files", stringsTerm(in.QuarantineFiles)),
		item("marked_files", list(in.MarkedFiles, func(i *int) *ast.Term { return num(int64(*i)) })),
	)
}

// keyTerms are the object keys of the input document, converted once (OPA
// interns only some strings; every other key would cost two allocations per
// object). The map is never modified.
var keyTerms = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, k := range []string{
		"account", "action", "actor", "added_lines", "additions", "agent", "agent_pr",
		"agent_reasons", "applies_to", "approver", "at", "author", "auto_merge", "base_ref",
		"base_sha", "business_hours", "by", "commit_id", "commits", "committer", "created_at", "date",
		"default_branch", "deletions", "draft", "email", "enabled_by", "event", "filename", "files",
		"freezes", "from", "full_name", "head_ref", "head_repo", "head_sha", "holiday", "id", "kind",
		"labels", "line", "local", "login", "marked_files", "markers", "merge_method", "merged",
		"message", "name", "next_boundary", "now", "number", "overrides", "owner", "private",
		"pull_request", "quarantine_files", "quarantine_list", "reason", "repository", "reviews",
		"rules", "sender", "sha", "state", "status", "submitted_at", "test", "text", "time",
		"timezone", "title", "type", "until", "updated_at", "user", "version", "weekday",
	} {
		m[k] = ast.StringTerm(k)
	}
	return m
}()

func item(k string, v *ast.Term) [2]*ast.Term {
	kt, ok := keyTerms[k]
	if !ok {
		kt = ast.StringTerm(k)
	}
	return [2]*ast.Term{kt, v}
}

func obj(items ...[2]*ast.Term) *ast.Term { return ast.NewTerm(ast.NewObject(items...)) }

func strTerm(s string) *ast.Term { return ast.InternedTerm(s) }

func num(n int64) *ast.Term {
	if n >= -1 && n <= 512 {
		return ast.InternedTerm(int(n))
	}
	return ast.NewTerm(ast.Number(strconv.FormatInt(n, 10)))
}

func timestamp(t time.Time) *ast.Term { return ast.StringTerm(t.Format(time.RFC3339Nano)) }

// list converts a slice like encoding/json does: nil is null. Empty slices
// share OPA's interned empty array (evaluation never modifies input values).
func list[T any](xs []T, conv func(*T) *ast.Term) *ast.Term {
	if xs == nil {
		return ast.NullTerm()
	}
	if len(xs) == 0 {
		return ast.InternedEmptyArray
	}
	terms := make([]*ast.Term, len(xs))
	for i := range xs {
		terms[i] = conv(&xs[i])
	}
	return ast.NewTerm(ast.NewArray(terms...))
}

func stringsTerm(xs []string) *ast.Term {
	return list(xs, func(s *string) *ast.Term { return strTerm(*s) })
}

func account(a pr.Account) *ast.Term {
	return obj(
		item("login", strTerm(a.Login)),
		item("type", strTerm(a.Type)),
		item("agent", ast.InternedTerm(a.Agent)),
	)
}

func pullRequest(p *pr.PullRequest) *ast.Term {
	autoMerge := ast.NullTerm()
	if p.AutoMerge != nil {
		autoMerge = obj(
			item("enabled_by", account(p.AutoMerge.EnabledBy)),
			item("merge_method", strTerm(p.AutoMerge.MergeMethod)),
		)
	}
	return obj(
		item("number", num(int64(p.Number))),
		item("title", strTerm(p.Title)),
		item("state", strTerm(p.State)),
		item("draft", ast.InternedTerm(p.Draft)),
		item("merged", ast.InternedTerm(p.Merged)),
		item("author", account(p.Author)),
		item("head_sha", strTerm(p.HeadSHA)),
		item("head_ref", strTerm(p.HeadRef)),
		item("head_repo", strTerm(p.HeadRepo)),
		item("base_ref", strTerm(p.BaseRef)),
		item("base_sha", strTerm(p.BaseSHA)),
		item("labels", stringsTerm(p.Labels)),
		item("auto_merge", autoMerge),
		item("created_at", timestamp(p.CreatedAt)),
		item("updated_at", timestamp(p.UpdatedAt)),
	)
}

func person(p pr.Person) *ast.Term {
	return obj(
		item("name", strTerm(p.Name)),
		item("email", strTerm(p.Email)),
		item("account", account(p.Account)),
		item("date", timestamp(p.Date)),
	)
}

func commit(c *pr.Commit) *ast.Term {
	return obj(
		item("sha", strTerm(c.SHA)),
		item("message", strTerm(c.Message)),
		item("author", person(c.Author)),
		item("committer", person(c.Committer)),
	)
}

func review(r *pr.Review) *ast.Term {
	return obj(
		item("id", num(r.ID)),
		item("user", account(r.User)),
		item("state", strTerm(r.State)),
		item("commit_id", strTerm(r.CommitID)),
		item("submitted_at", timestamp(r.SubmittedAt)),
		item("approver", ast.InternedTerm(r.Approver)),
	)
}

// fileStatuses are the values of File.Status GitHub sends, converted once;
// the map is never modified.
var fileStatuses = map[string]*ast.Term{
	"added": ast.StringTerm("added"), "removed": ast.StringTerm("removed"),
	"modified": ast.StringTerm("modified"), "renamed": ast.StringTerm("renamed"),
	"copied": ast.StringTerm("copied"), "changed": ast.StringTerm("changed"),
	"unchanged": ast.StringTerm("unchanged"),
}

func status(s string) *ast.Term {
	if t, ok := fileStatuses[s]; ok {
		return t
	}
	return strTerm(s)
}

func file(f *pr.File) *ast.Term {
	return obj(
		item("filename", strTerm(f.Filename)),
		item("status", status(f.Status)),
		item("additions", num(int64(f.Additions))),
		item("deletions", num(int64(f.Deletions))),
		item("added_lines", list(f.AddedLines, line)),
		item("test", ast.InternedTerm(f.Test)),
		item("quarantine_list", ast.InternedTerm(f.QuarantineList)),
		item("markers", list(f.Markers, marker)),
	)
}

func line(l *pr.Line) *ast.Term {
	return obj(item("number", num(int64(l.Number))), item("text", strTerm(l.Text)))
}

func marker(m *pr.Marker) *ast.Term {
	return obj(item("line", num(int64(m.Line))), item("text", strTerm(m.Text)), item("kind", strTerm(m.Kind)))
}

func override(o *pr.Override) *ast.Term {
	return obj(
		item("kind", strTerm(o.Kind)),
		item("actor", strTerm(o.Actor)),
		item("reason", strTerm(o.Reason)),
		item("head_sha", strTerm(o.HeadSHA)),
		item("base_ref", strTerm(o.BaseRef)),
		item("rules", stringsTerm(o.Rules)),
		item("freezes", stringsTerm(o.Freezes)),
		item("at", timestamp(o.At)),
	)
}

func clock(c *pr.Clock) *ast.Term {
	items := []([2]*ast.Term){
		item("now", strTerm(c.Now)),
		item("local", strTerm(c.Local)),
		item("timezone", strTerm(c.Timezone)),
		item("weekday", strTerm(c.Weekday)),
		item("business_hours", ast.InternedTerm(c.BusinessHours)),
		item("holiday", ast.InternedTerm(c.Holiday)),
		item("freezes", list(c.Freezes, freeze)),
	}
	if c.NextBoundary != "" {
		items = append(items, item("next_boundary", strTerm(c.NextBoundary)))
	}
	return obj(items...)
}

func freeze(f *pr.Freeze) *ast.Term {
	items := []([2]*ast.Term){
		item("name", strTerm(f.Name)),
		item("kind", strTerm(f.Kind)),
		item("applies_to", strTerm(f.AppliesTo)),
	}
	for _, opt := range [...]struct{ k, v string }{{"from", f.From}, {"until", f.Until}, {"reason", f.Reason}, {"by", f.By}} {
		if opt.v != "" {
			items = append(items, item(opt.k, strTerm(opt.v)))
		}
	}
	return obj(items...)
}
