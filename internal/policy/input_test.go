package policy

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/mergeguard/guard/internal/pr"
)

// jsonValue is the input document the slow way: encoding/json, then OPA.
func jsonValue(t *testing.T, in *pr.Input) ast.Value {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := util.UnmarshalJSON(b, &doc); err != nil {
		t.Fatal(err)
	}
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fill sets every field reachable from v to a non-zero value derived from
// seed, so that a field the converter forgets shows up as a difference.
func fill(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 3, 3, 14, seed%60, 5, 123456789, time.FixedZone("X", -5*3600))))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), seed*31+i)
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), seed+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := 0; i < 2; i++ {
			fill(v.Index(i), seed+i+1)
		}
	case reflect.String:
		v.SetString("s" + string(rune('a'+seed%26)) + "é\"\n")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(seed*1000 + 7))
	default:
		panic("fill: unhandled kind " + v.Kind().String() + "; teach inputValue and this test about it")
	}
}

func TestInputValueMatchesJSON(t *testing.T) {
	full := &pr.Input{}
	fill(reflect.ValueOf(full).Elem(), 1)
	tests := []struct {
		name string
		in   *pr.Input
	}{
		{"every field set", full},
		{"zero input: nil slices and pointers are null", &pr.Input{}},
		{"typical agent PR", agentInput()},
		{"empty slices stay empty arrays", &pr.Input{Reviews: []pr.Review{}, Files: []pr.File{{AddedLines: []pr.Line{}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := inputValue(tt.in), jsonValue(t, tt.in)
			if got.Compare(want) != 0 {
				t.Errorf("inputValue differs from encoding/json:\n got  %v\n want %v", got, want)
			}
		})
	}
}
