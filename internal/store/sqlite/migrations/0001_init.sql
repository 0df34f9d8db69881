-- Initial schema. Times are UTC text with nine fractional digits
-- (2006-01-02T15:04:05.000000000Z), so they sort as text and round-trip to
-- the nanosecond. JSON columns hold TEXT.

CREATE TABLE revisions (
    pipeline   TEXT    NOT NULL,
    number     INTEGER NOT NULL,
    digest     TEXT    NOT NULL,
    spec       TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    PRIMARY KEY (pipeline, number)
) STRICT;

CREATE TABLE releases (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    pipeline   TEXT NOT NULL,
    version    TEXT NOT NULL,
    artifacts  TEXT NOT NULL,
    git_commit TEXT NOT NULL,
    source     TEXT NOT NULL,
    build_url  TEXT NOT NULL,
    labels     TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (pipeline, version)
) STRICT;

CREATE INDEX releases_by_creation ON releases (pipeline, created_at, seq);

CREATE TABLE promotions (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    pipeline         TEXT    NOT NULL,
    environment      TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    release_id       TEXT    NOT NULL,
    release_version  TEXT    NOT NULL,
    revision         INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    reason           TEXT    NOT NULL,
    actor            TEXT    NOT NULL,
    forced           INTEGER NOT NULL,
    rollback_id      TEXT    NOT NULL,
    rollback_version TEXT    NOT NULL,
    cursor_phase     TEXT    NOT NULL,
    cursor_index     INTEGER NOT NULL,
    cursor_attempt   INTEGER NOT NULL,
    cursor_failures  INTEGER NOT NULL,
    wake_at          TEXT,
    message          TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    owner            TEXT    NOT NULL,
    lease_until      TEXT    NOT NULL,
    version          INTEGER NOT NULL
) STRICT;

CREATE INDEX promotions_by_environment ON promotions (pipeline, environment, state);
CREATE INDEX promotions_by_release ON promotions (release_id);

CREATE TABLE deployments (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline        TEXT NOT NULL,
    environment     TEXT NOT NULL,
    release_id      TEXT NOT NULL,
    release_version TEXT NOT NULL,
    promotion_id    TEXT NOT NULL,
    at              TEXT NOT NULL
) STRICT;

CREATE INDEX deployments_by_environment ON deployments (pipeline, environment, seq);

CREATE TABLE step_runs (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    promotion_id    TEXT    NOT NULL REFERENCES promotions (id),
    phase           TEXT    NOT NULL,
    idx             INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    exit_code       INTEGER,
    error           TEXT    NOT NULL,
    pid             INTEGER NOT NULL,
    pid_start       INTEGER NOT NULL,
    owner           TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT,
    UNIQUE (promotion_id, phase, idx, attempt)
) STRICT;

CREATE INDEX step_runs_running ON step_runs (state) WHERE state = 'running';

CREATE TABLE step_logs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    promotion_id TEXT    NOT NULL REFERENCES promotions (id),
    phase        TEXT    NOT NULL,
    idx          INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    data         BLOB,
    at           TEXT    NOT NULL
) STRICT;

CREATE INDEX step_logs_by_promotion ON step_logs (promotion_id, seq);

-- The audit log is append-only: the application never updates or deletes
-- its rows, and the triggers below refuse anyone who tries.
CREATE TABLE audit_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    time         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    promotion_id TEXT NOT NULL,
    reason       TEXT NOT NULL,
    details      TEXT,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
) STRICT;

CREATE INDEX audit_events_by_promotion ON audit_events (promotion_id, seq);
CREATE INDEX audit_events_by_time ON audit_events (time);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: rows cannot be updated');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: rows cannot be deleted');
END;

CREATE TABLE idempotency (
    key          TEXT    PRIMARY KEY,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    content_type TEXT    NOT NULL,
    body         BLOB,
    created_at   TEXT    NOT NULL
) STRICT;

-- bench_commits holds a single row that BenchCommit rewrites on every call,
-- so that measuring the commit rate does not grow the database.
CREATE TABLE bench_commits (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL,
    at    TEXT    NOT NULL
) STRICT;
