-- A stored webhook is announced by the inbox writer itself, at most once per 10 ms while
-- webhooks keep coming and once after the last (store/src/postgres/inbox.rs), instead of by a
-- trigger on every multi-row INSERT: a NOTIFY per batch made each batch's commit about a seventh
-- slower under a flood of webhooks.
DROP TRIGGER webhook_events_notify ON webhook_events;
