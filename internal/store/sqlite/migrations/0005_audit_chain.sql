-- The audit log becomes a hash chain (see internal/audit): each event keeps
-- the hash of the one before it and its own. audit_head holds the end of
-- the chain, which every append reads and moves in its own transaction (and
-- which shows when events at the end were removed); audit_checkpoints holds
-- signed checkpoints of the chain.
--
-- The events stored before this migration get their hashes from a step in
-- Go that runs right after this file, in the same transaction
-- (sealAuditEvents in migrate.go). So that it can set them once, the trigger
-- that refuses updates now spares rows without a hash — after the migration
-- there are none — and whatever the hash columns held before is cleared.
DROP TRIGGER audit_events_no_update;

UPDATE audit_events SET prev_hash = '', hash = '';

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN OLD.hash <> ''
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: rows cannot be updated');
END;

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
) STRICT;

INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY,
    hash      TEXT NOT NULL,
    time      TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
) STRICT;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: rows cannot be updated');
END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: rows cannot be deleted');
END;
