package doctor

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"strings"

	"github.com/mergeguard/guard/internal/policy"
)

// Policies is what the doctor found of the policy set the guard would load.
type Policies struct {
	// Source is the --policy-dir directory, or "embedded".
	Source string `json:"source"`
	// Revision is the set's revision (policy.Engine.Revision) when it
	// compiles.
	Revision string `json:"revision,omitempty"`
	// Tested is whether the set's Rego tests were run (only for a
	// --policy-dir set); Passed and Failed count them.
	Tested   bool      `json:"tested"`
	Passed   int       `json:"tests_passed"`
	Failed   int       `json:"tests_failed"`
	Findings []Finding `json:"findings"`
}

// checkPolicies compiles fsys as guard serve does and, for a user set (dir
// not ""), runs its Rego tests as guard policy test does.
func checkPolicies(ctx context.Context, fsys fs.FS, dir string) *Policies {
	p := &Policies{Source: dir}
	what := "the policies in " + dir
	if dir == "" {
		p.Source, what = "embedded", "the embedded policies"
	}
	eng, err := policy.Compile(ctx, fsys)
	if err != nil {
		p.Findings = append(p.Findings, Finding{
			Status:  StatusProblem,
			Message: what + " do not compile (guard serve refuses to start with them): " + oneLine(err),
			Fix:     "fix them at the file:line named, then run guard policy test " + dir,
		})
		return p
	}
	p.Revision = eng.Revision()
	if dir == "" {
		p.Findings = append(p.Findings, Finding{Status: StatusOK,
			Message: fmt.Sprintf("policies: %s compile, revision %s (their tests run with guard policy test)", what, p.Revision)})
		return p
	}
	var out bytes.Buffer
	passed, failed, err := policy.Test(ctx, fsys, &out, false)
	p.Tested, p.Passed, p.Failed = true, passed, failed
	switch {
	case err != nil:
		p.Findings = append(p.Findings, Finding{
			Status:  StatusProblem,
			Message: fmt.Sprintf("%s compile, revision %s, but their tests do not: %s", what, p.Revision, oneLine(err)),
			Fix:     "fix them at the file:line named, then run guard policy test " + dir,
		})
	case failed > 0:
		p.Findings = append(p.Findings, Finding{
			Status: StatusProblem,
			Message: fmt.Sprintf("%s compile, revision %s, but %d of %d tests fail: %s",
				what, p.Revision, failed, passed+failed, strings.Join(policy.FailedTests(out.String()), "; ")),
			Fix: "run guard policy test -v " + dir + " to see why, and fix the policies or the tests",
		})
	case passed == 0:
		p.Findings = append(p.Findings, Finding{
			Status:  StatusWarning,
			Message: fmt.Sprintf("policies: %s compile, revision %s, but have no tests (rules named test_* in *_test.rego files)", what, p.Revision),
			Fix:     "add tests beside the policies, as policies/*_test.rego in the repository do",
		})
	default:
		p.Findings = append(p.Findings, Finding{Status: StatusOK,
			Message: fmt.Sprintf("policies: %s compile, revision %s, %d tests passed", what, p.Revision, passed)})
	}
	return p
}
