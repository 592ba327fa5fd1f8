-- Switchboard schema, SQLite. Same tables and rules as the PostgreSQL schema.
-- Representation: ids are 16-byte UUID blobs; timestamps are INTEGER microseconds since the
-- Unix epoch (so comparisons and ordering are numeric); JSON is TEXT; booleans are INTEGER.

CREATE TABLE businesses (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    key_hash     BLOB PRIMARY KEY,
    business_id  BLOB NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_business_idx ON api_keys (business_id);

CREATE TABLE channel_integrations (
    id                   BLOB PRIMARY KEY,
    business_id          BLOB NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    channel              TEXT NOT NULL,
    channel_name         TEXT,
    account_id           TEXT,
    parent_account_id    TEXT,
    phone_number_id      TEXT GENERATED ALWAYS AS (CASE WHEN channel = 'whatsapp' THEN account_id END) VIRTUAL,
    waba_id              TEXT GENERATED ALWAYS AS (CASE WHEN channel = 'whatsapp' THEN parent_account_id END) VIRTUAL,
    bot_id               TEXT GENERATED ALWAYS AS (CASE WHEN channel = 'telegram' THEN account_id END) VIRTUAL,
    credentials          BLOB,
    webhook_secret_hash  BLOB,
    is_active            INTEGER NOT NULL DEFAULT 0,
    state                TEXT NOT NULL DEFAULT 'not_connected',
    state_reason         TEXT,
    details              TEXT NOT NULL DEFAULT '{}',
    token_expires_at     INTEGER,
    last_webhook_at      INTEGER,
    last_error           TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE UNIQUE INDEX channel_integrations_business_channel_key
    ON channel_integrations (business_id, channel);
CREATE UNIQUE INDEX channel_integrations_active_account_key
    ON channel_integrations (channel, account_id) WHERE is_active;
CREATE UNIQUE INDEX channel_integrations_webhook_secret_key
    ON channel_integrations (channel, webhook_secret_hash) WHERE webhook_secret_hash IS NOT NULL;
CREATE INDEX channel_integrations_token_expiry_idx
    ON channel_integrations (token_expires_at) WHERE is_active;

-- What providers said about an account: bot blocked, template status, quality, errors.
CREATE TABLE integration_events (
    id              BLOB PRIMARY KEY,
    integration_id  BLOB NOT NULL REFERENCES channel_integrations (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    summary         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX integration_events_recent_idx ON integration_events (integration_id, id DESC);

CREATE TABLE oauth_states (
    state_hash    BLOB PRIMARY KEY,
    business_id   BLOB NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    channel       TEXT NOT NULL,
    session_hash  BLOB NOT NULL,
    expires_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX oauth_states_expiry_idx ON oauth_states (expires_at);

CREATE TABLE pending_choices (
    business_id  BLOB NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    channel      TEXT NOT NULL,
    pending      BLOB NOT NULL,
    options      TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (business_id, channel)
);

CREATE TABLE webhook_events (
    id              BLOB PRIMARY KEY,
    channel         TEXT NOT NULL,
    integration_id  BLOB REFERENCES channel_integrations (id) ON DELETE SET NULL,
    body            BLOB NOT NULL,
    received_at     INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER,
    error           TEXT,
    processed_at    INTEGER
);
CREATE INDEX webhook_events_pending_idx ON webhook_events (received_at) WHERE state = 'pending';
CREATE INDEX webhook_events_state_idx ON webhook_events (state, received_at);

CREATE TABLE conversations (
    id                 BLOB PRIMARY KEY,
    business_id        BLOB NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    integration_id     BLOB NOT NULL REFERENCES channel_integrations (id) ON DELETE CASCADE,
    channel_type       TEXT NOT NULL,
    external_chat_id   TEXT NOT NULL,
    contact_name       TEXT,
    last_message_at    INTEGER,
    window_expires_at  INTEGER,
    unreachable        INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE UNIQUE INDEX conversations_chat_key ON conversations (integration_id, external_chat_id);
CREATE INDEX conversations_business_recent_idx ON conversations (business_id, last_message_at DESC, id DESC);

CREATE TABLE messages (
    id                   BLOB PRIMARY KEY,
    conversation_id      BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    integration_id       BLOB NOT NULL REFERENCES channel_integrations (id) ON DELETE CASCADE,
    direction            TEXT NOT NULL,
    provider_message_id  TEXT,
    type                 TEXT NOT NULL,
    text                 TEXT,
    payload              TEXT NOT NULL DEFAULT '{}',
    status               TEXT NOT NULL,
    status_at            INTEGER,
    error_code           TEXT,
    error_reason         TEXT,
    provider_timestamp   INTEGER,
    created_at           INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_provider_id_key ON messages (integration_id, provider_message_id);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id DESC);

CREATE TABLE jobs (
    id              BLOB PRIMARY KEY,
    kind            TEXT NOT NULL,
    business_id     BLOB NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    integration_id  BLOB REFERENCES channel_integrations (id) ON DELETE CASCADE,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    run_at          INTEGER NOT NULL,
    locked_by       TEXT,
    locked_until    INTEGER,
    last_error      TEXT,
    dedupe_key      TEXT,
    -- Jobs sharing a queue key run one at a time, in order (one conversation's replies).
    queue_key       TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_dedupe_key ON jobs (dedupe_key);
CREATE INDEX jobs_due_idx ON jobs (run_at) WHERE state IN ('pending', 'running');
CREATE INDEX jobs_business_state_idx ON jobs (business_id, state, created_at DESC);
CREATE INDEX jobs_held_idx ON jobs (integration_id) WHERE state = 'held';
CREATE INDEX jobs_queue_idx ON jobs (queue_key, id) WHERE queue_key IS NOT NULL AND state IN ('pending', 'running', 'held');
