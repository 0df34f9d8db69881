package engine_test

import (
	"sync"
	"testing"
	"time"
)

func TestSubscribeReportsChangedPromotions(t *testing.T) {
	b := setup(t)
	b.apply(t, `name: shop
environments:
  - name: dev
    steps:
      - name: deploy
        exec: {run: 'true'}
`)
	b.release(t, "shop", "1.0.0")
	var mu sync.Mutex
	seen := map[string]int{}
	cancel := b.eng.Subscribe(func(ids []string) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			seen[id]++
		}
	})
	count := func(id string) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[id]
	}
	p := b.promote(t, "shop", "1.0.0", "dev")
	if n := count(p.ID); n == 0 {
		t.Fatalf("no change of %s reported by the time Promote returned", p.ID)
	}
	b.wait(t, p.ID)
	// The step finishes in a later transaction than the one that started
	// the promotion: that change is reported too.
	deadline := time.Now().Add(5 * time.Second)
	for count(p.ID) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("subscriber saw %d changes of %s, want the start and the end", count(p.ID), p.ID)
		}
		time.Sleep(10 * time.Millisecond)
	}

	cancel()
	b.release(t, "shop", "1.1.0")
	q := b.wait(t, b.promote(t, "shop", "1.1.0", "dev").ID)
	if n := count(q.ID); n != 0 {
		t.Fatalf("subscriber saw %d changes of %s after it cancelled, want none", n, q.ID)
	}
}
