-- Schema version 1 of the Merge Guard store.

-- Inbox: durable webhook deliveries.
CREATE TABLE deliveries (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	id          TEXT    NOT NULL UNIQUE,
	event       TEXT    NOT NULL,
	action      TEXT    NOT NULL DEFAULT '',
	key         TEXT    NOT NULL DEFAULT '',
	payload     BLOB,
	encoding    TEXT    NOT NULL DEFAULT '' CHECK (encoding IN ('', 'deflate')), -- of payload
	received_at INTEGER NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	state       TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
	last_error  TEXT    NOT NULL DEFAULT '',
	done_at     INTEGER
);
CREATE INDEX deliveries_pending ON deliveries (seq) WHERE state = 'pending';

-- Trail: append-only and hash-chained. seq is assigned as the predecessor's
-- seq + 1; time is Unix nanoseconds (UTC); rules are ';'-separated.
CREATE TABLE records (
	seq             INTEGER PRIMARY KEY,
	id              TEXT    NOT NULL UNIQUE,
	time            INTEGER NOT NULL,
	kind            TEXT    NOT NULL,
	repository      TEXT    NOT NULL DEFAULT '',
	pull_request    INTEGER NOT NULL DEFAULT 0,
	head_sha        TEXT    NOT NULL DEFAULT '',
	actor           TEXT    NOT NULL DEFAULT '',
	agent           INTEGER NOT NULL DEFAULT 0,
	outcome         TEXT    NOT NULL DEFAULT '',
	rules           TEXT    NOT NULL DEFAULT '',
	reason          TEXT    NOT NULL DEFAULT '',
	delivery_id     TEXT    NOT NULL DEFAULT '',
	policy_revision TEXT    NOT NULL DEFAULT '',
	installation    INTEGER NOT NULL DEFAULT 0,
	check_run_id    INTEGER NOT NULL DEFAULT 0,
	base_ref        TEXT    NOT NULL DEFAULT '',
	details         BLOB,
	prev_hash       TEXT    NOT NULL,
	hash            TEXT    NOT NULL
);
CREATE INDEX records_time ON records (time);
CREATE INDEX records_pr ON records (repository, pull_request) WHERE pull_request <> 0;
CREATE TRIGGER records_no_update BEFORE UPDATE ON records
BEGIN
	SELECT RAISE(ABORT, 'audit records are append-only');
END;
CREATE TRIGGER records_no_delete BEFORE DELETE ON records
BEGIN
	SELECT RAISE(ABORT, 'audit records are append-only');
END;

-- Manual (incident) freezes. Times are Unix nanoseconds; NULL: open-ended.
CREATE TABLE freezes (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	scope      TEXT    NOT NULL CHECK (scope IN ('repo', 'org')),
	target     TEXT    NOT NULL,
	branch     TEXT    NOT NULL DEFAULT '',
	reason     TEXT    NOT NULL DEFAULT '',
	started_by TEXT    NOT NULL DEFAULT '',
	from_ns    INTEGER NOT NULL,
	until_ns   INTEGER,
	ended_at   INTEGER,
	ended_by   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX freezes_open ON freezes (scope, target) WHERE ended_at IS NULL;

-- Small counters: freeze_version changes whenever a freeze starts or ends.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('freeze_version', 0);

-- Check runs the guard created, by repository and head SHA, and the PRs they
-- belong to.
CREATE TABLE check_runs (
	repo         TEXT    NOT NULL,
	sha          TEXT    NOT NULL,
	check_run_id INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	PRIMARY KEY (repo, sha)
) WITHOUT ROWID;
CREATE TABLE check_run_prs (
	repo   TEXT    NOT NULL,
	sha    TEXT    NOT NULL,
	number INTEGER NOT NULL,
	PRIMARY KEY (repo, sha, number)
) WITHOUT ROWID;

-- Idempotency: comment ids used by /guard commands, and generic keys.
CREATE TABLE used_comments (
	comment_id INTEGER PRIMARY KEY,
	used_at    INTEGER NOT NULL
);
CREATE TABLE once_keys (
	key     TEXT PRIMARY KEY,
	done_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Approvals and overrides granted by humans. rules and freezes are JSON arrays.
CREATE TABLE overrides (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	repo     TEXT    NOT NULL,
	number   INTEGER NOT NULL,
	kind     TEXT    NOT NULL,
	actor    TEXT    NOT NULL,
	reason   TEXT    NOT NULL DEFAULT '',
	head_sha TEXT    NOT NULL DEFAULT '',
	base_ref TEXT    NOT NULL DEFAULT '',
	rules    TEXT    NOT NULL DEFAULT '[]',
	freezes  TEXT    NOT NULL DEFAULT '[]',
	at       INTEGER NOT NULL
);
CREATE INDEX overrides_pr ON overrides (repo, number);

-- Pull requests the guard has evaluated.
CREATE TABLE tracked_prs (
	repo           TEXT    NOT NULL,
	number         INTEGER NOT NULL,
	installation   INTEGER NOT NULL DEFAULT 0,
	head_sha       TEXT    NOT NULL DEFAULT '',
	base_ref       TEXT    NOT NULL DEFAULT '',
	author         TEXT    NOT NULL DEFAULT '',
	agent          INTEGER NOT NULL DEFAULT 0,
	open           INTEGER NOT NULL DEFAULT 0,
	outcome        TEXT    NOT NULL DEFAULT '',
	time_dependent INTEGER NOT NULL DEFAULT 0,
	check_run_id   INTEGER NOT NULL DEFAULT 0,
	updated_at     INTEGER NOT NULL,
	PRIMARY KEY (repo, number)
) WITHOUT ROWID;
CREATE INDEX tracked_prs_sha ON tracked_prs (repo, head_sha);
CREATE INDEX tracked_prs_open_agent ON tracked_prs (repo, number) WHERE open = 1 AND agent = 1;

-- Key/value state for schedulers.
CREATE TABLE state (
	key        TEXT PRIMARY KEY,
	value      TEXT    NOT NULL,
	updated_at INTEGER NOT NULL
) WITHOUT ROWID;
