-- Gates, expedited and break-glass promotions, their reviews, and approvals.
--
-- gates holds the promotion's latest gate evaluations as JSON text, NULL when
-- there are none. A promotion is reviewed when reviewed_at is set; the three
-- review columns are NULL together.
ALTER TABLE promotions
    ADD COLUMN expedited       boolean NOT NULL DEFAULT false,
    ADD COLUMN override_window boolean NOT NULL DEFAULT false,
    ADD COLUMN gates           text,
    ADD COLUMN reviewed_by     text,
    ADD COLUMN reviewed_at     text COLLATE "C",
    ADD COLUMN review_comment  text;

-- The expedited and break-glass promotions still awaiting review.
CREATE INDEX promotions_unreviewed ON promotions (seq)
    WHERE (expedited OR override_window) AND reviewed_at IS NULL;

-- One row per person and promotion: a later decision replaces the earlier
-- one, and takes a new seq. roles is a JSON array, NULL when empty.
CREATE TABLE approvals (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    promotion_id   text    NOT NULL REFERENCES promotions (id),
    user_name      text    NOT NULL,
    decision       text    NOT NULL,
    comment        text    NOT NULL,
    roles          text,
    release_digest text    NOT NULL,
    revision       integer NOT NULL,
    at             text COLLATE "C" NOT NULL,
    UNIQUE (promotion_id, user_name)
);

CREATE INDEX approvals_by_promotion ON approvals (promotion_id, at, seq);
