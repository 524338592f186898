-- secure-export engine schema for PostgreSQL (the same tables as the SQLite migrations).
-- Tables are created unqualified: they land in the first schema of the search_path, which
-- `PostgresOptions::schema` sets. See docs/adr/0006-postgres-store.md for the claim design.

CREATE TABLE deliveries (
    id              BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection      TEXT        NOT NULL,
    idempotency_key TEXT        NOT NULL,
    alert_id        TEXT        NOT NULL,
    condition       TEXT        NOT NULL,
    event_at        TIMESTAMPTZ NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    raw_body        BYTEA       NOT NULL,
    CONSTRAINT deliveries_idempotency UNIQUE (connection, idempotency_key)
);
CREATE INDEX deliveries_alert ON deliveries (alert_id);
CREATE INDEX deliveries_received ON deliveries (received_at);

-- Job ids come from an identity sequence with CACHE 1 (the default): ids are handed out in
-- call order across sessions and never reused. Per order key, ids are also allocated and
-- committed in the same order (accept takes a transaction advisory lock on the key first), so
-- "the job of a key with the lowest id" is a stable head that no later commit can undercut.
CREATE TABLE jobs (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
    connection   TEXT        NOT NULL,
    kind         TEXT        NOT NULL,      -- 'event' | 'auto_close'
    delivery_id  BIGINT,
    alert_id     TEXT        NOT NULL,
    order_key    TEXT        NOT NULL,
    target_key   TEXT,                      -- the one correlation key of an auto_close job
    facts        TEXT        NOT NULL,      -- AlertFacts as JSON
    attempts     BIGINT      NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL,
    available_at TIMESTAMPTZ NOT NULL,
    lease_token  TEXT,
    lease_until  TIMESTAMPTZ,
    last_error   TEXT
);
CREATE INDEX jobs_order ON jobs (connection, order_key, id);
CREATE INDEX jobs_claim ON jobs (connection, id);
CREATE INDEX jobs_delivery ON jobs (delivery_id) WHERE delivery_id IS NOT NULL;

CREATE TABLE correlations (
    connection       TEXT        NOT NULL,
    key              TEXT        NOT NULL,
    order_key        TEXT        NOT NULL,
    alert_id         TEXT        NOT NULL,
    state            TEXT        NOT NULL,  -- 'open' | 'resolved' | 'closed' | 'tombstone'
    work_item_id     TEXT,
    work_item_number TEXT,
    work_item_url    TEXT,
    opened_at        TIMESTAMPTZ,
    last_fired_at    TIMESTAMPTZ,
    last_resolved_at TIMESTAMPTZ,
    last_event_at    TIMESTAMPTZ,
    fired_count      BIGINT      NOT NULL DEFAULT 0,
    auto_close_at    TIMESTAMPTZ,
    last_job_id      BIGINT,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connection, key)
);
CREATE INDEX correlations_auto_close ON correlations (auto_close_at) WHERE auto_close_at IS NOT NULL;

CREATE TABLE dead_letters (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection  TEXT        NOT NULL,
    kind        TEXT        NOT NULL,
    delivery_id BIGINT,
    alert_id    TEXT        NOT NULL,
    order_key   TEXT        NOT NULL,
    target_key  TEXT,
    facts       TEXT        NOT NULL,
    attempts    BIGINT      NOT NULL,
    reason      TEXT        NOT NULL,
    raw_body    BYTEA,
    created_at  TIMESTAMPTZ NOT NULL,
    dead_at     TIMESTAMPTZ NOT NULL,
    replayed_at TIMESTAMPTZ
);

CREATE TABLE quarantine (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection  TEXT        NOT NULL,
    reason      TEXT        NOT NULL,
    raw_body    BYTEA       NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    replayed_at TIMESTAMPTZ
);

CREATE TABLE audit (
    id              BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              TIMESTAMPTZ NOT NULL,
    connection      TEXT        NOT NULL,
    alert_id        TEXT        NOT NULL,
    correlation_key TEXT,
    action          TEXT        NOT NULL,
    work_item       TEXT,
    detail          TEXT        NOT NULL
);
CREATE INDEX audit_alert ON audit (alert_id);
CREATE INDEX audit_at ON audit (at);
