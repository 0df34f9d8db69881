-- Replicas sharing the store (one for SQLite, kept for the same API as PostgreSQL).
CREATE TABLE replicas (
    id         TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    addr       TEXT NOT NULL,
    started_at TEXT NOT NULL,
    seen_at    TEXT NOT NULL
);

CREATE INDEX promotions_by_lease ON promotions (state, lease_until);
