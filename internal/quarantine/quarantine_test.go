package quarantine_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/gobwas/glob"

	"github.com/mergeguard/guard/internal/config"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/quarantine"
)

// formerTestsGlob is the test-file glob policies/test_quarantine_off_hours.rego
// used before recognition moved to Go; IsTest must agree with it.
const formerTestsGlob = "{**_test.go,**_test.py,**_test.rb,**_spec.rb," +
	"test_*.py,test_*.rb,**/test_*.py,**/test_*.rb," +
	"*.test.*,*.spec.*,**/*.test.*,**/*.spec.*," +
	"**Test.java,**Tests.java,**IT.java,**Test.kt,**Tests.kt,**IT.kt,**Test.cs,**Tests.cs," +
	"**.rs," +
	"test/**,tests/**,spec/**,__tests__/**,**/test/**,**/tests/**,**/spec/**,**/__tests__/**}"

var formerTests = glob.MustCompile(formerTestsGlob, '/')

// addedTestsGlob is what IsTest recognizes beyond formerTestsGlob: IsTest
// must match the union of both.
const addedTestsGlob = "{tests.py,**/tests.py,conftest.py,**/conftest.py," +
	"*.cy.*,**/*.cy.*," +
	"**_test.js,**_test.jsx,**_test.ts,**_test.tsx,**_test.mjs,**Spec.kt," +
	"e2e/**,cypress/**,**/e2e/**,**/cypress/**," +
	"?*.Tests/**,?*.Test/**,?*.UnitTests/**,?*.IntegrationTests/**,?*.Specs/**," +
	"**/?*.Tests/**,**/?*.Test/**,**/?*.UnitTests/**,**/?*.IntegrationTests/**,**/?*.Specs/**}"

var addedTests = glob.MustCompile(addedTestsGlob, '/')

// wantTest is IsTest's oracle: the former glob or the added one.
func wantTest(path string) bool { return formerTests.Match(path) || addedTests.Match(path) }

func TestIsTest(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"a_test.go", true},
		{"pkg/x/a_test.go", true},
		{"test_a.py", true},
		{"pkg/test_a.py", true},
		{"pkg/a_test.py", true},
		{"a.test.ts", true},
		{"web/a.spec.jsx", true},
		{"src/__tests__/a.js", true},
		{"src/test/java/A.java", true},
		{"core/ATest.java", true},
		{"core/ATests.kt", true},
		{"core/AIT.java", true},
		{"spec/a_spec.rb", true},
		{"a_spec.rb", true},
		{"test/a_test.rb", true},
		{"src/lib.rs", true},
		{"tests/it.rs", true},
		{"Shop.Tests/CartTests.cs", true},
		{"CartTest.cs", true},
		{"tests/fixtures/data.json", true},
		{"test/", true},
		{"shop/tests.py", true},
		{"tests.py", true},
		{"conftest.py", true},
		{"src/conftest.py", true},
		{"web/login.cy.ts", true},
		{"lib/parse_test.ts", true},
		{"lib/view_test.tsx", true},
		{"core/CartSpec.kt", true},
		{"e2e/checkout.ts", true},
		{"app/cypress/support/commands.js", true},
		{"src/Shop.Tests/CartShould.cs", true},
		{"Shop.UnitTests/Cart.cs", true},
		{"Shop.IntegrationTests/Api/Orders.cs", true},
		{"src/Shop/Cart.cs", false},
		{".Tests/Cart.cs", false},
		{"mytests.py", false},
		{"pkg/latests.py", false},
		{"src/cyclic.ts", false},
		{"lib/parse_test.tsx.orig", false},
		{"src/e2eutil/a.go", false},
		{"main.go", false},
		{"pkg/testing.go", false},
		{"contest.py", false},
		{"src/latest/a.ts", false},
		{"docs/spec.md", false},
		{"Attest.java", false},
		{"a_test.go.orig", false},
		{"pkg/test_a.go", false},
		{"mytests/a.go", false},
		{"src/testdata/a.go", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.path), func(t *testing.T) {
			if got := quarantine.IsTest(tt.path); got != tt.want {
				t.Errorf("IsTest(%q) = %v, want %v", tt.path, got, tt.want)
			}
			if oracle := wantTest(tt.path); oracle != tt.want {
				t.Errorf("the globs say %v for %q, want %v", oracle, tt.path, tt.want)
			}
		})
	}
}

// annotateLine annotates one file whose patch adds text at line 42.
func annotateLine(path, text string) pr.File {
	in := &pr.Input{Files: []pr.File{{Filename: path, Status: "modified", Additions: 1,
		AddedLines: []pr.Line{{Number: 42, Text: text}}}}}
	quarantine.Annotate(in)
	return in.Files[0]
}

func TestMarkers(t *testing.T) {
	tests := []struct {
		name string
		path string
		line string
		want string // the marker's kind; "" for none
	}{
		{"go t.Skip", "pkg/store/store_test.go", "\tt.Skip(\"flaky on CI\")", "go:t.Skip"},
		{"go t.SkipNow", "pkg/store/store_test.go", "\tt.SkipNow()", "go:t.SkipNow"},
		{"go t.Skipf", "pkg/store/store_test.go", "\tt.Skipf(\"see #%d\", 12)", "go:t.Skipf"},
		{"go b.Skip in a benchmark", "a_test.go", "\tb.Skip()", "go:t.Skip"},
		{"go suite T().Skip", "a_test.go", "\ts.T().Skip()", "go:t.Skip"},
		{"go skip after code on the line", "a_test.go", "\tif short { t.Skip() } // fast", "go:t.Skip"},
		{"go comment mentioning t.Skip", "a_test.go", "\t// t.Skip() was removed", ""},
		{"go block comment mentioning t.Skip", "a_test.go", "\t/* t.Skip() */ run()", ""},
		{"go string mentioning t.Skip", "a_test.go", "\tmsg := \"call t.Skip() to skip\"", ""},
		{"go raw string mentioning t.Skip", "a_test.go", "\tmsg := `t.Skip()`", ""},
		{"go test named Skip", "pkg/store/store_test.go", "func TestSkipper(t *testing.T) {", ""},
		{"go other receiver's Skip", "a_test.go", "\titer.Skip(3)", ""},
		{"go marker in a non-test file", "pkg/store/store.go", "\tt.Skip(\"x\")", ""},
		{"go marker of another language", "pkg/store/store_test.go", "@pytest.mark.skip", ""},

		{"python pytest.mark.skip", "tests/test_api.py", "@pytest.mark.skip(reason=\"flaky\")", "python:pytest.mark.skip"},
		{"python pytest.mark.skipif", "tests/test_api.py", "@pytest.mark.skipif(sys.platform == 'win32', reason='x')", "python:pytest.mark.skipif"},
		{"python pytest.mark.xfail", "app/api_test.py", "@pytest.mark.xfail", "python:pytest.mark.xfail"},
		{"python pytestmark", "tests/test_api.py", "pytestmark = pytest.mark.skip", "python:pytest.mark.skip"},
		{"python pytest.skip call", "tests/test_api.py", "    pytest.skip(\"no network\")", "python:pytest.skip"},
		{"python pytest.xfail call", "tests/test_api.py", "    pytest.xfail(\"known bug\")", "python:pytest.xfail"},
		{"python unittest.skip", "test_models.py", "    @unittest.skip(\"later\")", "python:unittest.skip"},
		{"python unittest.skipIf", "test_models.py", "    @unittest.skipIf(True, \"later\")", "python:unittest.skipIf"},
		{"python unittest.expectedFailure", "test_models.py", "    @unittest.expectedFailure", "python:unittest.expectedFailure"},
		{"python self.skipTest", "test_models.py", "        self.skipTest(\"no db\")", "python:skipTest"},
		{"python mark imported from pytest", "tests/test_api.py", "@mark.skip(reason=\"flaky\")", "python:mark.skip"},
		{"python skip imported from unittest", "test_models.py", "    @skip(\"later\")", "python:@skip"},
		{"python importorskip", "tests/test_api.py", "np = pytest.importorskip(\"numpy\")", "python:pytest.importorskip"},
		{"python raise SkipTest", "test_models.py", "        raise unittest.SkipTest(\"no db\")", "python:unittest.SkipTest"},
		{"python skip in conftest", "conftest.py", "            item.add_marker(pytest.mark.skip(reason=\"flaky\"))", "python:pytest.mark.skip"},
		{"python django tests.py", "shop/tests.py", "@unittest.skip(\"flaky\")", "python:unittest.skip"},
		{"python comment", "tests/test_api.py", "# we no longer skip this", ""},
		{"python commented-out marker", "tests/test_api.py", "# @pytest.mark.skip", ""},
		{"python string mentioning skip", "tests/test_api.py", "    assert msg == \"@pytest.mark.skip\"", ""},
		{"python function named skip_", "tests/test_api.py", "def test_skip_list():", ""},

		{"js it.skip", "src/cart.test.ts", "  it.skip('adds items', () => {", "js:it.skip"},
		{"js xit", "src/cart.spec.js", "  xit('adds items', () => {", "js:xit"},
		{"js describe.skip", "web/cart.test.tsx", "describe.skip('cart', () => {", "js:describe.skip"},
		{"js test.skip", "web/cart.test.jsx", "test.skip('total', () => {", "js:test.skip"},
		{"js test.concurrent.skip", "web/cart.test.mjs", "test.concurrent.skip('total', async () => {", "js:test.concurrent.skip"},
		{"js xdescribe", "src/__tests__/cart.js", "xdescribe('cart', () => {", "js:xdescribe"},
		{"js it.todo", "src/cart.test.ts", "it.todo('handles refunds')", "js:it.todo"},
		{"js it.only skips the others", "src/cart.test.ts", "  it.only('adds items', () => {", "js:it.only"},
		{"js describe.only", "src/cart.test.ts", "describe.only('cart', () => {", "js:describe.only"},
		{"js fit", "src/cart.spec.js", "  fit('adds items', () => {", "js:fit"},
		{"js fdescribe", "src/cart.spec.js", "fdescribe('cart', () => {", "js:fdescribe"},
		{"js model.fit is no marker", "src/train.test.ts", "  model.fit(data)", ""},
		{"js vitest skipIf", "src/cart.test.ts", "test.skipIf(isWindows)('paths', () => {", "js:test.skipIf"},
		{"js playwright fixme", "e2e/login.spec.ts", "test.fixme('logs in', async ({ page }) => {", "js:test.fixme"},
		{"js playwright describe.fixme", "e2e/login.spec.ts", "test.describe.fixme('login', () => {", "js:test.describe.fixme"},
		{"js xit.each", "src/cart.test.ts", "xit.each([1, 2])('adds %i', (n) => {", "js:xit"},
		{"js mocha this.skip", "test/cart.js", "    this.skip()", "js:this.skip"},
		{"js jasmine pending", "spec/cart.spec.js", "    pending('later')", "js:pending"},
		{"js cypress it.skip", "cypress/e2e/login.cy.ts", "  it.skip('logs in', () => {", "js:it.skip"},
		{"js deno test.ignore is no jest marker", "lib/parse_test.ts", "Deno.test.ignore(\"parses\", () => {", ""},
		{"js plain it", "src/cart.test.ts", "it('adds', () => {", ""},
		{"js title mentioning it.skip", "src/cart.test.ts", "it('replaces it.skip with it', () => {", ""},
		{"js template mentioning xit(", "src/cart.test.ts", "const s = `xit(`", ""},
		{"js commented-out it.skip", "src/cart.test.ts", "  // it.skip('adds items', () => {", ""},

		{"java @Disabled", "src/test/java/com/acme/CartTest.java", "    @Disabled(\"flaky\")", "java:@Disabled"},
		{"java @Ignore", "core/CartTests.java", "    @Ignore", "java:@Ignore"},
		{"java qualified @org.junit.Ignore", "core/CartTests.java", "    @org.junit.Ignore", "java:@Ignore"},
		{"java @DisabledOnOs is conditional", "core/CartTests.java", "    @DisabledOnOs(WINDOWS)", ""},
		{"java annotation in main code", "src/main/java/Cart.java", "@Disabled", ""},
		{"java javadoc mentioning @Disabled", "core/CartTest.java", "     * Use @Disabled sparingly.", ""},
		{"kotlin @Disabled", "app/src/test/kotlin/CartTest.kt", "    @Disabled", "kotlin:@Disabled"},
		{"kotlin @Ignore", "app/CartTests.kt", "    @Ignore fun totals() {", "kotlin:@Ignore"},
		{"kotlin string mentioning @Ignore", "app/CartTests.kt", "    val s = \"@Ignore\"", ""},
		{"csharp xunit skip in a test project", "src/Shop.Tests/CartShould.cs", "    [Fact(Skip = \"flaky\")]", "csharp:Fact(Skip)"},

		{"ruby skip", "spec/models/cart_spec.rb", "    skip \"flaky\"", "ruby:skip"},
		{"ruby pending", "spec/models/cart_spec.rb", "    pending \"not yet\"", "ruby:pending"},
		{"ruby xit", "test/cart_test.rb", "  xit \"totals\" do", "ruby:xit"},
		{"ruby skip metadata", "spec/cart_spec.rb", "  it \"totals\", skip: true do", "ruby:skip"},
		{"ruby skip symbol", "spec/cart_spec.rb", "  it \"totals\", :skip do", "ruby:skip"},
		{"ruby word inside a string", "spec/cart_spec.rb", "  it 'does not skip' do", ""},
		{"ruby comment", "spec/cart_spec.rb", "  # skip \"flaky\"", ""},
		{"ruby skip_ method", "spec/cart_spec.rb", "  skip_before_action :auth", ""},
		{"ruby bare skip", "test/cart_test.rb", "    skip", "ruby:skip"},
		{"ruby skip with a condition", "test/cart_test.rb", "    skip if ENV[\"CI\"]", "ruby:skip"},
		{"ruby skip call with parentheses", "test/cart_test.rb", "    skip(\"later\")", "ruby:skip"},
		{"ruby variable named skip", "spec/cart_spec.rb", "    skip = false", ""},
		{"ruby hash key skip", "spec/cart_spec.rb", "      skip: false,", ""},
		{"ruby variable named pending", "spec/cart_spec.rb", "    pending = queue.size", ""},

		{"rust #[ignore] under tests", "tests/cart.rs", "#[ignore]", "rust:#[ignore]"},
		{"rust #[ignore] in a unit test module", "src/cart.rs", "    #[ignore = \"slow\"]", "rust:#[ignore]"},
		{"rust commented-out #[ignore]", "src/cart.rs", "    // #[ignore]", ""},
		{"rust string mentioning #[ignore]", "src/cart.rs", "    let s = \"#[ignore]\";", ""},
		{"rust lifetime does not open a string", "src/cart.rs", "fn f<'a>(x: &'a str) {} #[ignore]", "rust:#[ignore]"},

		{"csharp Fact Skip", "Shop.Tests/CartTests.cs", "    [Fact(Skip = \"flaky\")]", "csharp:Fact(Skip)"},
		{"csharp Theory Skip", "Shop.Tests/CartTests.cs", "    [Theory(Skip=\"flaky\")]", "csharp:Theory(Skip)"},
		{"csharp Skip with a parenthesis in the reason", "Shop.Tests/CartTests.cs", "    [Fact(Skip = \"see (#12)\")]", "csharp:Fact(Skip)"},
		{"csharp Ignore", "Shop.Tests/CartTest.cs", "    [Test, Ignore(\"flaky\")]", "csharp:Ignore"},
		{"csharp bare Ignore", "Shop.Tests/CartTest.cs", "    [Ignore]", "csharp:Ignore"},
		{"csharp plain Fact", "Shop.Tests/CartTest.cs", "    [Fact(DisplayName = \"Skip = none\")]", ""},
		{"csharp comment", "Shop.Tests/CartTest.cs", "    // [Ignore]", ""},
		{"csharp argument named Ignore", "Shop.Tests/CartTest.cs", "    Handle(errors, Ignore);", ""},

		{"a file of no known language under tests", "tests/data/skip.txt", "t.Skip()", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := annotateLine(tt.path, tt.line)
			var want []pr.Marker
			if tt.want != "" {
				want = []pr.Marker{{Line: 42, Text: tt.line, Kind: tt.want}}
			}
			if len(f.Markers) != len(want) || len(want) > 0 && f.Markers[0] != want[0] {
				t.Errorf("markers of %q in %s = %+v, want %+v", tt.line, tt.path, f.Markers, want)
			}
		})
	}
}

func TestAnnotateLooksOnlyAtAddedLines(t *testing.T) {
	patch := "@@ -10,4 +10,5 @@ func TestA(t *testing.T) {\n" +
		"\tt.Skip(\"context line\")\n" +
		"-\tt.Skip(\"removed line\")\n" +
		"+\tt.Skipf(\"added %d\", 1)\n" +
		"+\tcheck(t)\n" +
		" }\n"
	in := &pr.Input{Files: []pr.File{{Filename: "a_test.go", Patch: patch}}}
	quarantine.Annotate(in)
	f := in.Files[0]
	want := []pr.Marker{{Line: 11, Text: "\tt.Skipf(\"added %d\", 1)", Kind: "go:t.Skipf"}}
	if !reflect.DeepEqual(f.Markers, want) {
		t.Errorf("markers = %+v, want %+v", f.Markers, want)
	}
	if len(f.AddedLines) != 2 {
		t.Errorf("added lines = %+v, want the two added lines parsed from the patch", f.AddedLines)
	}
}

func TestAnnotateKeepsLinesOfTestAndQuarantineFilesOnly(t *testing.T) {
	lines := func() []pr.Line { return []pr.Line{{Number: 1, Text: "x := 1"}, {Number: 2, Text: ""}} }
	in := &pr.Input{
		QuarantineFiles: []string{"ci/quarantine.txt"},
		Files: []pr.File{
			{Filename: "main.go", Additions: 2, Deletions: 3, AddedLines: lines()},
			{Filename: "main_test.go", Additions: 2, AddedLines: lines()},
			{Filename: "ci/quarantine.txt", Additions: 2, AddedLines: lines()},
			{Filename: "README.md", Status: "removed", Deletions: 9},
			{Filename: "tests/empty_test.go"},
		},
	}
	quarantine.Annotate(in)
	want := []pr.File{
		{Filename: "main.go", Additions: 2, Deletions: 3, AddedLines: []pr.Line{}, Markers: []pr.Marker{}},
		{Filename: "main_test.go", Additions: 2, AddedLines: lines(), Test: true, Markers: []pr.Marker{}},
		{Filename: "ci/quarantine.txt", Additions: 2, AddedLines: lines(), QuarantineList: true,
			Markers: []pr.Marker{{Line: 1, Text: "x := 1", Kind: quarantine.KindQuarantineList}}},
		{Filename: "README.md", Status: "removed", Deletions: 9, AddedLines: []pr.Line{}, Markers: []pr.Marker{}},
		{Filename: "tests/empty_test.go", AddedLines: []pr.Line{}, Test: true, Markers: []pr.Marker{}},
	}
	if !reflect.DeepEqual(in.Files, want) {
		t.Errorf("files =\n%+v\nwant\n%+v", in.Files, want)
	}
	if !reflect.DeepEqual(in.MarkedFiles, []int{2}) {
		t.Errorf("marked files = %v, want [2]", in.MarkedFiles)
	}
}

func TestAnnotateQuarantineLists(t *testing.T) {
	tests := []struct {
		name  string
		globs []string
		path  string
		want  bool
	}{
		{"exact path", []string{".github/quarantine.yml"}, ".github/quarantine.yml", true},
		{"** crosses directories", []string{"**/flaky.txt"}, "services/cart/flaky.txt", true},
		{"* stays in its directory", []string{"*/flaky.txt"}, "services/cart/flaky.txt", false},
		{"* matches within one directory", []string{"*/flaky.txt"}, "cart/flaky.txt", true},
		{"second of several globs", []string{"quarantine.yml", "ci/*.txt"}, "ci/flaky.txt", true},
		{"brace glob", []string{"quarantine.{yml,yaml}", "ci/*.txt"}, "quarantine.yaml", true},
		{"no glob matches", []string{"quarantine.{yml,yaml}", "ci/*.txt"}, "ci/sub/flaky.txt", false},
		{"no globs", nil, "quarantine.yml", false},
		{"default: root quarantine list", config.DefaultQuarantineFiles(), "quarantine.yml", true},
		{"default: nested quarantine list", config.DefaultQuarantineFiles(), "ci/tests/quarantine-e2e.json", true},
		{"default: dot file", config.DefaultQuarantineFiles(), "svc/.quarantine", true},
		{"default: flaky_tests list", config.DefaultQuarantineFiles(), "flaky_tests.txt", true},
		{"default: flaky-tests list nested", config.DefaultQuarantineFiles(), "a/b/flaky-tests-ci.yaml", true},
		{"default: other files", config.DefaultQuarantineFiles(), "docs/quarantine.md", false},
		{"a glob that does not compile matches itself only", []string{"ci/[quarantine.txt"}, "ci/[quarantine.txt", true},
		{"a glob that does not compile matches nothing else", []string{"ci/[quarantine.txt"}, "ci/q.txt", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &pr.Input{QuarantineFiles: tt.globs, Files: []pr.File{{Filename: tt.path,
				AddedLines: []pr.Line{{Number: 3, Text: "TestTotals"}, {Number: 4, Text: "   "}}}}}
			quarantine.Annotate(in)
			f := in.Files[0]
			if f.QuarantineList != tt.want {
				t.Fatalf("QuarantineList = %v, want %v", f.QuarantineList, tt.want)
			}
			var want []pr.Marker
			if tt.want {
				want = []pr.Marker{{Line: 3, Text: "TestTotals", Kind: "quarantine-list"}}
			}
			if len(f.Markers) != len(want) || len(want) > 0 && f.Markers[0] != want[0] {
				t.Errorf("markers = %+v, want %+v (blank lines are no entry)", f.Markers, want)
			}
		})
	}
}

func TestAnnotateSkipMarkerInAQuarantineListTestFile(t *testing.T) {
	in := &pr.Input{QuarantineFiles: []string{"**/skips_test.go"}, Files: []pr.File{{Filename: "a/skips_test.go",
		AddedLines: []pr.Line{{Number: 1, Text: "\tt.Skip()"}, {Number: 2, Text: "TestA"}}}}}
	quarantine.Annotate(in)
	want := []pr.Marker{{Line: 1, Text: "\tt.Skip()", Kind: "go:t.Skip"}, {Line: 2, Text: "TestA", Kind: "quarantine-list"}}
	if !reflect.DeepEqual(in.Files[0].Markers, want) {
		t.Errorf("markers = %+v, want %+v", in.Files[0].Markers, want)
	}
}

func TestAnnotateNilAndEmpty(t *testing.T) {
	quarantine.Annotate(nil)
	in := &pr.Input{}
	quarantine.Annotate(in)
	if in.Files != nil {
		t.Errorf("files = %v, want nil left alone", in.Files)
	}
}

// Deleting a test, renaming it to a name that is no test, and adding lines
// to a test file that GitHub sent no patch for are marked as a whole file:
// each can quarantine a test without a skip marker to see.
func TestAnnotateWholeFileMarkers(t *testing.T) {
	in := &pr.Input{QuarantineFiles: []string{"ci/quarantine.txt"}, Files: []pr.File{
		{Filename: "pkg/a_test.go", Status: "removed", Deletions: 40},
		{Filename: "pkg/b_test.go.disabled", Status: "renamed", PreviousFilename: "pkg/b_test.go"},
		{Filename: "pkg/c_test.go", Status: "modified", Additions: 5000}, // patch left out
		{Filename: "ci/quarantine.txt", Status: "modified", Additions: 3},
		{Filename: "pkg/d.go", Status: "removed", Deletions: 10},                           // no test
		{Filename: "pkg/e.go", Status: "modified", Additions: 9000},                        // no test: not checked anyway
		{Filename: "pkg/f_test.go", Status: "renamed", PreviousFilename: "pkg/f2_test.go"}, // still a test
	}}
	quarantine.Annotate(in)
	want := map[int]string{0: quarantine.KindRemovedTest, 1: quarantine.KindRenamedTest, 2: quarantine.KindUnreadablePatch, 3: quarantine.KindUnreadablePatch}
	if fmt.Sprint(in.MarkedFiles) != "[0 1 2 3]" {
		t.Fatalf("marked files %v, want [0 1 2 3]", in.MarkedFiles)
	}
	for i, kind := range want {
		m := in.Files[i].Markers
		if len(m) != 1 || m[0].Kind != kind || m[0].Line != 0 || m[0].Text == "" {
			t.Errorf("%s: markers %+v, want one %s", in.Files[i].Filename, m, kind)
		}
	}
	if m := in.Files[1].Markers; len(m) == 1 && !strings.Contains(m[0].Text, "pkg/b_test.go renamed to pkg/b_test.go.disabled") {
		t.Errorf("rename marker %q does not name both paths", m[0].Text)
	}
}

func TestAnnotateIsIdempotent(t *testing.T) {
	in := benchInput()
	quarantine.Annotate(in)
	once := fmt.Sprintf("%+v", in.Files)
	quarantine.Annotate(in)
	if twice := fmt.Sprintf("%+v", in.Files); twice != once {
		t.Errorf("a second Annotate changed the files:\n%s\n%s", once, twice)
	}
}

func FuzzAnnotate(f *testing.F) {
	f.Add("a_test.go", "@@ -1,2 +1,3 @@\n x\n+\tt.Skip()\n-y\n+// t.Skip()\n", "**/quarantine.txt")
	f.Add("tests/test_a.py", "@@ -0,0 +1 @@\n+@pytest.mark.skip(reason=\"x\")\n", "")
	f.Add("src/a.spec.ts", "@@ -3 +3 @@\n+it.skip('a', () => { // \"\n", "src/*.ts")
	f.Add("ci/quarantine.txt", "@@ -1 +1,2 @@\n+TestA\n+\n", "{**/,}quarantine*.{txt,yml}")
	f.Add("Shop.Tests/ATests.cs", "@@ -1 +1 @@\n+[Fact(Skip = \"a)\")] /* x", "[")
	f.Fuzz(func(t *testing.T, path, patch, list string) {
		if config.Wildcards(list) > config.MaxWildcards {
			t.Skip("guard.yaml refuses this quarantine glob")
		}
		in := &pr.Input{QuarantineFiles: []string{list}, Files: []pr.File{{Filename: path, Patch: patch}}}
		quarantine.Annotate(in)
		got := in.Files[0]
		if got.Test != wantTest(path) {
			t.Fatalf("IsTest(%q) = %v, the globs say otherwise", path, got.Test)
		}
		added := pr.AddedLines(patch)
		if !got.Test && !got.QuarantineList {
			if len(got.AddedLines) != 0 || len(got.Markers) != 0 {
				t.Fatalf("a plain file kept lines %v or markers %v", got.AddedLines, got.Markers)
			}
		} else if len(got.AddedLines) != len(added) {
			t.Fatalf("kept %d added lines, the patch adds %d", len(got.AddedLines), len(added))
		}
		if marked := len(in.MarkedFiles) == 1 && in.MarkedFiles[0] == 0; marked != (len(got.Markers) > 0) {
			t.Fatalf("marked files %v, markers %v", in.MarkedFiles, got.Markers)
		}
		if got.AddedLines == nil || got.Markers == nil {
			t.Fatal("added lines or markers are nil, want empty lists")
		}
		texts := map[int]string{}
		for _, l := range added {
			texts[l.Number] = l.Text
		}
		for i, m := range got.Markers {
			if text, ok := texts[m.Line]; !ok || text != m.Text || m.Kind == "" {
				t.Fatalf("marker %+v is not an added line of the patch", m)
			}
			if i > 0 && m.Line < got.Markers[i-1].Line {
				t.Fatalf("markers out of line order: %+v", got.Markers)
			}
			if m.Kind == quarantine.KindQuarantineList && (!got.QuarantineList || strings.TrimSpace(m.Text) == "") {
				t.Fatalf("quarantine-list marker %+v in a file that is no list, or on a blank line", m)
			}
		}
		again := in.Files[0]
		again.Markers = append([]pr.Marker(nil), again.Markers...)
		in2 := &pr.Input{QuarantineFiles: in.QuarantineFiles, Files: []pr.File{again}}
		quarantine.Annotate(in2)
		if !reflect.DeepEqual(in2.Files[0], got) {
			t.Fatalf("not idempotent:\n%+v\n%+v", got, in2.Files[0])
		}
	})
}

// benchInput is 100 changed files of 20 added lines each, 10 of them test
// files (one adding a t.Skip), with the default quarantine globs plus two.
func benchInput() *pr.Input {
	in := &pr.Input{QuarantineFiles: append(config.DefaultQuarantineFiles(), ".github/quarantine.yml", "**/flaky-tests.txt")}
	for i := range 100 {
		name := fmt.Sprintf("internal/pkg%02d/file%02d.go", i/10, i)
		if i%10 == 0 {
			name = fmt.Sprintf("internal/pkg%02d/file%02d_test.go", i/10, i)
		}
		f := pr.File{Filename: name, Status: "modified", Additions: 20}
		for n := range 20 {
			text := fmt.Sprintf("\tresult%d := compute(ctx, input%d) // keep going", n, n)
			if i == 50 && n == 10 {
				text = "\tt.Skip(\"flaky on CI, see #123\")"
			}
			f.AddedLines = append(f.AddedLines, pr.Line{Number: 100 + n, Text: text})
		}
		in.Files = append(in.Files, f)
	}
	return in
}

// BenchmarkAnnotate annotates 100 files × 20 added lines; the files are
// copied before each run (the copy is included: the guard builds a fresh
// input per evaluation).
func BenchmarkAnnotate(b *testing.B) {
	base := benchInput()
	in := *base
	in.Files = make([]pr.File, len(base.Files))
	b.ReportAllocs()
	for b.Loop() {
		copy(in.Files, base.Files)
		quarantine.Annotate(&in)
	}
}

// BenchmarkAnnotateSmallPR annotates the load tool's pull request shape:
// two changed files (one a test), with the default quarantine globs plus
// two; what a typical evaluation pays beside the policy.
func BenchmarkAnnotateSmallPR(b *testing.B) {
	globs := append(config.DefaultQuarantineFiles(), ".github/quarantine.yml", "**/flaky-tests.txt")
	base := []pr.File{
		{Filename: "widget.go", Status: "modified", Additions: 3, Deletions: 1,
			Patch: "@@ -10,3 +10,5 @@ func Widget() {\n \tx := 1\n-\ty := 2\n+\ty := 3\n+\tz := 4\n+\t_ = z\n \treturn"},
		{Filename: "widget_test.go", Status: "modified", Additions: 2,
			Patch: "@@ -5,2 +5,4 @@ func TestWidget(t *testing.T) {\n \tw := Widget()\n+\tif w == nil {\n+\t\tt.Fatal(\"nil\")\n \t}"},
	}
	in := pr.Input{QuarantineFiles: globs, Files: make([]pr.File, len(base))}
	b.ReportAllocs()
	for b.Loop() {
		copy(in.Files, base)
		quarantine.Annotate(&in)
	}
}
