package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/store"
)

// endpoint returns a notification endpoint called name.
func endpoint(name string) pipeline.Notification {
	return pipeline.Notification{
		Name: name, URL: "https://hooks.example.com/" + name, Events: []string{pipeline.EventPromotionSucceeded},
		Format: pipeline.FormatSlack, Headers: map[string]string{"X-Team": "ops"},
		SecretHeaders: map[string]string{"Authorization": "HOOK_AUTH"},
	}
}

func newNotification(promotionID, name, key string, created time.Time) *store.Notification {
	return &store.Notification{
		PromotionID: promotionID, Endpoint: endpoint(name), Event: pipeline.EventPromotionSucceeded, Key: key,
		Payload: json.RawMessage(`{"event":"promotion.succeeded","key":"` + key + `"}`), CreatedAt: created,
	}
}

// insertPromotions stores bare promotions with the given IDs.
func insertBarePromotions(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, id := range ids {
			if err := tx.InsertPromotion(ctx, newBarePromotion(id, "shop", "prod", "rel-1")); err != nil {
				return err
			}
		}
		return nil
	})
}

// enqueue enqueues n and returns whether it was added.
func enqueue(t *testing.T, s store.Store, n *store.Notification) bool {
	t.Helper()
	var added bool
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		added, err = tx.EnqueueNotification(ctx, n)
		return err
	})
	return added
}

func claim(t *testing.T, s store.Store, owner string, now, until time.Time, limit int) []store.Notification {
	t.Helper()
	var got []store.Notification
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		got, err = tx.ClaimNotifications(ctx, owner, now, until, limit)
		return err
	})
	return got
}

func notifications(t *testing.T, s store.Store, promotionID string) []store.Notification {
	t.Helper()
	var got []store.Notification
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		got, err = tx.Notifications(ctx, promotionID)
		return err
	})
	return got
}

// threadKeys summarises notifications as "promotion/name#threadSeq:key".
func threadKeys(ns []store.Notification) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, fmt.Sprintf("%s/%s#%d:%s", n.PromotionID, n.Endpoint.Name, n.ThreadSeq, n.Key))
	}
	return out
}

func testNotificationsEnqueue(t *testing.T, s store.Store) {
	insertBarePromotions(t, s, "p1", "p2")
	first := newNotification("p1", "ops", "gate.blocked:soak", at(0))
	if !enqueue(t, s, first) {
		t.Fatal("the first notification was not added")
	}
	if first.Seq == 0 || first.ThreadSeq != 1 || first.State != store.NotificationPending {
		t.Errorf("enqueued notification has seq %d, thread seq %d, state %s; want a seq, 1, pending", first.Seq, first.ThreadSeq, first.State)
	}
	second := newNotification("p1", "ops", "promotion.succeeded", at(time.Second))
	other := newNotification("p1", "audit", "promotion.succeeded", at(2*time.Second))
	p2 := newNotification("p2", "ops", "promotion.succeeded", at(3*time.Second))
	for _, n := range []*store.Notification{second, other, p2} {
		if !enqueue(t, s, n) {
			t.Fatalf("%s was not added", n.Key)
		}
	}
	if second.ThreadSeq != 2 || other.ThreadSeq != 1 || p2.ThreadSeq != 1 {
		t.Errorf("thread seqs %d, %d, %d; want 2 (second in p1/ops), 1 (first in p1/audit), 1 (first in p2/ops)",
			second.ThreadSeq, other.ThreadSeq, p2.ThreadSeq)
	}
	if !(first.Seq < second.Seq && second.Seq < other.Seq) {
		t.Errorf("seqs %d, %d, %d do not increase in enqueue order", first.Seq, second.Seq, other.Seq)
	}

	// The same key in the same thread is a duplicate, whatever else differs;
	// in another thread it is not.
	dup := newNotification("p1", "ops", "gate.blocked:soak", at(time.Hour))
	dup.Payload = json.RawMessage(`{"other":true}`)
	if enqueue(t, s, dup) {
		t.Error("a notification with a key its thread holds was added")
	}
	if dup.Seq != 0 || dup.ThreadSeq != 0 {
		t.Errorf("a refused duplicate got seq %d, thread seq %d", dup.Seq, dup.ThreadSeq)
	}

	got := notifications(t, s, "p1")
	want := []store.Notification{*first, *second, *other}
	for i := range want {
		want[i].CreatedAt = utc(want[i].CreatedAt)
	}
	equal(t, "notifications of p1", got, want)
	// The next notification of a thread follows the duplicate without a gap.
	third := newNotification("p1", "ops", "promotion.failed", at(4*time.Second))
	enqueue(t, s, third)
	if third.ThreadSeq != 3 {
		t.Errorf("the notification after a refused duplicate has thread seq %d, want 3", third.ThreadSeq)
	}
	if got := notifications(t, s, "nobody"); len(got) != 0 {
		t.Errorf("notifications of an unknown promotion: %s", dump(got))
	}
	updateFails(t, s, "notification of an unknown promotion", store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.EnqueueNotification(ctx, newNotification("nobody", "ops", "k", at(0)))
		return err
	})
}

func testNotificationsDelivery(t *testing.T, s store.Store) {
	insertBarePromotions(t, s, "p1", "p2")
	a1 := newNotification("p1", "ops", "a1", at(0))
	a2 := newNotification("p1", "ops", "a2", at(time.Second))
	b1 := newNotification("p2", "ops", "b1", at(2*time.Second))
	for _, n := range []*store.Notification{a1, a2, b1} {
		enqueue(t, s, n)
	}
	now := at(10 * time.Second)
	lease := now.Add(10 * time.Hour)

	// A claim takes whole threads, the thread due first first.
	got := claim(t, s, "w1", now, lease, 1)
	equal(t, "claimed by w1", threadKeys(got), []string{"p1/ops#1:a1", "p1/ops#2:a2"})
	if got[0].Endpoint.URL != a1.Endpoint.URL || got[0].Endpoint.SecretHeaders["Authorization"] != "HOOK_AUTH" {
		t.Errorf("claimed endpoint = %s, want %s", dump(got[0].Endpoint), dump(a1.Endpoint))
	}
	// A claimed thread is nobody else's until the claim ends.
	equal(t, "claimed by w2", threadKeys(claim(t, s, "w2", now, lease, 10)), []string{"p2/ops#1:b1"})
	equal(t, "claimed by w3 while both are claimed", threadKeys(claim(t, s, "w3", now, lease, 10)), []string{})

	// w1 delivered a1; a2 failed and waits a minute.
	retryAt := now.Add(time.Minute)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.RecordDelivery(ctx, &store.Delivery{PromotionID: "p1", Name: "ops", Owner: "w1", At: now,
			Delivered: []int64{a1.Seq}, Retry: []int64{a2.Seq}, Error: "status 503", RetryAt: retryAt})
	})
	ns := notifications(t, s, "p1")
	if ns[0].State != store.NotificationDelivered || ns[0].Attempts != 1 || ns[0].FinishedAt == nil || !ns[0].FinishedAt.Equal(now) {
		t.Errorf("delivered notification = %s", dump(ns[0]))
	}
	if ns[1].State != store.NotificationPending || ns[1].Attempts != 1 || ns[1].LastError != "status 503" ||
		ns[1].FinishedAt != nil || ns[1].LastAttemptAt == nil || !ns[1].LastAttemptAt.Equal(now) {
		t.Errorf("notification to retry = %s", dump(ns[1]))
	}

	// A notification enqueued into a thread that waits to retry waits with it,
	// and goes out after the one that waited, in the same claim.
	a3 := newNotification("p1", "ops", "a3", now.Add(time.Second))
	enqueue(t, s, a3)
	equal(t, "claimed before the retry time", threadKeys(claim(t, s, "w3", now.Add(59*time.Second), lease, 10)), []string{})
	got = claim(t, s, "w3", retryAt, retryAt.Add(30*time.Second), 10)
	equal(t, "claimed at the retry time", threadKeys(got), []string{"p1/ops#2:a2", "p1/ops#3:a3"})

	// Given up: failed, with the error, and the thread has nothing left.
	later := retryAt.Add(time.Second)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.RecordDelivery(ctx, &store.Delivery{PromotionID: "p1", Name: "ops", Owner: "w3", At: later,
			Failed: []int64{a2.Seq, a3.Seq}, Error: "status 410"})
	})
	ns = notifications(t, s, "p1")
	for _, n := range ns[1:] {
		if n.State != store.NotificationFailed || n.LastError != "status 410" || n.FinishedAt == nil || !n.FinishedAt.Equal(later) {
			t.Errorf("given-up notification = %s", dump(n))
		}
	}
	if n := ns[1]; n.Attempts != 2 {
		t.Errorf("a2 has %d attempts, want 2", n.Attempts)
	}
	// Recording again does not touch notifications that are no longer pending.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.RecordDelivery(ctx, &store.Delivery{PromotionID: "p1", Name: "ops", Owner: "w3", At: later.Add(time.Hour),
			Delivered: []int64{a1.Seq, a2.Seq, a3.Seq}})
	})
	equal(t, "notifications recorded twice", notifications(t, s, "p1"), ns)
	equal(t, "claimed with nothing pending", threadKeys(claim(t, s, "w4", later.Add(time.Hour), later.Add(2*time.Hour), 10)), []string{})

	// w2's claim on p2 lapses: w4 takes the thread over. w2's late record
	// counts its attempt but does not end w4's claim.
	after := lease.Add(time.Second)
	equal(t, "claimed after the lease", threadKeys(claim(t, s, "w4", after, after.Add(30*time.Second), 10)), []string{"p2/ops#1:b1"})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.RecordDelivery(ctx, &store.Delivery{PromotionID: "p2", Name: "ops", Owner: "w2", At: after,
			Retry: []int64{b1.Seq}, Error: "timeout", RetryAt: after})
	})
	equal(t, "claimed while w4 holds the thread", threadKeys(claim(t, s, "w5", after, after.Add(30*time.Second), 10)), []string{})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.RecordDelivery(ctx, &store.Delivery{PromotionID: "p2", Name: "ops", Owner: "w4", At: after,
			Delivered: []int64{b1.Seq}})
	})
	if ns := notifications(t, s, "p2"); ns[0].State != store.NotificationDelivered || ns[0].Attempts != 2 || ns[0].LastError != "timeout" {
		t.Errorf("b1 = %s, want delivered after 2 attempts, the last error kept", dump(ns[0]))
	}
}

// testNotificationsConcurrentClaim has several deliverers claim at once:
// every thread, and so every notification, is claimed exactly once.
func testNotificationsConcurrentClaim(t *testing.T, s store.Store) {
	const threads = 24
	var ids []string
	for i := range threads {
		ids = append(ids, fmt.Sprintf("p%02d", i))
	}
	insertBarePromotions(t, s, ids...)
	for _, id := range ids {
		for j := range 2 {
			enqueue(t, s, newNotification(id, "ops", fmt.Sprintf("k%d", j), at(time.Duration(j)*time.Second)))
		}
	}
	now := at(time.Minute)
	var (
		mu      sync.Mutex
		claimed = map[string]string{}
		wg      sync.WaitGroup
	)
	for w := range 4 {
		owner := fmt.Sprintf("w%d", w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var got []store.Notification
				err := s.Update(t.Context(), func(tx store.Tx) error {
					var err error
					got, err = tx.ClaimNotifications(t.Context(), owner, now, now.Add(time.Hour), 2)
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
				for _, n := range threadKeys(got) {
					if prev, dup := claimed[n]; dup {
						t.Errorf("%s claimed by %s and %s", n, prev, owner)
					}
					claimed[n] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var keys []string
	for k := range claimed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var want []string
	for _, id := range ids {
		want = append(want, id+"/ops#1:k0", id+"/ops#2:k1")
	}
	equal(t, "claimed notifications", keys, want)
}
