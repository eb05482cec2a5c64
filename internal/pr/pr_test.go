package pr

import (
	"reflect"
	"strings"
	"testing"
)

func TestAddedLines(t *testing.T) {
	tests := []struct {
		name  string
		patch string
		want  []Line
	}{
		{"empty", "", nil},
		{"one hunk", "@@ -1,3 +1,4 @@\n package x\n+// added\n func A() {}\n-func B() {}\n+func C() {}", []Line{{2, "// added"}, {4, "func C() {}"}}},
		{"second hunk numbering", "@@ -1,2 +1,2 @@\n a\n-b\n+B\n@@ -40,2 +40,3 @@\n x\n+\tt.Skip(\"flaky\")\n y", []Line{{2, "B"}, {41, "\tt.Skip(\"flaky\")"}}},
		{"no newline marker", "@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file", []Line{{1, "b"}}},
		{"new file single line hunk", "@@ -0,0 +1 @@\n+only", []Line{{1, "only"}}},
		{"a hunk that runs backwards is skipped", "@@+0\n+0\n@@+0\n+", []Line{{1, "0"}}},
		{"garbage before a hunk is ignored", "+not a hunk\n@@ broken\n+still not", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AddedLines(tt.patch); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWorst(t *testing.T) {
	if Worst(Allow, Escalate) != Escalate || Worst(Block, Escalate) != Block || Worst(Error, Block) != Error {
		t.Fatal("severity order wrong")
	}
	if Outcome("bogus").Severity() != Error.Severity() {
		t.Fatal("unknown outcomes must rank as error")
	}
}

func FuzzAddedLines(f *testing.F) {
	f.Add("@@ -1,3 +1,4 @@\n package x\n+// added\n")
	f.Fuzz(func(t *testing.T, patch string) {
		prev := 0
		for _, l := range AddedLines(patch) {
			if l.Number <= prev {
				t.Fatalf("line number %d after %d: numbers must increase", l.Number, prev)
			}
			prev = l.Number
		}
	})
}

func TestValidOrgLogin(t *testing.T) {
	for s, want := range map[string]bool{
		"octo-org": true, "a": true, "A1-b2-C3": true, strings.Repeat("a", 39): true,
		"": false, "-octo": false, "octo-": false, "oc--to": false, "octo_org": false, "octo.org": false,
		"o/r": false, strings.Repeat("a", 40): false, "ö": false,
	} {
		if got := ValidOrgLogin(s); got != want {
			t.Errorf("ValidOrgLogin(%q) = %v, want %v", s, got, want)
		}
	}
}
