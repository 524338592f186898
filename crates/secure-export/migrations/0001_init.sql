-- secure-export engine schema. Times are Unix microseconds (UTC).

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    connection      TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    alert_id        TEXT    NOT NULL,
    condition       TEXT    NOT NULL,
    event_at        INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    raw_body        BLOB    NOT NULL,
    UNIQUE (connection, idempotency_key)
);
CREATE INDEX deliveries_alert ON deliveries (alert_id);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: last_job_id relies on it
    connection   TEXT    NOT NULL,
    kind         TEXT    NOT NULL,          -- 'event' | 'auto_close'
    delivery_id  INTEGER,
    alert_id     TEXT    NOT NULL,
    order_key    TEXT    NOT NULL,
    target_key   TEXT,                      -- the one correlation key of an auto_close job
    facts        TEXT    NOT NULL,          -- AlertFacts as JSON
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    lease_token  TEXT,
    lease_until  INTEGER,
    last_error   TEXT
);
CREATE INDEX jobs_order ON jobs (connection, order_key, id);

CREATE TABLE correlations (
    connection       TEXT    NOT NULL,
    key              TEXT    NOT NULL,
    order_key        TEXT    NOT NULL,
    alert_id         TEXT    NOT NULL,
    state            TEXT    NOT NULL,      -- 'open' | 'resolved' | 'closed' | 'tombstone'
    work_item_id     TEXT,
    work_item_number TEXT,
    work_item_url    TEXT,
    opened_at        INTEGER,
    last_fired_at    INTEGER,
    last_resolved_at INTEGER,
    last_event_at    INTEGER,
    fired_count      INTEGER NOT NULL DEFAULT 0,
    auto_close_at    INTEGER,
    last_job_id      INTEGER,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (connection, key)
);
CREATE INDEX correlations_auto_close ON correlations (auto_close_at) WHERE auto_close_at IS NOT NULL;

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    connection  TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    delivery_id INTEGER,
    alert_id    TEXT    NOT NULL,
    order_key   TEXT    NOT NULL,
    target_key  TEXT,
    facts       TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    raw_body    BLOB,
    created_at  INTEGER NOT NULL,
    dead_at     INTEGER NOT NULL,
    replayed_at INTEGER
);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    connection  TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    raw_body    BLOB    NOT NULL,
    received_at INTEGER NOT NULL,
    replayed_at INTEGER
);

CREATE TABLE audit (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    connection      TEXT    NOT NULL,
    alert_id        TEXT    NOT NULL,
    correlation_key TEXT,
    action          TEXT    NOT NULL,
    work_item       TEXT,
    detail          TEXT    NOT NULL
);
CREATE INDEX audit_alert ON audit (alert_id);
