-- The notification outbox. A thread is the notifications of one promotion to
-- one endpoint (by name): last_seq numbers its notifications, pending counts
-- those not delivered yet, next_attempt_at is when the thread is due (a
-- failed attempt moves it on), and claimed_by holds it until claim_until
-- while a deliverer tries it ('' when nobody does).
CREATE TABLE notification_threads (
    promotion_id    TEXT    NOT NULL REFERENCES promotions (id),
    name            TEXT    NOT NULL,
    last_seq        INTEGER NOT NULL,
    pending         INTEGER NOT NULL,
    next_attempt_at TEXT    NOT NULL,
    claimed_by      TEXT    NOT NULL DEFAULT '',
    claim_until     TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (promotion_id, name)
) STRICT;

CREATE INDEX notification_threads_due ON notification_threads (next_attempt_at) WHERE pending > 0;

-- One row per message. endpoint is the endpoint's definition as JSON, payload
-- the message. dedup_key keeps a change reported twice from being sent twice.
CREATE TABLE notifications (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    promotion_id    TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    thread_seq      INTEGER NOT NULL,
    dedup_key       TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    endpoint        TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      TEXT    NOT NULL,
    last_attempt_at TEXT,
    finished_at     TEXT,
    FOREIGN KEY (promotion_id, name) REFERENCES notification_threads (promotion_id, name),
    UNIQUE (promotion_id, name, dedup_key),
    UNIQUE (promotion_id, name, thread_seq)
) STRICT;

CREATE INDEX notifications_by_promotion ON notifications (promotion_id, seq);
