package sqlite_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
	"github.com/ferry-dev/ferry/internal/store/storetest"
)

// An upgrade chains the events an older Ferry stored, so that the upgraded
// store verifies, and appends carry on from them.
func TestUpgradeChainsExistingEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	old, err := sqlite.Open(t.Context(), path, sqlite.MigrateUpTo(4))
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	for i, q := range []string{
		`INSERT INTO audit_events (time, actor, action, subject, promotion_id, reason, details, prev_hash, hash)
			VALUES ('2025-01-01T00:00:00.000000000Z', 'alice', 'pipeline.apply', 'pipeline/shop', '', '', '{"revision": 1}', '', '')`,
		`INSERT INTO audit_events (time, actor, action, subject, promotion_id, reason, details, prev_hash, hash)
			VALUES ('2025-01-01T00:00:01.000000000Z', 'bob', 'promotion.create', 'promotion/p1', 'p1', 'ship it', NULL, '', '')`,
		// A value an older version let a caller put in the hash columns.
		`INSERT INTO audit_events (time, actor, action, subject, promotion_id, reason, details, prev_hash, hash)
			VALUES ('2025-01-01T00:00:02.000000000Z', 'system', 'promotion.transition', 'promotion/p1', 'p1', '', '{"to":"gating"}', 'prev-x', 'hash-x')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("legacy event %d: %v", i+1, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := open(t, path)
	rep := storetest.AuditReport(t, s, nil)
	if !rep.OK || rep.Events != 3 || rep.Last != 3 {
		t.Fatalf("upgraded log: %s", rep.Summary())
	}
	events := allEvents(t, s)
	if events[0].PrevHash != audit.GenesisHash || events[2].PrevHash != events[1].Hash || events[2].Hash == "hash-x" {
		t.Errorf("upgraded events are not chained: %+v", events)
	}
	e := testEvent("promotion.abort")
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.AppendAudit(ctx, e) })
	if e.Seq != 4 || e.PrevHash != events[2].Hash {
		t.Errorf("first append after the upgrade: seq %d chained to %s, want 4 chained to %s", e.Seq, e.PrevHash, events[2].Hash)
	}
	if rep := storetest.AuditReport(t, s, nil); !rep.OK || rep.Events != 4 {
		t.Errorf("after an append: %s", rep.Summary())
	}
	// Sealed events are append-only again.
	if _, err := db.Exec(`UPDATE audit_events SET actor = 'mallory' WHERE seq = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("update of a sealed event: %v", err)
	}
}

func allEvents(t *testing.T, s store.Store) []audit.Event {
	t.Helper()
	var out []audit.Event
	err := s.View(t.Context(), func(tx store.Tx) error {
		var err error
		out, err = tx.AuditEvents(t.Context(), store.AuditFilter{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCheckpointsEveryN(t *testing.T) {
	signer, err := audit.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ferry.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.WithCheckpoints(store.Checkpoints{Signer: signer, Every: 3}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, a := range []string{"a", "b", "c", "d"} {
			if err := tx.AppendAudit(ctx, testEvent(a)); err != nil {
				return err
			}
		}
		return nil
	})
	for range 3 {
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.AppendAudit(ctx, testEvent("e")) })
	}
	var cps []audit.Checkpoint
	err = s.View(t.Context(), func(tx store.Tx) error {
		cps, err = tx.AuditCheckpoints(t.Context(), 0, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	events := allEvents(t, s)
	if len(cps) != 2 || cps[0].Seq != 3 || cps[0].Hash != events[2].Hash || cps[1].Seq != 6 || cps[1].Hash != events[5].Hash {
		t.Fatalf("checkpoints %+v, want seqs 3 and 6 with their events' hashes", cps)
	}
	rep := storetest.AuditReport(t, s, []audit.PublicKey{signer.PublicKey()})
	if !rep.OK || rep.Checkpoints != 2 || rep.Signed.Seq != 6 || rep.Unsigned != 1 {
		t.Errorf("report: %s", rep.Summary())
	}
	db := rawDB(t, path)
	for _, q := range []string{`UPDATE audit_checkpoints SET hash = 'x'`, `DELETE FROM audit_checkpoints`} {
		if _, err := db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: error %v, want the append-only trigger to refuse", q, err)
		}
	}
}

// update runs fn in an Update and fails the test on an error.
func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("update: %v", err)
	}
}
