package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

// testPromotionGates round-trips gate evaluations, the expedited and
// break-glass flags and reviews, alone and together, through every way of
// reading a promotion.
func testPromotionGates(t *testing.T, s store.Store) {
	full := newPromotion("full", "shop", "prod", "rel-1")
	// Empty gates are stored as none.
	emptyGates := newBarePromotion("empty-gates", "shop", "prod", "rel-1")
	emptyGates.Gates = []promotion.GateEvaluation{}
	expedited := newBarePromotion("expedited", "shop", "prod", "rel-1")
	expedited.Expedited = true
	expedited.Gates = []promotion.GateEvaluation{{Name: "upstream", Kind: "upstream", Result: promotion.GateFail,
		Reason: "staging has not run it", At: at(time.Nanosecond)}}
	override := newBarePromotion("override", "shop", "prod", "rel-1")
	override.OverrideWindow = true
	// A review with empty fields is still a review.
	emptyReview := newBarePromotion("empty-review", "shop", "prod", "rel-1")
	emptyReview.Review = &promotion.Review{At: at(0)}
	bare := newBarePromotion("bare", "shop", "prod", "rel-1")
	all := []*promotion.Promotion{full, emptyGates, expedited, override, emptyReview, bare}

	want := func(p *promotion.Promotion) promotion.Promotion {
		w := wantPromotion(*p)
		if len(w.Gates) == 0 {
			w.Gates = nil
		}
		return w
	}
	check := func(ctx context.Context, tx store.Tx, what string) error {
		listed, err := tx.Promotions(ctx, store.PromotionFilter{Ascending: true})
		if err != nil {
			return err
		}
		if len(listed) != len(all) {
			t.Fatalf("%s: listed %d promotions, want %d", what, len(listed), len(all))
		}
		for i, p := range all {
			got, err := tx.Promotion(ctx, p.ID)
			if err != nil {
				return err
			}
			equal(t, what+", promotion "+p.ID, *got, want(p))
			equal(t, what+", listed promotion "+p.ID, listed[i], want(p))
		}
		return nil
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, p := range all {
			if err := tx.InsertPromotion(ctx, p); err != nil {
				return err
			}
		}
		return check(ctx, tx, "in the inserting transaction")
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error { return check(ctx, tx, "inserted") })

	// Updates change the new fields both ways.
	full.Expedited, full.Gates, full.Review = false, full.Gates[1:], nil
	bare.OverrideWindow = true
	bare.Gates = []promotion.GateEvaluation{{Name: "windows", Kind: "windows", Result: promotion.GatePending,
		Reason: "outside the window", Until: ptr(at(7 * time.Hour)), At: at(3 * time.Second)}}
	bare.Review = &promotion.Review{By: "dave", At: at(5 * time.Second), Comment: "break-glass for INC-42"}
	expedited.Gates = nil
	emptyReview.Review = nil
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, p := range []*promotion.Promotion{full, bare, expedited, emptyReview} {
			if err := tx.UpdatePromotion(ctx, p); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error { return check(ctx, tx, "updated") })
}

// testPromotionUnreviewed checks the Unreviewed filter: expedited or
// break-glass promotions without a review.
func testPromotionUnreviewed(t *testing.T, s store.Store) {
	type row struct {
		id, pipeline              string
		expedited, override, done bool
	}
	rows := []row{
		{"expedited", "shop", true, false, false},
		{"override", "shop", false, true, false},
		{"both", "web", true, true, false},
		{"expedited-reviewed", "shop", true, false, true},
		{"override-reviewed", "shop", false, true, true},
		{"neither", "shop", false, false, false},
		{"neither-reviewed", "shop", false, false, true},
	}
	byID := map[string]*promotion.Promotion{}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, r := range rows {
			p := newBarePromotion(r.id, r.pipeline, "prod", "rel-1")
			p.Expedited, p.OverrideWindow = r.expedited, r.override
			if r.done {
				p.Review = &promotion.Review{By: "carol", At: at(time.Hour), Comment: "ok"}
			}
			if err := tx.InsertPromotion(ctx, p); err != nil {
				return err
			}
			byID[p.ID] = p
		}
		return nil
	})
	list := func(what string, f store.PromotionFilter, want ...string) {
		t.Helper()
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Promotions(ctx, f)
			if err != nil {
				return err
			}
			ids := []string{}
			for _, p := range got {
				ids = append(ids, p.ID)
			}
			if want == nil {
				want = []string{}
			}
			equal(t, "unreviewed promotions, "+what, ids, want)
			return nil
		})
	}
	list("all", store.PromotionFilter{Unreviewed: true}, "both", "override", "expedited")
	list("ascending", store.PromotionFilter{Unreviewed: true, Ascending: true}, "expedited", "override", "both")
	list("of a pipeline", store.PromotionFilter{Unreviewed: true, Pipeline: "shop"}, "override", "expedited")
	list("limited", store.PromotionFilter{Unreviewed: true, Limit: 1}, "both")
	list("and states", store.PromotionFilter{Unreviewed: true, States: []promotion.State{promotion.Succeeded}})

	// A review takes a promotion off the list, and removing it puts it back.
	p := byID["override"]
	p.Review = &promotion.Review{By: "dave", At: at(2 * time.Hour)}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdatePromotion(ctx, p) })
	list("after a review", store.PromotionFilter{Unreviewed: true}, "both", "expedited")
	p.Review = nil
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdatePromotion(ctx, p) })
	list("after the review is removed", store.PromotionFilter{Unreviewed: true}, "both", "override", "expedited")
}

func newApproval(promotionID, user string, d promotion.Decision, when time.Time) *promotion.Approval {
	return &promotion.Approval{
		PromotionID:   promotionID,
		User:          user,
		Decision:      d,
		Comment:       user + " says " + string(d) + " \"quoted\" ✓",
		Roles:         []string{"approver", "admin"},
		ReleaseDigest: digest('c'),
		Revision:      3,
		At:            when,
	}
}

func wantApproval(a promotion.Approval) promotion.Approval {
	a.At = utc(a.At)
	return a
}

// testApprovals checks PutApproval and Approvals: round trip, order (by At,
// then by when the decision was put) and replacement of a user's decision.
func testApprovals(t *testing.T, s store.Store) {
	insertPromotions(t, s, "p1", "p2")
	alice := newApproval("p1", "alice", promotion.Approve, at(time.Second))
	bob := newApproval("p1", "bob", promotion.Reject, at(0))
	bob.Comment, bob.Roles = "", nil
	carol := newApproval("p1", "carol", promotion.Approve, at(time.Second)) // same At as alice, put after her
	dave := newApproval("p1", "dave", promotion.Approve, at(time.Minute))
	dave.Roles = []string{} // stored as none
	other := newApproval("p2", "alice", promotion.Reject, at(0))

	approvals := func(ctx context.Context, tx store.Tx, what, id string, want ...*promotion.Approval) error {
		got, err := tx.Approvals(ctx, id)
		if err != nil {
			return err
		}
		w := []promotion.Approval{}
		for _, a := range want {
			wa := wantApproval(*a)
			if len(wa.Roles) == 0 {
				wa.Roles = nil
			}
			w = append(w, wa)
		}
		equal(t, what, got, w)
		return nil
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, a := range []*promotion.Approval{alice, dave, bob, carol, other} {
			if err := tx.PutApproval(ctx, a); err != nil {
				return err
			}
		}
		return approvals(ctx, tx, "approvals in the transaction that put them", "p1", bob, alice, carol, dave)
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := approvals(ctx, tx, "approvals of p1", "p1", bob, alice, carol, dave); err != nil {
			return err
		}
		if err := approvals(ctx, tx, "approvals of p2", "p2", other); err != nil {
			return err
		}
		return approvals(ctx, tx, "approvals of an unknown promotion", "p3")
	})

	// A later decision replaces the earlier one of the same user on the same
	// promotion, and sorts by its own time; other promotions keep theirs.
	alice2 := newApproval("p1", "alice", promotion.Reject, at(30*time.Second))
	alice2.Comment, alice2.Roles, alice2.Revision, alice2.ReleaseDigest = "changed my mind", []string{"approver"}, 4, digest('d')
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutApproval(ctx, alice2) })
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := approvals(ctx, tx, "approvals of p1 after a change", "p1", bob, carol, alice2, dave); err != nil {
			return err
		}
		return approvals(ctx, tx, "approvals of p2 after a change on p1", "p2", other)
	})

	// A replacing decision with the same At as another sorts after it: it
	// was put later.
	bob2 := newApproval("p1", "bob", promotion.Approve, at(time.Second))
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutApproval(ctx, bob2) })
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		return approvals(ctx, tx, "approvals of p1 after a change at the same time", "p1", carol, bob2, alice2, dave)
	})

	// Putting the same decision again changes nothing.
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutApproval(ctx, dave) })
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		return approvals(ctx, tx, "approvals of p1 after a repeat", "p1", carol, bob2, alice2, dave)
	})
}

// testApprovalErrors checks that a decision on an unknown promotion, or in a
// View, is refused and stores nothing.
func testApprovalErrors(t *testing.T, s store.Store) {
	insertPromotions(t, s, "p1")
	updateFails(t, s, "approval of an unknown promotion", store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
		return tx.PutApproval(ctx, newApproval("p2", "alice", promotion.Approve, at(0)))
	})
	err := s.View(t.Context(), func(tx store.Tx) error {
		return tx.PutApproval(t.Context(), newApproval("p1", "alice", promotion.Approve, at(0)))
	})
	if err == nil {
		t.Errorf("an approval in a View succeeded")
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, id := range []string{"p1", "p2"} {
			got, err := tx.Approvals(ctx, id)
			if err != nil {
				return err
			}
			if len(got) != 0 {
				t.Errorf("approvals of %s after refused writes: %s", id, dump(got))
			}
		}
		return nil
	})
}
