-- Schema version 3: what a retry needs.
--
-- A delivery whose processing failed is tried again with a growing pause for
-- a day after its receipt (Store.RetryFailed). This index finds the failed
-- ones without reading the inbox; a failed delivery's done_at is when its
-- last attempt failed.
CREATE INDEX deliveries_failed ON deliveries (received_at) WHERE state = 'failed';

-- A freeze remembers what declared it (a /guard freeze comment: comment:ID),
-- so that the command processed again declares no second freeze.
ALTER TABLE freezes ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX freezes_source ON freezes (source) WHERE source <> '';
