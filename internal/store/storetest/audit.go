package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/store"
)

// auditSeqs returns the seqs of events.
func auditSeqs(events []audit.Event) []int64 {
	out := []int64{}
	for _, e := range events {
		out = append(out, e.Seq)
	}
	return out
}

// allAudit returns every audit event.
func allAudit(t *testing.T, s store.Store) []audit.Event {
	t.Helper()
	var all []audit.Event
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		all, err = tx.AuditEvents(ctx, store.AuditFilter{})
		return err
	})
	return all
}

func testAuditAppend(t *testing.T, s store.Store) {
	withDetails := newEvent("alice", "promotion.create", "p1", at(0))
	bare := &audit.Event{Time: at(time.Second), Actor: "system", Action: "pipeline.apply", Subject: "pipeline/shop"}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.AppendAudit(ctx, withDetails); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, bare)
	})
	if withDetails.Seq != 1 || bare.Seq != 2 {
		t.Errorf("seqs of the first events: %d, %d; want 1, 2", withDetails.Seq, bare.Seq)
	}
	// Details come back byte for byte: the hash chain depends on them.
	equal(t, "audit events", allAudit(t, s), []audit.Event{wantEvent(*withDetails), wantEvent(*bare)})
}

func testAuditInvalid(t *testing.T, s store.Store) {
	invalid := []*audit.Event{
		{Time: at(0), Action: "a", Subject: "s"},
		{Time: at(0), Actor: "alice", Subject: "s"},
		{Time: at(0), Actor: "alice", Action: "a"},
		{Actor: "alice", Action: "a", Subject: "s"},
		{Time: at(0), Actor: "alice", Action: "a", Subject: "s", Details: []byte("{not json")},
		{Time: at(0), Actor: "alice", Action: "a", Subject: "s", Details: []byte(`{"k":1,"k":2}`)},
		{Time: at(0), Actor: "alice", Action: "promotion.break-glass", Subject: "s"},
	}
	for _, e := range invalid {
		ctx := t.Context()
		err := s.Update(ctx, func(tx store.Tx) error {
			return tx.AppendAudit(ctx, e)
		})
		if !errors.Is(err, audit.ErrIncomplete) {
			t.Errorf("append %s: got error %v, want %v", dump(e), err, audit.ErrIncomplete)
		}
	}
	if got := allAudit(t, s); len(got) != 0 {
		t.Errorf("invalid events were stored: %s", dump(got))
	}
	// The log starts at 1 after refused events.
	e := newEvent("alice", "a", "", at(0))
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.AppendAudit(ctx, e) })
	if e.Seq != 1 {
		t.Errorf("first event after refused ones: seq %d, want 1", e.Seq)
	}
}

func testAuditSeqNoGaps(t *testing.T, s store.Store) {
	appendN := func(ctx context.Context, tx store.Tx, n int) error {
		for range n {
			if err := tx.AppendAudit(ctx, newEvent("alice", "a", "", at(0))); err != nil {
				return err
			}
		}
		return nil
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return appendN(ctx, tx, 3) })
	// A rolled-back transaction leaves no hole behind.
	errRollback := errors.New("roll back")
	updateFails(t, s, "rolled-back appends", errRollback, func(ctx context.Context, tx store.Tx) error {
		if err := appendN(ctx, tx, 2); err != nil {
			return err
		}
		return errRollback
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error { return appendN(ctx, tx, 1) })
	update(t, s, func(ctx context.Context, tx store.Tx) error { return appendN(ctx, tx, 2) })
	equal(t, "audit seqs", auditSeqs(allAudit(t, s)), []int64{1, 2, 3, 4, 5, 6})
}

func testAuditFilters(t *testing.T, s store.Store) {
	events := []*audit.Event{
		newEvent("alice", "promotion.create", "p1", at(0)),                  // 1
		newEvent("system", "promotion.transition", "p1", at(time.Second)),   // 2
		newEvent("bob", "promotion.approve", "p2", at(2*time.Second)),       // 3
		newEvent("system", "promotion.transition", "p2", at(3*time.Second)), // 4
		newEvent("alice", "pipeline.apply", "", at(3*time.Second)),          // 5
		// Appended later, stamped earlier: Since filters on Time, order is by Seq.
		newEvent("system", "promotion.transition", "p1", at(time.Second-time.Nanosecond)), // 6
		newEvent("alice", "promotion.abort", "p1", at(4*time.Second)),                     // 7
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, e := range events {
			if err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	tests := []struct {
		name string
		f    store.AuditFilter
		want []int64
	}{
		{"all", store.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6, 7}},
		{"promotion", store.AuditFilter{PromotionID: "p1"}, []int64{1, 2, 6, 7}},
		{"actor", store.AuditFilter{Actor: "alice"}, []int64{1, 5, 7}},
		{"action", store.AuditFilter{Action: "promotion.transition"}, []int64{2, 4, 6}},
		{"since, inclusive, to the nanosecond", store.AuditFilter{Since: at(time.Second)}, []int64{2, 3, 4, 5, 7}},
		{"since in another zone", store.AuditFilter{Since: at(3 * time.Second).UTC()}, []int64{4, 5, 7}},
		{"after seq", store.AuditFilter{AfterSeq: 5}, []int64{6, 7}},
		{"limit", store.AuditFilter{Limit: 3}, []int64{1, 2, 3}},
		{"page", store.AuditFilter{AfterSeq: 2, Limit: 2}, []int64{3, 4}},
		{"combined", store.AuditFilter{PromotionID: "p1", Actor: "system", Action: "promotion.transition", AfterSeq: 1, Limit: 1}, []int64{2}},
		{"since and promotion", store.AuditFilter{PromotionID: "p1", Since: at(time.Second)}, []int64{2, 7}},
		{"until, exclusive", store.AuditFilter{Until: at(3 * time.Second)}, []int64{1, 2, 3, 6}},
		{"since and until", store.AuditFilter{Since: at(time.Second), Until: at(3 * time.Second)}, []int64{2, 3}},
		{"nothing", store.AuditFilter{Actor: "carol"}, []int64{}},
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, tt := range tests {
			got, err := tx.AuditEvents(ctx, tt.f)
			if err != nil {
				return err
			}
			equal(t, "audit events, "+tt.name, auditSeqs(got), tt.want)
		}
		got, err := tx.AuditEvents(ctx, store.AuditFilter{AfterSeq: 6})
		if err != nil {
			return err
		}
		equal(t, "filtered audit event", got, []audit.Event{wantEvent(*events[6])})
		return nil
	})
}

// AuditReport verifies the whole audit chain stored in s, checking the
// checkpoints' signatures with keys, and returns the report. It fails t
// when the store cannot be read.
func AuditReport(t *testing.T, s store.Store, keys []audit.PublicKey) audit.Report {
	t.Helper()
	var rep audit.Report
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		rep, err = audit.Verify(ctx, store.AuditSource(tx, store.AuditFilter{}), keys)
		return err
	})
	return rep
}

// verifyAudit checks the whole stored chain and fails the test when it is
// broken; it returns the report.
func verifyAudit(t *testing.T, s store.Store) audit.Report {
	t.Helper()
	rep := AuditReport(t, s, nil)
	if !rep.OK {
		t.Fatalf("audit chain: %s", rep.Summary())
	}
	return rep
}

func testAuditChain(t *testing.T, s store.Store) {
	rep := verifyAudit(t, s)
	if rep.Events != 0 || rep.Head != audit.Genesis() {
		t.Errorf("empty log: %+v", rep)
	}
	var head audit.Head
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		head, err = tx.AuditHead(ctx)
		return err
	})
	equal(t, "head of an empty log", head, audit.Genesis())

	first := newEvent("alice", "promotion.create", "p1", at(0))
	second := newEvent("system", "promotion.transition", "p1", at(time.Second))
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.AppendAudit(ctx, first); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, second); err != nil {
			return err
		}
		// The head moves with each append, inside the transaction.
		h, err := tx.AuditHead(ctx)
		if err != nil {
			return err
		}
		equal(t, "head inside the appending transaction", h, audit.Head{Seq: 2, Hash: second.Hash})
		return nil
	})
	if first.PrevHash != audit.GenesisHash || second.PrevHash != first.Hash || len(second.Hash) != 64 {
		t.Errorf("links: first %s → %s, second %s → %s", first.PrevHash, first.Hash, second.PrevHash, second.Hash)
	}
	// What the store hashed is what it gives back.
	for _, e := range allAudit(t, s) {
		h, err := audit.ComputeHash(&e)
		if err != nil || h != e.Hash {
			t.Errorf("stored event %d: hash %s, recomputed %s (%v)", e.Seq, e.Hash, h, err)
		}
	}
	// A rolled-back transaction leaves the head where it was.
	errRollback := errors.New("roll back")
	updateFails(t, s, "rolled-back append", errRollback, func(ctx context.Context, tx store.Tx) error {
		if err := tx.AppendAudit(ctx, newEvent("mallory", "a", "", at(0))); err != nil {
			return err
		}
		return errRollback
	})
	third := newEvent("bob", "promotion.abort", "p1", at(2*time.Second))
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.AppendAudit(ctx, third) })
	if third.Seq != 3 || third.PrevHash != second.Hash {
		t.Errorf("after a rollback: seq %d chained to %s, want 3 chained to %s", third.Seq, third.PrevHash, second.Hash)
	}
	rep = verifyAudit(t, s)
	if rep.Events != 3 || rep.Head != (audit.Head{Seq: 3, Hash: third.Hash}) {
		t.Errorf("report: %+v", rep)
	}
}

// testAuditChainConcurrent appends from many transactions at once, which
// PostgreSQL runs concurrently: every event must chain onto the one committed
// before it.
func testAuditChainConcurrent(t *testing.T, s store.Store) {
	const workers, rounds = 8, 25
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				err := s.Update(ctx, func(tx store.Tx) error {
					for j := range 1 + i%3 {
						e := newEvent(fmt.Sprintf("worker-%d", w), "append", "", at(time.Duration(i)))
						e.Details = audit.Details(map[string]int{"round": i, "n": j})
						if err := tx.AppendAudit(ctx, e); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Errorf("worker %d: round %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	rep := verifyAudit(t, s)
	want := int64(0)
	for i := range rounds {
		want += int64(workers * (1 + i%3))
	}
	if rep.Events != want || rep.Last != want {
		t.Errorf("%d events up to seq %d, want %d", rep.Events, rep.Last, want)
	}
}

func testAuditCheckpoints(t *testing.T, s store.Store) {
	signer, err := audit.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.AppendAudit(ctx, newEvent("alice", "a", "", at(time.Duration(i)*time.Second)))
		})
	}
	var cps []audit.Checkpoint
	for _, seq := range []int64{2, 4} {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			events, err := tx.AuditEvents(ctx, store.AuditFilter{AfterSeq: seq - 1, Limit: 1})
			if err != nil {
				return err
			}
			c := signer.Sign(audit.Head{Seq: seq, Hash: events[0].Hash}, at(time.Minute))
			cps = append(cps, c)
			return tx.PutAuditCheckpoint(ctx, &c)
		})
	}
	updateFails(t, s, "a second checkpoint of seq 4", store.ErrConflict, func(ctx context.Context, tx store.Tx) error {
		c := signer.Sign(audit.Head{Seq: 4, Hash: "x"}, at(time.Hour))
		return tx.PutAuditCheckpoint(ctx, &c)
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.AuditCheckpoints(ctx, 0, 0)
		if err != nil {
			return err
		}
		want := []audit.Checkpoint{cps[0], cps[1]}
		for i := range want {
			want[i].Time = utc(want[i].Time)
		}
		equal(t, "checkpoints", got, want)
		got, err = tx.AuditCheckpoints(ctx, 3, 4)
		if err != nil {
			return err
		}
		equal(t, "checkpoints of seqs 3 to 4", got, want[1:])
		got, err = tx.AuditCheckpoints(ctx, 5, 0)
		if err != nil {
			return err
		}
		equal(t, "checkpoints from seq 5", got, []audit.Checkpoint{})
		return nil
	})
	rep := AuditReport(t, s, []audit.PublicKey{signer.PublicKey()})
	if !rep.OK || rep.Checkpoints != 2 || rep.Signed.Seq != 4 || rep.Unsigned != 1 {
		t.Errorf("report with checkpoints: %s", rep.Summary())
	}
	viewFails(t, s, "a checkpoint in a View", errReadOnlyAny, func(ctx context.Context, tx store.Tx) error {
		c := signer.Sign(audit.Head{Seq: 5}, at(0))
		if err := tx.PutAuditCheckpoint(ctx, &c); err != nil {
			return errReadOnlyAny
		}
		return nil
	})
}

// errReadOnlyAny stands for the error of a write in a View.
var errReadOnlyAny = errors.New("refused in a View")
