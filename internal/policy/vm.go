package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"

	"github.com/mergeguard/guard/internal/pr"
)

// A program is a policy set planned by OPA into its intermediate
// representation (package ir: the imperative plan OPA also compiles to
// Wasm), run by the small interpreter below instead of OPA's topdown
// evaluator. Rego semantics stay OPA's: OPA parses, compiles and type-checks
// the policies and plans them; the interpreter only executes the plan's
// statements (assignments, lookups, loops, blocks, calls), with the meaning
// OPA's Wasm compiler gives them (internal/compiler/wasm in OPA), and calls
// OPA's own built-in functions, except the few policies call most
// (comparisons, membership, object.get, count, sprintf, concat, sort,
// time.parse_rfc3339_ns; see natives), which it runs itself with the
// meaning OPA's implementations give them, for the operands they handle.
// Plans that use what it does not run (`with` statements, dynamic data
// calls, object merges, built-ins that give other than one result) are
// refused at compile time and the engine keeps topdown;
// TestProgramMatchesTopdown, FuzzProgramMatchesTopdown and
// TestProgramStatements compare the two evaluators.
//
// Why: topdown unifies terms and binds variables for each expression, about
// 2 µs each here; the plan does the same work with direct reads and writes
// of numbered locals. For the same reason the plan is translated once into
// instrs (see translate), the collections it builds stay slices until
// something needs OPA's value (arrayBuilder, objectBuilder), and literal
// collections of constants are made once (see constant).
type program struct {
	strings []*ast.Term // the plan's string constants
	numbers []*ast.Term // the string constants that MakeNumberRefStmt reads, as numbers
	files   []string    // source file names, for error locations
	plan    *ir.Plan
	nlocals int // locals of the plan
	funcs   []*function
	calls   map[*ir.CallStmt]callee
	blocks  []*block         // the plan's, translated (see translate)
	adds    map[ir.Local]int // while translating a function: see translateFunc
	// machines are evaluation states to reuse (their frames and buffers).
	machines sync.Pool
}

type function struct {
	index   int
	params  []ir.Local
	blocks  []*ir.Block
	code    []*block // blocks, translated
	nlocals int
	// memo: a function of input and data alone (a rule, not a Rego
	// function) has one value per evaluation, as in OPA's Wasm.
	memo bool
}

// callee is a CallStmt's target: a planned function or a built-in.
type callee struct {
	fn      *function
	builtin topdown.BuiltinFunc
	name    string
}

// newProgram checks that the interpreter runs every statement and call of
// pol and resolves the calls.
func newProgram(pol *ir.Policy) (*program, error) {
	if pol.Plans == nil || len(pol.Plans.Plans) != 1 {
		return nil, errors.New("plan: want exactly one query plan")
	}
	p := &program{plan: pol.Plans.Plans[0], calls: map[*ir.CallStmt]callee{}}
	if pol.Static != nil {
		for _, s := range pol.Static.Strings {
			t := inputKey(s.Value)
			if t == nil {
				t = ast.StringTerm(s.Value)
			}
			p.strings = append(p.strings, t)
		}
		for _, f := range pol.Static.Files {
			p.files = append(p.files, f.Value)
		}
	}
	p.numbers = make([]*ast.Term, len(p.strings))
	byName := map[string]*function{}
	if pol.Funcs != nil {
		for i, f := range pol.Funcs.Funcs {
			if len(f.Params) < 2 {
				return nil, fmt.Errorf("plan: function %s has %d parameters, want input and data first", f.Name, len(f.Params))
			}
			fn := &function{index: i, params: f.Params, blocks: f.Blocks, memo: len(f.Params) == 2}
			fn.nlocals = maxLocal(f.Blocks, append(append([]ir.Local(nil), f.Params...), f.Return)) + 1
			p.funcs = append(p.funcs, fn)
			byName[f.Name] = fn
		}
	}
	p.nlocals = maxLocal(p.plan.Blocks, []ir.Local{ir.Input, ir.Data}) + 1
	check := func(blocks []*ir.Block) error {
		return walkStmts(blocks, func(s ir.Stmt) error {
			if i := maxString(s); i >= len(p.strings) {
				return fmt.Errorf("plan: string constant %d out of range", i)
			}
			switch s := s.(type) {
			case *ir.WithStmt:
				return errors.New("plan uses `with`")
			case *ir.CallDynamicStmt:
				return errors.New("plan calls data functions dynamically")
			case *ir.ObjectMergeStmt:
				// Planned for rules that define nested keys of one object
				// (general rule references); its conflict semantics are
				// not covered here, so topdown evaluates those.
				return errors.New("plan merges objects")
			case *ir.MakeNumberRefStmt:
				if s.Index < 0 || s.Index >= len(p.strings) {
					return fmt.Errorf("plan: number constant %d out of range", s.Index)
				}
				if p.numbers[s.Index] == nil {
					p.numbers[s.Index] = ast.NewTerm(ast.Number(p.strings[s.Index].Value.(ast.String)))
				}
			case *ir.CallStmt:
				if fn, ok := byName[s.Func]; ok {
					if len(s.Args) != len(fn.params) {
						return fmt.Errorf("plan calls %s with %d arguments, want %d", s.Func, len(s.Args), len(fn.params))
					}
					p.calls[s] = callee{fn: fn, name: s.Func}
					return nil
				}
				bi := topdown.GetBuiltin(s.Func)
				if bi == nil {
					return fmt.Errorf("plan calls %s, which is neither a planned function nor a built-in", s.Func)
				}
				// A relation (walk) gives many results and a void built-in
				// (print) none: the interpreter takes exactly one.
				if decl, ok := ast.BuiltinMap[s.Func]; !ok || decl.Relation || decl.Decl == nil || decl.Decl.Result() == nil {
					return fmt.Errorf("plan calls %s, which does not give one result", s.Func)
				}
				p.calls[s] = callee{builtin: bi, name: s.Func}
			}
			return nil
		})
	}
	if err := check(p.plan.Blocks); err != nil {
		return nil, err
	}
	for _, fn := range p.funcs {
		if err := check(fn.blocks); err != nil {
			return nil, err
		}
	}
	p.blocks = p.translateFunc(p.plan.Blocks)
	for _, fn := range p.funcs {
		fn.code = p.translateFunc(fn.blocks)
	}
	return p, nil
}

// translateFunc translates the blocks of a function (or of the plan).
func (p *program) translateFunc(blocks []*ir.Block) []*block {
	// How many statements of the function add to or insert into each
	// local (locals are reused across its blocks): a literal collection
	// is folded into a constant only when its own statements are all.
	p.adds = map[ir.Local]int{}
	_ = walkStmts(blocks, func(st ir.Stmt) error {
		switch s := st.(type) {
		case *ir.SetAddStmt:
			p.adds[s.Set]++
		case *ir.ObjectInsertStmt:
			p.adds[s.Object]++
		case *ir.ObjectInsertOnceStmt:
			p.adds[s.Object]++
		}
		return nil
	})
	return p.translate(blocks)
}

// constLoc marks the terms of constant collections (see constant): they are
// shared by every evaluation, so nothing may add to them (setAdd and insert
// copy one first, should a plan ever do it).
var constLoc = &ast.Location{}

// constant folds a literal set or object of constant strings and booleans
// made by stmts[j:] (MakeSetStmt or MakeObjectStmt, then only SetAddStmts
// or ObjectInsertStmts of constants to it, and no other statement of the
// function adding to it) into one term made now, instead of a new
// collection per evaluation (OPA plans `x in {"a", "b"}` in a loop so, and
// `s != set()` makes a set each time). next is the index of the first
// statement after it; t is nil when stmts[j] starts no such literal.
func (p *program) constant(stmts []ir.Stmt, j int) (target ir.Local, t *ast.Term, next int) {
	konst := func(o ir.Operand) *ast.Term {
		switch v := o.Value.(type) {
		case ir.StringIndex:
			return p.strings[v]
		case ir.Bool:
			return ast.InternedTerm(bool(v))
		}
		return nil
	}
	k := j + 1
	switch s := stmts[j].(type) {
	case *ir.MakeSetStmt:
		target = s.Target
		var elems []*ast.Term
		for ; k < len(stmts); k++ {
			add, ok := stmts[k].(*ir.SetAddStmt)
			if !ok || add.Set != target {
				break
			}
			v := konst(add.Value)
			if v == nil {
				return 0, nil, 0
			}
			elems = append(elems, v)
		}
		t = ast.NewTerm(ast.NewSet(elems...))
	case *ir.MakeObjectStmt:
		target = s.Target
		obj := ast.NewObject()
		for ; k < len(stmts); k++ {
			ins, ok := stmts[k].(*ir.ObjectInsertStmt)
			if !ok || ins.Object != target {
				break
			}
			key, v := konst(ins.Key), konst(ins.Value)
			if key == nil || v == nil {
				return 0, nil, 0
			}
			obj.Insert(key, v)
		}
		t = ast.NewTerm(obj)
	default:
		return 0, nil, 0
	}
	if p.adds[target] != k-j-1 {
		return 0, nil, 0
	}
	t.Location = constLoc
	return target, t, k
}

// An instr is a plan statement as the interpreter runs it: its kind a small
// integer (a jump table, not a type switch over interfaces), its operands
// resolved to locals or constant terms, its callee looked up, its nested
// blocks translated. Which fields a kind uses is in translate.
type instr struct {
	op     opcode
	a, b   operand // sources
	target int     // the local written, or the collection written to
	key    int     // a scan's key local
	n      int     // a break's index, an array's capacity
	konst  *ast.Term
	blocks []*block // a BlockStmt's blocks; a ScanStmt's or NotStmt's one
	call   *callInstr
	loc    *ir.Location
}

type block struct{ instrs []instr }

type callInstr struct {
	callee
	args   []operand
	params []int  // a planned function's parameters
	native native // a built-in's own implementation, if it has one
}

// operand is a local (local >= 0) or a constant term.
type operand struct {
	local int
	konst *ast.Term
}

type opcode uint8

const (
	opNop opcode = iota
	opAssignVar
	opAssignVarOnce
	opDot
	opCall
	opArrayAppend
	opResetLocal
	opIsDefined
	opIsUndefined
	opReturnLocal
	opObjectInsert
	opObjectInsertOnce
	opSetAdd
	opMakeObject
	opMakeArray
	opMakeSet
	opMakeConst // MakeNullStmt, MakeNumberIntStmt, MakeNumberRefStmt, AssignIntStmt
	opEqual
	opNotEqual
	opIsArray
	opIsObject
	opIsSet
	opLen
	opScan
	opNot
	opBlock
	opBreak
	opResultSetAdd
	opUnknown // a statement newProgram let through but translate does not know: an internal error when run
)

func (p *program) operand(o ir.Operand) operand {
	switch v := o.Value.(type) {
	case ir.Local:
		return operand{local: int(v)}
	case ir.StringIndex:
		return operand{local: -1, konst: p.strings[v]}
	case ir.Bool:
		return operand{local: -1, konst: ast.InternedTerm(bool(v))}
	}
	return operand{local: -1} // undefined
}

func local(l ir.Local) operand { return operand{local: int(l)} }

// translate translates blocks (checked by newProgram) into instrs.
func (p *program) translate(blocks []*ir.Block) []*block {
	out := make([]*block, len(blocks))
	for i, b := range blocks {
		out[i] = &block{}
		if b == nil {
			continue
		}
		out[i].instrs = make([]instr, 0, len(b.Stmts))
		for j := 0; j < len(b.Stmts); j++ {
			st := b.Stmts[j]
			if target, t, next := p.constant(b.Stmts, j); t != nil {
				out[i].instrs = append(out[i].instrs, instr{op: opMakeConst, target: int(target), konst: t, loc: st.GetLocation()})
				j = next - 1
				continue
			}
			out[i].instrs = append(out[i].instrs, instr{})
			in := &out[i].instrs[len(out[i].instrs)-1]
			in.loc = st.GetLocation()
			switch s := st.(type) {
			case *ir.AssignVarStmt:
				in.op, in.a, in.target = opAssignVar, p.operand(s.Source), int(s.Target)
			case *ir.AssignVarOnceStmt:
				in.op, in.a, in.target = opAssignVarOnce, p.operand(s.Source), int(s.Target)
			case *ir.DotStmt:
				in.op, in.a, in.b, in.target = opDot, p.operand(s.Source), p.operand(s.Key), int(s.Target)
			case *ir.CallStmt:
				c := &callInstr{callee: p.calls[s]}
				for _, a := range s.Args {
					c.args = append(c.args, p.operand(a))
				}
				if c.fn != nil {
					for _, l := range c.fn.params {
						c.params = append(c.params, int(l))
					}
				} else if n, ok := natives[c.name]; ok && len(c.args) == nativeArity(c.name) {
					c.native = n
				}
				in.op, in.call, in.target = opCall, c, int(s.Result)
			case *ir.ArrayAppendStmt:
				in.op, in.a, in.target = opArrayAppend, p.operand(s.Value), int(s.Array)
			case *ir.ResetLocalStmt:
				in.op, in.target = opResetLocal, int(s.Target)
			case *ir.IsDefinedStmt:
				in.op, in.a = opIsDefined, local(s.Source)
			case *ir.IsUndefinedStmt:
				in.op, in.a = opIsUndefined, local(s.Source)
			case *ir.ReturnLocalStmt:
				in.op, in.a = opReturnLocal, local(s.Source)
			case *ir.ObjectInsertStmt:
				in.op, in.a, in.b, in.target = opObjectInsert, p.operand(s.Key), p.operand(s.Value), int(s.Object)
			case *ir.ObjectInsertOnceStmt:
				in.op, in.a, in.b, in.target = opObjectInsertOnce, p.operand(s.Key), p.operand(s.Value), int(s.Object)
			case *ir.SetAddStmt:
				in.op, in.a, in.target = opSetAdd, p.operand(s.Value), int(s.Set)
			case *ir.MakeObjectStmt:
				in.op, in.target = opMakeObject, int(s.Target)
			case *ir.MakeArrayStmt:
				in.op, in.target, in.n = opMakeArray, int(s.Target), int(max(s.Capacity, 0))
			case *ir.MakeSetStmt:
				in.op, in.target = opMakeSet, int(s.Target)
			case *ir.MakeNullStmt:
				in.op, in.target, in.konst = opMakeConst, int(s.Target), ast.InternedNullTerm
			case *ir.MakeNumberIntStmt:
				in.op, in.target, in.konst = opMakeConst, int(s.Target), intTerm(s.Value)
			case *ir.MakeNumberRefStmt:
				in.op, in.target, in.konst = opMakeConst, int(s.Target), p.numbers[s.Index] // numbers are never modified
			case *ir.AssignIntStmt:
				in.op, in.target, in.konst = opMakeConst, int(s.Target), intTerm(s.Value)
			case *ir.EqualStmt:
				in.op, in.a, in.b = opEqual, p.operand(s.A), p.operand(s.B)
			case *ir.NotEqualStmt:
				in.op, in.a, in.b = opNotEqual, p.operand(s.A), p.operand(s.B)
			case *ir.IsArrayStmt:
				in.op, in.a = opIsArray, p.operand(s.Source)
			case *ir.IsObjectStmt:
				in.op, in.a = opIsObject, p.operand(s.Source)
			case *ir.IsSetStmt:
				in.op, in.a = opIsSet, p.operand(s.Source)
			case *ir.LenStmt:
				in.op, in.a, in.target = opLen, p.operand(s.Source), int(s.Target)
			case *ir.ScanStmt:
				in.op, in.a, in.key, in.target = opScan, local(s.Source), int(s.Key), int(s.Value)
				in.blocks = p.translate([]*ir.Block{s.Block})
			case *ir.NotStmt:
				in.op, in.blocks = opNot, p.translate([]*ir.Block{s.Block})
			case *ir.BlockStmt:
				in.op, in.blocks = opBlock, p.translate(s.Blocks)
			case *ir.BreakStmt:
				in.op, in.n = opBreak, int(s.Index)
			case *ir.ResultSetAddStmt:
				in.op, in.a = opResultSetAdd, local(s.Value)
			case *ir.NopStmt:
				in.op = opNop
			default:
				in.op, in.konst = opUnknown, ast.StringTerm(fmt.Sprintf("%T", st))
			}
		}
	}
	return out
}

// walkStmts calls f for every statement of blocks, nested ones included.
func walkStmts(blocks []*ir.Block, f func(ir.Stmt) error) error {
	for _, b := range blocks {
		if b == nil {
			continue
		}
		for _, s := range b.Stmts {
			if err := f(s); err != nil {
				return err
			}
			var nested []*ir.Block
			switch s := s.(type) {
			case *ir.BlockStmt:
				nested = s.Blocks
			case *ir.ScanStmt:
				nested = []*ir.Block{s.Block}
			case *ir.NotStmt:
				nested = []*ir.Block{s.Block}
			case *ir.WithStmt:
				nested = []*ir.Block{s.Block}
			}
			if err := walkStmts(nested, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxString is the highest string constant that s reads as an operand, -1
// for none.
func maxString(s ir.Stmt) int {
	m := -1
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i).Interface().(type) {
		case ir.Operand:
			if si, ok := f.Value.(ir.StringIndex); ok {
				m = max(m, int(si))
			}
		case []ir.Operand:
			for _, o := range f {
				if si, ok := o.Value.(ir.StringIndex); ok {
					m = max(m, int(si))
				}
			}
		}
	}
	return m
}

// maxLocal is the highest local that blocks (or extra) use.
func maxLocal(blocks []*ir.Block, extra []ir.Local) int {
	m := 0
	see := func(l ir.Local) {
		m = max(m, int(l))
	}
	op := func(o ir.Operand) {
		if l, ok := o.Value.(ir.Local); ok {
			see(l)
		}
	}
	for _, l := range extra {
		see(l)
	}
	_ = walkStmts(blocks, func(s ir.Stmt) error {
		switch s := s.(type) {
		case *ir.ReturnLocalStmt:
			see(s.Source)
		case *ir.CallStmt:
			for _, a := range s.Args {
				op(a)
			}
			see(s.Result)
		case *ir.DotStmt:
			op(s.Source)
			op(s.Key)
			see(s.Target)
		case *ir.LenStmt:
			op(s.Source)
			see(s.Target)
		case *ir.ScanStmt:
			see(s.Source)
			see(s.Key)
			see(s.Value)
		case *ir.AssignIntStmt:
			see(s.Target)
		case *ir.AssignVarStmt:
			op(s.Source)
			see(s.Target)
		case *ir.AssignVarOnceStmt:
			op(s.Source)
			see(s.Target)
		case *ir.ResetLocalStmt:
			see(s.Target)
		case *ir.MakeNullStmt:
			see(s.Target)
		case *ir.MakeNumberIntStmt:
			see(s.Target)
		case *ir.MakeNumberRefStmt:
			see(s.Target)
		case *ir.MakeArrayStmt:
			see(s.Target)
		case *ir.MakeObjectStmt:
			see(s.Target)
		case *ir.MakeSetStmt:
			see(s.Target)
		case *ir.EqualStmt:
			op(s.A)
			op(s.B)
		case *ir.NotEqualStmt:
			op(s.A)
			op(s.B)
		case *ir.IsArrayStmt:
			op(s.Source)
		case *ir.IsObjectStmt:
			op(s.Source)
		case *ir.IsSetStmt:
			op(s.Source)
		case *ir.IsDefinedStmt:
			see(s.Source)
		case *ir.IsUndefinedStmt:
			see(s.Source)
		case *ir.ArrayAppendStmt:
			op(s.Value)
			see(s.Array)
		case *ir.ObjectInsertStmt:
			op(s.Key)
			op(s.Value)
			see(s.Object)
		case *ir.ObjectInsertOnceStmt:
			op(s.Key)
			op(s.Value)
			see(s.Object)
		case *ir.ObjectMergeStmt:
			see(s.A)
			see(s.B)
			see(s.Target)
		case *ir.SetAddStmt:
			op(s.Value)
			see(s.Set)
		case *ir.ResultSetAddStmt:
			see(s.Value)
		}
		return nil
	})
	return m
}

// Control signals of the interpreter. A statement that is undefined, or a
// BreakStmt, leaves blocks like a Wasm `br`: brk(n) leaves n+1 enclosing
// blocks, and each block it passes decrements it. next is normal
// completion, ret a function's ReturnLocalStmt.
const (
	next = -1
	ret  = -2
	fail = -3 // an error stops the evaluation: m.err says which
)

// undefined leaves the current block.
const undefined = 0

// machine is one evaluation of a program.
type machine struct {
	p       *program
	ctx     context.Context
	bctx    topdown.BuiltinContext
	memo    []*ast.Term
	memoSet []bool
	results []*ast.Term
	steps   int
	frames  []*frame    // frames of returned calls, for reuse
	args    []*ast.Term // operands of built-in calls, for reuse
	out     *ast.Term   // a built-in's result
	chunk   []ast.Term  // terms for the values the plan makes (see term)
	arrays  []arrayBuilder
	objects []objectBuilder
	sets    []setBuilder
	err     error       // why the evaluation stopped (signal fail)
	scratch []*ast.Term // see setTerms
	// The first chunks of terms and builders and the plan's locals are
	// kept for the next evaluation, cleared, once the results are read
	// (see release): a typical decision then allocates none of them.
	keptTerms   []ast.Term
	keptArrays  []arrayBuilder
	keptObjects []objectBuilder
	keptSets    []setBuilder
	keptLocals  []*ast.Term
	// input builds the input document of evalInput, from kept chunks too.
	input     builder
	keptInput []ast.Term
	keptSlots []*ast.Term
	// captureFn is m.capture, bound once.
	captureFn func(*ast.Term) error
}

// frame is the locals of one plan or function call; result is set by
// ReturnLocalStmt.
type frame struct {
	locals []*ast.Term
	result *ast.Term
}

var emptyData = ast.NewTerm(ast.NewObject())

// eval runs the program on input (which may be a lazy input value) and
// returns the results it adds, with every value materialized, and release,
// to be called once nothing reads the results any more (they are made of
// the evaluation state's memory, which release gives to the next
// evaluation). On an error, eval has released it already.
func (p *program) eval(ctx context.Context, input *ast.Term) (_ []*ast.Term, release func(), err error) {
	return p.evalWith(ctx, func(*builder) *ast.Term { return input })
}

// evalInput is eval of in's lazy input document (see newLazyInput), built
// with the evaluation state's kept chunks.
func (p *program) evalInput(ctx context.Context, in *pr.Input) (_ []*ast.Term, release func(), err error) {
	return p.evalWith(ctx, func(b *builder) *ast.Term { return object(b, in, inputFields) })
}

// evalWith is eval of the input that input makes with the evaluation
// state's builder.
func (p *program) evalWith(ctx context.Context, input func(*builder) *ast.Term) (_ []*ast.Term, release func(), err error) {
	// A panic is a fault of the interpreter on a plan it did not expect:
	// an internal error (Decide falls back to topdown), and the machine,
	// possibly half reset, is not reused.
	defer func() {
		if r := recover(); r != nil {
			err = &internalError{fmt.Errorf("panic: %v", r)}
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	m, _ := p.machines.Get().(*machine)
	if m == nil {
		m = &machine{
			p:           p,
			memo:        make([]*ast.Term, len(p.funcs)),
			memoSet:     make([]bool, len(p.funcs)),
			keptTerms:   make([]ast.Term, 0, keptTerms),
			keptArrays:  make([]arrayBuilder, 0, keptBuilders),
			keptObjects: make([]objectBuilder, 0, keptBuilders/2),
			keptSets:    make([]setBuilder, 0, keptBuilders/2),
			keptLocals:  make([]*ast.Term, p.nlocals),
			keptInput:   make([]ast.Term, 0, keptTerms),
			keptSlots:   make([]*ast.Term, 0, keptSlots),
		}
		m.captureFn = m.capture
	}
	m.chunk, m.arrays, m.objects, m.sets = m.keptTerms[:0], m.keptArrays[:0], m.keptObjects[:0], m.keptSets[:0]
	m.ctx = ctx
	m.bctx = topdown.BuiltinContext{
		Context: ctx,
		Metrics: metrics.NoOp(),
		Cache:   builtins.Cache{},
	}
	m.input = builder{chunk: m.keptInput[:0], slot: m.keptSlots[:0], lazy: true}
	fr := &frame{locals: m.keptLocals}
	fr.locals[ir.Input] = input(&m.input)
	fr.locals[ir.Data] = emptyData
	for _, b := range p.blocks {
		if m.block(fr, b) == fail {
			err = m.err
			break
		}
	}
	results := m.results
	// Reset for the next evaluation; the frames and buffers stay. The
	// kept chunks may hold the results: release clears them.
	clear(m.memo)
	clear(m.memoSet)
	clear(m.args[:cap(m.args)])
	// What of the kept chunks this evaluation used, for release to clear.
	terms, arrays, objects := used(m.chunk, m.keptTerms), used(m.arrays, m.keptArrays), used(m.objects, m.keptObjects)
	sets := used(m.sets, m.keptSets)
	inputTerms, slots := used(m.input.chunk, m.keptInput), used(m.input.slot, m.keptSlots)
	m.results, m.out, m.ctx, m.bctx, m.steps, m.chunk, m.err = nil, nil, nil, topdown.BuiltinContext{}, 0, nil, nil
	m.arrays, m.objects, m.sets, m.input = nil, nil, nil, builder{}
	release = func() {
		clear(m.keptTerms[:terms])
		clear(m.keptArrays[:arrays])
		clear(m.keptObjects[:objects])
		clear(m.keptSets[:sets])
		clear(m.keptLocals)
		clear(m.keptInput[:inputTerms])
		clear(m.keptSlots[:slots])
		p.machines.Put(m)
	}
	if err != nil {
		release()
		return nil, nil, err
	}
	return results, release, nil
}

// used is how much of kept an evaluation used, cur being the chunk it
// took last: all of kept when it went on to another chunk.
func used[T any](cur, kept []T) int {
	if cap(cur) > 0 && cap(cur) == cap(kept) && &cur[:1][0] == &kept[:1][0] {
		return len(cur)
	}
	return cap(kept)
}

// The capacities of the chunks an evaluation state keeps (see machine): a
// decision of the embedded policies on an agent PR that every rule has work
// for makes ~80 terms, ~30 arrays and ~15 objects, and reads ~70 terms and
// ~350 slots of the input (100 of them for its 100 files).
const (
	keptTerms    = 128
	keptBuilders = 48
	keptSlots    = 512
)

// term is a term of v from the evaluation's chunks of terms (one
// allocation for many; a plan makes a term for each collection it builds).
// The first chunk is the kept one (see machine); the others are this
// evaluation's alone.
func (m *machine) term(v ast.Value) *ast.Term {
	if len(m.chunk) == cap(m.chunk) {
		m.chunk = make([]ast.Term, 0, termChunk)
	}
	m.chunk = append(m.chunk, ast.Term{Value: v})
	return &m.chunk[len(m.chunk)-1]
}

// block runs the statements of b. It returns next when all were defined,
// or the signal that stopped it, for the construct that owns b to handle.
//
// The most frequent instructions run here, in the loop; exec runs the
// others.
func (m *machine) block(fr *frame, b *block) int {
	l := fr.locals
	for i := range b.instrs {
		in := &b.instrs[i]
		switch in.op {
		case opAssignVar:
			l[in.target] = valueOf(l, &in.a)
		case opDot:
			v := dot(valueOf(l, &in.a), valueOf(l, &in.b))
			if v == nil {
				return undefined
			}
			l[in.target] = v
		case opResetLocal:
			l[in.target] = nil
		case opIsDefined:
			if valueOf(l, &in.a) == nil {
				return undefined
			}
		case opIsUndefined:
			if valueOf(l, &in.a) != nil {
				return undefined
			}
		case opEqual:
			if compare(valueOf(l, &in.a), valueOf(l, &in.b)) != 0 {
				return undefined
			}
		case opNotEqual:
			if compare(valueOf(l, &in.a), valueOf(l, &in.b)) == 0 {
				return undefined
			}
		case opMakeConst:
			l[in.target] = in.konst
		case opReturnLocal:
			fr.result = valueOf(l, &in.a)
			return ret
		case opCall:
			if sig := m.call(fr, in); sig != next {
				return sig
			}
		default:
			if sig := m.exec(fr, in); sig != next {
				return sig
			}
		}
	}
	return next
}

// label handles sig at a block boundary: a break that ends here, or one to
// pass on (decremented); next, ret and fail pass as they are.
func label(sig int) int {
	switch {
	case sig == 0:
		return next
	case sig > 0:
		return sig - 1
	}
	return sig
}

// valueOf is o's term in l: a local's value (nil when unset) or a constant.
func valueOf(l []*ast.Term, o *operand) *ast.Term {
	if o.local >= 0 {
		return l[o.local]
	}
	return o.konst
}

// fail stops the evaluation with err.
func (m *machine) fail(err error) int {
	m.err = err
	return fail
}

// exec runs the instructions the block loop does not run itself.
func (m *machine) exec(fr *frame, in *instr) int {
	l := fr.locals
	switch in.op {
	case opAssignVarOnce:
		v := valueOf(l, &in.a)
		if old := l[in.target]; old != nil && compare(old, v) != 0 {
			return m.fail(m.errorAt(in.loc, "eval_conflict_error: complete rules must not produce multiple outputs"))
		}
		l[in.target] = v
	case opArrayAppend:
		// In place, as OPA's Wasm appends: the planner appends only to
		// arrays it made with MakeArrayStmt for the comprehension at hand.
		arr, ok := l[in.target].Value.(*arrayBuilder)
		if !ok {
			return m.fail(m.internal(in.loc, "append to an array the plan did not make"))
		}
		arr.append(materialize(valueOf(l, &in.a)))
	case opObjectInsert, opObjectInsertOnce:
		return m.insert(l, in)
	case opSetAdd:
		return m.setAdd(l, in)
	case opMakeObject:
		l[in.target] = m.term(m.objectBuilder())
	case opMakeArray:
		l[in.target] = m.term(m.arrayBuilder(in.n))
	case opMakeSet:
		l[in.target] = m.term(m.setBuilder())
	case opScan:
		return m.scan(fr, in)
	case opNot:
		switch sig := m.block(fr, in.blocks[0]); sig {
		case next: // the negated block holds: the NotStmt is undefined
			return undefined
		case 0: // it does not: go on
		default:
			return label(sig)
		}
	case opBlock:
		for _, b := range in.blocks {
			if sig := label(m.block(fr, b)); sig != next {
				return sig
			}
		}
	case opBreak:
		return in.n
	case opIsArray:
		if !isArray(valueOf(l, &in.a)) {
			return undefined
		}
	case opIsObject:
		if !isObject(valueOf(l, &in.a)) {
			return undefined
		}
	case opIsSet:
		if t := valueOf(l, &in.a); t == nil {
			return undefined
		} else if !isSet(t) {
			return undefined
		}
	case opLen:
		n, ok := length(valueOf(l, &in.a))
		if !ok {
			return undefined
		}
		l[in.target] = intTerm(int64(n))
	case opResultSetAdd:
		m.results = append(m.results, materialize(valueOf(l, &in.a)))
	case opNop:
	default:
		return m.fail(m.internal(in.loc, fmt.Sprintf("statement %v", in.konst)))
	}
	return next
}

func (m *machine) insert(l []*ast.Term, in *instr) int {
	once := in.op == opObjectInsertOnce
	k, v := materialize(valueOf(l, &in.a)), materialize(valueOf(l, &in.b))
	switch obj := l[in.target].Value.(type) {
	case *objectBuilder:
		if obj.insert(k, v, once) {
			return m.fail(m.errorAt(in.loc, "eval_conflict_error: object keys must be unique"))
		}
	case ast.Object:
		// An object already in another one (partial rules of nested
		// objects): in place, as OPA's Wasm inserts.
		if l[in.target].Location == constLoc {
			obj = obj.Copy()
			l[in.target] = m.term(obj)
		}
		if !insert(obj, k, v, once) {
			return m.fail(m.errorAt(in.loc, "eval_conflict_error: object keys must be unique"))
		}
	default:
		return m.fail(m.internal(in.loc, "insert into a non-object"))
	}
	return next
}

func (m *machine) setAdd(l []*ast.Term, in *instr) int {
	if b, ok := l[in.target].Value.(*setBuilder); ok {
		b.add(materialize(valueOf(l, &in.a)))
		return next
	}
	set, ok := l[in.target].Value.(ast.Set)
	if !ok {
		return m.fail(m.internal(in.loc, "add to a non-set"))
	}
	if l[in.target].Location == constLoc {
		set = set.Copy()
		l[in.target] = m.term(set)
	}
	set.Add(materialize(valueOf(l, &in.a)))
	return next
}

// scan runs the block for each key and value of a collection (in OPA's
// order: arrays by index, sets and objects sorted). Like OPA's Wasm, the
// block sits in a loop inside a block: leaving the body (an undefined
// statement) goes on with the next element, brk(1) ends the scan.
func (m *machine) scan(fr *frame, in *instr) int {
	src := valueOf(fr.locals, &in.a)
	if src == nil {
		return next
	}
	switch v := src.Value.(type) {
	case *ast.Array:
		for i := range v.Len() {
			if sig, done := m.iterate(fr, in, intTerm(int64(i)), v.Elem(i)); done {
				return sig
			}
		}
	case lazyListValue:
		for i := range v.len() {
			if sig, done := m.iterate(fr, in, intTerm(int64(i)), v.elem(i)); done {
				return sig
			}
		}
	case *objectBuilder:
		if v.full == nil {
			// In key order, as OPA iterates objects, without making one
			// (nor, for a few keys, a copy on the heap).
			var buf [8][2]*ast.Term
			items := append(buf[:0], v.items...)
			slices.SortFunc(items, func(a, b [2]*ast.Term) int { return a[0].Value.Compare(b[0].Value) })
			for _, kv := range items {
				if sig, done := m.iterate(fr, in, kv[0], kv[1]); done {
					return sig
				}
			}
			return next
		}
		for _, k := range v.full.Keys() {
			if sig, done := m.iterate(fr, in, k, v.full.Get(k)); done {
				return sig
			}
		}
	case lazyObjectValue:
		obj := v.object()
		for _, k := range obj.Keys() {
			if sig, done := m.iterate(fr, in, k, obj.Get(k)); done {
				return sig
			}
		}
	case ast.Object:
		for _, k := range v.Keys() {
			if sig, done := m.iterate(fr, in, k, v.Get(k)); done {
				return sig
			}
		}
	case ast.Set:
		for _, t := range v.Slice() {
			if sig, done := m.iterate(fr, in, t, t); done {
				return sig
			}
		}
	case *setBuilder:
		if v.full != nil {
			for _, t := range v.full.Slice() {
				if sig, done := m.iterate(fr, in, t, t); done {
					return sig
				}
			}
			return next
		}
		// Sorted in place, in OPA's order; the plan adds nothing to a set
		// it iterates.
		for _, it := range v.sorted() {
			if sig, done := m.iterate(fr, in, it.t, it.t); done {
				return sig
			}
		}
	}
	return next
}

// iterate runs a scan's block for one element; done reports that the scan
// ends, with sig for the statement.
func (m *machine) iterate(fr *frame, in *instr, k, v *ast.Term) (sig int, done bool) {
	if err := m.tick(); err != nil {
		return m.fail(err), true
	}
	fr.locals[in.key], fr.locals[in.target] = k, v
	switch sig = m.block(fr, in.blocks[0]); {
	case sig == next || sig == 0:
		return next, false
	case sig == 1:
		return next, true
	case sig == ret || sig == fail:
		return sig, true
	}
	return sig - 2, true
}

// call runs a planned function or a built-in. An undefined result leaves
// the block. A built-in's error makes the call undefined, as in topdown
// without strict built-in errors, unless it halts evaluation.
func (m *machine) call(fr *frame, in *instr) int {
	c := in.call
	if err := m.tick(); err != nil {
		return m.fail(err)
	}
	var v *ast.Term
	if fn := c.fn; fn != nil {
		if fn.memo && m.memoSet[fn.index] {
			v = m.memo[fn.index]
		} else {
			var sig int
			if v, sig = m.invoke(fn, fr.locals, c); sig == fail {
				return fail
			}
			if fn.memo {
				m.memo[fn.index], m.memoSet[fn.index] = v, true
			}
		}
	} else {
		ops := m.args[:0]
		for i := range c.args {
			t := valueOf(fr.locals, &c.args[i])
			if t == nil {
				return undefined
			}
			ops = append(ops, t)
		}
		if c.native != nil {
			if r, ok := c.native(m, ops); ok {
				m.args = ops[:0]
				fr.locals[in.target] = r
				return next
			}
		}
		for i, t := range ops {
			ops[i] = materialize(t)
		}
		m.args = ops[:0] // kept for the next call (built-ins keep no operand slices)
		m.out = nil
		err := c.builtin(m.bctx, ops, m.captureFn)
		v = m.out
		m.out = nil
		if err != nil {
			if h, ok := err.(topdown.Halt); ok {
				return m.fail(h.Err)
			}
			return undefined
		}
	}
	if v == nil {
		return undefined
	}
	fr.locals[in.target] = v
	return next
}

// The times time.parse_rfc3339_ns gives (int64 nanoseconds since 1970).
var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// nativeArity is the number of operands of the built-in name.
func nativeArity(name string) int {
	if b, ok := ast.BuiltinMap[name]; ok && b.Decl != nil {
		return len(b.Decl.FuncArgs().Args)
	}
	return -1
}

// A native runs a built-in function without OPA's calling convention (a
// wrapper, an iterator callback, every operand converted first): the
// built-ins that policies call most, with the meaning OPA's implementation
// gives them, for the operands it handles; ok is false for others, and the
// built-in runs. args are the call's operands as they are (lazy values
// included), never nil, as many as the built-in takes.
type native func(m *machine, args []*ast.Term) (_ *ast.Term, ok bool)

// natives by built-in name; translate gives each call its own.
var natives = map[string]native{
	// object.get: OPA's builtinObjectGet, with the lookups of a DotStmt,
	// without converting the input document or an object the plan built.
	"object.get": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		switch args[0].Value.(type) {
		case lazyObjectValue, ast.Object:
		default:
			return nil, false // not an object: the built-in fails
		}
		var path []*ast.Term
		switch p := args[1].Value.(type) {
		case *arrayBuilder:
			path = p.elems
		case *ast.Array:
			path = make([]*ast.Term, p.Len())
			for i := range path {
				path[i] = p.Elem(i)
			}
		default:
			return cmp.Or(dot(args[0], args[1]), args[2]), true
		}
		curr := args[0]
		for _, k := range path {
			if curr = dot(curr, k); curr == nil {
				break
			}
		}
		return cmp.Or(curr, args[2]), true
	},
	// count of a list of the input, without converting it.
	"count": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		switch v := args[0].Value.(type) {
		case lazyListValue:
			return intTerm(int64(v.len())), true
		case *setBuilder:
			return intTerm(int64(v.len())), true
		}
		return nil, false
	},
	// Messages: a format and an array literal of strings and integers.
	"sprintf": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		if a, ok := args[1].Value.(*arrayBuilder); ok {
			if f, ok := args[0].Value.(ast.String); ok {
				return m.sprintf(string(f), a.elems)
			}
		}
		return nil, false
	},
	"concat": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		sep, ok := args[0].Value.(ast.String)
		if !ok {
			return nil, false
		}
		switch a := args[1].Value.(type) {
		case *arrayBuilder:
			return m.concat(string(sep), a.elems)
		case *ast.Array:
			elems := make([]*ast.Term, a.Len())
			for i := range elems {
				elems[i] = a.Elem(i)
			}
			return m.concat(string(sep), elems)
		case ast.Set:
			return m.concat(string(sep), a.Slice()) // sorted, as the built-in joins
		case *setBuilder:
			return m.concat(string(sep), m.setTerms(a))
		}
		return nil, false
	},
	// sort of an array the plan built, or of a set (OPA's order, by
	// ast.Compare), as an array the plan built: no OPA array is made, and
	// nothing hashed, unless something needs it whole.
	"sort": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		var out *arrayBuilder
		switch a := args[0].Value.(type) {
		case *arrayBuilder:
			out = m.arrayBuilder(len(a.elems))
			out.elems = append(out.elems, a.elems...)
			slices.SortFunc(out.elems, ast.TermValueCompare)
		case ast.Set:
			s := a.Slice() // sorted already
			out = m.arrayBuilder(len(s))
			out.elems = append(out.elems, s...)
		case *setBuilder:
			s := m.setTerms(a)
			out = m.arrayBuilder(len(s))
			out.elems = append(out.elems, s...)
		default:
			return nil, false
		}
		return m.term(out), true
	},
	// time.parse_rfc3339_ns (topdown's builtinTimeParseRFC3339Nanos) of a
	// time it can represent; anything else goes to the built-in.
	"time.parse_rfc3339_ns": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		s, ok := args[0].Value.(ast.String)
		if !ok {
			return nil, false
		}
		t, err := time.Parse(time.RFC3339, string(s))
		if err != nil || t.Before(minNanoTime) || t.After(maxNanoTime) {
			return nil, false
		}
		return intTerm(t.UnixNano()), true
	},
	// Comparisons and membership (topdown's comparison.go and
	// builtinMember), on the whole values.
	"equal": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		return ast.InternedTerm(compare(args[0], args[1]) == 0), true
	},
	"neq": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		return ast.InternedTerm(compare(args[0], args[1]) != 0), true
	},
	"gt": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		return ast.InternedTerm(compare(args[0], args[1]) > 0), true
	},
	"gte": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		return ast.InternedTerm(compare(args[0], args[1]) >= 0), true
	},
	"lt": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		return ast.InternedTerm(compare(args[0], args[1]) < 0), true
	},
	"lte": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		return ast.InternedTerm(compare(args[0], args[1]) <= 0), true
	},
	"is_string": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		_, ok := args[0].Value.(ast.String)
		return ast.InternedTerm(ok), true
	},
	"internal.member_2": func(m *machine, args []*ast.Term) (*ast.Term, bool) {
		x := materialize(args[0])
		switch c := args[1].Value.(type) {
		case *arrayBuilder:
			for _, e := range c.elems {
				if compare(x, e) == 0 {
					return ast.InternedTerm(true), true
				}
			}
			return ast.InternedTerm(false), true
		case ast.Set:
			return ast.InternedTerm(c.Contains(x)), true
		case *setBuilder:
			return ast.InternedTerm(c.contains(x)), true
		}
		return nil, false
	},
}

// sprintf is OPA's sprintf (topdown's builtinSprintf) for arguments that
// are strings and integers, which it gives to fmt.Sprintf as string and
// int64, without making the array of arguments an OPA array (that hashes
// every argument). ok is false for any other argument: the built-in runs.
func (m *machine) sprintf(format string, elems []*ast.Term) (_ *ast.Term, ok bool) {
	if out, ok := format1(format, elems); ok {
		return m.term(ast.String(out)), true
	}
	args := make([]any, len(elems))
	for i, t := range elems {
		switch v := t.Value.(type) {
		case ast.String:
			args[i] = string(v)
		case ast.Number:
			// As the built-in: a number written without fraction or
			// exponent that fits an int64 is one.
			if strings.ContainsAny(string(v), ".eE") {
				return nil, false
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return nil, false
			}
			args[i] = n
		default:
			return nil, false
		}
	}
	return m.term(ast.String(fmt.Sprintf(format, args...))), true
}

// format1 formats as fmt.Sprintf does with string and int64 arguments, for
// the formats messages use: %s and %q of strings, %d of integers, %v of
// either, %%, each argument used once. ok is false for anything else (a
// flag, a width, another verb, another argument, a count that does not
// match), which fmt.Sprintf formats.
func format1(format string, elems []*ast.Term) (string, bool) {
	// Sized for the result (quotes and numbers estimated), so that it is
	// one allocation: messages take long strings.
	n := len(format)
	for _, t := range elems {
		if s, ok := t.Value.(ast.String); ok {
			n += len(s) + 2
		} else {
			n += 20
		}
	}
	var b strings.Builder
	b.Grow(n)
	next := 0
	for i := 0; i < len(format); i++ {
		j := strings.IndexByte(format[i:], '%')
		if j < 0 {
			b.WriteString(format[i:])
			break
		}
		b.WriteString(format[i : i+j])
		i += j
		if i++; i == len(format) {
			return "", false
		}
		verb := format[i]
		if verb == '%' {
			b.WriteByte('%')
			continue
		}
		if next == len(elems) {
			return "", false
		}
		arg := elems[next].Value
		next++
		switch v := arg.(type) {
		case ast.String:
			switch verb {
			case 's', 'v':
				b.WriteString(string(v))
			case 'q':
				b.WriteString(strconv.Quote(string(v)))
			default:
				return "", false
			}
		case ast.Number:
			if verb != 'd' && verb != 'v' || strings.ContainsAny(string(v), ".eE") {
				return "", false
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return "", false
			}
			var digits [20]byte
			b.Write(strconv.AppendInt(digits[:0], n, 10))
		default:
			return "", false
		}
	}
	if next != len(elems) {
		return "", false
	}
	return b.String(), true
}

// concat is OPA's concat of an array of strings; ok is false when an
// element is not a string (the built-in then fails, as it must).
func (m *machine) concat(sep string, elems []*ast.Term) (_ *ast.Term, ok bool) {
	n := len(sep) * max(len(elems)-1, 0)
	for _, t := range elems {
		s, ok := t.Value.(ast.String)
		if !ok {
			return nil, false
		}
		n += len(s)
	}
	var b strings.Builder
	b.Grow(n)
	for i, t := range elems {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(string(t.Value.(ast.String)))
	}
	return m.term(ast.String(b.String())), true
}

// capture is the iterator built-ins give their result to.
func (m *machine) capture(t *ast.Term) error {
	m.out = t
	return nil
}

// invoke calls fn with the caller's operands as its parameters; sig is
// fail when an error stopped it.
func (m *machine) invoke(fn *function, caller []*ast.Term, c *callInstr) (_ *ast.Term, sig int) {
	var fr *frame
	if n := len(m.frames); n > 0 {
		fr = m.frames[n-1]
		m.frames = m.frames[:n-1]
	} else {
		fr = &frame{}
	}
	if cap(fr.locals) < fn.nlocals {
		fr.locals = make([]*ast.Term, fn.nlocals, max(fn.nlocals, 32))
	}
	fr.locals = fr.locals[:fn.nlocals]
	for i, p := range c.params {
		fr.locals[p] = valueOf(caller, &c.args[i])
	}
	for _, b := range fn.code {
		if sig = m.block(fr, b); sig == ret || sig == fail {
			break
		}
	}
	result := fr.result
	clear(fr.locals)
	fr.result = nil
	m.frames = append(m.frames, fr)
	return result, sig
}

// tick checks the context now and then (every 1,024 calls and loop steps;
// eval checks it before it starts).
func (m *machine) tick() error {
	m.steps++
	if m.steps&1023 != 0 {
		return nil
	}
	return m.ctx.Err()
}

// internalError is a plan the interpreter cannot run as planned: a bug of
// the interpreter (or of OPA's planner), not of the policies. Decide then
// evaluates with topdown.
type internalError struct{ err error }

func (e *internalError) Error() string { return "plan interpreter: " + e.err.Error() }
func (e *internalError) Unwrap() error { return e.err }

func (m *machine) internal(loc *ir.Location, msg string) error {
	return &internalError{m.errorAt(loc, msg)}
}

func (m *machine) errorAt(loc *ir.Location, msg string) error {
	if loc != nil && loc.File >= 0 && loc.File < len(m.p.files) {
		return fmt.Errorf("%s:%d: %s", m.p.files[loc.File], loc.Row, msg)
	}
	return errors.New(msg)
}

// intTerm is n as a term, OPA's interned one when it has one.
func intTerm(n int64) *ast.Term {
	if n >= -1 && n <= 512 {
		return ast.InternedTerm(int(n))
	}
	return ast.IntNumberTerm(int(n))
}

// dot looks key up in src: an object's value, an array's element, a set's
// member; nil (undefined) otherwise.
func dot(src, key *ast.Term) *ast.Term {
	if src == nil || key == nil {
		return nil
	}
	switch v := src.Value.(type) {
	case lazyObjectValue:
		return v.get(key)
	case lazyListValue:
		if i, ok := index(key, v.len()); ok {
			return v.elem(i)
		}
		return nil
	case ast.Object:
		return v.Get(materialize(key))
	case *ast.Array:
		if i, ok := index(key, v.Len()); ok {
			return v.Elem(i)
		}
		return nil
	case ast.Set:
		k := materialize(key)
		if v.Contains(k) {
			return k
		}
	case *setBuilder:
		k := materialize(key)
		if v.contains(k) {
			return k
		}
	}
	return nil
}

// index reads key as an index into n elements.
func index(key *ast.Term, n int) (int, bool) {
	num, ok := key.Value.(ast.Number)
	if !ok {
		return 0, false
	}
	i, ok := num.Int()
	return i, ok && i >= 0 && i < n
}

func compare(a, b *ast.Term) int {
	if a == nil || b == nil {
		if a == b {
			return 0
		}
		return 1
	}
	if c, ok := compareSets(a.Value, b.Value); ok {
		return c
	}
	return materialize(a).Value.Compare(materialize(b).Value)
}

func isArray(t *ast.Term) bool {
	if t == nil {
		return false
	}
	switch t.Value.(type) {
	case *ast.Array, lazyListValue:
		return true
	}
	return false
}

func isObject(t *ast.Term) bool {
	if t == nil {
		return false
	}
	switch t.Value.(type) {
	case ast.Object, lazyObjectValue:
		return true
	}
	return false
}

// length is the size of a collection, or of a string in characters.
func length(t *ast.Term) (int, bool) {
	if t == nil {
		return 0, false
	}
	switch v := t.Value.(type) {
	case lazyListValue:
		return v.len(), true
	case lazyObjectValue:
		return v.object().Len(), true
	case *ast.Array:
		return v.Len(), true
	case ast.Object:
		return v.Len(), true
	case ast.Set:
		return v.Len(), true
	case *setBuilder:
		return v.len(), true
	case ast.String:
		return utf8.RuneCountInString(string(v)), true
	}
	return 0, false
}

// arrayBuilder is an array the plan builds (MakeArrayStmt, then an
// ArrayAppendStmt per element of a comprehension). Its elements are kept in
// a slice and OPA's array is made once, when something needs the whole
// value (see lazyValue), instead of a copy of the array's header for each
// element as ast.Array.Append makes. Reading it element by element (a scan,
// a lookup, count) needs no array at all.
type arrayBuilder struct {
	elems []*ast.Term
	full  *ast.Array
	term  *ast.Term // of full
	m     *machine  // whose chunk of terms term comes from; nil: allocated
	small [4]*ast.Term
}

// arrayBuilder is a new arrayBuilder for n elements from the evaluation's
// chunks (like its terms: the plan makes dozens per evaluation).
func (m *machine) arrayBuilder(n int) *arrayBuilder {
	if len(m.arrays) == cap(m.arrays) {
		m.arrays = make([]arrayBuilder, 0, builderChunk)
	}
	m.arrays = m.arrays[:len(m.arrays)+1]
	a := &m.arrays[len(m.arrays)-1]
	a.m = m
	return initArrayBuilder(a, n)
}

// objectBuilder is a new objectBuilder from the evaluation's chunks.
func (m *machine) objectBuilder() *objectBuilder {
	if len(m.objects) == cap(m.objects) {
		m.objects = make([]objectBuilder, 0, builderChunk)
	}
	m.objects = m.objects[:len(m.objects)+1]
	b := &m.objects[len(m.objects)-1]
	b.m = m
	return b
}

const builderChunk = 8

// initArrayBuilder readies a for n elements, in itself when they are few
// (one allocation, not two).
func initArrayBuilder(a *arrayBuilder, n int) *arrayBuilder {
	if n <= len(a.small) {
		a.elems = a.small[:0]
	} else {
		a.elems = make([]*ast.Term, 0, n)
	}
	return a
}

func (a *arrayBuilder) append(t *ast.Term) {
	a.elems = append(a.elems, t)
	// An array made before stays as it was (it holds a prefix of elems).
	a.full, a.term = nil, nil
}

func (a *arrayBuilder) forced() *ast.Term {
	if a.term == nil {
		if a.m != nil {
			a.term = a.m.term(a.force())
		} else {
			a.term = ast.NewTerm(a.force())
		}
	}
	return a.term
}

func (a *arrayBuilder) len() int             { return len(a.elems) }
func (a *arrayBuilder) elem(i int) *ast.Term { return a.elems[i] }

func (a *arrayBuilder) force() ast.Value {
	if a.full == nil {
		a.full = ast.NewArray(a.elems[:len(a.elems):len(a.elems)]...)
	}
	return a.full
}

func (a *arrayBuilder) Compare(other ast.Value) int          { return a.force().Compare(other) }
func (a *arrayBuilder) Find(path ast.Ref) (ast.Value, error) { return a.force().Find(path) }
func (a *arrayBuilder) Hash() int                            { return a.force().Hash() }
func (a *arrayBuilder) IsGround() bool                       { return true }
func (a *arrayBuilder) String() string                       { return a.force().String() }
func (a *arrayBuilder) StringLength() int                    { return a.force().StringLength() }

// insert inserts k: v into obj, and reports false for a conflict: once,
// and k has another value.
func insert(obj ast.Object, k, v *ast.Term, once bool) bool {
	if once {
		if old := obj.Get(k); old != nil {
			return old.Value.Compare(v.Value) == 0
		}
	}
	obj.Insert(k, v)
	return true
}

// objectBuilder is an object the plan builds (MakeObjectStmt, then an
// ObjectInsertStmt or ObjectInsertOnceStmt per key): while it is small its
// keys and values are kept in slices, looked up one by one, and OPA's
// object is made once, sized, when something needs it whole (see
// lazyValue): inserting into OPA's object allocates per key and re-grows
// its map and key slice. From then on, or from objectBuilderMax keys on,
// it is that object, inserted into in place.
type objectBuilder struct {
	items [][2]*ast.Term
	full  ast.Object
	term  *ast.Term // of full
	m     *machine  // whose chunk of terms term comes from; nil: allocated
	small [4][2]*ast.Term
}

const objectBuilderMax = 16

// insert inserts k: v (overwriting the value of an equal key, unless once)
// and reports a conflict: once, and k has another value.
func (b *objectBuilder) insert(k, v *ast.Term, once bool) (conflict bool) {
	if b.full == nil && len(b.items) >= objectBuilderMax {
		b.object()
	}
	if b.full != nil {
		return !insert(b.full, k, v, once)
	}
	if i := b.find(k); i >= 0 {
		if once {
			return compare(b.items[i][1], v) != 0
		}
		b.items[i][1] = v
		return false
	}
	if b.items == nil {
		b.items = b.small[:0] // in itself while it is small
	}
	b.items = append(b.items, [2]*ast.Term{k, v})
	return false
}

// find is the index of the key equal to k (as OPA's object compares keys),
// -1 for none.
func (b *objectBuilder) find(k *ast.Term) int {
	for i := range b.items {
		if b.items[i][0].Value.Compare(k.Value) == 0 {
			return i
		}
	}
	return -1
}

func (b *objectBuilder) get(k *ast.Term) *ast.Term {
	k = materialize(k)
	if b.full != nil {
		return b.full.Get(k)
	}
	if i := b.find(k); i >= 0 {
		return b.items[i][1]
	}
	return nil
}

func (b *objectBuilder) object() ast.Object {
	if b.full == nil {
		b.full = ast.NewObject(b.items...)
		b.items = nil
	}
	return b.full
}

func (b *objectBuilder) force() ast.Value { return b.object() }

func (b *objectBuilder) forced() *ast.Term {
	if b.term == nil {
		if b.m != nil {
			b.term = b.m.term(b.object())
		} else {
			b.term = ast.NewTerm(b.object())
		}
	}
	return b.term
}

func (b *objectBuilder) Compare(other ast.Value) int          { return b.object().Compare(other) }
func (b *objectBuilder) Find(path ast.Ref) (ast.Value, error) { return b.object().Find(path) }
func (b *objectBuilder) Hash() int                            { return b.object().Hash() }
func (b *objectBuilder) IsGround() bool                       { return true }
func (b *objectBuilder) String() string                       { return b.object().String() }
func (b *objectBuilder) StringLength() int                    { return b.object().StringLength() }

// setBuilder is a set the plan builds (MakeSetStmt, then a SetAddStmt per
// element): while it is small its elements are kept in a slice with their
// hashes, deduplicated as OPA's set does (same hash, then KeyHashEqual),
// and OPA's set is made once, sized, when something needs it whole (see
// lazyValue): a set of OPA's allocates its map and re-grows it and its key
// slice as elements come, and a decision builds a few dozen sets, most of
// them of a few elements. Size, membership, iteration in OPA's order and
// comparison with another set need no OPA set. From setBuilderMax
// elements on, or once made, it is OPA's set, added to in place.
type setBuilder struct {
	items   []setItem
	inOrder bool // items are in OPA's order (TermValueCompare)
	full    ast.Set
	term    *ast.Term // of full
	m       *machine  // whose chunk of terms term comes from
	small   [4]setItem
}

type setItem struct {
	t *ast.Term
	h int // t.Hash()
}

const setBuilderMax = 16

// setBuilder is a new setBuilder from the evaluation's chunks.
func (m *machine) setBuilder() *setBuilder {
	if len(m.sets) == cap(m.sets) {
		m.sets = make([]setBuilder, 0, builderChunk)
	}
	m.sets = m.sets[:len(m.sets)+1]
	b := &m.sets[len(m.sets)-1]
	b.m = m
	b.items = b.small[:0]
	b.inOrder = true
	return b
}

func (b *setBuilder) add(x *ast.Term) {
	if b.full == nil && len(b.items) == setBuilderMax {
		b.force()
	}
	if b.full != nil {
		b.full.Add(x)
		return
	}
	h := x.Hash()
	for _, it := range b.items {
		if it.h == h && ast.KeyHashEqual(it.t.Value, x.Value) {
			return
		}
	}
	b.items = append(b.items, setItem{x, h})
	b.inOrder = len(b.items) == 1
}

func (b *setBuilder) contains(x *ast.Term) bool {
	if b.full != nil {
		return b.full.Contains(x)
	}
	h := x.Hash()
	for _, it := range b.items {
		if it.h == h && ast.KeyHashEqual(it.t.Value, x.Value) {
			return true
		}
	}
	return false
}

func (b *setBuilder) len() int {
	if b.full != nil {
		return b.full.Len()
	}
	return len(b.items)
}

// sorted returns the items in OPA's order (b.full == nil).
func (b *setBuilder) sorted() []setItem {
	if !b.inOrder {
		slices.SortFunc(b.items, func(x, y setItem) int { return ast.TermValueCompare(x.t, y.t) })
		b.inOrder = true
	}
	return b.items
}

// setTerms is the elements of b in OPA's order, in a buffer of m's that
// the caller must not keep.
func (m *machine) setTerms(b *setBuilder) []*ast.Term {
	if b.full != nil {
		return b.full.Slice()
	}
	m.scratch = m.scratch[:0]
	for _, it := range b.sorted() {
		m.scratch = append(m.scratch, it.t)
	}
	return m.scratch
}

func (b *setBuilder) force() ast.Value {
	if b.full == nil {
		terms := make([]*ast.Term, len(b.items))
		for i, it := range b.items {
			terms[i] = it.t
		}
		b.full = ast.NewSet(terms...)
		b.items = nil
	}
	return b.full
}

func (b *setBuilder) forced() *ast.Term {
	if b.term == nil {
		b.term = b.m.term(b.force())
	}
	return b.term
}

func (b *setBuilder) Compare(other ast.Value) int          { return b.force().Compare(other) }
func (b *setBuilder) Find(path ast.Ref) (ast.Value, error) { return b.force().Find(path) }
func (b *setBuilder) Hash() int                            { return b.force().Hash() }
func (b *setBuilder) IsGround() bool                       { return true }
func (b *setBuilder) String() string                       { return b.force().String() }
func (b *setBuilder) StringLength() int                    { return b.force().StringLength() }

// isSet reports whether t is a set: OPA's or one the plan builds.
func isSet(t *ast.Term) bool {
	switch t.Value.(type) {
	case ast.Set, *setBuilder:
		return true
	}
	return false
}

// compareSets compares two sets as OPA's set.Compare does (their elements
// in OPA's order, as arrays), when one of them is a setBuilder not made
// into OPA's set yet and the other a set; ok is false otherwise.
func compareSets(a, b ast.Value) (_ int, ok bool) {
	x, xb := a.(*setBuilder)
	y, yb := b.(*setBuilder)
	xb, yb = xb && x.full == nil, yb && y.full == nil
	switch {
	case xb && yb:
		return slices.CompareFunc(x.sorted(), y.sorted(), func(p, q setItem) int { return ast.TermValueCompare(p.t, q.t) }), true
	case xb:
		if s, ok := b.(ast.Set); ok {
			return slices.CompareFunc(x.sorted(), s.Slice(), func(p setItem, q *ast.Term) int { return ast.TermValueCompare(p.t, q) }), true
		}
	case yb:
		if s, ok := a.(ast.Set); ok {
			return slices.CompareFunc(s.Slice(), y.sorted(), func(p *ast.Term, q setItem) int { return ast.TermValueCompare(p, q.t) }), true
		}
	}
	return 0, false
}
