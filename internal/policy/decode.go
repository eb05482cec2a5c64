package policy

import (
	"encoding/json"
	"fmt"

	"github.com/mergeguard/guard/internal/pr"
)

// decodeDecision checks and converts the JSON-like value of
// data.guard.decision. Unknown keys are ignored; everything the guard relies
// on must be present and well typed.
func decodeDecision(v any) (pr.Decision, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return pr.Decision{}, fmt.Errorf("want an object {\"outcome\", \"reasons\"}, got %s", kind(v))
	}
	var d pr.Decision
	o, err := outcome(obj, "outcome")
	if err != nil {
		return pr.Decision{}, err
	}
	d.Outcome = o
	raw, ok := obj["reasons"]
	if !ok {
		return pr.Decision{}, fmt.Errorf("\"reasons\" is missing")
	}
	list, ok := raw.([]any)
	if !ok {
		return pr.Decision{}, fmt.Errorf("\"reasons\" must be an array, got %s", kind(raw))
	}
	d.Reasons = make([]pr.Reason, 0, len(list))
	worst := pr.Allow
	for i, r := range list {
		reason, err := decodeReason(r)
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

func decodeReason(v any) (pr.Reason, error) {
	obj, ok := v.(map[string]any)
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
	raw, ok := obj["matches"]
	if !ok {
		return r, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return pr.Reason{}, fmt.Errorf("rule %q: \"matches\" must be an array, got %s", r.Rule, kind(raw))
	}
	for i, m := range list {
		match, err := decodeMatch(m)
		if err != nil {
			return pr.Reason{}, fmt.Errorf("rule %q: matches[%d]: %w", r.Rule, i, err)
		}
		r.Matches = append(r.Matches, match)
	}
	return r, nil
}

func decodeMatch(v any) (pr.Match, error) {
	obj, ok := v.(map[string]any)
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
	n, ok := obj["line"].(json.Number)
	if !ok {
		return pr.Match{}, fmt.Errorf("\"line\" must be a number, got %s", kind(obj["line"]))
	}
	line, err := n.Int64()
	if err != nil || line < 0 {
		return pr.Match{}, fmt.Errorf("\"line\" must be a non-negative integer, got %s", n)
	}
	m.Line = int(line)
	return m, nil
}

// outcome reads a policy outcome: allow, escalate or block ("error" is the
// guard's own, never a policy's).
func outcome(obj map[string]any, key string) (pr.Outcome, error) {
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
func str(obj map[string]any, key string, required bool) (string, error) {
	v, ok := obj[key]
	if !ok {
		if required {
			return "", fmt.Errorf("%q is missing", key)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%q must be a string, got %s", key, kind(v))
	}
	if required && s == "" {
		return "", fmt.Errorf("%q is empty", key)
	}
	return s, nil
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}
