package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

func testPromotionRoundTrip(t *testing.T, s store.Store) {
	full := newPromotion("p-full", "shop", "prod", "rel-1")
	bare := newBarePromotion("p-bare", "shop", "dev", "rel-1")
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.InsertPromotion(ctx, full); err != nil {
			return err
		}
		return tx.InsertPromotion(ctx, bare)
	})
	if full.Seq <= 0 || bare.Seq <= full.Seq {
		t.Errorf("seqs %d then %d: want positive and increasing", full.Seq, bare.Seq)
	}
	if full.Version != 1 || bare.Version != 1 {
		t.Errorf("versions after insert %d and %d, want 1", full.Version, bare.Version)
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, want := range []*promotion.Promotion{full, bare} {
			got, err := tx.Promotion(ctx, want.ID)
			if err != nil {
				return err
			}
			equal(t, "stored promotion", *got, wantPromotion(*want))
		}
		return nil
	})
}

func testPromotionUpdate(t *testing.T, s store.Store) {
	p := newBarePromotion("p1", "shop", "prod", "rel-1")
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertPromotion(ctx, p) })
	seq := p.Seq

	// Every field changes, nil pointers become set.
	full := newPromotion("p1", "shop2", "prod2", "rel-2")
	full.Kind = promotion.KindRollback
	full.State = promotion.Verifying
	full.Cursor = promotion.Cursor{Phase: promotion.PhaseVerify, Index: 1, Attempt: 2, Failures: 1}
	full.Seq, full.Version = seq, p.Version
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdatePromotion(ctx, full) })
	if full.Version != 2 {
		t.Errorf("version after an update: %d, want 2", full.Version)
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.Promotion(ctx, "p1")
		if err != nil {
			return err
		}
		equal(t, "updated promotion", *got, wantPromotion(*full))
		return nil
	})

	// And back: set pointers become nil.
	bare := newBarePromotion("p1", "shop", "prod", "rel-1")
	bare.Seq, bare.Version = seq, full.Version
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.UpdatePromotion(ctx, bare); err != nil {
			return err
		}
		got, err := tx.Promotion(ctx, "p1")
		if err != nil {
			return err
		}
		equal(t, "promotion read in the transaction that updated it", *got, wantPromotion(*bare))
		return nil
	})
	if bare.Version != 3 {
		t.Errorf("version after two updates: %d, want 3", bare.Version)
	}

	// A stale version loses, and leaves the stored promotion alone.
	stale := *bare
	stale.Version = 2
	stale.Message = "lost update"
	updateFails(t, s, "update with a stale version", store.ErrConflict, func(ctx context.Context, tx store.Tx) error {
		return tx.UpdatePromotion(ctx, &stale)
	})
	if stale.Version != 2 {
		t.Errorf("a failed update changed the version to %d", stale.Version)
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.Promotion(ctx, "p1")
		if err != nil {
			return err
		}
		equal(t, "promotion after a lost update", *got, wantPromotion(*bare))
		return nil
	})
}

func testPromotionErrors(t *testing.T, s store.Store) {
	p := newBarePromotion("p1", "shop", "prod", "rel-1")
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertPromotion(ctx, p) })
	updateFails(t, s, "insert with an existing ID", store.ErrConflict, func(ctx context.Context, tx store.Tx) error {
		return tx.InsertPromotion(ctx, newBarePromotion("p1", "web", "dev", "rel-2"))
	})
	updateFails(t, s, "update of an unknown promotion", store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
		q := newBarePromotion("p2", "shop", "prod", "rel-1")
		q.Version = 1
		return tx.UpdatePromotion(ctx, q)
	})
	viewFails(t, s, "unknown promotion", store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Promotion(ctx, "p2")
		return err
	})
}

func testPromotionFilters(t *testing.T, s store.Store) {
	type row struct {
		id, pipeline, env, release string
		kind                       promotion.Kind
		state                      promotion.State
	}
	rows := []row{
		{"a", "shop", "dev", "r1", promotion.KindPromote, promotion.Queued},
		{"b", "shop", "dev", "r2", promotion.KindPromote, promotion.Succeeded},
		{"c", "shop", "prod", "r1", promotion.KindPromote, promotion.Deploying},
		{"d", "shop", "prod", "r1", promotion.KindRollback, promotion.RolledBack},
		{"e", "web", "dev", "r3", promotion.KindPromote, promotion.AwaitingApproval},
		{"f", "shop", "dev", "r2", promotion.KindPromote, promotion.Failed},
		{"g", "shop", "prod", "r2", promotion.KindPromote, promotion.Superseded},
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for i, r := range rows {
			p := newBarePromotion(r.id, r.pipeline, r.env, r.release)
			p.Kind, p.State = r.kind, r.state
			// Creation times run against insertion order: order is by Seq.
			p.CreatedAt = at(-time.Duration(i) * time.Minute)
			if err := tx.InsertPromotion(ctx, p); err != nil {
				return err
			}
		}
		return nil
	})
	tests := []struct {
		name string
		f    store.PromotionFilter
		want []string
	}{
		{"all", store.PromotionFilter{}, []string{"g", "f", "e", "d", "c", "b", "a"}},
		{"ascending", store.PromotionFilter{Ascending: true}, []string{"a", "b", "c", "d", "e", "f", "g"}},
		{"pipeline", store.PromotionFilter{Pipeline: "shop"}, []string{"g", "f", "d", "c", "b", "a"}},
		{"environment", store.PromotionFilter{Pipeline: "shop", Environment: "dev"}, []string{"f", "b", "a"}},
		{"environment of any pipeline", store.PromotionFilter{Environment: "dev"}, []string{"f", "e", "b", "a"}},
		{"release", store.PromotionFilter{ReleaseID: "r1"}, []string{"d", "c", "a"}},
		{"kind", store.PromotionFilter{Kind: promotion.KindRollback}, []string{"d"}},
		{"states", store.PromotionFilter{States: []promotion.State{promotion.Succeeded, promotion.Failed}}, []string{"f", "b"}},
		{"one state", store.PromotionFilter{States: []promotion.State{promotion.Queued}}, []string{"a"}},
		{"active", store.PromotionFilter{Active: true}, []string{"e", "c", "a"}},
		{"active in a pipeline", store.PromotionFilter{Pipeline: "shop", Active: true}, []string{"c", "a"}},
		{"active and states", store.PromotionFilter{Active: true, States: []promotion.State{promotion.Queued, promotion.Succeeded}}, []string{"a"}},
		{"limit", store.PromotionFilter{Limit: 2}, []string{"g", "f"}},
		{"limit ascending", store.PromotionFilter{Limit: 2, Ascending: true}, []string{"a", "b"}},
		{"everything", store.PromotionFilter{Pipeline: "shop", Environment: "prod", ReleaseID: "r1", Kind: promotion.KindPromote, Active: true, Limit: 5}, []string{"c"}},
		{"nothing", store.PromotionFilter{Pipeline: "api"}, []string{}},
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, tt := range tests {
			got, err := tx.Promotions(ctx, tt.f)
			if err != nil {
				return err
			}
			ids := []string{}
			for _, p := range got {
				ids = append(ids, p.ID)
			}
			equal(t, "promotions, "+tt.name, ids, tt.want)
		}
		return nil
	})
}

// testPromotionsFinished checks the selection of promotions by the time
// they ended: FinishedSince is inclusive, FinishedBefore exclusive, and a
// promotion that has not ended is never selected by either.
func testPromotionsFinished(t *testing.T, s store.Store) {
	finished := map[string]*time.Time{
		"early":  ptr(at(-time.Hour)),
		"start":  ptr(at(0)),
		"middle": ptr(at(30 * time.Minute)),
		"nanos":  ptr(at(time.Hour - time.Nanosecond)),
		"end":    ptr(at(time.Hour)),
		"open":   nil,
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, id := range []string{"early", "start", "middle", "nanos", "end", "open"} {
			p := newBarePromotion(id, "shop", "prod", "r1")
			p.State, p.FinishedAt = promotion.Succeeded, finished[id]
			if p.FinishedAt == nil {
				p.State = promotion.Deploying
			}
			if id == "middle" {
				p.Pipeline = "web"
			}
			if err := tx.InsertPromotion(ctx, p); err != nil {
				return err
			}
		}
		return nil
	})
	tests := []struct {
		name string
		f    store.PromotionFilter
		want []string
	}{
		{"since and before", store.PromotionFilter{FinishedSince: at(0), FinishedBefore: at(time.Hour), Ascending: true},
			[]string{"start", "middle", "nanos"}},
		{"since only", store.PromotionFilter{FinishedSince: at(0), Ascending: true}, []string{"start", "middle", "nanos", "end"}},
		{"before only", store.PromotionFilter{FinishedBefore: at(0), Ascending: true}, []string{"early"}},
		// The bound in another zone is the same instant.
		{"bound in UTC", store.PromotionFilter{FinishedSince: at(time.Hour - time.Nanosecond).UTC(), Ascending: true}, []string{"nanos", "end"}},
		{"with a pipeline", store.PromotionFilter{Pipeline: "shop", FinishedSince: at(0), FinishedBefore: at(time.Hour)},
			[]string{"nanos", "start"}},
		{"empty range", store.PromotionFilter{FinishedSince: at(time.Hour), FinishedBefore: at(time.Hour)}, []string{}},
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, tt := range tests {
			got, err := tx.Promotions(ctx, tt.f)
			if err != nil {
				return err
			}
			ids := []string{}
			for _, p := range got {
				ids = append(ids, p.ID)
			}
			equal(t, "promotions, "+tt.name, ids, tt.want)
		}
		return nil
	})
}

func testLockEnvironment(t *testing.T, s store.Store) {
	p := newBarePromotion("p1", "shop", "prod", "rel-1")
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.LockEnvironment(ctx, "shop", "prod"); err != nil {
			return err
		}
		// Locking twice in one transaction, and another environment, is fine.
		if err := tx.LockEnvironment(ctx, "shop", "prod"); err != nil {
			return err
		}
		if err := tx.LockEnvironment(ctx, "shop", "dev"); err != nil {
			return err
		}
		return tx.InsertPromotion(ctx, p)
	})
}
