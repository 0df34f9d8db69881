package storetest

import (
	"context"
	"errors"
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
