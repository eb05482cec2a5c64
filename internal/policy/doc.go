// Package policy compiles Merge Guard's Rego policies and evaluates them.
//
// Contract:
//   - Compile reads the non-test *.rego files of a file system (Rego v1,
//     package guard), refuses a set that does not parse or compile with an
//     error naming file:line:col and the reason, and prepares the query
//     data.guard.decision once. Non-deterministic builtins (time.now_ns,
//     http.send, rand.intn, …) are not available to policies, so a decision
//     depends only on its input.
//   - Compile also has OPA plan the query (its intermediate representation,
//     package ir) for the interpreter in vm.go, which Decide then uses: it
//     runs the plan over a lazily converted input (input.go) with OPA's
//     built-in functions (a few of them, the most called, run natively with
//     OPA's meaning). A plan the interpreter does not run (`with`,
//     dynamic data references, object merges, walk) leaves the engine on OPA's topdown
//     evaluator, and so does one that decides any of 64 sample inputs
//     (selfcheck.go) other than topdown does; Evaluator says which. Both
//     give the same decisions (vm_test.go).
//   - Decide evaluates one pr.Input that quarantine.Annotate has annotated.
//     It returns an error, never a guess, when a changed file was not
//     annotated, or the policies yield no decision or one of the wrong shape:
//     the caller fails closed. An Engine is immutable and safe for concurrent
//     use.
//   - Test runs the *_test.rego unit tests with OPA's tester.
//   - A Reloader serves the last engine that compiled and swaps in a new one
//     only when the policy directory changed and compiles.
package policy
