-- Schema version 4: when an agent last pushed to a tracked pull request.
--
-- A PR is an agent's when an agent pushed to it since the last human
-- approval (SPEC §1). The guard sees a push by an agent only in its
-- synchronize event, so it keeps the time; an approval submitted after it
-- (on a commit still in the PR) clears it. Before, a flag said an agent
-- had pushed, and never cleared; when is unknown, so the last event the
-- guard saw of the PR stands for it: only an approval after that clears it.
ALTER TABLE tracked_prs ADD COLUMN agent_pushed_at INTEGER NOT NULL DEFAULT 0;
UPDATE tracked_prs SET agent_pushed_at = updated_at WHERE agent = 1;
