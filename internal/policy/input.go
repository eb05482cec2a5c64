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
	var b builder
	return ast.NewObject(
		item(kVersion, b.num(int64(in.Version))),
		item(kEvent, b.obj(
			item(kName, b.str(in.Event.Name)),
			item(kAction, b.str(in.Event.Action)),
			item(kSender, b.account(in.Event.Sender)),
		)),
		item(kRepository, b.obj(
			item(kOwner, b.str(in.Repository.Owner)),
			item(kName, b.str(in.Repository.Name)),
			item(kFullName, b.str(in.Repository.FullName)),
			item(kDefaultBranch, b.str(in.Repository.DefaultBranch)),
			item(kPrivate, ast.InternedTerm(in.Repository.Private)),
		)),
		item(kPullRequest, b.pullRequest(&in.PullRequest)),
		item(kAgentPr, ast.InternedTerm(in.AgentPR)),
		item(kAgentReasons, b.strings(in.AgentReasons)),
		item(kCommits, list(&b, in.Commits, (*builder).commit)),
		item(kReviews, list(&b, in.Reviews, (*builder).review)),
		item(kFiles, list(&b, in.Files, (*builder).file)),
		item(kOverrides, list(&b, in.Overrides, (*builder).override)),
		item(kTime, b.clock(&in.Time)),
		item(kQuarantineFiles, b.strings(in.QuarantineFiles)),
		item(kMarkedFiles, list(&b, in.MarkedFiles, func(b *builder, i *int) *ast.Term { return b.num(int64(*i)) })),
	)
}

// builder hands out the terms of one input document from chunks of
// termChunk, instead of allocating each *ast.Term on its own (a document has
// hundreds: ~5 per changed file, ~3 per kept added line). The terms are
// never modified once built, and a chunk lives as long as the document.
type builder struct {
	chunk []ast.Term
}

const termChunk = 128

func (b *builder) term(v ast.Value) *ast.Term {
	if len(b.chunk) == cap(b.chunk) {
		b.chunk = make([]ast.Term, 0, termChunk)
	}
	b.chunk = append(b.chunk, ast.Term{Value: v})
	return &b.chunk[len(b.chunk)-1]
}

// The object keys of the input document, converted once (OPA interns only
// some strings; every other key would cost two allocations per object, and
// looking them up by name a map access each).
var (
	kAccount         = ast.StringTerm("account")
	kAction          = ast.StringTerm("action")
	kActor           = ast.StringTerm("actor")
	kAddedLines      = ast.StringTerm("added_lines")
	kAdditions       = ast.StringTerm("additions")
	kAgent           = ast.StringTerm("agent")
	kAgentPr         = ast.StringTerm("agent_pr")
	kAgentReasons    = ast.StringTerm("agent_reasons")
	kAppliesTo       = ast.StringTerm("applies_to")
	kApprover        = ast.StringTerm("approver")
	kAt              = ast.StringTerm("at")
	kAuthor          = ast.StringTerm("author")
	kAutoMerge       = ast.StringTerm("auto_merge")
	kBaseRef         = ast.StringTerm("base_ref")
	kBaseSHA         = ast.StringTerm("base_sha")
	kBusinessHours   = ast.StringTerm("business_hours")
	kBy              = ast.StringTerm("by")
	kCommitID        = ast.StringTerm("commit_id")
	kCommits         = ast.StringTerm("commits")
	kCommitter       = ast.StringTerm("committer")
	kCreatedAt       = ast.StringTerm("created_at")
	kDate            = ast.StringTerm("date")
	kDefaultBranch   = ast.StringTerm("default_branch")
	kDeletions       = ast.StringTerm("deletions")
	kDraft           = ast.StringTerm("draft")
	kEmail           = ast.StringTerm("email")
	kEnabledBy       = ast.StringTerm("enabled_by")
	kEvent           = ast.StringTerm("event")
	kFilename        = ast.StringTerm("filename")
	kFiles           = ast.StringTerm("files")
	kFreezes         = ast.StringTerm("freezes")
	kFrom            = ast.StringTerm("from")
	kFullName        = ast.StringTerm("full_name")
	kHeadRef         = ast.StringTerm("head_ref")
	kHeadRepo        = ast.StringTerm("head_repo")
	kHeadSHA         = ast.StringTerm("head_sha")
	kHoliday         = ast.StringTerm("holiday")
	kID              = ast.StringTerm("id")
	kKind            = ast.StringTerm("kind")
	kLabels          = ast.StringTerm("labels")
	kLine            = ast.StringTerm("line")
	kLocal           = ast.StringTerm("local")
	kLogin           = ast.StringTerm("login")
	kMarkedFiles     = ast.StringTerm("marked_files")
	kMarkers         = ast.StringTerm("markers")
	kMergeMethod     = ast.StringTerm("merge_method")
	kMerged          = ast.StringTerm("merged")
	kMessage         = ast.StringTerm("message")
	kName            = ast.StringTerm("name")
	kNextBoundary    = ast.StringTerm("next_boundary")
	kNow             = ast.StringTerm("now")
	kNumber          = ast.StringTerm("number")
	kOverrides       = ast.StringTerm("overrides")
	kOwner           = ast.StringTerm("owner")
	kPrivate         = ast.StringTerm("private")
	kPullRequest     = ast.StringTerm("pull_request")
	kQuarantineFiles = ast.StringTerm("quarantine_files")
	kQuarantineList  = ast.StringTerm("quarantine_list")
	kReason          = ast.StringTerm("reason")
	kRepository      = ast.StringTerm("repository")
	kReviews         = ast.StringTerm("reviews")
	kRules           = ast.StringTerm("rules")
	kSender          = ast.StringTerm("sender")
	kSHA             = ast.StringTerm("sha")
	kState           = ast.StringTerm("state")
	kStatus          = ast.StringTerm("status")
	kSubmittedAt     = ast.StringTerm("submitted_at")
	kTest            = ast.StringTerm("test")
	kText            = ast.StringTerm("text")
	kTime            = ast.StringTerm("time")
	kTimezone        = ast.StringTerm("timezone")
	kTitle           = ast.StringTerm("title")
	kType            = ast.StringTerm("type")
	kUntil           = ast.StringTerm("until")
	kUpdatedAt       = ast.StringTerm("updated_at")
	kUser            = ast.StringTerm("user")
	kVersion         = ast.StringTerm("version")
	kWeekday         = ast.StringTerm("weekday")
)

func item(k, v *ast.Term) [2]*ast.Term { return [2]*ast.Term{k, v} }

func (b *builder) obj(items ...[2]*ast.Term) *ast.Term { return b.term(ast.NewObject(items...)) }

// emptyString is OPA's interned "".
var emptyString = ast.InternedTerm("")

// str converts a string of the input. Most are names, SHAs, messages or
// patch lines that OPA does not intern, so they are not looked up there.
func (b *builder) str(s string) *ast.Term {
	if s == "" {
		return emptyString
	}
	return b.term(ast.String(s))
}

// num converts an integer: small ones are OPA's interned terms.
func (b *builder) num(n int64) *ast.Term {
	if n >= -1 && n <= 512 {
		return ast.InternedTerm(int(n))
	}
	return b.term(ast.Number(strconv.FormatInt(n, 10)))
}

func (b *builder) timestamp(t time.Time) *ast.Term {
	return b.term(ast.String(t.Format(time.RFC3339Nano)))
}

// list converts a slice like encoding/json does: nil is null. Empty slices
// share OPA's interned empty array (evaluation never modifies input values).
func list[T any](b *builder, xs []T, conv func(*builder, *T) *ast.Term) *ast.Term {
	if xs == nil {
		return ast.NullTerm()
	}
	if len(xs) == 0 {
		return ast.InternedEmptyArray
	}
	terms := make([]*ast.Term, len(xs))
	for i := range xs {
		terms[i] = conv(b, &xs[i])
	}
	return b.term(ast.NewArray(terms...))
}

func (b *builder) strings(xs []string) *ast.Term {
	return list(b, xs, func(b *builder, s *string) *ast.Term { return b.str(*s) })
}

func (b *builder) account(a pr.Account) *ast.Term {
	return b.obj(
		item(kLogin, b.str(a.Login)),
		item(kType, b.str(a.Type)),
		item(kAgent, ast.InternedTerm(a.Agent)),
	)
}

func (b *builder) pullRequest(p *pr.PullRequest) *ast.Term {
	autoMerge := ast.NullTerm()
	if p.AutoMerge != nil {
		autoMerge = b.obj(
			item(kEnabledBy, b.account(p.AutoMerge.EnabledBy)),
			item(kMergeMethod, b.str(p.AutoMerge.MergeMethod)),
		)
	}
	return b.obj(
		item(kNumber, b.num(int64(p.Number))),
		item(kTitle, b.str(p.Title)),
		item(kState, b.str(p.State)),
		item(kDraft, ast.InternedTerm(p.Draft)),
		item(kMerged, ast.InternedTerm(p.Merged)),
		item(kAuthor, b.account(p.Author)),
		item(kHeadSHA, b.str(p.HeadSHA)),
		item(kHeadRef, b.str(p.HeadRef)),
		item(kHeadRepo, b.str(p.HeadRepo)),
		item(kBaseRef, b.str(p.BaseRef)),
		item(kBaseSHA, b.str(p.BaseSHA)),
		item(kLabels, b.strings(p.Labels)),
		item(kAutoMerge, autoMerge),
		item(kCreatedAt, b.timestamp(p.CreatedAt)),
		item(kUpdatedAt, b.timestamp(p.UpdatedAt)),
	)
}

func (b *builder) person(p pr.Person) *ast.Term {
	return b.obj(
		item(kName, b.str(p.Name)),
		item(kEmail, b.str(p.Email)),
		item(kAccount, b.account(p.Account)),
		item(kDate, b.timestamp(p.Date)),
	)
}

func (b *builder) commit(c *pr.Commit) *ast.Term {
	return b.obj(
		item(kSHA, b.str(c.SHA)),
		item(kMessage, b.str(c.Message)),
		item(kAuthor, b.person(c.Author)),
		item(kCommitter, b.person(c.Committer)),
	)
}

func (b *builder) review(r *pr.Review) *ast.Term {
	return b.obj(
		item(kID, b.num(r.ID)),
		item(kUser, b.account(r.User)),
		item(kState, b.str(r.State)),
		item(kCommitID, b.str(r.CommitID)),
		item(kSubmittedAt, b.timestamp(r.SubmittedAt)),
		item(kApprover, ast.InternedTerm(r.Approver)),
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

func (b *builder) status(s string) *ast.Term {
	if t, ok := fileStatuses[s]; ok {
		return t
	}
	return b.str(s)
}

func (b *builder) file(f *pr.File) *ast.Term {
	return b.obj(
		item(kFilename, b.str(f.Filename)),
		item(kStatus, b.status(f.Status)),
		item(kAdditions, b.num(int64(f.Additions))),
		item(kDeletions, b.num(int64(f.Deletions))),
		item(kAddedLines, list(b, f.AddedLines, (*builder).line)),
		item(kTest, ast.InternedTerm(f.Test)),
		item(kQuarantineList, ast.InternedTerm(f.QuarantineList)),
		item(kMarkers, list(b, f.Markers, (*builder).marker)),
	)
}

func (b *builder) line(l *pr.Line) *ast.Term {
	return b.obj(item(kNumber, b.num(int64(l.Number))), item(kText, b.str(l.Text)))
}

func (b *builder) marker(m *pr.Marker) *ast.Term {
	return b.obj(item(kLine, b.num(int64(m.Line))), item(kText, b.str(m.Text)), item(kKind, b.str(m.Kind)))
}

func (b *builder) override(o *pr.Override) *ast.Term {
	return b.obj(
		item(kKind, b.str(o.Kind)),
		item(kActor, b.str(o.Actor)),
		item(kReason, b.str(o.Reason)),
		item(kHeadSHA, b.str(o.HeadSHA)),
		item(kBaseRef, b.str(o.BaseRef)),
		item(kRules, b.strings(o.Rules)),
		item(kFreezes, b.strings(o.Freezes)),
		item(kAt, b.timestamp(o.At)),
	)
}

func (b *builder) clock(c *pr.Clock) *ast.Term {
	items := make([][2]*ast.Term, 0, 8)
	items = append(items,
		item(kNow, b.str(c.Now)),
		item(kLocal, b.str(c.Local)),
		item(kTimezone, b.str(c.Timezone)),
		item(kWeekday, b.str(c.Weekday)),
		item(kBusinessHours, ast.InternedTerm(c.BusinessHours)),
		item(kHoliday, ast.InternedTerm(c.Holiday)),
		item(kFreezes, list(b, c.Freezes, (*builder).freeze)),
	)
	if c.NextBoundary != "" {
		items = append(items, item(kNextBoundary, b.str(c.NextBoundary)))
	}
	return b.obj(items...)
}

func (b *builder) freeze(f *pr.Freeze) *ast.Term {
	items := make([][2]*ast.Term, 0, 7)
	items = append(items,
		item(kName, b.str(f.Name)),
		item(kKind, b.str(f.Kind)),
		item(kAppliesTo, b.str(f.AppliesTo)),
	)
	for _, opt := range [...]struct {
		k *ast.Term
		v string
	}{{kFrom, f.From}, {kUntil, f.Until}, {kReason, f.Reason}, {kBy, f.By}} {
		if opt.v != "" {
			items = append(items, item(opt.k, b.str(opt.v)))
		}
	}
	return b.obj(items...)
}
