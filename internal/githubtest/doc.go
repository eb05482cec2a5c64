// Package githubtest is an in-process fake of the GitHub REST API for tests.
//
// A Server is an httptest server that keeps state (installations,
// repositories, pull requests with their reviews, commits and files, issue
// comments, check runs, team memberships, permissions, branch protection,
// rulesets, hook deliveries, manifest codes) and answers like GitHub does:
//
//   - JSON bodies with GitHub's field names, required fields present (null
//     where GitHub sends null); errors as {"message", "documentation_url"},
//     422 with "errors".
//   - Pagination with per_page (default 30, max 100) and page, RFC 5988 Link
//     headers (first, prev, next, last); hook deliveries page by cursor.
//   - ETag on every 200 GET and 304 Not Modified for a matching If-None-Match;
//     304s do not count against the rate limit and are recorded as free calls.
//   - X-RateLimit-Limit/Remaining/Reset/Used/Resource on every response; when
//     the budget is spent, 403 with X-RateLimit-Remaining: 0 until the reset.
//     The fake keeps one budget for all credentials.
//   - Authentication: /app/* needs an RS256 app JWT (iss = app id, exp at most
//     10 minutes ahead, checked against the real clock) signed by the
//     server's app key (PrivateKeyPEM); POST /app/installations/{id}/access_tokens
//     mints ghs_ installation tokens valid for an hour; every other route
//     needs such a token, and repositories of other installations are 404.
//     POST /app-manifests/{code}/conversions needs no credentials.
//   - Served at the root and under /api/v3/ (GitHub Enterprise Server).
//
// Test controls seed state (Add*, Set*), read it (CheckRuns, Comments,
// RequestedReviewers, Redeliveries), inject faults (FailNext: any status with
// headers and body, or status 0 to break the connection; FailAfterNext for
// answers lost after GitHub acted) and latency
// (SetLatency), report every check run written (OnCheckRun, for latency
// measurements), and account for calls (Calls, FreeCalls, CallCount,
// ResetCalls; installation-token mints are calls, as on GitHub). All methods are safe for concurrent use.
//
// New ties the server to a test; Start runs one outside tests (the load
// tool), closed with Close.
//
// Schemas (LoadSchemas) checks JSON against the extract of GitHub's OpenAPI
// description kept in testdata/github/openapi-extract.json, so that tests
// can prove the fake's responses and the client's requests have GitHub's
// shape.
package githubtest
