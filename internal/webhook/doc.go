// Package webhook is the guard's HTTP intake for GitHub webhooks and the
// dispatcher that hands accepted deliveries to workers.
//
// Guarantees:
//   - A delivery is answered 2xx only after the Inbox has stored it durably;
//     a crash after the answer loses nothing, because the inbox is replayed
//     into the dispatcher on start.
//   - Bad input changes nothing: a missing or wrong X-Hub-Signature-256 is
//     401, a body over MaxBody is 413, malformed JSON or missing GitHub
//     headers are 400, and none of them reaches the inbox.
//   - Events the guard does not use are answered 200 and not stored.
//   - Deliveries with the same ordering key (one pull request, one head SHA)
//     are processed one at a time, in acceptance order; different keys run
//     in parallel on a bounded number of workers.
//
// The package knows nothing of SQLite or of GitHub's API: the inbox and the
// processing are interfaces supplied by the caller.
package webhook
