-- As on PostgreSQL: the listing indexes hold only the states that are listed.
DROP INDEX jobs_business_state_idx;
CREATE INDEX jobs_listed_idx ON jobs (business_id, state, created_at DESC)
    WHERE state IN ('dead', 'held');
DROP INDEX webhook_events_state_idx;
CREATE INDEX webhook_events_listed_idx ON webhook_events (state, received_at)
    WHERE state IN ('quarantined', 'unrouted');
