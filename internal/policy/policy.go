package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/mergeguard/guard/internal/pr"
)

// Query is the query every policy set must answer.
const Query = "data.guard.decision"

// Engine is a compiled policy set with data.guard.decision prepared for
// evaluation. It is immutable and safe for concurrent use.
type Engine struct {
	query    rego.PreparedEvalQuery
	prog     *program // nil: Decide evaluates query with topdown
	planErr  error    // why prog is nil
	revision string
	files    []string
}

// source is one policy file.
type source struct {
	name string
	text string
}

// Compile parses and compiles the non-test *.rego files of fsys (walked from
// its root; *_test.rego files are skipped) and prepares data.guard.decision.
// A set that does not parse or compile is refused with every problem as
// file:line:col: reason.
func Compile(ctx context.Context, fsys fs.FS) (*Engine, error) {
	srcs, err := readSources(fsys, false)
	if err != nil {
		return nil, err
	}
	if len(srcs) == 0 {
		return nil, errors.New("compile policies: no *.rego files found")
	}
	opts, err := regoOptions(srcs)
	if err != nil {
		return nil, err
	}
	q, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile policies: %w", describe(err))
	}
	e := &Engine{query: q, revision: revision(srcs)}
	for _, s := range srcs {
		e.files = append(e.files, s.name)
	}
	// A set that decides nothing (no data.guard.decision, a package of
	// another name, a half-written file) or fails on a plain agent PR would
	// fail every pull request: refuse it, so that serve keeps the last good
	// set and eval says why.
	sample := sampleBase()
	if err := checkAnnotated(sample); err != nil {
		return nil, fmt.Errorf("compile policies: sample input: %w", err)
	}
	if _, err := e.decideTopdown(ctx, sample); err != nil {
		return nil, fmt.Errorf("compile policies: they give no valid decision for an agent pull request: %w", err)
	}
	e.prog, e.planErr = planSources(ctx, srcs)
	if e.prog != nil {
		if err := selfCheckEngine(ctx, e); err != nil {
			e.prog, e.planErr = nil, err
		}
	}
	return e, nil
}

// regoOptions are the options that compile srcs for data.guard.decision,
// with freshly parsed modules (OPA's compiler rewrites the modules it is
// given, so each compilation gets its own).
func regoOptions(srcs []source) ([]func(*rego.Rego), error) {
	opts := []func(*rego.Rego){
		rego.Query(Query),
		rego.Capabilities(deterministicCapabilities()),
		rego.SetRegoVersion(ast.RegoV1),
	}
	for _, s := range srcs {
		m, err := parseModule(s)
		if err != nil {
			return nil, err
		}
		opts = append(opts, rego.ParsedModule(m))
	}
	return opts, nil
}

// Evaluator names what Decide evaluates with: "plan" (OPA's plan of the
// policies, run by this package's interpreter) or "topdown (reason)" when
// the policies use what the interpreter does not run.
func (e *Engine) Evaluator() string {
	if e.prog != nil {
		return "plan"
	}
	return fmt.Sprintf("topdown (%v)", e.planErr)
}

// planTarget is the rego target under which planSources asks OPA for the
// plan of a policy set: OPA hands the plan to the target plugin capturing
// it, instead of to its Wasm compiler.
const planTarget = "mergeguard-plan"

var (
	planMu  sync.Mutex // held while planning, so that planned is ours
	planned *ir.Policy
)

type planCapture struct{}

func (planCapture) IsTarget(t string) bool { return t == planTarget }

func (planCapture) PrepareForEval(_ context.Context, pol *ir.Policy, _ ...rego.PrepareOption) (rego.TargetPluginEval, error) {
	planned = pol
	return planCapture{}, nil
}

func (planCapture) Eval(context.Context, *rego.EvalContext, ast.Value) (ast.Value, error) {
	return nil, errors.New("a captured plan is run by policy.program, not through rego")
}

func init() { rego.RegisterPlugin(planTarget, planCapture{}) }

// planSources plans srcs (already known to compile) and prepares the
// interpreter for the plan.
func planSources(ctx context.Context, srcs []source) (*program, error) {
	opts, err := regoOptions(srcs)
	if err != nil {
		return nil, err
	}
	planMu.Lock()
	defer planMu.Unlock()
	planned = nil
	if _, err := rego.New(append(opts, rego.Target(planTarget))...).PrepareForEval(ctx); err != nil {
		return nil, fmt.Errorf("plan policies: %w", err)
	}
	if planned == nil {
		return nil, errors.New("plan policies: OPA produced no plan")
	}
	return newProgram(planned)
}

// Revision identifies the policy set: the first 12 hex digits of a SHA-256
// over the file names and contents of its non-test files.
func (e *Engine) Revision() string { return e.revision }

// Files returns the names of the policy files the engine was compiled from.
func (e *Engine) Files() []string { return append([]string(nil), e.files...) }

// Decide evaluates data.guard.decision for in, which must have been through
// quarantine.Annotate. It fails (and the caller must fail closed) when a
// changed file with added lines was not annotated, or when the decision is
// undefined or malformed: an outcome other than allow, escalate or block, a
// reason without rule, outcome or message, or an outcome less severe than
// one of its reasons.
func (e *Engine) Decide(ctx context.Context, in *pr.Input) (pr.Decision, error) {
	if in == nil {
		return pr.Decision{}, errors.New("decide: nil input")
	}
	if err := checkAnnotated(in); err != nil {
		return pr.Decision{}, err
	}
	// Topdown notices a cancelled context only through a callback that may
	// run after a short evaluation ends: look first, for both evaluators.
	if err := ctx.Err(); err != nil {
		return pr.Decision{}, fmt.Errorf("evaluate %s: %w", Query, err)
	}
	if e.prog != nil {
		d, err := e.decidePlan(ctx, in)
		var ie *internalError
		if !errors.As(err, &ie) {
			return d, err
		}
		// The interpreter could not run the plan: topdown decides.
	}
	return e.decideTopdown(ctx, in)
}

// decideTopdown is Decide with OPA's topdown evaluator.
func (e *Engine) decideTopdown(ctx context.Context, in *pr.Input) (pr.Decision, error) {
	// Cancellation follows ctx through context.AfterFunc rather than the
	// goroutine OPA starts per evaluation otherwise, and no metrics are
	// collected (Decide reports none).
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	rs, err := e.query.Eval(ctx,
		rego.EvalParsedInput(inputValue(in)),
		rego.EvalExternalCancel(cancel),
		rego.EvalMetrics(metrics.NoOp()),
	)
	stop()
	if err != nil {
		return pr.Decision{}, fmt.Errorf("evaluate %s: %w", Query, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return pr.Decision{}, fmt.Errorf("evaluate %s: undefined (policies %s define no decision for this input)", Query, e.revision)
	}
	if len(rs) > 1 {
		return pr.Decision{}, fmt.Errorf("evaluate %s: %d results, want one", Query, len(rs))
	}
	v, err := ast.InterfaceToValue(rs[0].Expressions[0].Value)
	if err != nil {
		return pr.Decision{}, fmt.Errorf("evaluate %s: %w", Query, err)
	}
	d, err := decodeDecision(v)
	if err != nil {
		return pr.Decision{}, fmt.Errorf("decision of policies %s: %w", e.revision, err)
	}
	return d, nil
}

// decidePlan is Decide with the plan interpreter.
func (e *Engine) decidePlan(ctx context.Context, in *pr.Input) (pr.Decision, error) {
	rs, release, err := e.prog.evalInput(ctx, in)
	if err != nil {
		return pr.Decision{}, fmt.Errorf("evaluate %s: %w", Query, err)
	}
	// The decision is copied out of the results (Go strings and values).
	defer release()
	if len(rs) == 0 {
		return pr.Decision{}, fmt.Errorf("evaluate %s: undefined (policies %s define no decision for this input)", Query, e.revision)
	}
	if len(rs) > 1 {
		return pr.Decision{}, fmt.Errorf("evaluate %s: %d results, want one", Query, len(rs))
	}
	// The plan's result is an object holding the query's one value.
	obj, ok := rs[0].Value.(ast.Object)
	if !ok || obj.Len() != 1 {
		return pr.Decision{}, fmt.Errorf("evaluate %s: result %v is not the query's one value", Query, rs[0])
	}
	var v ast.Value
	obj.Foreach(func(_, t *ast.Term) { v = t.Value })
	d, err := decodeDecision(v)
	if err != nil {
		return pr.Decision{}, fmt.Errorf("decision of policies %s: %w", e.revision, err)
	}
	return d, nil
}

// checkAnnotated refuses an input whose changed files were not annotated by
// quarantine.Annotate (which always sets Markers), or whose MarkedFiles does
// not list exactly the files with markers: the policies would miss skip
// markers and so what they must escalate.
func checkAnnotated(in *pr.Input) error {
	next := 0 // index into in.MarkedFiles
	for i := range in.Files {
		f := &in.Files[i]
		if f.Markers == nil && (len(f.AddedLines) > 0 || f.Patch != "") {
			return fmt.Errorf("decide: file %q was not annotated (call quarantine.Annotate on the input before deciding)", f.Filename)
		}
		if len(f.Markers) == 0 {
			continue
		}
		if next == len(in.MarkedFiles) || in.MarkedFiles[next] != i {
			return fmt.Errorf("decide: marked_files does not list file %d %q, which has markers (call quarantine.Annotate on the input before deciding)", i, f.Filename)
		}
		next++
	}
	if next != len(in.MarkedFiles) {
		return fmt.Errorf("decide: marked_files %v lists files without markers (call quarantine.Annotate on the input before deciding)", in.MarkedFiles)
	}
	return nil
}

// readSources returns the *.rego files of fsys sorted by name, with or
// without the *_test.rego files.
func readSources(fsys fs.FS, withTests bool) ([]source, error) {
	var srcs []source
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if path.Ext(p) != ".rego" || (!withTests && isTestFile(p)) {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		srcs = append(srcs, source{name: p, text: string(b)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].name < srcs[j].name })
	return srcs, nil
}

func isTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

func parseModule(s source) (*ast.Module, error) {
	m, err := ast.ParseModuleWithOpts(s.name, s.text, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("parse policies: %w", describe(err))
	}
	return m, nil
}

// revision hashes file names and contents; the names are length-prefixed so
// that no two sets hash alike by moving bytes between name and content.
func revision(srcs []source) string {
	h := sha256.New()
	for _, s := range srcs {
		fmt.Fprintf(h, "%d:%s%d:", len(s.name), s.name, len(s.text))
		h.Write([]byte(s.text))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// deterministicCapabilities are this OPA's capabilities without the builtins
// whose result depends on more than their arguments (time.now_ns, http.send,
// rand.intn, net.lookup_ip_addr, opa.runtime, …).
func deterministicCapabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	kept := caps.Builtins[:0]
	for _, b := range caps.Builtins {
		if !b.Nondeterministic {
			kept = append(kept, b)
		}
	}
	caps.Builtins = kept
	return caps
}

// PolicyError is a policy set that does not parse or compile. Its message
// lists each problem as file:line:col: reason.
type PolicyError struct {
	Problems []Problem
}

// Problem is one parse or compile error at a place in a policy file.
type Problem struct {
	File    string
	Line    int
	Col     int
	Message string
}

func (p Problem) String() string {
	if p.File == "" && p.Line == 0 {
		return p.Message
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Message)
}

func (e *PolicyError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// describe turns OPA's parse and compile errors into a *PolicyError; other
// errors are returned as they are.
func describe(err error) error {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		var one *ast.Error
		if !errors.As(err, &one) {
			return err
		}
		errs = ast.Errors{one}
	}
	pe := &PolicyError{}
	for _, e := range errs {
		p := Problem{Message: e.Message}
		if e.Code != "" {
			p.Message = e.Code + ": " + e.Message
		}
		if e.Location != nil {
			p.File, p.Line, p.Col = e.Location.File, e.Location.Row, e.Location.Col
		}
		pe.Problems = append(pe.Problems, p)
	}
	return pe
}
