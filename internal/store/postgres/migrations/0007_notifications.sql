-- The notification outbox. A thread is the notifications of one promotion to
-- one endpoint (by name): last_seq numbers its notifications, pending counts
-- those not delivered yet, next_attempt_at is when the thread is due (a
-- failed attempt moves it on), and claimed_by holds it until claim_until
-- while a deliverer tries it ('' when nobody does). Deliverers claim threads
-- with FOR UPDATE SKIP LOCKED.
CREATE TABLE notification_threads (
    promotion_id    text    NOT NULL REFERENCES promotions (id),
    name            text    NOT NULL,
    last_seq        integer NOT NULL,
    pending         integer NOT NULL,
    next_attempt_at text COLLATE "C" NOT NULL,
    claimed_by      text    NOT NULL DEFAULT '',
    claim_until     text COLLATE "C" NOT NULL DEFAULT '',
    PRIMARY KEY (promotion_id, name)
);

CREATE INDEX notification_threads_due ON notification_threads (next_attempt_at) WHERE pending > 0;

-- One row per message. endpoint is the endpoint's definition as JSON, payload
-- the message. dedup_key keeps a change reported twice from being sent twice.
CREATE TABLE notifications (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    promotion_id    text    NOT NULL,
    name            text    NOT NULL,
    thread_seq      integer NOT NULL,
    dedup_key       text    NOT NULL,
    event           text    NOT NULL,
    endpoint        text    NOT NULL,
    payload         text    NOT NULL,
    state           text    NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text    NOT NULL DEFAULT '',
    created_at      text COLLATE "C" NOT NULL,
    last_attempt_at text COLLATE "C",
    finished_at     text COLLATE "C",
    FOREIGN KEY (promotion_id, name) REFERENCES notification_threads (promotion_id, name),
    UNIQUE (promotion_id, name, dedup_key),
    UNIQUE (promotion_id, name, thread_seq)
);

CREATE INDEX notifications_by_promotion ON notifications (promotion_id, seq);
