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
	// omit reports that the field is left out of this value (an empty
	// optional string); nil: the field is always there.
	omit func(*T) bool
}

func (f *field[T]) present(src *T) bool { return f.omit == nil || !f.omit(src) }

func buildAll[T any](b *builder, src *T, fields []field[T]) ast.Object {
	items := make([][2]*ast.Term, 0, len(fields))
	for i := range fields {
		if f := &fields[i]; f.present(src) {
			items = append(items, item(f.key, f.build(b, src)))
		}
	}
	return ast.NewObject(items...)
}

// object converts a struct of the input: at once, or (for the plan
// interpreter) as a lazyObject that converts a field when it is read.
func object[T any](b *builder, src *T, fields []field[T]) *ast.Term {
	if b.lazy {
		return b.term(newLazyObject(b, src, fields))
	}
	return b.term(buildAll(b, src, fields))
}

// inputFields are the fields of the input document.
var inputFields = []field[pr.Input]{
	{key: kVersion, build: func(b *builder, in *pr.Input) *ast.Term { return b.num(int64(in.Version)) }},
	{key: kEvent, build: func(b *builder, in *pr.Input) *ast.Term { return object(b, &in.Event, eventFields) }},
	{key: kRepository, build: func(b *builder, in *pr.Input) *ast.Term { return object(b, &in.Repository, repositoryFields) }},
	{key: kPullRequest, build: func(b *builder, in *pr.Input) *ast.Term { return object(b, &in.PullRequest, pullRequestFields) }},
	{key: kAgentPr, build: func(_ *builder, in *pr.Input) *ast.Term { return ast.InternedTerm(in.AgentPR) }},
	{key: kAgentReasons, build: func(b *builder, in *pr.Input) *ast.Term { return b.strings(in.AgentReasons) }},
	{key: kCommits, build: func(b *builder, in *pr.Input) *ast.Term { return objects(b, in.Commits, commitFields) }},
	{key: kReviews, build: func(b *builder, in *pr.Input) *ast.Term { return objects(b, in.Reviews, reviewFields) }},
	{key: kFiles, build: func(b *builder, in *pr.Input) *ast.Term { return objects(b, in.Files, fileFields) }},
	{key: kOverrides, build: func(b *builder, in *pr.Input) *ast.Term { return objects(b, in.Overrides, overrideFields) }},
	{key: kTime, build: func(b *builder, in *pr.Input) *ast.Term { return object(b, &in.Time, clockFields) }},
	{key: kQuarantineFiles, build: func(b *builder, in *pr.Input) *ast.Term { return b.strings(in.QuarantineFiles) }},
	{key: kMarkedFiles, build: func(b *builder, in *pr.Input) *ast.Term {
		return list(b, in.MarkedFiles, func(b *builder, i *int) *ast.Term { return b.num(int64(*i)) })
	}},
}

var eventFields = []field[pr.Event]{
	{key: kName, build: func(b *builder, e *pr.Event) *ast.Term { return b.str(e.Name) }},
	{key: kAction, build: func(b *builder, e *pr.Event) *ast.Term { return b.str(e.Action) }},
	{key: kSender, build: func(b *builder, e *pr.Event) *ast.Term { return object(b, &e.Sender, accountFields) }},
}

var repositoryFields = []field[pr.Repository]{
	{key: kOwner, build: func(b *builder, r *pr.Repository) *ast.Term { return b.str(r.Owner) }},
	{key: kName, build: func(b *builder, r *pr.Repository) *ast.Term { return b.str(r.Name) }},
	{key: kFullName, build: func(b *builder, r *pr.Repository) *ast.Term { return b.str(r.FullName) }},
	{key: kDefaultBranch, build: func(b *builder, r *pr.Repository) *ast.Term { return b.str(r.DefaultBranch) }},
	{key: kPrivate, build: func(_ *builder, r *pr.Repository) *ast.Term { return ast.InternedTerm(r.Private) }},
}

var accountFields = []field[pr.Account]{
	{key: kLogin, build: func(b *builder, a *pr.Account) *ast.Term { return b.str(a.Login) }},
	{key: kType, build: func(b *builder, a *pr.Account) *ast.Term { return b.str(a.Type) }},
	{key: kAgent, build: func(_ *builder, a *pr.Account) *ast.Term { return ast.InternedTerm(a.Agent) }},
}

var pullRequestFields = []field[pr.PullRequest]{
	{key: kNumber, build: func(b *builder, p *pr.PullRequest) *ast.Term { return b.num(int64(p.Number)) }},
	{key: kTitle, build: func(b *builder, p *pr.PullRequest) *ast.Term { return b.str(p.Title) }},
	{key: kState, build: func(b *builder, p *pr.PullRequest) *ast.Term { return b.str(p.State) }},
	{key: kDraft, build: func(_ *builder, p *pr.PullRequest) *ast.Term { return ast.InternedTerm(p.Draft) }},
	{key: kMerged, build: func(_ *builder, p *pr.PullRequest) *ast.Term { return ast.InternedTerm(p.Merged) }},
	{key: kAuthor, build: func(b *builder, p *pr.PullRequest) *ast.Term { return object(b, &p.Author, accountFields) }},
	{key: kHeadSHA, build: func(b *builder, p *pr.PullRequest) *ast.Term { return b.str(p.HeadSHA) }},
	{key: kHeadRef, build: func(b *builder, p *pr.PullRequest) *ast.Term { return b.str(p.HeadRef) }},
	{key: kHeadRepo, build: func(b *builder, p *pr.PullRequest) *ast.Term { return b.str(p.HeadRepo) }},
	{key: kBaseRef, build: func(b *builder, p *pr.PullRequest) *ast.Term { return b.str(p.BaseRef) }},
	{key: kBaseSHA, build: func(b *builder, p *pr.PullRequest) *ast.Term { return b.str(p.BaseSHA) }},
	{key: kLabels, build: func(b *builder, p *pr.PullRequest) *ast.Term { return b.strings(p.Labels) }},
	{key: kAutoMerge, build: func(b *builder, p *pr.PullRequest) *ast.Term {
		if p.AutoMerge == nil {
			return ast.InternedNullTerm
		}
		return object(b, p.AutoMerge, autoMergeFields)
	}},
	{key: kCreatedAt, build: func(b *builder, p *pr.PullRequest) *ast.Term { return b.timestamp(p.CreatedAt) }},
	{key: kUpdatedAt, build: func(b *builder, p *pr.PullRequest) *ast.Term { return b.timestamp(p.UpdatedAt) }},
}

var autoMergeFields = []field[pr.AutoMerge]{
	{key: kEnabledBy, build: func(b *builder, a *pr.AutoMerge) *ast.Term { return object(b, &a.EnabledBy, accountFields) }},
	{key: kMergeMethod, build: func(b *builder, a *pr.AutoMerge) *ast.Term { return b.str(a.MergeMethod) }},
}

var personFields = []field[pr.Person]{
	{key: kName, build: func(b *builder, p *pr.Person) *ast.Term { return b.str(p.Name) }},
	{key: kEmail, build: func(b *builder, p *pr.Person) *ast.Term { return b.str(p.Email) }},
	{key: kAccount, build: func(b *builder, p *pr.Person) *ast.Term { return object(b, &p.Account, accountFields) }},
	{key: kDate, build: func(b *builder, p *pr.Person) *ast.Term { return b.timestamp(p.Date) }},
}

var commitFields = []field[pr.Commit]{
	{key: kSHA, build: func(b *builder, c *pr.Commit) *ast.Term { return b.str(c.SHA) }},
	{key: kMessage, build: func(b *builder, c *pr.Commit) *ast.Term { return b.str(c.Message) }},
	{key: kAuthor, build: func(b *builder, c *pr.Commit) *ast.Term { return object(b, &c.Author, personFields) }},
	{key: kCommitter, build: func(b *builder, c *pr.Commit) *ast.Term { return object(b, &c.Committer, personFields) }},
	{key: kParents, build: func(b *builder, c *pr.Commit) *ast.Term { return b.strings(c.Parents) }},
}

var reviewFields = []field[pr.Review]{
	{key: kID, build: func(b *builder, r *pr.Review) *ast.Term { return b.num(r.ID) }},
	{key: kUser, build: func(b *builder, r *pr.Review) *ast.Term { return object(b, &r.User, accountFields) }},
	{key: kState, build: func(b *builder, r *pr.Review) *ast.Term { return b.str(r.State) }},
	{key: kCommitID, build: func(b *builder, r *pr.Review) *ast.Term { return b.str(r.CommitID) }},
	{key: kSubmittedAt, build: func(b *builder, r *pr.Review) *ast.Term { return b.timestamp(r.SubmittedAt) }},
	{key: kApprover, build: func(_ *builder, r *pr.Review) *ast.Term { return ast.InternedTerm(r.Approver) }},
}

// fileFields are the fields of a changed file.
var fileFields = []field[pr.File]{
	{key: kFilename, build: func(b *builder, f *pr.File) *ast.Term { return b.str(f.Filename) }},
	{key: kStatus, build: func(b *builder, f *pr.File) *ast.Term { return b.status(f.Status) }},
	{key: kAdditions, build: func(b *builder, f *pr.File) *ast.Term { return b.num(int64(f.Additions)) }},
	{key: kDeletions, build: func(b *builder, f *pr.File) *ast.Term { return b.num(int64(f.Deletions)) }},
	{key: kAddedLines, build: func(b *builder, f *pr.File) *ast.Term { return objects(b, f.AddedLines, lineFields) }},
	{key: kTest, build: func(_ *builder, f *pr.File) *ast.Term { return ast.InternedTerm(f.Test) }},
	{key: kQuarantineList, build: func(_ *builder, f *pr.File) *ast.Term { return ast.InternedTerm(f.QuarantineList) }},
	{key: kMarkers, build: func(b *builder, f *pr.File) *ast.Term { return objects(b, f.Markers, markerFields) }},
}

var lineFields = []field[pr.Line]{
	{key: kNumber, build: func(b *builder, l *pr.Line) *ast.Term { return b.num(int64(l.Number)) }},
	{key: kText, build: func(b *builder, l *pr.Line) *ast.Term { return b.str(l.Text) }},
}

var markerFields = []field[pr.Marker]{
	{key: kLine, build: func(b *builder, m *pr.Marker) *ast.Term { return b.num(int64(m.Line)) }},
	{key: kText, build: func(b *builder, m *pr.Marker) *ast.Term { return b.str(m.Text) }},
	{key: kKind, build: func(b *builder, m *pr.Marker) *ast.Term { return b.str(m.Kind) }},
}

var overrideFields = []field[pr.Override]{
	{key: kKind, build: func(b *builder, o *pr.Override) *ast.Term { return b.str(o.Kind) }},
	{key: kActor, build: func(b *builder, o *pr.Override) *ast.Term { return b.str(o.Actor) }},
	{key: kReason, build: func(b *builder, o *pr.Override) *ast.Term { return b.str(o.Reason) }},
	{key: kHeadSHA, build: func(b *builder, o *pr.Override) *ast.Term { return b.str(o.HeadSHA) }},
	{key: kBaseRef, build: func(b *builder, o *pr.Override) *ast.Term { return b.str(o.BaseRef) }},
	{key: kRules, build: func(b *builder, o *pr.Override) *ast.Term { return b.strings(o.Rules) }},
	{key: kFreezes, build: func(b *builder, o *pr.Override) *ast.Term { return b.strings(o.Freezes) }},
	{key: kAt, build: func(b *builder, o *pr.Override) *ast.Term { return b.timestamp(o.At) }},
}

var clockFields = []field[pr.Clock]{
	{key: kNow, build: func(b *builder, c *pr.Clock) *ast.Term { return b.str(c.Now) }},
	{key: kLocal, build: func(b *builder, c *pr.Clock) *ast.Term { return b.str(c.Local) }},
	{key: kTimezone, build: func(b *builder, c *pr.Clock) *ast.Term { return b.str(c.Timezone) }},
	{key: kWeekday, build: func(b *builder, c *pr.Clock) *ast.Term { return b.str(c.Weekday) }},
	{key: kBusinessHours, build: func(_ *builder, c *pr.Clock) *ast.Term { return ast.InternedTerm(c.BusinessHours) }},
	{key: kHoliday, build: func(_ *builder, c *pr.Clock) *ast.Term { return ast.InternedTerm(c.Holiday) }},
	{key: kFreezes, build: func(b *builder, c *pr.Clock) *ast.Term { return objects(b, c.Freezes, freezeFields) }},
	{key: kNextBoundary, build: func(b *builder, c *pr.Clock) *ast.Term { return b.str(c.NextBoundary) },
		omit: func(c *pr.Clock) bool { return c.NextBoundary == "" }},
}

// freezeFields: from, until, reason and by are left out when empty
// (omitempty).
var freezeFields = []field[pr.Freeze]{
	{key: kName, build: func(b *builder, f *pr.Freeze) *ast.Term { return b.str(f.Name) }},
	{key: kKind, build: func(b *builder, f *pr.Freeze) *ast.Term { return b.str(f.Kind) }},
	{key: kAppliesTo, build: func(b *builder, f *pr.Freeze) *ast.Term { return b.str(f.AppliesTo) }},
	{key: kFrom, build: func(b *builder, f *pr.Freeze) *ast.Term { return b.str(f.From) },
		omit: func(f *pr.Freeze) bool { return f.From == "" }},
	{key: kUntil, build: func(b *builder, f *pr.Freeze) *ast.Term { return b.str(f.Until) },
		omit: func(f *pr.Freeze) bool { return f.Until == "" }},
	{key: kReason, build: func(b *builder, f *pr.Freeze) *ast.Term { return b.str(f.Reason) },
		omit: func(f *pr.Freeze) bool { return f.Reason == "" }},
	{key: kBy, build: func(b *builder, f *pr.Freeze) *ast.Term { return b.str(f.By) },
		omit: func(f *pr.Freeze) bool { return f.By == "" }},
}

// newLazyInput is the input document of in for the plan interpreter
// (vm.go): every object is a lazyObject, converted field by field when the
// policy reads it, and every list of objects a lazyList, converted element
// by element, so that a decision that looks at the markers of a few of a
// hundred files, or at the logins of a commit's author, converts little
// else. Anything that needs a whole value (a comparison, a built-in
// function, a collection, a result) gets it from force: the value
// inputValue builds. It belongs to one evaluation.
func newLazyInput(in *pr.Input) *ast.Term {
	return object(&builder{lazy: true}, in, inputFields)
}

// lazyValue is a value of the input document not converted yet.
type lazyValue interface {
	ast.Value
	force() ast.Value
	// forced is a term of the whole value, made once.
	forced() *ast.Term
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
	term   *ast.Term // of full
}

func newLazyObject[T any](b *builder, src *T, fields []field[T]) *lazyObject[T] {
	return &lazyObject[T]{src: src, b: b, fields: fields, vals: b.slots(len(fields))}
}

// get is the field named by key, nil when there is none.
func (v *lazyObject[T]) get(key *ast.Term) *ast.Term {
	if v.full != nil {
		return v.full.Get(key)
	}
	i := -1
	for j := range v.fields {
		// The plan's constant keys are the fields' own terms (see
		// inputKey): found by pointer, most of the time.
		if v.fields[j].key == key {
			i = j
			break
		}
	}
	if i < 0 {
		name, ok := key.Value.(ast.String)
		if !ok {
			return nil
		}
		for j := range v.fields {
			if v.fields[j].key.Value.(ast.String) == name {
				i = j
				break
			}
		}
		if i < 0 {
			return nil
		}
	}
	f := &v.fields[i]
	if !f.present(v.src) {
		return nil
	}
	if v.vals[i] == nil {
		v.vals[i] = f.build(v.b, v.src)
	}
	return v.vals[i]
}

// inputKey is the term of the input document's key s, nil when s is none:
// the plan's string constants use these terms (newProgram), so that a
// lookup of a field compares pointers, not strings.
func inputKey(s string) *ast.Term {
	return inputKeys[s]
}

var inputKeys = map[string]*ast.Term{}

func init() {
	add := func(k *ast.Term) { inputKeys[string(k.Value.(ast.String))] = k }
	for _, f := range inputFields {
		add(f.key)
	}
	for _, fs := range [][]*ast.Term{
		keysOf(eventFields), keysOf(repositoryFields), keysOf(accountFields), keysOf(pullRequestFields),
		keysOf(autoMergeFields), keysOf(personFields), keysOf(commitFields), keysOf(reviewFields),
		keysOf(fileFields), keysOf(lineFields), keysOf(markerFields), keysOf(overrideFields),
		keysOf(clockFields), keysOf(freezeFields),
	} {
		for _, k := range fs {
			add(k)
		}
	}
}

func keysOf[T any](fields []field[T]) []*ast.Term {
	out := make([]*ast.Term, len(fields))
	for i := range fields {
		out[i] = fields[i].key
	}
	return out
}

func (v *lazyObject[T]) object() ast.Object {
	if v.full == nil {
		items := make([][2]*ast.Term, 0, len(v.fields))
		for i := range v.fields {
			f := &v.fields[i]
			if !f.present(v.src) {
				continue
			}
			t := v.vals[i]
			if t == nil {
				t = f.build(v.b, v.src)
			}
			items = append(items, item(f.key, materialize(t)))
		}
		v.full = ast.NewObject(items...)
	}
	return v.full
}

func (v *lazyObject[T]) force() ast.Value { return v.object() }

func (v *lazyObject[T]) forced() *ast.Term {
	if v.term == nil {
		v.term = v.b.term(v.object())
	}
	return v.term
}

// lazyListValue is a lazyList of any Go type.
type lazyListValue interface {
	lazyValue
	len() int
	elem(i int) *ast.Term
}

// lazyList is a list of objects of the input document (input.files,
// input.reviews, ...) converted element by element.
type lazyList[T any] struct {
	xs     []T
	b      *builder
	fields []field[T]
	elems  []*ast.Term
	full   *ast.Array
	term   *ast.Term // of full
}

// objects converts a list of structs like encoding/json does (nil is null):
// at once, or as a lazyList of lazyObjects for the plan interpreter.
func objects[T any](b *builder, xs []T, fields []field[T]) *ast.Term {
	if !b.lazy || len(xs) == 0 {
		return list(b, xs, func(b *builder, x *T) *ast.Term { return object(b, x, fields) })
	}
	return b.term(&lazyList[T]{xs: xs, b: b, fields: fields, elems: b.slots(len(xs))})
}

func (v *lazyList[T]) len() int { return len(v.xs) }

func (v *lazyList[T]) elem(i int) *ast.Term {
	if v.elems[i] == nil {
		v.elems[i] = object(v.b, &v.xs[i], v.fields)
	}
	return v.elems[i]
}

func (v *lazyList[T]) force() ast.Value {
	if v.full == nil {
		terms := make([]*ast.Term, len(v.xs))
		for i := range v.xs {
			terms[i] = materialize(v.elem(i))
		}
		v.full = ast.NewArray(terms...)
	}
	return v.full
}

func (v *lazyList[T]) forced() *ast.Term {
	if v.term == nil {
		v.term = v.b.term(v.force())
	}
	return v.term
}

// materialize returns t with a lazy value replaced by the whole value.
func materialize(t *ast.Term) *ast.Term {
	switch t.Value.(type) {
	case ast.String, ast.Number, ast.Boolean, ast.Null, *ast.Array:
		return t // the common values, without asking for an interface
	}
	if v, ok := t.Value.(lazyValue); ok {
		return v.forced()
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
func (v *lazyList[T]) Compare(other ast.Value) int            { return v.force().Compare(other) }
func (v *lazyList[T]) Find(path ast.Ref) (ast.Value, error)   { return v.force().Find(path) }
func (v *lazyList[T]) Hash() int                              { return v.force().Hash() }
func (v *lazyList[T]) IsGround() bool                         { return true }
func (v *lazyList[T]) String() string                         { return v.force().String() }
func (v *lazyList[T]) StringLength() int                      { return v.force().StringLength() }

// builder hands out the terms of one input document from chunks of
// termChunk, instead of allocating each *ast.Term on its own (a document has
// hundreds: ~5 per changed file, ~3 per kept added line). The terms are
// never modified once built, and a chunk lives as long as the document.
type builder struct {
	chunk []ast.Term
	slot  []*ast.Term // see slots
	lazy  bool        // objects and lists of objects as lazy values (see newLazyInput)
}

// termChunk is small: a decision reads a few dozen values of the input
// (and the plan makes a few hundred), and the unused rest of a chunk is
// garbage all the same.
const termChunk = 32

// slots are n nil term pointers for a lazy value's fields or elements, from
// the current chunk when they fit, else from a new chunk of slotChunk (a
// decision reads a dozen or two objects of the input, each with its own
// slots); a long list's have a slice of their own.
func (b *builder) slots(n int) []*ast.Term {
	if len(b.slot)+n > cap(b.slot) {
		if n > slotChunk/4 {
			return make([]*ast.Term, n)
		}
		b.slot = make([]*ast.Term, 0, slotChunk)
	}
	b.slot = b.slot[:len(b.slot)+n]
	return b.slot[len(b.slot)-n : len(b.slot) : len(b.slot)]
}

const slotChunk = 128

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
	kParents         = ast.StringTerm("parents")
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

// list converts a slice like encoding/json does: nil is null. Null and
// empty slices share OPA's interned null and empty array (evaluation never
// modifies input values).
func list[T any](b *builder, xs []T, conv func(*builder, *T) *ast.Term) *ast.Term {
	if xs == nil {
		return ast.InternedNullTerm
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
