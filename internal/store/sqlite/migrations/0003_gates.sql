-- Gates, expedited and break-glass promotions, their reviews, and approvals.
--
-- gates holds the promotion's latest gate evaluations as JSON text, NULL when
-- there are none. A promotion is reviewed when reviewed_at is set; the three
-- review columns are NULL together.
ALTER TABLE promotions ADD COLUMN expedited       INTEGER NOT NULL DEFAULT 0;
ALTER TABLE promotions ADD COLUMN override_window INTEGER NOT NULL DEFAULT 0;
ALTER TABLE promotions ADD COLUMN gates           TEXT;
ALTER TABLE promotions ADD COLUMN reviewed_by     TEXT;
ALTER TABLE promotions ADD COLUMN reviewed_at     TEXT;
ALTER TABLE promotions ADD COLUMN review_comment  TEXT;

-- The expedited and break-glass promotions still awaiting review.
CREATE INDEX promotions_unreviewed ON promotions (seq)
    WHERE (expedited <> 0 OR override_window <> 0) AND reviewed_at IS NULL;

-- One row per person and promotion: a later decision replaces the earlier
-- one, and takes a new seq. roles is a JSON array, NULL when empty.
CREATE TABLE approvals (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    promotion_id   TEXT    NOT NULL REFERENCES promotions (id),
    user_name      TEXT    NOT NULL,
    decision       TEXT    NOT NULL,
    comment        TEXT    NOT NULL,
    roles          TEXT,
    release_digest TEXT    NOT NULL,
    revision       INTEGER NOT NULL,
    at             TEXT    NOT NULL,
    UNIQUE (promotion_id, user_name)
) STRICT;

CREATE INDEX approvals_by_promotion ON approvals (promotion_id, at, seq);
