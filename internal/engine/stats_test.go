package engine_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/pgtest"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/stats"
	"github.com/ferry-dev/ferry/internal/step"
	stepexec "github.com/ferry-dev/ferry/internal/step/exec"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/postgres"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
)

// statsPipeline: dev, whose smoke check fails for 1.1.0, then prod, which
// needs one approval.
const statsPipeline = `name: shop
environments:
  - name: dev
    steps: [{name: deploy, exec: {run: 'true'}}]
    verify: [{name: smoke, exec: {run: 'test "$FERRY_RELEASE" != 1.1.0'}}]
  - name: prod
    after: [dev]
    gates: {approvals: {required: 1}}
    steps: [{name: deploy, exec: {run: 'true'}}]
    verify: [{name: smoke, exec: {run: 'true'}}]
`

// startStatsEngine starts an engine with a settable clock on a new store of kind.
func startStatsEngine(t *testing.T, kind string, clk *clock) *engine.Engine {
	t.Helper()
	ctx := context.Background()
	var st store.Store
	var err error
	switch kind {
	case "sqlite":
		st, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	case "postgres":
		st, err = postgres.Open(ctx, pgtest.Start(t).CreateDatabase(t, "stats"))
	}
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{
		Store:         st,
		Drivers:       map[string]step.Driver{"exec": &stepexec.Driver{Environ: os.Environ(), KillGrace: time.Second}},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:           clk.Now,
		ShutdownGrace: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Stop(); st.Close() })
	return eng
}

// TestStatsFromStore scripts a history through a real engine on each store,
// with a clock that stands still while each step of the script runs, and
// checks the figures Stats loads and computes from it.
func TestStatsFromStore(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) { testStatsFromStore(t, kind) })
	}
}

func testStatsFromStore(t *testing.T, kind string) {
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	clk := &clock{t: t0}
	eng := startStatsEngine(t, kind, clk)
	b := &testBundle{eng: eng}
	ctx := context.Background()
	b.apply(t, statsPipeline)
	bob := auth.Principal{User: "bob", Grants: []auth.Grant{{Role: auth.RoleApprover}}}

	newRelease := func(version string, commit *time.Time) {
		t.Helper()
		if _, _, err := eng.CreateRelease(ctx, "ci", release.Release{Pipeline: "shop", Version: version, CommitTime: commit,
			Artifacts: []release.Artifact{{Name: "api", URI: "x/api", Digest: digest(version)}}}); err != nil {
			t.Fatal(err)
		}
	}
	promote := func(m int, version, env string, want promotion.State) string {
		t.Helper()
		clk.Set(at(m))
		p := b.promote(t, "shop", version, env)
		if got := b.waitState(t, p.ID, want); got.State != want {
			t.Fatalf("%s into %s: %s (%s), want %s", version, env, got.State, got.Message, want)
		}
		return p.ID
	}
	approve := func(m int, id string) {
		t.Helper()
		clk.Set(at(m))
		if _, err := eng.Approve(ctx, bob, id, "ok"); err != nil {
			t.Fatal(err)
		}
		if p := b.wait(t, id); p.State != promotion.Succeeded {
			t.Fatalf("after approval: %s (%s)", p.State, p.Message)
		}
	}

	// 00:00 1.0.0, committed an hour before. 00:10 into dev. 00:20 into prod,
	// approved by bob at 00:50.
	newRelease("1.0.0", ptr(at(-60)))
	promote(10, "1.0.0", "dev", promotion.Succeeded)
	approve(50, promote(20, "1.0.0", "prod", promotion.AwaitingApproval))
	// 01:00 1.1.0, committed at 00:30; at 01:10 its smoke check fails in dev
	// and dev is rolled back to 1.0.0.
	clk.Set(at(60))
	newRelease("1.1.0", ptr(at(30)))
	promote(70, "1.1.0", "dev", promotion.RolledBack)
	// 01:20 1.2.0, without a commit time. 01:30 into dev; at 01:35 a person
	// rolls dev back; 01:40 into prod, approved at 01:55.
	clk.Set(at(80))
	newRelease("1.2.0", nil)
	promote(90, "1.2.0", "dev", promotion.Succeeded)
	clk.Set(at(95))
	r, err := eng.Rollback(ctx, "alice", engine.RollbackRequest{Pipeline: "shop", Environment: "dev", Reason: "bad numbers"})
	if err != nil {
		t.Fatal(err)
	}
	if p := b.wait(t, r.ID); p.State != promotion.Succeeded {
		t.Fatalf("rollback: %s (%s)", p.State, p.Message)
	}
	approve(115, promote(100, "1.2.0", "prod", promotion.AwaitingApproval))

	clk.Set(at(24 * 60))
	rep, err := eng.Stats(ctx, engine.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.From.Equal(at(24*60).Add(-engine.DefaultStatsWindow)) || !rep.To.Equal(at(24*60)) ||
		!reflect.DeepEqual(rep.Production, []string{"shop/prod"}) || len(rep.AuditGaps) != 0 {
		t.Errorf("report: from %s to %s, production %v, gaps %v", rep.From, rep.To, rep.Production, rep.AuditGaps)
	}
	checkStats(t, "every environment", rep.Figures, stats.Figures{
		// dev 1.0.0, prod 1.0.0, dev 1.1.0, dev 1.2.0, the rollback of dev, prod 1.2.0.
		Promotions: 6,
		// The five promote-kind ones; dev 1.1.0 did not succeed.
		Attempts: 5, Succeeded: 4, SuccessRate: frac(4, 5),
		// prod 1.0.0: 00:50 − 00:00 = 50m; prod 1.2.0: 01:55 − 01:20 = 35m; mean 42m30s.
		PromotedToProduction: 2, MeanTimeToPromoteSeconds: secs(42*time.Minute + 30*time.Second),
		// dev 1.1.0 was rolled back automatically, dev 1.2.0 by hand.
		RolledBack: 2, RollbackRate: frac(2, 5),
		Verified: 5, VerificationFailed: 1, VerificationFailureRate: frac(1, 5),
		Live: 4, IncidentRate: frac(0, 4),
		// 30m and 15m awaiting approval.
		AwaitedApproval: 2, ApprovalLatencySeconds: secs(22*time.Minute + 30*time.Second),
		WithTelemetry: 5, TelemetryCoverage: frac(5, 5),
		AuditComplete: 6, AuditCompleteness: frac(6, 6),
		// Two successful deployments to prod in 30 days.
		Deployments: 2, SuccessfulDeployments: 2, DeploymentFrequencyPerDay: ptr(2.0 / 30),
		// prod 1.0.0: 00:50 − (−01:00) = 110m; 1.2.0 has no commit time.
		LeadTimeCount: 1, WithoutCommitTime: 1, LeadTimeForChangesSeconds: secs(110 * time.Minute),
		ChangeFailureRate: frac(0, 2),
	})

	// dev alone, as production, over the last day in buckets of 12 hours.
	rep, err = eng.Stats(ctx, engine.StatsRequest{Pipeline: "shop", Environment: "dev", Window: 24 * time.Hour, Bucket: 12 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	dev := stats.Figures{
		Promotions: 4, Attempts: 3, Succeeded: 2, SuccessRate: frac(2, 3),
		// 1.0.0: 00:10 − 00:00; 1.2.0: 01:30 − 01:20.
		PromotedToProduction: 2, MeanTimeToPromoteSeconds: secs(10 * time.Minute),
		RolledBack: 2, RollbackRate: frac(2, 3),
		Verified: 3, VerificationFailed: 1, VerificationFailureRate: frac(1, 3),
		Live: 2, IncidentRate: frac(0, 2),
		WithTelemetry: 3, TelemetryCoverage: frac(3, 3),
		AuditComplete: 4, AuditCompleteness: frac(4, 4),
		Deployments: 3, SuccessfulDeployments: 2,
		// 1.0.0: 00:10 − (−01:00) = 70m.
		LeadTimeCount: 1, WithoutCommitTime: 1, LeadTimeForChangesSeconds: secs(70 * time.Minute),
		// 1.1.0 failed and was rolled back at once (the clock stood still);
		// 1.2.0 was undone at 01:35 by the rollback that ended then.
		ChangeFailures: 2, ChangeFailureRate: frac(2, 3), Restored: 2, TimeToRestoreSeconds: secs(0),
	}
	if !reflect.DeepEqual(rep.Production, []string{"shop/dev"}) || len(rep.Series) != 2 {
		t.Fatalf("production %v, %d buckets", rep.Production, len(rep.Series))
	}
	dev.DeploymentFrequencyPerDay = ptr(2.0)
	checkStats(t, "dev", rep.Figures, dev)
	// Everything happened in the first 12 hours: twice as many a day there.
	dev.DeploymentFrequencyPerDay = ptr(4.0)
	checkStats(t, "dev, first bucket", rep.Series[0].Figures, dev)
	checkStats(t, "dev, second bucket", rep.Series[1].Figures, stats.Figures{})

	// Nothing ended in the last hour.
	if rep, err = eng.Stats(ctx, engine.StatsRequest{Pipeline: "shop", Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	checkStats(t, "last hour", rep.Figures, stats.Figures{})

	for _, bad := range []struct {
		req  engine.StatsRequest
		code engine.Code
		want string
	}{
		{engine.StatsRequest{Pipeline: "web"}, engine.CodeNotFound, `pipeline "web" does not exist`},
		{engine.StatsRequest{Pipeline: "shop", Environment: "qa"}, engine.CodeNotFound, `environment "qa" is not in pipeline shop (environments: dev, prod)`},
		{engine.StatsRequest{Window: 400 * 24 * time.Hour}, engine.CodeInvalid, "longer than the longest allowed, 366d"},
		{engine.StatsRequest{Window: 24 * time.Hour, Bucket: 5 * time.Hour}, engine.CodeInvalid, "not a whole number of 5h0m0s buckets"},
	} {
		_, err := eng.Stats(ctx, bad.req)
		if engine.CodeOf(err) != bad.code || err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Stats(%+v) = %v, want %s containing %q", bad.req, err, bad.code, bad.want)
		}
	}
}

// checkStats reports each figure of got that differs from want.
func checkStats(t *testing.T, what string, got, want stats.Figures) {
	t.Helper()
	for _, d := range got.Diff(want) {
		t.Errorf("%s: %s", what, d)
	}
}

func ptr[T any](v T) *T { return &v }

func secs(d time.Duration) *float64 { return ptr(d.Seconds()) }

func frac(n, d int) *float64 { return ptr(float64(n) / float64(d)) }
