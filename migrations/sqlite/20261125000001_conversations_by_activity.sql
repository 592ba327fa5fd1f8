-- As on PostgreSQL: the conversations list's own order, so a page reads only its rows.
DROP INDEX conversations_business_recent_idx;
CREATE INDEX conversations_business_activity_idx
    ON conversations (business_id, COALESCE(last_message_at, created_at) DESC, id DESC);
