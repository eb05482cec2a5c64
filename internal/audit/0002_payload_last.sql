-- Schema version 2: the inbox stores payloads compressed with S2 as well as
-- deflate, and keeps the payload in the last column, so that reading a
-- delivery's state, key or times does not walk the payload's overflow pages.
-- SQLite cannot change a CHECK constraint or reorder columns in place, so the
-- table is rebuilt; its AUTOINCREMENT counter carries over (a pruned Seq is
-- never handed out again).

CREATE TABLE deliveries_v2 (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	id          TEXT    NOT NULL UNIQUE,
	event       TEXT    NOT NULL,
	action      TEXT    NOT NULL DEFAULT '',
	key         TEXT    NOT NULL DEFAULT '',
	encoding    TEXT    NOT NULL DEFAULT '' CHECK (encoding IN ('', 'deflate', 's2')), -- of payload
	received_at INTEGER NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	state       TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
	last_error  TEXT    NOT NULL DEFAULT '',
	done_at     INTEGER,
	payload     BLOB
);

INSERT INTO deliveries_v2 (seq, id, event, action, key, encoding, received_at, attempts, state, last_error, done_at, payload)
	SELECT seq, id, event, action, key, encoding, received_at, attempts, state, last_error, done_at, payload
	FROM deliveries ORDER BY seq;

INSERT INTO sqlite_sequence (name, seq)
	SELECT 'deliveries_v2', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'deliveries_v2');
UPDATE sqlite_sequence
	SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'), 0))
	WHERE name = 'deliveries_v2';

DROP TABLE deliveries;
ALTER TABLE deliveries_v2 RENAME TO deliveries;
CREATE INDEX deliveries_pending ON deliveries (seq) WHERE state = 'pending';
