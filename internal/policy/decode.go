package policy

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mergeguard/guard/internal/pr"
)

// decodeDecision checks and converts the value of data.guard.decision (read
// as OPA gives it, without a round trip through Go maps). Unknown keys are
// ignored; everything the guard relies on must be present and well typed.
func decodeDecision(v ast.Value) (pr.Decision, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return pr.Decision{}, fmt.Errorf("want an object {\"outcome\", \"reasons\"}, got %s", kind(v))
	}
	var d pr.Decision
	o, err := outcome(obj, "outcome")
	if err != nil {
		return pr.Decision{}, err
	}
	d.Outcome = o
	raw := obj.Get(kReasons)
	if raw == nil {
		return pr.Decision{}, fmt.Errorf("\"reasons\" is missing")
	}
	list, ok := elems(raw.Value)
	if !ok {
		return pr.Decision{}, fmt.Errorf("\"reasons\" must be an array, got %s", kind(raw.Value))
	}
	d.Reasons = make([]pr.Reason, 0, len(list))
	worst := pr.Allow
	for i, t := range list {
		reason, err := decodeReason(t.Value)
		if err != nil {
			return pr.Decision{}, fmt.Errorf("reasons[%d]: %w", i, err)
		}
		worst = pr.Worst(worst, reason.Outcome)
		d.Reasons = append(d.Reasons, reason)
	}
	if worst.Severity() > d.Outcome.Severity() {
		return pr.Decision{}, fmt.Errorf("outcome %q is less severe than a reason's %q", d.Outcome, worst)
	}
	// A block or escalation must name its rule: a reason with that outcome
	// says what to fix and what an override clears.
	if d.Outcome.Severity() > worst.Severity() {
		return pr.Decision{}, fmt.Errorf("outcome %q has no reason with that outcome (the worst reason is %q)", d.Outcome, worst)
	}
	return d, nil
}

func decodeReason(v ast.Value) (pr.Reason, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return pr.Reason{}, fmt.Errorf("want an object, got %s", kind(v))
	}
	var r pr.Reason
	var err error
	if r.Rule, err = str(obj, "rule", true); err != nil {
		return pr.Reason{}, err
	}
	if r.Outcome, err = outcome(obj, "outcome"); err != nil {
		return pr.Reason{}, fmt.Errorf("rule %q: %w", r.Rule, err)
	}
	if r.Message, err = str(obj, "message", true); err != nil {
		return pr.Reason{}, fmt.Errorf("rule %q: %w", r.Rule, err)
	}
	if r.Freeze, err = str(obj, "freeze", false); err != nil {
		return pr.Reason{}, fmt.Errorf("rule %q: %w", r.Rule, err)
	}
	if r.Until, err = str(obj, "until", false); err != nil {
		return pr.Reason{}, fmt.Errorf("rule %q: %w", r.Rule, err)
	}
	raw := obj.Get(kMatches)
	if raw == nil {
		return r, nil
	}
	list, ok := elems(raw.Value)
	if !ok {
		return pr.Reason{}, fmt.Errorf("rule %q: \"matches\" must be an array, got %s", r.Rule, kind(raw.Value))
	}
	for i, t := range list {
		match, err := decodeMatch(t.Value)
		if err != nil {
			return pr.Reason{}, fmt.Errorf("rule %q: matches[%d]: %w", r.Rule, i, err)
		}
		r.Matches = append(r.Matches, match)
	}
	return r, nil
}

func decodeMatch(v ast.Value) (pr.Match, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return pr.Match{}, fmt.Errorf("want an object {\"file\", \"line\", \"text\"}, got %s", kind(v))
	}
	var m pr.Match
	var err error
	if m.File, err = str(obj, "file", true); err != nil {
		return pr.Match{}, err
	}
	if m.Text, err = str(obj, "text", false); err != nil {
		return pr.Match{}, err
	}
	var line ast.Value
	if t := obj.Get(kLine); t != nil {
		line = t.Value
	}
	n, ok := line.(ast.Number)
	if !ok {
		return pr.Match{}, fmt.Errorf("\"line\" must be a number, got %s", kind(line))
	}
	i, ok := n.Int64()
	if !ok || i < 0 {
		return pr.Match{}, fmt.Errorf("\"line\" must be a non-negative integer, got %s", n)
	}
	m.Line = int(i)
	return m, nil
}

// elems are the elements of an array, or of a set in sorted order: a set
// reads as an array, as it does in OPA's JSON (and so in topdown's results).
func elems(v ast.Value) ([]*ast.Term, bool) {
	var arr *ast.Array
	switch v := v.(type) {
	case *ast.Array:
		arr = v
	case ast.Set:
		arr = v.Sorted()
	default:
		return nil, false
	}
	ts := make([]*ast.Term, arr.Len())
	for i := range ts {
		ts[i] = arr.Elem(i)
	}
	return ts, true
}

// The keys decode reads, converted once.
var (
	kReasons   = ast.StringTerm("reasons")
	kMatches   = ast.StringTerm("matches")
	decodeKeys = map[string]*ast.Term{}
)

func init() {
	for _, k := range []string{"outcome", "rule", "message", "freeze", "until", "file", "text"} {
		decodeKeys[k] = ast.StringTerm(k)
	}
}

// outcome reads a policy outcome: allow, escalate or block ("error" is the
// guard's own, never a policy's).
func outcome(obj ast.Object, key string) (pr.Outcome, error) {
	s, err := str(obj, key, true)
	if err != nil {
		return "", err
	}
	switch o := pr.Outcome(s); o {
	case pr.Allow, pr.Escalate, pr.Block:
		return o, nil
	}
	return "", fmt.Errorf("%q is %q, want allow, escalate or block", key, s)
}

// str reads a string field; a required one must be present and non-empty.
func str(obj ast.Object, key string, required bool) (string, error) {
	t := obj.Get(decodeKeys[key])
	if t == nil {
		if required {
			return "", fmt.Errorf("%q is missing", key)
		}
		return "", nil
	}
	s, ok := t.Value.(ast.String)
	if !ok {
		return "", fmt.Errorf("%q must be a string, got %s", key, kind(t.Value))
	}
	if required && s == "" {
		return "", fmt.Errorf("%q is empty", key)
	}
	return string(s), nil
}

func kind(v ast.Value) string {
	switch v.(type) {
	case nil:
		return "null" // absent
	case ast.Null:
		return "null"
	case ast.Object:
		return "an object"
	case *ast.Array:
		return "an array"
	case ast.Set:
		return "a set"
	case ast.String:
		return "a string"
	case ast.Number:
		return "a number"
	case ast.Boolean:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}
