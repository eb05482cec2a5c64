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
	return buildAll(&b, in, inputFields)
}

// A field of an object of the input document: its key and how to build its
// value from the Go value it comes from. inputValue builds every field of
// every object; lazyObject (for the plan interpreter) only those a policy
// reads.
type field[T any] struct {
	key   *ast.Term
	build func(*builder, *T) *ast.Term
}

func buildAll[T any](b *builder, src *T, fields []field[T]) ast.Object {
	items := make([][2]*ast.Term, len(fields))
	for i, f := range fields {
		items[i] = item(f.key, f.build(b, src))
	}
	return ast.NewObject(items...)
}

// inputFields are the fields of the input document.
var inputFields = []field[pr.Input]{
	{kVersion, func(b *builder, in *pr.Input) *ast.Term { return b.num(int64(in.Version)) }},
	{kEvent, func(b *builder, in *pr.Input) *ast.Term {
		return b.obj(
			item(kName, b.str(in.Event.Name)),
			item(kAction, b.str(in.Event.Action)),
			item(kSender, b.account(in.Event.Sender)),
		)
	}},
	{kRepository, func(b *builder, in *pr.Input) *ast.Term {
		return b.obj(
			item(kOwner, b.str(in.Repository.Owner)),
			item(kName, b.str(in.Repository.Name)),
			item(kFullName, b.str(in.Repository.FullName)),
			item(kDefaultBranch, b.str(in.Repository.DefaultBranch)),
			item(kPrivate, ast.InternedTerm(in.Repository.Private)),
		)
	}},
	{kPullRequest, func(b *builder, in *pr.Input) *ast.Term { return b.pullRequest(&in.PullRequest) }},
	{kAgentPr, func(_ *builder, in *pr.Input) *ast.Term { return ast.InternedTerm(in.AgentPR) }},
	{kAgentReasons, func(b *builder, in *pr.Input) *ast.Term { return b.strings(in.AgentReasons) }},
	{kCommits, func(b *builder, in *pr.Input) *ast.Term { return list(b, in.Commits, (*builder).commit) }},
	{kReviews, func(b *builder, in *pr.Input) *ast.Term { return list(b, in.Reviews, (*builder).review) }},
	{kFiles, func(b *builder, in *pr.Input) *ast.Term {
		if b.lazy && len(in.Files) > 0 {
			return b.term(&lazyFiles{files: in.Files, b: b, elems: make([]*ast.Term, len(in.Files))})
		}
		return list(b, in.Files, (*builder).file)
	}},
	{kOverrides, func(b *builder, in *pr.Input) *ast.Term { return list(b, in.Overrides, (*builder).override) }},
	{kTime, func(b *builder, in *pr.Input) *ast.Term { return b.clock(&in.Time) }},
	{kQuarantineFiles, func(b *builder, in *pr.Input) *ast.Term { return b.strings(in.QuarantineFiles) }},
	{kMarkedFiles, func(b *builder, in *pr.Input) *ast.Term {
		return list(b, in.MarkedFiles, func(b *builder, i *int) *ast.Term { return b.num(int64(*i)) })
	}},
}

// fileFields are the fields of a changed file.
var fileFields = []field[pr.File]{
	{kFilename, func(b *builder, f *pr.File) *ast.Term { return b.str(f.Filename) }},
	{kStatus, func(b *builder, f *pr.File) *ast.Term { return b.status(f.Status) }},
	{kAdditions, func(b *builder, f *pr.File) *ast.Term { return b.num(int64(f.Additions)) }},
	{kDeletions, func(b *builder, f *pr.File) *ast.Term { return b.num(int64(f.Deletions)) }},
	{kAddedLines, func(b *builder, f *pr.File) *ast.Term { return list(b, f.AddedLines, (*builder).line) }},
	{kTest, func(_ *builder, f *pr.File) *ast.Term { return ast.InternedTerm(f.Test) }},
	{kQuarantineList, func(_ *builder, f *pr.File) *ast.Term { return ast.InternedTerm(f.QuarantineList) }},
	{kMarkers, func(b *builder, f *pr.File) *ast.Term { return list(b, f.Markers, (*builder).marker) }},
}

// newLazyInput is the input document of in for the plan interpreter
// (vm.go): a field is converted when the policy first reads it, and the
// changed files one by one, field by field, so that a decision that looks
// at the markers of a few of a hundred files converts little else. Anything
// that needs a whole value (a comparison, a built-in function, a result)
// gets it from force: the value inputValue builds. It belongs to one
// evaluation.
func newLazyInput(in *pr.Input) *ast.Term {
	b := &builder{lazy: true}
	return b.term(newLazyObject(b, in, inputFields))
}

// lazyValue is a value of the input document not converted yet.
type lazyValue interface {
	ast.Value
	force() ast.Value
}

// lazyObjectValue is a lazyObject of any Go type.
type lazyObjectValue interface {
	lazyValue
	get(key *ast.Term) *ast.Term
	object() ast.Object
}

// lazyObject is an object of the input document converted field by field.
type lazyObject[T any] struct {
	src    *T
	b      *builder
	fields []field[T]
	vals   []*ast.Term
	full   ast.Object
}

func newLazyObject[T any](b *builder, src *T, fields []field[T]) *lazyObject[T] {
	return &lazyObject[T]{src: src, b: b, fields: fields, vals: make([]*ast.Term, len(fields))}
}

// get is the field named by key, nil when there is none.
func (v *lazyObject[T]) get(key *ast.Term) *ast.Term {
	if v.full != nil {
		return v.full.Get(key)
	}
	name, ok := key.Value.(ast.String)
	if !ok {
		return nil
	}
	for i := range v.fields {
		if v.fields[i].key.Value.(ast.String) == name {
			if v.vals[i] == nil {
				v.vals[i] = v.fields[i].build(v.b, v.src)
			}
			return v.vals[i]
		}
	}
	return nil
}

func (v *lazyObject[T]) object() ast.Object {
	if v.full == nil {
		items := make([][2]*ast.Term, len(v.fields))
		for i, f := range v.fields {
			t := v.vals[i]
			if t == nil {
				t = f.build(v.b, v.src)
			}
			items[i] = item(f.key, materialize(t))
		}
		v.full = ast.NewObject(items...)
	}
	return v.full
}

func (v *lazyObject[T]) force() ast.Value { return v.object() }

// lazyFiles is input.files converted file by file.
type lazyFiles struct {
	files []pr.File
	b     *builder
	elems []*ast.Term
	full  *ast.Array
}

func (v *lazyFiles) elem(i int) *ast.Term {
	if v.elems[i] == nil {
		v.elems[i] = v.b.term(newLazyObject(v.b, &v.files[i], fileFields))
	}
	return v.elems[i]
}

func (v *lazyFiles) force() ast.Value {
	if v.full == nil {
		terms := make([]*ast.Term, len(v.files))
		for i := range v.files {
			terms[i] = materialize(v.elem(i))
		}
		v.full = ast.NewArray(terms...)
	}
	return v.full
}

// materialize returns t with a lazy value replaced by the whole value.
func materialize(t *ast.Term) *ast.Term {
	if v, ok := t.Value.(lazyValue); ok {
		return ast.NewTerm(v.force())
	}
	return t
}

// The lazy values are ast.Values so that they can sit in terms; whatever
// asks them as values gets the whole value.
func (v *lazyObject[T]) Compare(other ast.Value) int          { return v.object().Compare(other) }
func (v *lazyObject[T]) Find(path ast.Ref) (ast.Value, error) { return v.object().Find(path) }
func (v *lazyObject[T]) Hash() int                            { return v.object().Hash() }
func (v *lazyObject[T]) IsGround() bool                       { return true }
func (v *lazyObject[T]) String() string                       { return v.object().String() }
func (v *lazyObject[T]) StringLength() int                    { return v.object().StringLength() }
func (v *lazyFiles) Compare(other ast.Value) int              { return v.force().Compare(other) }
func (v *lazyFiles) Find(path ast.Ref) (ast.Value, error)     { return v.force().Find(path) }
func (v *lazyFiles) Hash() int                                { return v.force().Hash() }
func (v *lazyFiles) IsGround() bool                           { return true }
func (v *lazyFiles) String() string                           { return v.force().String() }
func (v *lazyFiles) StringLength() int                        { return v.force().StringLength() }

// builder hands out the terms of one input document from chunks of
// termChunk, instead of allocating each *ast.Term on its own (a document has
// hundreds: ~5 per changed file, ~3 per kept added line). The terms are
// never modified once built, and a chunk lives as long as the document.
type builder struct {
	chunk []ast.Term
	lazy  bool // input.files as a lazyFiles (see newLazyInput)
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

func (b *builder) file(f *pr.File) *ast.Term { return b.term(buildAll(b, f, fileFields)) }

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
