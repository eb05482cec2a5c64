-- Schema version 4: an agent's last push to a tracked pull request.
--
-- A PR is an agent's when an agent pushed to it since the last human
-- approval (SPEC §1). The guard sees a push by an agent only in its
-- synchronize event, so it keeps when and which head: a human approval
-- submitted after it, of that head or a commit that includes it, clears it.
-- Before, a flag said an agent had pushed, and never cleared; when and
-- what are unknown, so the last event the guard saw of the PR stands for
-- the time, and no head: only an approval of the PR's head after that
-- clears it.
ALTER TABLE tracked_prs ADD COLUMN agent_pushed_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tracked_prs ADD COLUMN agent_pushed_head TEXT NOT NULL DEFAULT '';
UPDATE tracked_prs SET agent_pushed_at = updated_at WHERE agent = 1;

-- The last head whose pusher the guard knows (its synchronize or opened
-- processed, or the head it first saw): a head other than it was pushed by
-- someone the guard has not learned, and counts as an agent's push until
-- a human approves it. The tracked head stands for it before.
ALTER TABLE tracked_prs ADD COLUMN known_head TEXT NOT NULL DEFAULT '';
UPDATE tracked_prs SET known_head = head_sha;
