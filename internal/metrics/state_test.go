package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-dev/ferry/internal/metrics"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
)

type storeTx = store.Tx

// openStore opens a real SQLite store in a temporary directory.
func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	return openStoreAt(t, filepath.Join(t.TempDir(), "ferry.db"))
}

func openStoreAt(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// seed applies pipeline name with environments dev and prod, and stores
// promotions into prod in the given states.
func seed(t *testing.T, st store.Store, name string, states map[promotion.State]int) {
	t.Helper()
	src := fmt.Sprintf(`name: %s
environments:
  - name: dev
    steps: [{name: deploy, exec: {run: 'true'}}]
  - name: prod
    after: [dev]
    steps: [{name: deploy, exec: {run: 'true'}}]
`, name)
	spec, err := pipeline.Parse(name+".yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = st.Update(context.Background(), func(tx store.Tx) error {
		if _, err := tx.PutRevision(context.Background(), pipeline.NewRevision(spec, []byte(src))); err != nil {
			return err
		}
		for s, count := range states {
			for range count {
				n++
				p := &promotion.Promotion{ID: fmt.Sprintf("%s-%d", name, n), Pipeline: name, Environment: "prod",
					Kind: promotion.KindPromote, ReleaseID: "rel-1", ReleaseVersion: "1.0.0", Revision: 1, State: s,
					Actor: "alice", CreatedAt: t0, UpdatedAt: t0}
				if err := tx.InsertPromotion(context.Background(), p); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed %s: %v", name, err)
	}
}

// TestStateCollector reads the promotions in flight and queued from a real
// store, and reads the same after the store is closed and opened again, as
// after a restart.
func TestStateCollector(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	st := openStoreAt(t, path)
	seed(t, st, "shop", map[promotion.State]int{
		promotion.Queued: 3, promotion.AwaitingApproval: 1, promotion.Deploying: 1,
		promotion.Succeeded: 4, promotion.RolledBack: 1,
	})
	seed(t, st, "web", nil)

	check := func(st store.Store) {
		t.Helper()
		reg := prometheus.NewRegistry()
		reg.MustRegister(metrics.NewStateCollector(st, 0))
		want := map[string]float64{
			"shop/prod/awaiting_approval": 1, "shop/prod/deploying": 1,
		}
		for _, pl := range []string{"shop", "web"} {
			for _, env := range []string{"dev", "prod"} {
				for _, s := range []promotion.State{promotion.Gating, promotion.AwaitingApproval, promotion.Deploying,
					promotion.Verifying, promotion.Paused, promotion.RollingBack} {
					got := sample(t, reg, "ferry_promotions_in_flight", "environment="+env, "pipeline="+pl, "state="+string(s))
					if got == nil {
						t.Errorf("no ferry_promotions_in_flight series for %s/%s %s: idle environments report 0", pl, env, s)
						continue
					}
					if w := want[pl+"/"+env+"/"+string(s)]; got.Gauge.GetValue() != w {
						t.Errorf("ferry_promotions_in_flight{%s/%s %s} = %v, want %v", pl, env, s, got.Gauge.GetValue(), w)
					}
				}
				wantQueued := 0.0
				if pl == "shop" && env == "prod" {
					wantQueued = 3
				}
				if got := value(t, reg, "ferry_promotion_queue_depth", "environment="+env, "pipeline="+pl); got != wantQueued {
					t.Errorf("ferry_promotion_queue_depth{%s/%s} = %v, want %v", pl, env, got, wantQueued)
				}
			}
		}
		for _, terminal := range []string{"succeeded", "rolled_back", "queued"} {
			if sample(t, reg, "ferry_promotions_in_flight", "environment=prod", "pipeline=shop", "state="+terminal) != nil {
				t.Errorf("ferry_promotions_in_flight has a %s series", terminal)
			}
		}
	}
	check(st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	check(openStoreAt(t, path))
}

// TestStateCollectorReportsAStoreFailure checks that a scrape says the
// store could not be read instead of reporting zeros.
func TestStateCollectorReportsAStoreFailure(t *testing.T) {
	st := openStore(t)
	seed(t, st, "shop", map[promotion.State]int{promotion.Deploying: 1})
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewStateCollector(st, 0))
	st.Close()
	_, err := reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "read promotion states") {
		t.Fatalf("gather from a closed store: %v, want an error about reading promotion states", err)
	}
}

// TestStoreTiming checks that the wrapped store times each transaction by
// op and result, and passes results and errors through.
func TestStoreTiming(t *testing.T) {
	m, reg := newMetrics(t)
	raw := openStore(t)
	seed(t, raw, "shop", map[promotion.State]int{promotion.Deploying: 1})
	st := m.Store(raw)
	ctx := context.Background()
	refused := errors.New("refused")
	if err := st.Update(ctx, func(tx store.Tx) error {
		time.Sleep(20 * time.Millisecond)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("update error = %v, want the function's error", err)
	}
	if err := st.View(ctx, func(tx store.Tx) error {
		_, err := tx.Promotion(ctx, "nope")
		return err
	}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("view of a missing promotion: %v, want ErrNotFound", err)
	}
	if err := st.Update(ctx, func(tx store.Tx) error {
		p, err := tx.Promotion(ctx, "shop-1")
		if err != nil {
			return err
		}
		p.Version-- // an update made meanwhile
		return tx.UpdatePromotion(ctx, p)
	}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a stale update: %v, want ErrConflict", err)
	}
	var pipelines int
	if err := st.View(ctx, func(tx store.Tx) error {
		revs, err := tx.Pipelines(ctx)
		pipelines = len(revs)
		return err
	}); err != nil || pipelines != 1 {
		t.Fatalf("view: %d pipelines, %v", pipelines, err)
	}
	for _, c := range []struct {
		op, result string
		min        float64
	}{{"update", "ok", 0.02}, {"update", "error", 0}, {"update", "conflict", 0}, {"view", "ok", 0}, {"view", "not_found", 0}} {
		n, sum := histogram(t, reg, "ferry_store_transaction_duration_seconds", "op="+c.op, "result="+c.result)
		if n != 1 || sum < c.min {
			t.Errorf("ferry_store_transaction_duration_seconds{op=%s,result=%s}: %d observations summing to %v, want 1 of at least %v", c.op, c.result, n, sum, c.min)
		}
	}
	if n, _ := histogram(t, reg, "ferry_store_transaction_duration_seconds", "op=view", "result=error"); n != 0 {
		t.Errorf("a view that succeeded was counted as an error")
	}
}
