package storetest

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

func testReplicas(t *testing.T, s store.Store) {
	a := &store.Replica{ID: "host-a:1", Host: "host-a", Addr: "127.0.0.1:7420", StartedAt: at(0), SeenAt: at(time.Second)}
	b := &store.Replica{ID: "host-b:2", Host: "host-b", Addr: "127.0.0.1:7421", StartedAt: at(0), SeenAt: at(10 * time.Second)}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutReplica(ctx, a); err != nil {
			return err
		}
		return tx.PutReplica(ctx, b)
	})
	// A heartbeat updates the row; it does not add one.
	a.SeenAt = at(20 * time.Second)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutReplica(ctx, a) })
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.Replicas(ctx, at(15*time.Second))
		if err != nil {
			return err
		}
		want := []store.Replica{{ID: a.ID, Host: a.Host, Addr: a.Addr, StartedAt: utc(a.StartedAt), SeenAt: utc(a.SeenAt)}}
		equal(t, "replicas seen since 15s", got, want)
		all, err := tx.Replicas(ctx, at(0))
		if err != nil {
			return err
		}
		if len(all) != 2 || all[0].ID != a.ID || all[1].ID != b.ID {
			t.Errorf("all replicas = %s, want %s then %s", dump(all), a.ID, b.ID)
		}
		return nil
	})
	// Notify is accepted in a transaction (delivery is the implementation's business).
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Notify(ctx, "changed x") })
}

func testLeases(t *testing.T, s store.Store) {
	mk := func(id string, state promotion.State, owner string, lease time.Time) *promotion.Promotion {
		p := newBarePromotion(id, "shop", id, "rel-1")
		p.State, p.Owner, p.LeaseUntil = state, owner, lease
		return p
	}
	rows := []*promotion.Promotion{
		mk("expired-deploying", promotion.Deploying, "dead:1", at(time.Second)),
		mk("expired-verifying", promotion.Verifying, "dead:1", at(2*time.Second)),
		mk("expired-rolling", promotion.RollingBack, "dead:1", at(3*time.Second)),
		mk("live-deploying", promotion.Deploying, "live:2", at(time.Hour)),
		mk("expired-queued", promotion.Queued, "dead:1", at(time.Second)),
		mk("expired-awaiting", promotion.AwaitingApproval, "dead:1", at(time.Second)),
		mk("expired-succeeded", promotion.Succeeded, "dead:1", at(time.Second)),
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, p := range rows {
			if err := tx.InsertPromotion(ctx, p); err != nil {
				return err
			}
		}
		return nil
	})

	// Renewal touches only the owner's unfinished promotions.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		n, err := tx.RenewLeases(ctx, "live:2", at(2*time.Hour))
		if err != nil {
			return err
		}
		if n != 1 {
			t.Errorf("renewed %d leases of live:2, want 1", n)
		}
		return nil
	})

	// Two claimers at once: each expired in-flight promotion is claimed exactly once.
	now := at(time.Minute)
	var mu sync.Mutex
	claimed := map[string]string{}
	var wg sync.WaitGroup
	for _, owner := range []string{"new:3", "new:4"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var got []promotion.Promotion
				err := s.Update(t.Context(), func(tx store.Tx) error {
					var err error
					got, err = tx.ClaimExpired(t.Context(), owner, now, at(time.Minute+10*time.Second), 1)
					return err
				})
				if err != nil {
					t.Errorf("claim by %s: %v", owner, err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, p := range got {
					if prev, ok := claimed[p.ID]; ok {
						t.Errorf("%s claimed by %s and %s", p.ID, prev, owner)
					}
					claimed[p.ID] = owner
					if p.Owner != owner || !p.LeaseUntil.Equal(at(time.Minute+10*time.Second)) {
						t.Errorf("claimed %s returned with owner %s lease %v", p.ID, p.Owner, p.LeaseUntil)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var ids []string
	for id := range claimed {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	equal(t, "claimed promotions", ids, []string{"expired-deploying", "expired-rolling", "expired-verifying"})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		live, err := tx.Promotion(ctx, "live-deploying")
		if err != nil {
			return err
		}
		if live.Owner != "live:2" || !live.LeaseUntil.Equal(at(2*time.Hour)) {
			t.Errorf("a live lease changed: owner %s until %v", live.Owner, live.LeaseUntil)
		}
		q, err := tx.Promotion(ctx, "expired-queued")
		if err != nil {
			return err
		}
		if q.Owner != "dead:1" {
			t.Errorf("a queued promotion was claimed by %s", q.Owner)
		}
		return nil
	})
	// Claimed rows have a new version: an update made from the old copy loses.
	stale := *rows[0]
	stale.Version = 1
	updateFails(t, s, "update of a promotion claimed since it was read", store.ErrConflict, func(ctx context.Context, tx store.Tx) error {
		return tx.UpdatePromotion(ctx, &stale)
	})
}
