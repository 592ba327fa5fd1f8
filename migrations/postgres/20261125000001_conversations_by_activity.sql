-- The conversations list is ordered by a conversation's latest activity, its last message or,
-- before it has one, its creation: COALESCE(last_message_at, created_at). The index on
-- last_message_at alone did not match that order, so every page sorted all of a business's
-- conversations. This index holds the list's own order, so a page reads only its rows.
DROP INDEX conversations_business_recent_idx;
CREATE INDEX conversations_business_activity_idx
    ON conversations (business_id, (COALESCE(last_message_at, created_at)) DESC, id DESC);
