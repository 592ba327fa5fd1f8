-- Switchboard schema, PostgreSQL. Table names are part of the contract (DESIGN §5).

CREATE TABLE businesses (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- API keys are stored as SHA-256 hashes; the key itself is shown once.
CREATE TABLE api_keys (
    key_hash     BYTEA PRIMARY KEY,
    business_id  UUID NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_keys_business_idx ON api_keys (business_id);

CREATE TABLE channel_integrations (
    id                   UUID PRIMARY KEY,
    business_id          UUID NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    channel              TEXT NOT NULL,
    channel_name         TEXT,
    -- The provider account routed by: WhatsApp phone number id, Telegram bot id.
    account_id           TEXT,
    -- Its parent: WhatsApp Business Account id.
    parent_account_id    TEXT,
    -- Readable aliases of the generic columns, per channel (DESIGN §5 names).
    phone_number_id      TEXT GENERATED ALWAYS AS (CASE WHEN channel = 'whatsapp' THEN account_id END) STORED,
    waba_id              TEXT GENERATED ALWAYS AS (CASE WHEN channel = 'whatsapp' THEN parent_account_id END) STORED,
    bot_id               TEXT GENERATED ALWAYS AS (CASE WHEN channel = 'telegram' THEN account_id END) STORED,
    -- Secrets only, AES-256-GCM encrypted; NULL once disconnected.
    credentials          BYTEA,
    webhook_secret_hash  BYTEA,
    is_active            BOOLEAN NOT NULL DEFAULT FALSE,
    state                TEXT NOT NULL DEFAULT 'not_connected',
    state_reason         TEXT,
    details              JSONB NOT NULL DEFAULT '{}'::jsonb,
    token_expires_at     TIMESTAMPTZ,
    last_webhook_at      TIMESTAMPTZ,
    last_error           TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- One integration per (business, channel): reconnecting updates it, so history is kept.
CREATE UNIQUE INDEX channel_integrations_business_channel_key
    ON channel_integrations (business_id, channel);
-- A provider account belongs to at most one active integration.
CREATE UNIQUE INDEX channel_integrations_active_account_key
    ON channel_integrations (channel, account_id) WHERE is_active;
CREATE UNIQUE INDEX channel_integrations_webhook_secret_key
    ON channel_integrations (channel, webhook_secret_hash) WHERE webhook_secret_hash IS NOT NULL;
CREATE INDEX channel_integrations_token_expiry_idx
    ON channel_integrations (token_expires_at) WHERE is_active;

-- What providers said about an account: bot blocked, template status, quality, errors.
CREATE TABLE integration_events (
    id              UUID PRIMARY KEY,
    integration_id  UUID NOT NULL REFERENCES channel_integrations (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    summary         TEXT NOT NULL,
    payload         JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX integration_events_recent_idx ON integration_events (integration_id, id DESC);

CREATE TABLE oauth_states (
    state_hash    BYTEA PRIMARY KEY,
    business_id   UUID NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    channel       TEXT NOT NULL,
    session_hash  BYTEA NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX oauth_states_expiry_idx ON oauth_states (expires_at);

-- An account choice waiting for the business (several phone numbers after OAuth).
CREATE TABLE pending_choices (
    business_id  UUID NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    channel      TEXT NOT NULL,
    pending      BYTEA NOT NULL,
    options      JSONB NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, channel)
);

-- The durable inbox: raw webhook bodies exactly as received.
CREATE TABLE webhook_events (
    id              UUID PRIMARY KEY,
    channel         TEXT NOT NULL,
    integration_id  UUID REFERENCES channel_integrations (id) ON DELETE SET NULL,
    body            BYTEA NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    locked_until    TIMESTAMPTZ,
    error           TEXT,
    processed_at    TIMESTAMPTZ
);
CREATE INDEX webhook_events_pending_idx ON webhook_events (received_at) WHERE state = 'pending';
CREATE INDEX webhook_events_state_idx ON webhook_events (state, received_at);

CREATE TABLE conversations (
    id                 UUID PRIMARY KEY,
    business_id        UUID NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    integration_id     UUID NOT NULL REFERENCES channel_integrations (id) ON DELETE CASCADE,
    channel_type       TEXT NOT NULL,
    external_chat_id   TEXT NOT NULL,
    contact_name       TEXT,
    last_message_at    TIMESTAMPTZ,
    window_expires_at  TIMESTAMPTZ,
    unreachable        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX conversations_chat_key ON conversations (integration_id, external_chat_id);
CREATE INDEX conversations_business_recent_idx ON conversations (business_id, last_message_at DESC, id DESC);

CREATE TABLE messages (
    id                   UUID PRIMARY KEY,
    conversation_id      UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    integration_id       UUID NOT NULL REFERENCES channel_integrations (id) ON DELETE CASCADE,
    direction            TEXT NOT NULL,
    provider_message_id  TEXT,
    type                 TEXT NOT NULL,
    text                 TEXT,
    payload              JSONB NOT NULL DEFAULT '{}'::jsonb,
    status               TEXT NOT NULL,
    status_at            TIMESTAMPTZ,
    error_code           TEXT,
    error_reason         TEXT,
    provider_timestamp   TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A provider message id is stored once per integration (NULLs, for queued sends, are distinct).
CREATE UNIQUE INDEX messages_provider_id_key ON messages (integration_id, provider_message_id);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id DESC);

-- The jobs / outbox table, claimed with FOR UPDATE SKIP LOCKED.
CREATE TABLE jobs (
    id              UUID PRIMARY KEY,
    kind            TEXT NOT NULL,
    business_id     UUID NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    integration_id  UUID REFERENCES channel_integrations (id) ON DELETE CASCADE,
    payload         JSONB NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    run_at          TIMESTAMPTZ NOT NULL,
    locked_by       TEXT,
    locked_until    TIMESTAMPTZ,
    last_error      TEXT,
    dedupe_key      TEXT,
    -- Jobs sharing a queue key run one at a time, in order (one conversation's replies).
    queue_key       TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX jobs_dedupe_key ON jobs (dedupe_key);
CREATE INDEX jobs_due_idx ON jobs (run_at) WHERE state IN ('pending', 'running');
CREATE INDEX jobs_business_state_idx ON jobs (business_id, state, created_at DESC);
CREATE INDEX jobs_held_idx ON jobs (integration_id) WHERE state = 'held';
CREATE INDEX jobs_queue_idx ON jobs (queue_key, id) WHERE queue_key IS NOT NULL AND state IN ('pending', 'running', 'held');

-- Wake-ups for workers on every instance: a stored webhook, a job that became pending.
-- Notifications with the same channel and payload are merged within a transaction.
CREATE FUNCTION switchboard_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_events_notify AFTER INSERT ON webhook_events
    FOR EACH STATEMENT EXECUTE FUNCTION switchboard_notify('switchboard_inbox');
CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF state ON jobs
    FOR EACH ROW WHEN (NEW.state = 'pending') EXECUTE FUNCTION switchboard_notify('switchboard_jobs');
