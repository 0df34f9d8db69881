-- Initial schema.
--
-- Times are UTC text with nine fractional digits
-- (2006-01-02T15:04:05.000000000Z), as in the SQLite store: timestamptz
-- keeps microseconds only, and these round-trip to the nanosecond. They are
-- in the "C" collation, so that they compare and sort byte by byte whatever
-- the database's locale; so are the names the store sorts by. JSON columns
-- hold text, not jsonb, so that they come back byte for byte.

CREATE TABLE revisions (
    pipeline   text COLLATE "C" NOT NULL,
    number     integer NOT NULL,
    digest     text NOT NULL,
    spec       text NOT NULL,
    source     text NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    created_by text NOT NULL,
    PRIMARY KEY (pipeline, number)
);

CREATE TABLE releases (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         text NOT NULL UNIQUE,
    pipeline   text NOT NULL,
    version    text NOT NULL,
    artifacts  text NOT NULL,
    git_commit text NOT NULL,
    source     text NOT NULL,
    build_url  text NOT NULL,
    labels     text,
    created_at text COLLATE "C" NOT NULL,
    created_by text NOT NULL,
    UNIQUE (pipeline, version)
);

CREATE INDEX releases_by_creation ON releases (pipeline, created_at, seq);

CREATE TABLE promotions (
    seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               text    NOT NULL UNIQUE,
    pipeline         text    NOT NULL,
    environment      text    NOT NULL,
    kind             text    NOT NULL,
    release_id       text    NOT NULL,
    release_version  text    NOT NULL,
    revision         integer NOT NULL,
    state            text    NOT NULL,
    reason           text    NOT NULL,
    actor            text    NOT NULL,
    forced           boolean NOT NULL,
    rollback_id      text    NOT NULL,
    rollback_version text    NOT NULL,
    cursor_phase     text    NOT NULL,
    cursor_index     integer NOT NULL,
    cursor_attempt   integer NOT NULL,
    cursor_failures  integer NOT NULL,
    wake_at          text COLLATE "C",
    message          text    NOT NULL,
    created_at       text COLLATE "C" NOT NULL,
    updated_at       text COLLATE "C" NOT NULL,
    started_at       text COLLATE "C",
    finished_at      text COLLATE "C",
    owner            text    NOT NULL,
    lease_until      text COLLATE "C" NOT NULL,
    version          bigint  NOT NULL
);

CREATE INDEX promotions_by_environment ON promotions (pipeline, environment, state);
CREATE INDEX promotions_by_release ON promotions (release_id);

CREATE TABLE deployments (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pipeline        text NOT NULL,
    environment     text NOT NULL,
    release_id      text NOT NULL,
    release_version text NOT NULL,
    promotion_id    text NOT NULL,
    at              text COLLATE "C" NOT NULL
);

CREATE INDEX deployments_by_environment ON deployments (pipeline, environment, seq);

CREATE TABLE step_runs (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    promotion_id    text    NOT NULL REFERENCES promotions (id),
    phase           text    NOT NULL,
    idx             integer NOT NULL,
    attempt         integer NOT NULL,
    name            text    NOT NULL,
    state           text    NOT NULL,
    exit_code       integer,
    error           text    NOT NULL,
    pid             bigint  NOT NULL,
    pid_start       bigint  NOT NULL, -- a uint64 stored as its two's complement
    owner           text    NOT NULL,
    idempotency_key text    NOT NULL,
    started_at      text COLLATE "C" NOT NULL,
    finished_at     text COLLATE "C",
    UNIQUE (promotion_id, phase, idx, attempt)
);

CREATE INDEX step_runs_running ON step_runs (state) WHERE state = 'running';

CREATE TABLE step_logs (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    promotion_id text    NOT NULL REFERENCES promotions (id),
    phase        text    NOT NULL,
    idx          integer NOT NULL,
    attempt      integer NOT NULL,
    data         bytea,
    at           text COLLATE "C" NOT NULL
);

CREATE INDEX step_logs_by_promotion ON step_logs (promotion_id, seq);

-- The audit log is append-only: the application never updates or deletes
-- its rows, and the triggers below refuse anyone who tries. Its seq has no
-- gaps and follows commit order: it is taken from the single row of
-- audit_head, which a transaction locks (by updating it) just before it
-- commits, rather than from a sequence, whose numbers are lost on rollback.
CREATE TABLE audit_events (
    seq          bigint PRIMARY KEY,
    time         text COLLATE "C" NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    subject      text NOT NULL,
    promotion_id text NOT NULL,
    reason       text NOT NULL,
    details      text,
    prev_hash    text NOT NULL,
    hash         text NOT NULL
);

CREATE INDEX audit_events_by_promotion ON audit_events (promotion_id, seq);
CREATE INDEX audit_events_by_time ON audit_events (time);

CREATE TABLE audit_head (
    id  integer PRIMARY KEY CHECK (id = 1),
    seq bigint  NOT NULL
);

INSERT INTO audit_head (id, seq) VALUES (1, 0);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE idempotency (
    key          text    PRIMARY KEY,
    request_hash text    NOT NULL,
    status       integer NOT NULL,
    content_type text    NOT NULL,
    body         bytea,
    created_at   text COLLATE "C" NOT NULL
);

-- bench_commits holds a single row that BenchCommit rewrites on every call,
-- so that measuring the commit rate does not grow the database.
CREATE TABLE bench_commits (
    id    integer PRIMARY KEY CHECK (id = 1),
    count bigint  NOT NULL,
    at    text    NOT NULL
);
