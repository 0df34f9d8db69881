package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

// writeEverything writes one row of every kind, as a transaction of the
// engine would.
func writeEverything(ctx context.Context, tx store.Tx) error {
	if _, err := tx.PutRevision(ctx, newRevision("shop", "sha256:one", at(0))); err != nil {
		return err
	}
	if err := tx.InsertRelease(ctx, newRelease("rel-1", "shop", "1.0.0", at(0))); err != nil {
		return err
	}
	if err := tx.InsertPromotion(ctx, newPromotion("p1", "shop", "prod", "rel-1")); err != nil {
		return err
	}
	if err := tx.InsertStepRun(ctx, newStepRun("p1", promotion.PhaseDeploy, 0, 1, at(0))); err != nil {
		return err
	}
	if err := tx.PutApproval(ctx, newApproval("p1", "alice", promotion.Approve, at(0))); err != nil {
		return err
	}
	if err := tx.AppendStepLog(ctx, &store.LogChunk{PromotionID: "p1", Phase: promotion.PhaseDeploy, Attempt: 1, Data: []byte("x"), At: at(0)}); err != nil {
		return err
	}
	if err := tx.InsertDeployment(ctx, &store.Deployment{Pipeline: "shop", Environment: "prod", ReleaseID: "rel-1", PromotionID: "p1", At: at(0)}); err != nil {
		return err
	}
	if err := tx.AppendAudit(ctx, newEvent("alice", "promotion.create", "p1", at(0))); err != nil {
		return err
	}
	return tx.PutIdempotency(ctx, &store.IdempotencyRecord{Key: "k1", RequestHash: "h", Status: 201, CreatedAt: at(0)})
}

// checkEmpty fails the test if the store holds anything writeEverything writes.
func checkEmpty(t *testing.T, s store.Store) {
	t.Helper()
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		var found []string
		if _, err := tx.Revision(ctx, "shop", 0); !errors.Is(err, store.ErrNotFound) {
			found = append(found, fmt.Sprintf("revision (%v)", err))
		}
		if _, err := tx.ReleaseByID(ctx, "rel-1"); !errors.Is(err, store.ErrNotFound) {
			found = append(found, fmt.Sprintf("release (%v)", err))
		}
		if _, err := tx.Promotion(ctx, "p1"); !errors.Is(err, store.ErrNotFound) {
			found = append(found, fmt.Sprintf("promotion (%v)", err))
		}
		if _, err := tx.Idempotency(ctx, "k1"); !errors.Is(err, store.ErrNotFound) {
			found = append(found, fmt.Sprintf("idempotency record (%v)", err))
		}
		if runs, err := tx.StepRuns(ctx, "p1"); err != nil || len(runs) != 0 {
			found = append(found, fmt.Sprintf("step runs (%d, %v)", len(runs), err))
		}
		if logs, err := tx.StepLogs(ctx, "p1"); err != nil || len(logs) != 0 {
			found = append(found, fmt.Sprintf("step logs (%d, %v)", len(logs), err))
		}
		if approvals, err := tx.Approvals(ctx, "p1"); err != nil || len(approvals) != 0 {
			found = append(found, fmt.Sprintf("approvals (%d, %v)", len(approvals), err))
		}
		if deps, err := tx.Deployments(ctx, "shop", "prod", 0); err != nil || len(deps) != 0 {
			found = append(found, fmt.Sprintf("deployments (%d, %v)", len(deps), err))
		}
		if events, err := tx.AuditEvents(ctx, store.AuditFilter{}); err != nil || len(events) != 0 {
			found = append(found, fmt.Sprintf("audit events (%d, %v)", len(events), err))
		}
		if len(found) > 0 {
			t.Errorf("store should be empty, found: %v", found)
		}
		return nil
	})
}

func testUpdateRollback(t *testing.T, s store.Store) {
	errStop := errors.New("stop")
	updateFails(t, s, "update whose function fails", errStop, func(ctx context.Context, tx store.Tx) error {
		if err := writeEverything(ctx, tx); err != nil {
			return fmt.Errorf("write everything: %w", err)
		}
		return fmt.Errorf("wrapped: %w", errStop)
	})
	checkEmpty(t, s)
	// The store still works, and the rolled-back writes do not conflict.
	update(t, s, writeEverything)
}

func testUpdatePanic(t *testing.T, s store.Store) {
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the panic of the update function", r)
			}
		}()
		ctx := t.Context()
		_ = s.Update(ctx, func(tx store.Tx) error {
			if err := writeEverything(ctx, tx); err != nil {
				t.Errorf("write everything: %v", err)
			}
			panic("boom")
		})
	}()
	checkEmpty(t, s)
	update(t, s, writeEverything)
}

func testViewReadOnly(t *testing.T, s store.Store) {
	ctx := t.Context()
	err := s.View(ctx, func(tx store.Tx) error {
		return tx.InsertRelease(ctx, newRelease("rel-1", "shop", "1.0.0", at(0)))
	})
	if err == nil {
		t.Errorf("a write in a View succeeded")
	}
	checkEmpty(t, s)
}

func testViewIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	inserted := make(chan struct{})
	checked := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, func(tx store.Tx) error {
			if err := tx.InsertRelease(ctx, newRelease("rel-1", "shop", "1.0.0", at(0))); err != nil {
				close(inserted)
				return err
			}
			close(inserted)
			select {
			case <-checked:
				return nil
			case <-time.After(30 * time.Second):
				return errors.New("timed out waiting for the view")
			}
		})
	}()
	waitFor(t, "the insert", inserted)
	err := s.View(ctx, func(tx store.Tx) error {
		_, err := tx.ReleaseByID(ctx, "rel-1")
		return err
	})
	close(checked)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a View saw an uncommitted release (error %v, want %v)", err, store.ErrNotFound)
	}
	if err := <-done; err != nil {
		t.Fatalf("update: %v", err)
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.ReleaseByID(ctx, "rel-1")
		return err
	})
}

const (
	// concurrentWorkers is the number of goroutines of the concurrency tests.
	concurrentWorkers = 8
	// optimisticRounds is the number of increments of each goroutine of
	// testConcurrentOptimistic; each costs about three retries.
	optimisticRounds = 25
	// lockedRounds is the number of increments of each goroutine of
	// testConcurrentLocked.
	lockedRounds = 50
)

// testConcurrentOptimistic increments a counter in a promotion from several
// goroutines, each reading it in a View and writing it back with
// UpdatePromotion, retrying when its version went stale. No increment may
// be lost.
func testConcurrentOptimistic(t *testing.T, s store.Store) {
	insertPromotions(t, s, "p1")
	ctx := t.Context()
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		conflicts int
	)
	for w := range concurrentWorkers {
		wg.Go(func() {
			for range optimisticRounds {
				for {
					var p *promotion.Promotion
					err := s.View(ctx, func(tx store.Tx) error {
						var err error
						p, err = tx.Promotion(ctx, "p1")
						return err
					})
					if err != nil {
						t.Errorf("worker %d: load: %v", w, err)
						return
					}
					p.Cursor.Index++
					err = s.Update(ctx, func(tx store.Tx) error { return tx.UpdatePromotion(ctx, p) })
					if errors.Is(err, store.ErrConflict) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						t.Errorf("worker %d: update: %v", w, err)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		p, err := tx.Promotion(ctx, "p1")
		if err != nil {
			return err
		}
		const n = concurrentWorkers * optimisticRounds
		if p.Cursor.Index != n || p.Version != n+1 {
			t.Errorf("after %d increments: counter %d, version %d; want %d, %d", n, p.Cursor.Index, p.Version, n, n+1)
		}
		return nil
	})
	t.Logf("%d conflicts retried", conflicts)
}

// testConcurrentLocked increments a counter from several goroutines, each
// locking the promotion's environment, then reading and writing the counter
// in one Update, and appends an audit event with each increment.
// LockEnvironment serializes the transactions: none may fail, no increment
// may be lost, and the audit log has no gaps and follows commit order.
// (Without the lock, a store need not serialize two Updates that read the
// same row: UpdatePromotion's version check then refuses the later one.)
func testConcurrentLocked(t *testing.T, s store.Store) {
	insertPromotions(t, s, "p1")
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range concurrentWorkers {
		wg.Go(func() {
			for i := range lockedRounds {
				err := s.Update(ctx, func(tx store.Tx) error {
					// The environment of p1, as insertPromotions stores it.
					if err := tx.LockEnvironment(ctx, "shop", "env-p1"); err != nil {
						return err
					}
					p, err := tx.Promotion(ctx, "p1")
					if err != nil {
						return err
					}
					p.Cursor.Failures++
					if err := tx.UpdatePromotion(ctx, p); err != nil {
						return err
					}
					return tx.AppendAudit(ctx, &audit.Event{
						Time: at(0), Actor: fmt.Sprintf("worker-%d", w), Action: "increment",
						Subject: "promotion/p1", PromotionID: "p1",
						Details: audit.Details(map[string]int{"round": i, "value": p.Cursor.Failures}),
					})
				})
				if err != nil {
					t.Errorf("worker %d: round %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	const n = concurrentWorkers * lockedRounds
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		p, err := tx.Promotion(ctx, "p1")
		if err != nil {
			return err
		}
		if p.Cursor.Failures != n || p.Version != n+1 {
			t.Errorf("after %d increments: counter %d, version %d; want %d, %d", n, p.Cursor.Failures, p.Version, n, n+1)
		}
		return nil
	})
	events := allAudit(t, s)
	if len(events) != n {
		t.Fatalf("%d audit events, want %d", len(events), n)
	}
	for i, e := range events {
		if e.Seq != int64(i+1) {
			t.Fatalf("audit event %d has seq %d: want 1 to %d without gaps", i, e.Seq, n)
		}
		// Each event records the value its transaction wrote: seq order is commit order.
		if want := fmt.Sprintf(`"value":%d`, i+1); !strings.Contains(string(e.Details), want) {
			t.Fatalf("audit event %d: details %s, want %s", e.Seq, e.Details, want)
		}
	}
	// And each chains onto the one committed before it.
	verifyAudit(t, s)
}

func testBenchCommitAndPing(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	for range 3 {
		if err := s.BenchCommit(ctx); err != nil {
			t.Fatalf("bench commit: %v", err)
		}
	}
	// BenchCommit writes nothing the Tx methods can see.
	checkEmpty(t, s)
}
