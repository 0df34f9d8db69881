package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/postgres"
	"github.com/ferry-dev/ferry/internal/store/storetest"
)

// An upgrade chains the events an older Ferry stored, and from then on the
// database refuses events without hashes, as an older replica still running
// would write them.
func TestUpgradeChainsExistingEvents(t *testing.T) {
	dsn := newDatabase(t)
	old, err := postgres.Open(t.Context(), dsn, postgres.MigrateUpTo(4))
	if err != nil {
		t.Fatal(err)
	}
	// As a version 4 replica appends: seq from audit_head, no hashes.
	const legacyAppend = `WITH head AS (UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq)
		INSERT INTO audit_events (seq, time, actor, action, subject, promotion_id, reason, details, prev_hash, hash)
		SELECT head.seq, $1, $2, 'promotion.transition', 'promotion/p1', 'p1', '', $3, $4, '' FROM head`
	for i, actor := range []string{"alice", "system", "bob"} {
		details := fmt.Sprintf(`{"n": %d}`, i)
		prev := ""
		if i == 2 {
			prev = "junk"
		}
		if _, err := old.Pool().Exec(t.Context(), legacyAppend, fmt.Sprintf("2025-01-01T00:00:0%d.000000000Z", i), actor, details, prev); err != nil {
			t.Fatalf("legacy event %d: %v", i+1, err)
		}
	}
	s := open(t, dsn)
	rep := storetest.AuditReport(t, s, nil)
	if !rep.OK || rep.Events != 3 || rep.Last != 3 {
		t.Fatalf("upgraded log: %s", rep.Summary())
	}
	e := testEvent("promotion.abort")
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.AppendAudit(ctx, e) })
	if e.Seq != 4 || e.PrevHash != rep.Head.Hash {
		t.Errorf("first append after the upgrade: seq %d chained to %s, want 4 chained to %s", e.Seq, e.PrevHash, rep.Head.Hash)
	}
	if rep := storetest.AuditReport(t, s, nil); !rep.OK || rep.Events != 4 {
		t.Errorf("after an append: %s", rep.Summary())
	}
	_, err = old.Pool().Exec(t.Context(), legacyAppend, "2025-01-02T00:00:00.000000000Z", "old-replica", nil, "")
	if err == nil || !strings.Contains(err.Error(), "audit_events_chained") {
		t.Errorf("an unchained append after the upgrade: %v, want the CHECK constraint to refuse it", err)
	}
	old.Close()
	if _, err := s.Pool().Exec(t.Context(), `UPDATE audit_events SET actor = 'mallory' WHERE seq = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("update of a sealed event: %v", err)
	}
}

// Replicas with their own pools append at once, several events per
// transaction, signing checkpoints: the chain stays whole and gapless, and
// every checkpoint due is there.
func TestAuditChainAcrossReplicas(t *testing.T) {
	signer, err := audit.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	dsn := newDatabase(t)
	const replicas, workers, rounds, every = 3, 4, 20, 7
	stores := make([]*postgres.Store, replicas)
	for i := range stores {
		s, err := postgres.Open(t.Context(), dsn, postgres.WithCheckpoints(store.Checkpoints{Signer: signer, Every: every}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	var wg sync.WaitGroup
	for r, s := range stores {
		for w := range workers {
			wg.Go(func() {
				for i := range rounds {
					err := s.Update(t.Context(), func(tx store.Tx) error {
						for range 1 + i%2 {
							e := testEvent(fmt.Sprintf("replica-%d.worker-%d", r, w))
							if err := tx.AppendAudit(t.Context(), e); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						t.Errorf("replica %d worker %d round %d: %v", r, w, i, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	const total = replicas * workers * (rounds/2*1 + rounds/2*2)
	rep := storetest.AuditReport(t, stores[0], []audit.PublicKey{signer.PublicKey()})
	if !rep.OK || rep.Events != total || rep.Checkpoints != total/every {
		t.Fatalf("after concurrent appends: %s (%d events, %d checkpoints; want %d, %d)", rep.Summary(), rep.Events, rep.Checkpoints, total, total/every)
	}
}

func TestCheckpointsAppendOnly(t *testing.T) {
	signer, err := audit.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(t.Context(), newDatabase(t), postgres.WithCheckpoints(store.Checkpoints{Signer: signer, Every: 1}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.AppendAudit(ctx, testEvent("a")) })
	if got := count(t, s, "audit_checkpoints"); got != 1 {
		t.Fatalf("%d checkpoints, want 1", got)
	}
	for _, q := range []string{`UPDATE audit_checkpoints SET hash = 'x'`, `DELETE FROM audit_checkpoints`, `TRUNCATE audit_checkpoints`} {
		if _, err := s.Pool().Exec(t.Context(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: error %v, want a refusal", q, err)
		}
	}
}
