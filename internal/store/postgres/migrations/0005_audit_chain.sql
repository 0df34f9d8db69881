-- The audit log becomes a hash chain (see internal/audit): each event keeps
-- the hash of the one before it and its own. audit_head, whose row every
-- append already locks to take its seq, now also holds the hash of the
-- chain's end, so that appends from several replicas chain one after the
-- other in commit order; audit_checkpoints holds signed checkpoints.
--
-- The events stored before this migration get their hashes from a step in
-- Go that runs right after this file, in the same transaction
-- (sealAuditEvents in migrate.go). So that it can set them once, the update
-- trigger now spares rows without a hash, and whatever the hash columns held
-- before is cleared. The CHECK constraint then refuses events without a
-- hash, such as a replica of an older version would still write.
ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update;
UPDATE audit_events SET prev_hash = '', hash = '';
ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update;

CREATE FUNCTION audit_events_seal_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.hash = '' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: UPDATE refused'
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER audit_events_no_update ON audit_events;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_seal_once();

ALTER TABLE audit_events ADD CONSTRAINT audit_events_chained
    CHECK (length(prev_hash) = 64 AND length(hash) = 64) NOT VALID;

-- hash is the hash of the last event, prev_hash the one before it: an
-- append computes the new hash in the UPDATE that takes its seq, and reads
-- both back (see appendEvent in tx.go).
ALTER TABLE audit_head
    ADD COLUMN prev_hash text NOT NULL DEFAULT '',
    ADD COLUMN hash text NOT NULL
        DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';

CREATE TABLE audit_checkpoints (
    seq       bigint PRIMARY KEY,
    hash      text NOT NULL,
    time      text COLLATE "C" NOT NULL,
    key_id    text NOT NULL,
    signature text NOT NULL
);

CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();

CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only();
