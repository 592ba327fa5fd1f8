-- Every update of a job or of an inbox row had to add entries to these two indexes, while only
-- the lists of dead or held jobs and of quarantined or unrouted webhooks read them: they now
-- hold just those rows. (Listing other states still works, by a scan.)
DROP INDEX jobs_business_state_idx;
CREATE INDEX jobs_listed_idx ON jobs (business_id, state, created_at DESC)
    WHERE state IN ('dead', 'held');
DROP INDEX webhook_events_state_idx;
CREATE INDEX webhook_events_listed_idx ON webhook_events (state, received_at)
    WHERE state IN ('quarantined', 'unrouted');

-- Leasing an inbox row changes only unindexed columns: with room left on its page the update
-- stays on the page and touches no index (a heap-only tuple). The same for a message's status.
ALTER TABLE webhook_events SET (fillfactor = 50);
ALTER TABLE messages SET (fillfactor = 80);
