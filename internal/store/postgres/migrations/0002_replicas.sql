-- Replicas sharing the store, and the index that finds expired leases.
CREATE TABLE replicas (
    id         text COLLATE "C" PRIMARY KEY,
    host       text NOT NULL,
    addr       text NOT NULL,
    started_at text COLLATE "C" NOT NULL,
    seen_at    text COLLATE "C" NOT NULL
);

CREATE INDEX promotions_by_lease ON promotions (state, lease_until);
