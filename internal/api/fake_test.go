package api

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/alert"
	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/stats"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
	"github.com/ferry-dev/ferry/internal/view"
)

// The engine is the Service the server wires in.
var _ Service = (*engine.Engine)(nil)

// fakeService stands in for the engine only to test the HTTP layer: status
// mapping, problem shape, limits, idempotency, long-polling and query
// parsing. What the engine does is tested in internal/engine. A method
// without a function set answers with err, or with a not_found error.
type fakeService struct {
	mu    sync.Mutex
	calls map[string]int
	// actors records the actor of each call that has one.
	actors []string
	// promotionFilter and auditFilter record the last filters received.
	promotionFilter store.PromotionFilter
	auditFilter     store.AuditFilter
	historyArgs     []any
	pipelineArgs    []any

	err           error
	apply         func(actor, filename string, source []byte) (view.ApplyResult, error)
	createRelease func(r release.Release) (*release.Release, bool, error)
	release       func(pipeline, version string) (*release.Release, error)
	promote       func(req engine.PromoteRequest) (*view.Promotion, error)
	promotion     func(id string) (*view.Promotion, error)
	wait          func(ctx context.Context, id string, after int64) (*view.Promotion, error)
	cluster       func() ([]view.Replica, error)
	// statsRequest records the last request of Stats.
	statsRequest engine.StatsRequest
}

func (f *fakeService) record(method, actor string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[method]++
	if actor != "" {
		f.actors = append(f.actors, actor)
	}
}

// count returns how many times method was called.
func (f *fakeService) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fakeService) fail() error {
	if f.err != nil {
		return f.err
	}
	return &engine.Error{Code: engine.CodeNotFound, Message: "fake: nothing here"}
}

func (f *fakeService) Apply(_ context.Context, actor, filename string, source []byte) (view.ApplyResult, error) {
	f.record("Apply", actor)
	if f.apply != nil {
		return f.apply(actor, filename, source)
	}
	return view.ApplyResult{}, f.fail()
}

func (f *fakeService) Pipelines(context.Context) ([]view.Pipeline, error) {
	f.record("Pipelines", "")
	if f.err != nil {
		return nil, f.err
	}
	return nil, nil
}

func (f *fakeService) Pipeline(_ context.Context, name string, revision int) (*pipeline.Revision, error) {
	f.record("Pipeline", "")
	f.mu.Lock()
	f.pipelineArgs = []any{name, revision}
	f.mu.Unlock()
	return nil, f.fail()
}

func (f *fakeService) CreateRelease(_ context.Context, actor string, r release.Release) (*release.Release, bool, error) {
	f.record("CreateRelease", actor)
	if f.createRelease != nil {
		return f.createRelease(r)
	}
	return nil, false, f.fail()
}

func (f *fakeService) Releases(context.Context, string, int) ([]release.Release, error) {
	f.record("Releases", "")
	return nil, f.fail()
}

func (f *fakeService) Release(_ context.Context, pipeline, version string) (*release.Release, error) {
	f.record("Release", "")
	if f.release != nil {
		return f.release(pipeline, version)
	}
	return nil, f.fail()
}

func (f *fakeService) Promote(_ context.Context, actor string, req engine.PromoteRequest) (*view.Promotion, error) {
	f.record("Promote", actor)
	if f.promote != nil {
		return f.promote(req)
	}
	return nil, f.fail()
}

func (f *fakeService) Rollback(_ context.Context, actor string, _ engine.RollbackRequest) (*view.Promotion, error) {
	f.record("Rollback", actor)
	return nil, f.fail()
}

func (f *fakeService) Abort(_ context.Context, actor, _, _ string) (*view.Promotion, error) {
	f.record("Abort", actor)
	return nil, f.fail()
}

func (f *fakeService) Promotion(_ context.Context, id string) (*view.Promotion, error) {
	f.record("Promotion", "")
	if f.promotion != nil {
		return f.promotion(id)
	}
	return nil, f.fail()
}

func (f *fakeService) Promotions(_ context.Context, pf store.PromotionFilter) ([]view.Promotion, error) {
	f.record("Promotions", "")
	f.mu.Lock()
	f.promotionFilter = pf
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return nil, nil
}

func (f *fakeService) WaitPromotion(ctx context.Context, id string, after int64) (*view.Promotion, error) {
	f.record("WaitPromotion", "")
	if f.wait != nil {
		return f.wait(ctx, id, after)
	}
	return nil, f.fail()
}

func (f *fakeService) Logs(context.Context, string) ([]view.LogChunk, error) {
	f.record("Logs", "")
	return nil, f.fail()
}

func (f *fakeService) Status(context.Context, string) (*view.Status, error) {
	f.record("Status", "")
	return nil, f.fail()
}

func (f *fakeService) History(_ context.Context, pipeline, env string, limit int) ([]view.Promotion, error) {
	f.record("History", "")
	f.mu.Lock()
	f.historyArgs = []any{pipeline, env, limit}
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return nil, nil
}

func (f *fakeService) Audit(_ context.Context, af store.AuditFilter) ([]audit.Event, error) {
	f.record("Audit", "")
	f.mu.Lock()
	f.auditFilter = af
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return nil, nil
}

func (f *fakeService) Cluster(context.Context) ([]view.Replica, error) {
	f.record("Cluster", "")
	if f.cluster != nil {
		return f.cluster()
	}
	if f.err != nil {
		return nil, f.err
	}
	return nil, nil
}

func (f *fakeService) Approve(_ context.Context, who auth.Principal, id, _ string) (*view.Promotion, error) {
	f.record("Approve", who.User)
	if f.err != nil {
		return nil, f.err
	}
	return testPromotion(id, 2, promotion.Gating), nil
}

func (f *fakeService) Reject(_ context.Context, who auth.Principal, id, _ string) (*view.Promotion, error) {
	f.record("Reject", who.User)
	if f.err != nil {
		return nil, f.err
	}
	return testPromotion(id, 2, promotion.Rejected), nil
}

func (f *fakeService) Resume(_ context.Context, actor, id, _ string) (*view.Promotion, error) {
	f.record("Resume", actor)
	if f.err != nil {
		return nil, f.err
	}
	return testPromotion(id, 2, promotion.Verifying), nil
}

func (f *fakeService) ReceiveAlerts(_ context.Context, actor string, m *alert.Message) (*view.AlertReport, error) {
	f.record("ReceiveAlerts", actor)
	if f.err != nil {
		return nil, f.err
	}
	return &view.AlertReport{Targets: []view.AlertTarget{}}, nil
}

func (f *fakeService) PendingApprovals(_ context.Context, who auth.Principal) ([]view.Promotion, error) {
	f.record("PendingApprovals", who.User)
	return nil, f.err
}

func (f *fakeService) Plan(_ context.Context, who auth.Principal, req engine.PlanRequest) (*view.Plan, error) {
	f.record("Plan", who.User)
	if f.err != nil {
		return nil, f.err
	}
	return &view.Plan{Pipeline: req.Pipeline, Environment: req.Environment, Proceed: true, Result: promotion.GatePass, Gates: []promotion.GateEvaluation{}}, nil
}

func (f *fakeService) Reviews(context.Context) ([]view.Promotion, error) {
	f.record("Reviews", "")
	return nil, f.err
}

func (f *fakeService) Review(_ context.Context, who auth.Principal, id, _ string) (*view.Promotion, error) {
	f.record("Review", who.User)
	if f.err != nil {
		return nil, f.err
	}
	return testPromotion(id, 2, promotion.Succeeded), nil
}

func (f *fakeService) Stats(_ context.Context, req engine.StatsRequest) (*stats.Report, error) {
	f.record("Stats", "")
	f.mu.Lock()
	f.statsRequest = req
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return &stats.Report{Pipeline: req.Pipeline, Production: []string{}}, nil
}

// testPromotion returns a promotion view at version v in state st.
func testPromotion(id string, v int64, st promotion.State) *view.Promotion {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return &view.Promotion{
		ID: id, Pipeline: "shop", Environment: "prod", Kind: promotion.KindPromote, State: st,
		Release: view.ReleaseRef{ID: "rel-1", Version: "1.2.3"}, Actor: "alice",
		Steps: []view.Step{}, CreatedAt: at, UpdatedAt: at, Version: v,
	}
}

// openStore opens a SQLite store in a temporary directory, closed when the test ends.
func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
