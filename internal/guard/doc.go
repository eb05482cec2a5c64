// Package guard turns webhook deliveries into decisions: it gathers a pull
// request's facts, builds the policy input, asks the policy engine, publishes
// the merge-guard check run and hands the audit records back to be stored
// with the delivery. One file per webhook event, each a switch on the action.
//
// Contracts:
//   - Evaluations of one pull request never overlap (a per-PR lock), and a
//     decision for a SHA that is no longer the PR's head is recorded but not
//     published.
//   - Process returns nil only after the delivery's records are stored and
//     the delivery is marked done in the same transaction; a crash before
//     that repeats the work, and every GitHub write is idempotent (check runs
//     found by name and SHA, comments by a hidden marker).
//   - Fail closed: when the policy or GitHub fails, the check run says
//     failure with the reason; nothing uncertain is reported as success.
package guard
