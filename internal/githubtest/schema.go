package githubtest

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Schemas are the request and response schemas of some GitHub REST
// operations, extracted from @octokit/openapi (testdata/github/extract.py).
type Schemas struct {
	Source     string                `json:"source"`
	Operations map[string]*operation `json:"operations"`
	Components map[string]*schema    `json:"schemas"`
}

type operation struct {
	Request  *schema `json:"request"`
	Response *schema `json:"response"`
}

// schema is the subset of OpenAPI 3.0 schema keywords the extract keeps.
type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Nullable   bool               `json:"nullable"`
	Required   []string           `json:"required"`
	Properties map[string]*schema `json:"properties"`
	Items      *schema            `json:"items"`
	Enum       []any              `json:"enum"`
	AnyOf      []*schema          `json:"anyOf"`
	OneOf      []*schema          `json:"oneOf"`
	AllOf      []*schema          `json:"allOf"`
	Format     string             `json:"format"`
	// MaxLength and MinLength bound a string's length in characters
	// (Unicode code points, as JSON Schema counts them); MaxItems and
	// MinItems bound an array's length. Nil: no bound.
	MaxLength *int `json:"maxLength"`
	MinLength *int `json:"minLength"`
	MaxItems  *int `json:"maxItems"`
	MinItems  *int `json:"minItems"`
	// Additional is additionalProperties: false, true or a schema.
	Additional json.RawMessage `json:"additionalProperties"`
}

// LoadSchemas reads an extract written by testdata/github/extract.py.
func LoadSchemas(file string) (*Schemas, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read schemas: %w", err)
	}
	var s Schemas
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse schemas %s: %w", file, err)
	}
	return &s, nil
}

// OperationKeys returns the operation keys ("POST /repos/{owner}/{repo}/check-runs").
func (s *Schemas) OperationKeys() []string {
	keys := make([]string, 0, len(s.Operations))
	for k := range s.Operations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CheckResponse checks a JSON response body of operation op ("GET
// /repos/{owner}/{repo}/pulls/{pull_number}"). With strict, properties the
// schema does not declare are problems too (they catch misspelt fields).
func (s *Schemas) CheckResponse(op string, body []byte, strict bool) []string {
	o, ok := s.Operations[op]
	if !ok || o.Response == nil {
		return []string{fmt.Sprintf("no response schema for %q", op)}
	}
	return s.check(o.Response, body, strict)
}

// CheckRequest checks a JSON request body of operation op.
func (s *Schemas) CheckRequest(op string, body []byte, strict bool) []string {
	o, ok := s.Operations[op]
	if !ok || o.Request == nil {
		return []string{fmt.Sprintf("no request schema for %q", op)}
	}
	return s.check(o.Request, body, strict)
}

func (s *Schemas) check(sc *schema, body []byte, strict bool) []string {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return []string{"body is not JSON: " + err.Error()}
	}
	var problems []string
	s.validate(sc, v, "$", strict, &problems)
	return problems
}

func (s *Schemas) resolve(sc *schema) *schema {
	for sc != nil && sc.Ref != "" {
		sc = s.Components[strings.TrimPrefix(sc.Ref, "#/components/schemas/")]
	}
	return sc
}

func typeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func (s *Schemas) validate(sc *schema, v any, at string, strict bool, problems *[]string) {
	if sc.Ref != "" {
		r := s.resolve(sc)
		if r == nil {
			*problems = append(*problems, at+": unresolved "+sc.Ref)
			return
		}
		sc = r
	}
	if v == nil {
		if sc.Nullable || (sc.Type == "" && len(sc.AnyOf)+len(sc.OneOf)+len(sc.AllOf) == 0) {
			return
		}
		if slices.ContainsFunc(append(slices.Clone(sc.AnyOf), sc.OneOf...), func(x *schema) bool { return s.resolve(x).Nullable }) {
			return
		}
		if sc.Type != "" {
			*problems = append(*problems, at+": null, want "+sc.Type)
			return
		}
	}
	for _, sub := range sc.AllOf {
		s.validate(sub, v, at, false, problems)
	}
	if alts := append(slices.Clone(sc.AnyOf), sc.OneOf...); len(alts) > 0 {
		var best []string
		for i, alt := range alts {
			var p []string
			s.validate(alt, v, at, false, &p)
			if len(p) == 0 {
				best = nil
				break
			}
			if i == 0 || len(p) < len(best) {
				best = p
			}
		}
		*problems = append(*problems, best...)
	}
	if sc.Type != "" && v != nil {
		got := typeOf(v)
		if got != sc.Type && !(sc.Type == "number" && got == "integer") {
			*problems = append(*problems, fmt.Sprintf("%s: %s, want %s", at, got, sc.Type))
			return
		}
	}
	if len(sc.Enum) > 0 && v != nil && !slices.Contains(sc.Enum, v) {
		*problems = append(*problems, fmt.Sprintf("%s: %v is not one of %v", at, v, sc.Enum))
	}
	if sc.Format == "date-time" {
		if str, ok := v.(string); ok {
			if _, err := time.Parse(time.RFC3339, str); err != nil {
				*problems = append(*problems, fmt.Sprintf("%s: %q is not an RFC 3339 date-time", at, str))
			}
		}
	}
	switch x := v.(type) {
	case string:
		n := utf8.RuneCountInString(x)
		if sc.MaxLength != nil && n > *sc.MaxLength {
			*problems = append(*problems, fmt.Sprintf("%s: %d characters, at most %d allowed", at, n, *sc.MaxLength))
		}
		if sc.MinLength != nil && n < *sc.MinLength {
			*problems = append(*problems, fmt.Sprintf("%s: %d characters, at least %d required", at, n, *sc.MinLength))
		}
	case map[string]any:
		for _, r := range sc.Required {
			if _, ok := x[r]; !ok {
				*problems = append(*problems, at+": missing required "+r)
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p, ok := sc.Properties[k]
			if !ok {
				open := len(sc.Additional) > 0 && string(sc.Additional) != "false"
				if strict && !open && len(sc.Properties) > 0 && len(sc.AllOf)+len(sc.AnyOf)+len(sc.OneOf) == 0 {
					*problems = append(*problems, at+": property "+k+" is not in the schema")
				}
				continue
			}
			s.validate(p, x[k], at+"."+k, strict, problems)
		}
	case []any:
		if sc.MaxItems != nil && len(x) > *sc.MaxItems {
			*problems = append(*problems, fmt.Sprintf("%s: %d items, at most %d allowed", at, len(x), *sc.MaxItems))
		}
		if sc.MinItems != nil && len(x) < *sc.MinItems {
			*problems = append(*problems, fmt.Sprintf("%s: %d items, at least %d required", at, len(x), *sc.MinItems))
		}
		if sc.Items != nil {
			for i, e := range x {
				s.validate(sc.Items, e, fmt.Sprintf("%s[%d]", at, i), strict, problems)
			}
		}
	}
}
