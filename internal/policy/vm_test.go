package policy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/policies"
)

// TestProgramMatchesTopdown decides random inputs with the plan
// interpreter and with OPA's topdown evaluator: the decisions must be the
// same, reason for reason, and so must refusals.
func TestProgramMatchesTopdown(t *testing.T) {
	plan, top := bothEngines(t)
	r := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	outcomes := map[pr.Outcome]int{}
	for i := range n {
		in := randomInput(r)
		compareDecide(t, plan, top, in, fmt.Sprintf("input %d", i))
		if d, err := top.Decide(context.Background(), in); err == nil {
			outcomes[d.Outcome]++
		}
	}
	// The inputs reach every outcome.
	for _, o := range []pr.Outcome{pr.Allow, pr.Escalate, pr.Block} {
		if outcomes[o] == 0 {
			t.Errorf("no input decided %s: %v", o, outcomes)
		}
	}
}

// FuzzProgramMatchesTopdown is TestProgramMatchesTopdown with inputs drawn
// from the fuzzer's seeds.
func FuzzProgramMatchesTopdown(f *testing.F) {
	plan, top := bothEngines(f)
	for _, s := range []uint64{0, 1, 42, 1 << 40} {
		f.Add(binary.LittleEndian.AppendUint64(nil, s))
	}
	f.Fuzz(func(t *testing.T, seed []byte) {
		var a, b uint64
		if len(seed) >= 8 {
			a = binary.LittleEndian.Uint64(seed)
		}
		for _, c := range seed {
			b = b*31 + uint64(c)
		}
		compareDecide(t, plan, top, randomInput(rand.New(rand.NewPCG(a, b))), fmt.Sprintf("seed %x", seed))
	})
}

// compileTopdown is Compile without the plan: Decide evaluates with topdown.
func compileTopdown(ctx context.Context, fsys fs.FS) (*Engine, error) {
	e, err := Compile(ctx, fsys)
	if err != nil {
		return nil, err
	}
	e.prog, e.planErr = nil, errors.New("topdown requested")
	return e, nil
}

func bothEngines(tb testing.TB) (plan, top *Engine) {
	tb.Helper()
	plan = mustCompile(tb)
	if plan.prog == nil {
		tb.Fatalf("the embedded policies are not run by the plan interpreter: %s", plan.Evaluator())
	}
	top, err := compileTopdown(context.Background(), policies.FS)
	if err != nil {
		tb.Fatal(err)
	}
	return plan, top
}

func compareDecide(tb testing.TB, plan, top *Engine, in *pr.Input, what string) {
	tb.Helper()
	ctx := context.Background()
	dp, errp := plan.Decide(ctx, in)
	dt, errt := top.Decide(ctx, in)
	if (errp == nil) != (errt == nil) || !reflect.DeepEqual(dp, dt) {
		tb.Fatalf("%s: the plan decides\n%+v (%v)\ntopdown decides\n%+v (%v)\ninput: %+v", what, dp, errp, dt, errt, in)
	}
}

// evalBoth evaluates data.guard.decision of one policy module on input
// (JSON) with the plan interpreter and with topdown.
func evalBoth(t *testing.T, module, input string) (plan, top ast.Value, planErr, topErr error, prog *program) {
	t.Helper()
	q, prog, err := prepareBoth(t, module)
	var in any
	if err := util.UnmarshalJSON([]byte(input), &in); err != nil {
		t.Fatal(err)
	}
	v, err2 := ast.InterfaceToValue(in)
	if err2 != nil {
		t.Fatal(err2)
	}
	if err != nil {
		_, top, _, topErr = decideBoth(q, nil, v, nil)
		return nil, top, err, topErr, nil
	}
	plan, top, planErr, topErr = decideBoth(q, prog, v, ast.NewTerm(v))
	return plan, top, planErr, topErr, prog
}

// prepareBoth prepares one policy module for topdown and plans it; err is
// the planner's refusal.
func prepareBoth(t *testing.T, module string) (q rego.PreparedEvalQuery, prog *program, err error) {
	t.Helper()
	srcs := []source{{name: "p.rego", text: module}}
	opts, err := regoOptions(srcs)
	if err != nil {
		t.Fatal(err)
	}
	if q, err = rego.New(opts...).PrepareForEval(context.Background()); err != nil {
		t.Fatal(err)
	}
	prog, err = planSources(context.Background(), srcs)
	return q, prog, err
}

// decideBoth evaluates with topdown on topIn and, when prog is not nil,
// with the plan on planIn (the same document, possibly lazy). The plan's
// value goes through JSON, as Decide reads it and as rego gives topdown's.
func decideBoth(q rego.PreparedEvalQuery, prog *program, topIn ast.Value, planIn *ast.Term) (plan, top ast.Value, planErr, topErr error) {
	ctx := context.Background()
	rs, topErr := q.Eval(ctx, rego.EvalParsedInput(topIn))
	if topErr == nil && len(rs) == 1 {
		top, topErr = ast.InterfaceToValue(rs[0].Expressions[0].Value)
	}
	if prog == nil {
		return nil, top, nil, topErr
	}
	res, release, planErr := prog.eval(ctx, planIn)
	if planErr == nil {
		defer release()
	}
	if planErr == nil && len(res) == 1 {
		res[0].Value.(ast.Object).Foreach(func(_, t *ast.Term) {
			native, err := ast.JSON(t.Value)
			if err != nil {
				planErr = err
				return
			}
			plan, planErr = ast.InterfaceToValue(native)
		})
	}
	return plan, top, planErr, topErr
}

// TestProgramStatements covers the interpreter's statements with small
// policies, each decided by both evaluators on a few inputs.
func TestProgramStatements(t *testing.T) {
	inputs := []string{
		`{}`,
		`{"xs": [3, 1, 2, 1], "o": {"b": 2, "a": 1, "c": [1, {"d": true}]}, "s": "héllo", "n": null, "flag": true}`,
		`{"xs": [], "o": {}, "s": "", "flag": false}`,
		`{"xs": "not an array", "o": [1, 2], "s": 7, "flag": "yes"}`,
	}
	modules := map[string]string{
		"comprehensions": `package guard
decision := {"arr": [y | some x in input.xs; y := x * 2], "set": {x | some x in input.xs; x > 1},
	"obj": {k: v | some k, v in input.o}, "keys": [k | some k, _ in input.o], "idx": [i | some i, _ in input.xs]}`,
		"negation and else": `package guard
big if { some x in input.xs; x > 2 }
kind := "big" if big
else := "has o" if { input.o.a }
else := "none"
decision := {"kind": kind, "not_big": not_big, "nested": [x | some x in input.xs; not x == 1]}
not_big if not big`,
		"functions": `package guard
f(x) := y if { y := x + 1 } else := 0
g(x, y) := concat("-", [x, y]) if { is_string(x); is_string(y) }
h(x) := "one" if x == 1
h(x) := "many" if x > 1
decision := {"f": [f(x) | some x in input.xs], "g": g("a", "b"), "h": [h(x) | some x in input.xs], "missing": [g(1, 2)]} if true
else := "undefined inside"`,
		"partial rules": `package guard
ps contains x if { some x in input.xs; x != 2 }
po[k] := v if { some k, v in input.o; k != "c" }
decision := {"ps": ps, "po": po, "count": count(ps), "has": 3 in ps}`,
		"lookups": `package guard
decision := {"deep": object.get(input, ["o", "c", 1, "d"], "no"), "idx": input.xs[1], "len": count(input.s),
	"str": sprintf("%v/%v", [input.s, input.n]), "type": type_name(input.o), "all": input} if true
else := {"deep": object.get(input, ["o", "c", 1, "d"], "no")}`,
		"builtin errors are undefined": `package guard
t := time.parse_rfc3339_ns("nope")
d := x if { x := to_number("seven") }
decision := {"t": object.get({"t": t}, "t", "undefined"), "d": [y | y := d], "ok": upper(input.s)} if true
else := {"partial": true}`,
		"every and some": `package guard
decision := {"every": every_positive, "some": any_one}
every_positive if { every x in input.xs { x > 0 } }
default every_positive := false
any_one if { some x in input.xs; x == 1 }
default any_one := false`,
		"sets and membership": `package guard
s := {x | some x in input.xs}
decision := {"u": s | {9}, "i": s & {1, 2}, "d": s - {1}, "in": [b | some x in [1, 5]; b := x in s], "sorted": sort(s), "obj_in": "a" in object.keys(input.o)}`,
		"destructuring": `package guard
pairs := [a | some [a, _] in [[1, 2], [3, 4], "x", [5]]]
objs := [v | some o in [{"k": 1}, {"j": 2}, {"k": 3, "z": 0}]; {"k": v} = o]
from_input := [x | some [x, _] in [input.xs, input.o]]
never if false
decision := {"pairs": pairs, "objs": objs, "from_input": from_input, "never": [x | never; x := 1]}`,
		"sets built and added to": `package guard
m[k] contains v if { some v in input.xs; k := "a" }
m[k] contains v if { some k, v in input.o }
m[k] contains 1 if { some k in ["a", "b"] }
s1 := {x | some x in input.xs}
s2 := {x | some x in [1, 1, 2]; x > 0}
decision := {"m": m, "s1": s1, "n1": count(s1), "in": 3 in s1, "s1_2": s1 == s2, "empty": {x | some x in []},
	"k": [x | some x in s1], "sorted": sort(s1), "u": s1 | s2, "of_sets": {s1, s2, {x | some x in input.xs}}}`,
		"objects built, small and large": `package guard
big := {sprintf("k%d", [i]): i | some i in numbers.range(1, 40)}
dup := {x: 1 | some x in [1, 1.0, 2, 2]}
po[k] := v if { some k, v in big; v > 30 }
po.extra := 0
decision := {"big": big, "n": count(big), "k7": big.k7, "dup": dup, "keys": [k | some k, _ in big], "po": po,
	"small": {"a": 1, "b": {"c": 2}}.b.c, "eq": big == {k: v | some k, v in big}, "in": 7 in big,
	"nested": {k: {v: k} | some k, v in input.o}, "of_input": {k: v | some k, v in input},
	"scan_small": [[k, v] | some k, v in {"b": 1, "a": input.s, "c": 3, 1: "n", [1]: "arr"}],
	"scan_built": [[k, v] | some k, v in {x: 1 | some x in ["z", "y", "x", "y"]}]}`,
		"sort, concat of sorted values and time parsing": `package guard
mixed := [3, "b", [1], {"a": 1}, null, true, 1.5, "a", {2}, [0, 1], false, 3]
decision := {
	"sort_arr": sort([x | some x in mixed]), "sort_set": sort({x | some x in mixed}), "sort_lit": sort(["b", "a", "c"]),
	"sort_input": [s | s := sort(input.xs)], "first": sort([x | some x in ["z", "y"]])[0],
	"concat_sorted": concat(",", sort(["b", "a"])), "concat_set": concat("+", {"b", "a", "c"}),
	"concat_set_bad": [c | c := concat("+", {"b", input.xs[0]})], "concat_arr_bad": [c | c := concat("+", sort([x | some x in ["b", 1]]))],
	"times": [[s, n] | some s in ["2026-03-07T18:00:00Z", "2026-03-07T18:00:00.123456789+05:30", "1600-01-01T00:00:00Z",
		"2300-01-01T00:00:00Z", "2262-04-11T23:47:16.854775807Z", "1677-09-21T00:12:43.145224192Z", "nope", "2026-03-07", "2026-03-07t18:00:00z"];
		n := time.parse_rfc3339_ns(s)],
	"time_input": [n | n := time.parse_rfc3339_ns(input.s)],
}`,
		"literal collections": `package guard
kinds := {"weekly", "window"}
decision := {
	"in_lit": [x | some x in input.xs; x in {1, "a", 3}], "s_in": [s | some s in ["weekly", "x", "window"]; s in {"weekly", "window"}],
	"empty": [x | some x in input.xs; {y | some y in input.xs; y > 100} != set()], "is_empty": {y | some y in input.xs; y > 100} == set(),
	"obj_lit": [m | some k in ["CHANGES_REQUESTED", "DISMISSED", "X"]; m := {"CHANGES_REQUESTED": "c", "DISMISSED": "d"}[k]],
	"nested": {"a": {"b", "c"}, "e": set(), "o": {"k": "v"}}, "rule": kinds, "twice": [kinds, kinds],
	"partial": p, "bools": {true, false, "t"},
}
p[k] contains "fixed" if some k in ["a", "b"]
p[k] contains v if { some v in ["x", "y"]; k := "a" }`,
		"comparisons and membership": `package guard
vals := [1, 1.0, 2, "1", "a", null, true, false, [1], [1.0], {"a": 1}, {"a": 1.0}, {1}, {1.0}, input.xs, input.o, input.s]
decision := {
	"eq": [[i, j] | some i, a in vals; some j, b in vals; a == b],
	"neq": count([1 | some a in vals; some b in vals; a != b]),
	"lt": [[i, j] | some i, a in vals; some j, b in vals; a < b],
	"gte": count([1 | some a in vals; some b in vals; a >= b]),
	"gt": count([1 | some a in vals; some b in vals; a > b]), "lte": count([1 | some a in vals; some b in vals; a <= b]),
	"str": [is_string(v) | some v in vals],
	"in_arr": [b | some v in vals; b := v in [1, "a", [1], input.s]], "in_set": [b | some v in vals; b := v in {1, "a", [1]}],
	"in_obj": [b | some v in vals; b := v in {"k": 1, "j": "a"}], "in_input": [b | some v in vals; b := v in input.xs],
	"count": count([x | some x in vals]), "get": object.get({"a": {"b": [5]}}, ["a", "b", 0], "d"),
	"gets": [object.get(o, p, "dflt") | some o in [{"a": {"b": [5, {"c": false}], "s": {"x"}}}, input.o, {k: v | some k, v in input.o}]
		some p in [["a", "b", 1, "c"], ["a", "s", "x"], ["a", "b", 9], [], "a", ["c", 1, "d"], ["a", "b", "0"], 1]],
	"get_not_object": [g | g := object.get(input.xs, 0, "d")],
}`,
		"sprintf and concat of array literals": `package guard
nums := [1, -2, 0, 1.5, 2.0, 1e3, 12345678901234567890123, -0]
decision := {
	"each": [sprintf("%d|%v|%s|%q|%x|%5.1f", [n, n, n, n, n, n]) | some n in nums],
	"strs": sprintf("%s %q %v %d %10s|%-4s|", [input.s, input.s, input.s, input.s, "r", "l"]),
	"mixed": sprintf("%v %v %v %v %v", [input.xs, input.o, input.n, input.flag, {1, 2}]),
	"few": sprintf("%s %s", ["only"]), "many": sprintf("%s", ["a", "b"]), "one": sprintf("%d", [42]),
	"fast": [sprintf("%s=%q (%v, %d, %v) 100%% %q", [s, s, s, -12, 9007199254740993, "a\"b\n\u00e9\u2028\t\\"]) | some s in ["", "héllo", "x y"]],
	"fast_input": [f | f := sprintf("<%s|%q|%v>", [input.s, input.s, input.s])], "trailing": sprintf("50%", []), "bad_verb": sprintf("%z", ["a"]),
	"int_as_s": sprintf("%s|%q", [5, 6]), "str_as_d": sprintf("%d", ["x"]), "no_args": sprintf("plain", []),
	"concat": concat(", ", [input.s, "b", "c"]), "concat1": concat("", ["x"]), "concat0": concat("-", [x | some x in []]),
	"concat_bad": [c | c := concat(",", ["a", input.xs[0]])], "concat_in": concat("/", [x | some x in input.xs; is_string(x)]),
	"concat_s": [c | c := concat(",", [input.s, input.s])],
}`,
		"sets built, small and large": `package guard
small := {x | some x in input.xs}
dups := {x | some x in [1, 1.0, 2, "2", [1], [1.0], {"a": 1}, {"a": 1.0}, {1}, {1.0}, null, null, input.s, input.o]}
big := {x | some x in numbers.range(1, 40)}
big_dups := {y | some x in numbers.range(1, 40); y := x % 7}
objs := {{"k": x} | some x in input.xs}
nested := {s | some x in [1, 2]; s := {y | some y in input.xs; y >= x}}
ps contains x if some x in input.xs
ps contains "fixed"
ps contains x if some x in numbers.range(1, 20)
decision := {
	"small": small, "dups": dups, "n_dups": count(dups), "big": big, "n_big": count(big), "big_dups": big_dups,
	"in": [x | some x in [1, 2, 3, "1", 1.0, [1], {1}]; x in dups], "lookup": [dups[x] | some x in [1, 2.0, "2", "z", [1.0]]],
	"iter": [x | some x in dups], "iter_big": [x | some x in big; x > 35], "objs": objs, "ps": ps, "n_ps": count(ps),
	"eq": [small == {1, 2, 3}, small == small, dups == dups, {x | some x in []} == set(), small != set(), set() == small, ps == ps],
	"cmp": [[a < b, a == b, a > b] | some a in [small, big, set(), {1}, dups, ps]; some b in [small, big, set(), {1}, dups, ps]],
	"sorted": sort(dups), "concat": concat(",", {s | some s in ["b", "a", "c", "a"]}), "nested": nested,
	"of_sets": {small, {x | some x in input.xs}}, "union": small | big_dups, "inter": small & big_dups, "diff": big_dups - small,
	"is_set": [is_set(small), is_set(big), is_set([x | some x in small])], "marshal": json.marshal(dups),
	"keys": {k: count(v) | some k, v in {"a": small, "b": big}}, "str": sprintf("%v", [small]),
	"in_obj": {"a": small}.a == small, "arr_of": [small, big_dups] == [small, big_dups], "set_in_set": small in {small, big},
	"direct": [c | some f in [1, 2, 9]; xs := {x | some x in input.xs}; ys := {x | some x in input.xs; x != f}; u := {f, 2} | {1}; c := [
		xs < {1, 2}, xs > {1, 2}, {1} < xs, {1} > xs, set() < xs, xs < {9}, {9} < xs, xs < ys, ys < xs, xs == ys, xs >= ys,
		{y | some y in [f, 0]} > {0, 1}, {0, 1} >= {y | some y in [f, 0]}, xs < ps, ps < xs, xs > [1], xs < {"a": 1}, xs >= "s",
		xs < u, u < xs, xs == u, u >= xs, ys > u, u > ys]],
}`,
		"object literals with lazy parts": `package guard
decision := {"same": input == input, "o_eq": input.o == {"a": 1, "b": 2, "c": [1, {"d": true}]}, "in_set": {input.o} == {input.o}, "xs": input.xs}`,
	}
	for name, module := range modules {
		for i, input := range inputs {
			plan, top, planErr, topErr, prog := evalBoth(t, module, input)
			if prog == nil {
				t.Fatalf("%s: not planned: %v", name, planErr)
			}
			if (planErr == nil) != (topErr == nil) || (plan == nil) != (top == nil) || (plan != nil && plan.Compare(top) != 0) {
				t.Errorf("%s, input %d: plan %v (%v), topdown %v (%v)", name, i, plan, planErr, top, topErr)
			}
		}
	}
}

// TestProgramConflicts: a complete rule or object key with two values is an
// error in both evaluators.
func TestProgramConflicts(t *testing.T) {
	for name, module := range map[string]string{
		"complete rule": `package guard
x := 1 if input.a
x := 2 if input.b
decision := x`,
		"object key": `package guard
o[k] := v if { input.a; some k, v in {"a": 1} }
o[k] := v if { input.b; some k, v in {"a": 2} }
decision := o`,
		"object key of a large object": `package guard
o[k] := v if { input.a; some v in numbers.range(1, 30); k := sprintf("%d", [v]) }
o[k] := v if { input.b; some k, v in {"7": 8} }
decision := o`,
		"object comprehension key": `package guard
decision := {k: v | some v in numbers.range(1, 3); k := "same"; input.b}`,
	} {
		_, _, planErr, topErr, prog := evalBoth(t, module, `{"a": true, "b": true}`)
		if prog == nil || planErr == nil || topErr == nil {
			t.Errorf("%s: plan error %v, topdown error %v; want both", name, planErr, topErr)
		}
		plan, top, planErr, topErr, _ := evalBoth(t, module, `{"a": true}`)
		if planErr != nil || topErr != nil || plan.Compare(top) != 0 {
			t.Errorf("%s without conflict: plan %v (%v), topdown %v (%v)", name, plan, planErr, top, topErr)
		}
	}
}

// TestCompileFallsBackToTopdown: a policy set that uses `with` or refers to
// data dynamically is evaluated with topdown, and decides.
func TestCompileFallsBackToTopdown(t *testing.T) {
	const decide = `decision := {"outcome": "allow", "reasons": [{"rule": "r", "outcome": "allow", "message": sprintf("%v", [used])}]}
`
	for name, src := range map[string]string{
		"with":         "used := y if { y := input.y with input.y as 1 }\n",
		"dynamic data": "names := {\"a\"}\nused := [v | some k in names; v := data.other[k]]\n",
		"a relation":   "used := count([p | walk(input.pull_request, [p, _])])\n",
		"nested rules": "used := count(object.keys(tree))\ntree.a.b := 1\ntree.a.c := 2\n",
	} {
		fsys := fstest.MapFS{
			"p.rego": {Data: []byte("package guard\n" + src + decide)},
			"o.rego": {Data: []byte("package other\na := 1\n")},
		}
		e, err := Compile(context.Background(), fsys)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %s", name, e.Evaluator())
		if !strings.HasPrefix(e.Evaluator(), "topdown (") {
			t.Errorf("%s: evaluator %q, want topdown", name, e.Evaluator())
		}
		d, err := e.Decide(context.Background(), agentInput())
		if err != nil || d.Outcome != pr.Allow {
			t.Errorf("%s: Decide = %+v, %v", name, d, err)
		}
	}
	if e := mustCompile(t); e.Evaluator() != "plan" {
		t.Errorf("embedded policies: evaluator %q, want plan", e.Evaluator())
	}
}

// TestLazyInputIsInputValue: the lazy input, forced, is the input value.
func TestLazyInputIsInputValue(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		in := randomInput(r)
		lazy := newLazyInput(in)
		// Read a field and a file first, as a policy would.
		lo := lazy.Value.(lazyObjectValue)
		if f := lo.get(ast.StringTerm("files")); f != nil {
			if lf, ok := f.Value.(lazyListValue); ok {
				lf.elem(0).Value.(lazyObjectValue).get(ast.StringTerm("markers"))
			}
		}
		if got, want := materialize(lazy).Value, inputValue(in); got.Compare(want) != 0 {
			t.Fatalf("forced lazy input\n%v\nwant\n%v", got, want)
		}
	}
}

// TestDecideFallsBackOnInterpreterError: when the interpreter cannot run a
// plan as planned (a bug, not the policies' fault), topdown decides.
func TestDecideFallsBackOnInterpreterError(t *testing.T) {
	e := mustCompile(t)
	want, err := e.Decide(context.Background(), agentInput())
	if err != nil {
		t.Fatal(err)
	}
	for fault, stmts := range map[string][]ir.Stmt{
		"append to an array the plan did not make": {
			&ir.MakeObjectStmt{Target: 2},
			&ir.ArrayAppendStmt{Value: ir.Operand{Value: ir.Bool(true)}, Array: 2},
		},
		"panic": { // local 2 was never set
			&ir.ObjectInsertStmt{Key: ir.Operand{Value: ir.Bool(true)}, Value: ir.Operand{Value: ir.Bool(true)}, Object: 2},
		},
	} {
		broken := &ir.Policy{Plans: &ir.Plans{Plans: []*ir.Plan{{Name: "eval", Blocks: []*ir.Block{{Stmts: stmts}}}}}}
		prog, err := newProgram(broken)
		if err != nil {
			t.Fatal(err)
		}
		var ie *internalError
		if _, _, err := prog.eval(context.Background(), ast.NewTerm(ast.NewObject())); !errors.As(err, &ie) || !strings.Contains(err.Error(), fault) {
			t.Fatalf("eval of a plan with %s: %v, want an internal error", fault, err)
		}
		e.prog = prog
		got, err := e.Decide(context.Background(), agentInput())
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Decide with a plan with %s = %+v, %v; want topdown's %+v", fault, got, err, want)
		}
	}
}

// TestNewProgramRefusesBadConstants: a plan reading a string constant it
// does not have is refused when compiled, not when it runs.
func TestNewProgramRefusesBadConstants(t *testing.T) {
	bad := &ir.Policy{Static: &ir.Static{Strings: []*ir.StringConst{{Value: "a"}}},
		Plans: &ir.Plans{Plans: []*ir.Plan{{Name: "eval", Blocks: []*ir.Block{{Stmts: []ir.Stmt{
			&ir.AssignVarStmt{Source: ir.Operand{Value: ir.StringIndex(1)}, Target: 2},
		}}}}}}}
	if _, err := newProgram(bad); err == nil || !strings.Contains(err.Error(), "string constant 1 out of range") {
		t.Fatalf("newProgram = %v", err)
	}
}

// TestSelfCheck: Compile trusts the plan interpreter with a policy set only
// when both evaluators decide the sample inputs alike, refusals included.
func TestSelfCheck(t *testing.T) {
	allow := func(*pr.Input) (pr.Decision, error) { return pr.Decision{Outcome: pr.Allow}, nil }
	if err := selfCheck(allow, allow); err != nil {
		t.Fatalf("agreeing evaluators: %v", err)
	}
	n := 0
	differs := func(in *pr.Input) (pr.Decision, error) {
		if n++; n == 5 {
			return pr.Decision{Outcome: pr.Block}, nil
		}
		return allow(in)
	}
	if err := selfCheck(differs, allow); err == nil || !strings.Contains(err.Error(), "sample input 4") {
		t.Errorf("a plan deciding one sample differently: %v", err)
	}
	refuses := func(*pr.Input) (pr.Decision, error) { return pr.Decision{}, errors.New("undefined") }
	if err := selfCheck(refuses, allow); err == nil {
		t.Error("a plan refusing what topdown decides passed the self-check")
	}
	// The samples reach every outcome of the embedded policies.
	e := mustCompile(t)
	seen := map[pr.Outcome]bool{}
	if err := selfCheck(func(in *pr.Input) (pr.Decision, error) {
		d, err := e.decideTopdown(context.Background(), in)
		seen[d.Outcome] = err == nil
		return d, err
	}, func(in *pr.Input) (pr.Decision, error) { return e.decideTopdown(context.Background(), in) }); err != nil {
		t.Fatal(err)
	}
	for _, o := range []pr.Outcome{pr.Allow, pr.Escalate, pr.Block} {
		if !seen[o] {
			t.Errorf("no sample input is decided %s", o)
		}
	}
}

// TestDecideHonoursCancellation: a cancelled context stops a decision in
// both evaluators, with the context's error.
func TestDecideHonoursCancellation(t *testing.T) {
	plan, top := bothEngines(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, e := range map[string]*Engine{"plan": plan, "topdown": top} {
		if d, err := e.Decide(ctx, agentInput()); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Decide with a cancelled context = %+v, %v; want context.Canceled", name, d, err)
		}
	}
}

// TestConstantCollectionsStayConstant: a literal set folded into a constant
// is never changed by an evaluation, even one that adds to a copy of it.
func TestConstantCollectionsStayConstant(t *testing.T) {
	stmts := []ir.Stmt{
		&ir.MakeSetStmt{Target: 2}, // nothing adds to local 2: folded
		&ir.AssignVarStmt{Source: ir.Operand{Value: ir.Local(2)}, Target: 3},
		&ir.SetAddStmt{Value: ir.Operand{Value: ir.Bool(true)}, Set: 3},
		&ir.MakeObjectStmt{Target: 4},
		&ir.AssignVarStmt{Source: ir.Operand{Value: ir.Local(4)}, Target: 5},
		&ir.ObjectInsertStmt{Key: ir.Operand{Value: ir.Bool(true)}, Value: ir.Operand{Value: ir.Bool(false)}, Object: 5},
		&ir.MakeArrayStmt{Target: 6},
		&ir.ArrayAppendStmt{Value: ir.Operand{Value: ir.Local(2)}, Array: 6},
		&ir.ArrayAppendStmt{Value: ir.Operand{Value: ir.Local(3)}, Array: 6},
		&ir.ArrayAppendStmt{Value: ir.Operand{Value: ir.Local(4)}, Array: 6},
		&ir.ArrayAppendStmt{Value: ir.Operand{Value: ir.Local(5)}, Array: 6},
		&ir.ResultSetAddStmt{Value: 6},
	}
	prog, err := newProgram(&ir.Policy{Plans: &ir.Plans{Plans: []*ir.Plan{{Name: "eval", Blocks: []*ir.Block{{Stmts: stmts}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if op := prog.blocks[0].instrs[0].op; op != opMakeConst {
		t.Fatalf("the empty set literal is not folded (op %d)", op)
	}
	want := ast.MustParseTerm(`[set(), {true}, {}, {true: false}]`)
	for range 2 {
		res, release, err := prog.eval(context.Background(), ast.NewTerm(ast.NewObject()))
		if err != nil || len(res) != 1 || res[0].Value.Compare(want.Value) != 0 {
			t.Fatalf("eval = %v, %v; want %v", res, err, want)
		}
		release()
	}
	for _, in := range prog.blocks[0].instrs {
		if in.op == opMakeConst && in.konst.Location == constLoc {
			if n, _ := length(in.konst); n != 0 {
				t.Errorf("constant %v was changed", in.konst)
			}
		}
	}
}

// TestLazyInputMatchesTopdown: a policy that reads the input document in
// every way (whole objects and lists of it in collections, compared,
// formatted, sorted, iterated, looked up) decides the same with the plan
// over the lazy input as with topdown over the whole value.
func TestLazyInputMatchesTopdown(t *testing.T) {
	const module = `package guard
decision := {
	"reviews": input.reviews, "first": [r | r := input.reviews[0]], "users": {r.user | some r in input.reviews},
	"eq": input.pull_request.author == input.pull_request.author, "authors": [c.author | some c in input.commits],
	"count": [n | n := count(input.files)], "names": sort([f.filename | some f in input.files]), "files": input.files,
	"freezes": [f | some f in input.time.freezes], "get": object.get(input, ["pull_request", "author", "login"], "none"),
	"time": input.time, "by_index": {i: f | some i, f in input.time.freezes}, "markers": {m | some f in input.files; some m in f.markers},
	"in": [b | b := input.pull_request.author in [r.user | some r in input.reviews]], "str": sprintf("%v", [input.pull_request.author]),
	"keys": [k | some k, _ in input.pull_request], "nb": object.get(input.time, "next_boundary", "none"),
	"sorted_reviews": sort([r | some r in input.reviews]), "overrides": {o | some o in input.overrides},
	"lines": [l | some f in input.files; some l in f.added_lines], "n_lines": [count(f.added_lines) | some f in input.files],
	"all": [input | true][0] == input,
}`
	q, prog, err := prepareBoth(t, module)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 100 {
		in := randomInput(r)
		plan, top, planErr, topErr := decideBoth(q, prog, inputValue(in), newLazyInput(in))
		if planErr != nil || topErr != nil || top == nil {
			t.Fatalf("input %d: plan error %v, topdown %v (error %v)", i, planErr, top, topErr)
		}
		if plan == nil || plan.Compare(top) != 0 {
			t.Fatalf("input %d: plan\n%v\ntopdown\n%v", i, plan, top)
		}
	}
}
