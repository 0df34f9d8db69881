// Package storetest is the conformance suite of store.Store: every
// implementation runs it against a real database from its own tests.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
//			...
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite uses only the store interface. An expected error is always the
// last statement of its transaction, so implementations on databases where
// an error aborts the transaction (PostgreSQL) can pass it.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
)

// Run runs the conformance suite. newStore must return a new, empty store
// and arrange for it to be closed when t ends. Subtests run in parallel, so
// newStore must be safe to call from several goroutines.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Revisions", testRevisions},
		{"Pipelines", testPipelines},
		{"Releases", testReleases},
		{"ReleasesOrder", testReleasesOrder},
		{"PromotionRoundTrip", testPromotionRoundTrip},
		{"PromotionUpdate", testPromotionUpdate},
		{"PromotionErrors", testPromotionErrors},
		{"PromotionFilters", testPromotionFilters},
		{"PromotionGates", testPromotionGates},
		{"PromotionUnreviewed", testPromotionUnreviewed},
		{"PromotionsFinished", testPromotionsFinished},
		{"Approvals", testApprovals},
		{"ApprovalErrors", testApprovalErrors},
		{"LockEnvironment", testLockEnvironment},
		{"Deployments", testDeployments},
		{"StepRuns", testStepRuns},
		{"StepRunErrors", testStepRunErrors},
		{"StepLogs", testStepLogs},
		{"AuditAppend", testAuditAppend},
		{"AuditInvalid", testAuditInvalid},
		{"AuditSeqNoGaps", testAuditSeqNoGaps},
		{"AuditFilters", testAuditFilters},
		{"AuditChain", testAuditChain},
		{"AuditChainConcurrent", testAuditChainConcurrent},
		{"AuditCheckpoints", testAuditCheckpoints},
		{"Idempotency", testIdempotency},
		{"Tokens", testTokens},
		{"TokenErrors", testTokenErrors},
		{"TokensEmpty", testTokensEmpty},
		{"UpdateRollback", testUpdateRollback},
		{"UpdatePanic", testUpdatePanic},
		{"ViewReadOnly", testViewReadOnly},
		{"ViewIsolation", testViewIsolation},
		{"ConcurrentOptimistic", testConcurrentOptimistic},
		{"ConcurrentLocked", testConcurrentLocked},
		{"BenchCommitAndPing", testBenchCommitAndPing},
		{"Replicas", testReplicas},
		{"Leases", testLeases},
		{"NotificationsEnqueue", testNotificationsEnqueue},
		{"NotificationsDelivery", testNotificationsDelivery},
		{"NotificationsConcurrentClaim", testNotificationsConcurrentClaim},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// update runs fn in an Update and fails the test on an error.
func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// view runs fn in a View and fails the test on an error.
func view(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.View(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("view: %v", err)
	}
}

// updateFails runs fn in an Update and checks that it fails with target.
func updateFails(t *testing.T, s store.Store, what string, target error, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	err := s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) })
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// viewFails runs fn in a View and checks that it fails with target.
func viewFails(t *testing.T, s store.Store, what string, target error, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	err := s.View(ctx, func(tx store.Tx) error { return fn(ctx, tx) })
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// equal reports a difference between got and want, compared deeply.
func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, dump(got), dump(want))
	}
}

func dump(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// waitFor waits for ch to be closed, failing the test after a while.
func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
