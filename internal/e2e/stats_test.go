package e2e

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/stats"
	"github.com/ferry-dev/ferry/internal/view"
)

// statsPipeline: dev, whose smoke check fails for release 1.1.0, then prod,
// which needs one approval (rollbacks too).
const statsPipeline = `name: shop
environments:
  - name: dev
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" > "$WORK/dev"'}}]
    verify: [{name: smoke, exec: {run: 'test "$FERRY_RELEASE" != 1.1.0'}}]
  - name: prod
    after: [dev]
    gates: {approvals: {required: 1}}
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" > "$WORK/prod"'}}]
    verify: [{name: smoke, exec: {run: 'test -s "$WORK/prod"'}}]
`

func TestStatsOnAScriptedHistory(t *testing.T) { eachStore(t, testStatsOnAScriptedHistory) }

// testStatsOnAScriptedHistory scripts a history through the CLI — releases
// with and without commit times, promotions that succeed, fail and roll
// back, wait for approval, and a manual rollback — then checks every figure
// of ferry stats against the times the server recorded, read back through
// the CLI.
func testStatsOnAScriptedHistory(t *testing.T, b backend) {
	s := startServer(t, b)
	s.must("apply", "-f", s.writeFile("shop.yaml", statsPipeline))
	bob := s.as(createToken(s, "bob", "approver", "shop"))
	victor := s.as(createToken(s, "victor", "viewer", "shop"))

	// Before anything happened every figure is null.
	empty := readStats(t, s, "--pipeline", "shop")
	checkFigures(t, "before any promotion", empty.Figures, stats.Figures{})

	now := time.Now().UTC()
	commit100, commit110 := now.Add(-2*time.Hour), now.Add(-time.Hour)
	createReleaseWith(s, "1.0.0", "--commit", "c100", "--commit-time", commit100.Format(time.RFC3339Nano))
	createReleaseWith(s, "1.1.0", "--commit", "c110", "--commit-time", commit110.Format(time.RFC3339))
	createReleaseWith(s, "1.2.0", "--commit", "c120")
	// A commit from the future is refused and changes nothing.
	if r := s.ferry("release", "create", "--pipeline", "shop", "--version", "9.9.9", "--artifact", "api=x/api@"+digest("9.9.9"),
		"--commit-time", now.Add(time.Hour).Format(time.RFC3339)); r.code != 1 || !strings.Contains(r.stderr, "is in the future") {
		t.Fatalf("future commit time: exit %d %q", r.code, r.stderr)
	}
	if r := s.ferry("release", "show", "9.9.9", "--pipeline", "shop"); r.code != 1 {
		t.Fatalf("the refused release exists: %s", r.stdout)
	}
	rel100, rel110, rel120 := showRelease(s, "1.0.0"), showRelease(s, "1.1.0"), showRelease(s, "1.2.0")
	if rel100.CommitTime == nil || !rel100.CommitTime.Equal(commit100) || rel110.CommitTime == nil ||
		!rel110.CommitTime.Equal(commit110.Truncate(time.Second)) || rel120.CommitTime != nil {
		t.Fatalf("commit times: %v, %v, %v", rel100.CommitTime, rel110.CommitTime, rel120.CommitTime)
	}

	dev100 := promoteTo(s, "1.0.0", "dev", nil)
	prod100 := promoteTo(s, "1.0.0", "prod", bob)
	dev110 := promoteTo(s, "1.1.0", "dev", nil)
	dev120 := promoteTo(s, "1.2.0", "dev", nil)
	prod120 := promoteTo(s, "1.2.0", "prod", bob)
	// A person rolls prod back to 1.0.0; the rollback waits for bob too.
	var rb view.Promotion
	if err := json.Unmarshal([]byte(s.must("rollback", "--pipeline", "shop", "--env", "prod", "--reason", "error rate up", "-o", "json")), &rb); err != nil {
		t.Fatal(err)
	}
	rollback := approveAndWait(s, bob, rb.ID)
	for _, p := range []struct {
		p    view.Promotion
		want promotion.State
	}{{dev100, promotion.Succeeded}, {prod100, promotion.Succeeded}, {dev110, promotion.RolledBack},
		{dev120, promotion.Succeeded}, {prod120, promotion.Succeeded}, {rollback, promotion.Succeeded}} {
		if p.p.State != p.want || p.p.FinishedAt == nil {
			t.Fatalf("promotion of %s into %s: %s, want %s", p.p.Release.Version, p.p.Environment, p.p.State, p.want)
		}
	}
	if rollback.Kind != promotion.KindRollback || rollback.Release.Version != "1.0.0" {
		t.Fatalf("rollback: %s of %s", rollback.Kind, rollback.Release.Version)
	}

	// The expected figures, from the times the server recorded.
	done := func(p view.Promotion) time.Time { return *p.FinishedAt }
	mean := func(ds ...time.Duration) *float64 {
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		return secs(sum / time.Duration(len(ds)))
	}
	rep := readStats(t, s)
	if !reflect.DeepEqual(rep.Production, []string{"shop/prod"}) || len(rep.AuditGaps) != 0 ||
		rep.To.Sub(rep.From) != 30*24*time.Hour || rep.To.Before(done(rollback)) {
		t.Errorf("report: production %v, gaps %v, from %s to %s", rep.Production, rep.AuditGaps, rep.From, rep.To)
	}
	checkFigures(t, "every environment", rep.Figures, stats.Figures{
		// Five promote-kind promotions and the rollback; all but dev 1.1.0 succeeded.
		Promotions: 6, Attempts: 5, Succeeded: 4, SuccessRate: frac(4, 5),
		// Into prod: each release from its creation to its success there.
		PromotedToProduction:     2,
		MeanTimeToPromoteSeconds: mean(done(prod100).Sub(rel100.CreatedAt), done(prod120).Sub(rel120.CreatedAt)),
		// dev 1.1.0 rolled back on its own; prod 1.2.0 by hand.
		RolledBack: 2, RollbackRate: frac(2, 5),
		Verified: 5, VerificationFailed: 1, VerificationFailureRate: frac(1, 5),
		Live: 4, Incidents: 0, IncidentRate: frac(0, 4),
		// prod 1.0.0, prod 1.2.0 and the rollback each waited for bob.
		AwaitedApproval: 3, ApprovalLatencySeconds: mean(approvalWait(t, prod100), approvalWait(t, prod120), approvalWait(t, rollback)),
		WithTelemetry: 5, TelemetryCoverage: frac(5, 5),
		AuditComplete: 6, AuditCompleteness: frac(6, 6),
		// Two successful deployments to prod in 30 days.
		Deployments: 2, SuccessfulDeployments: 2, DeploymentFrequencyPerDay: ptr(2.0 / 30),
		// Only 1.0.0 has a commit time: one lead time, its own median.
		LeadTimeCount: 1, WithoutCommitTime: 1, LeadTimeForChangesSeconds: secs(done(prod100).Sub(commit100)),
		// prod 1.2.0 failed when the rollback was asked for, and prod was
		// restored when the rollback succeeded.
		ChangeFailures: 1, ChangeFailureRate: frac(1, 2),
		Restored: 1, TimeToRestoreSeconds: secs(done(rollback).Sub(rollback.CreatedAt)),
	})

	// dev alone, which then counts as production, in buckets of a day.
	rep = readStats(t, s, "--pipeline", "shop", "--env", "dev", "--window", "2d", "--bucket", "1d")
	devFigures := stats.Figures{
		Promotions: 3, Attempts: 3, Succeeded: 2, SuccessRate: frac(2, 3),
		PromotedToProduction:     2,
		MeanTimeToPromoteSeconds: mean(done(dev100).Sub(rel100.CreatedAt), done(dev120).Sub(rel120.CreatedAt)),
		RolledBack:               1, RollbackRate: frac(1, 3),
		Verified: 3, VerificationFailed: 1, VerificationFailureRate: frac(1, 3),
		Live: 2, IncidentRate: frac(0, 2),
		WithTelemetry: 3, TelemetryCoverage: frac(3, 3),
		AuditComplete: 3, AuditCompleteness: frac(3, 3),
		Deployments: 3, SuccessfulDeployments: 2, DeploymentFrequencyPerDay: ptr(2.0 / 2),
		LeadTimeCount: 1, WithoutCommitTime: 1, LeadTimeForChangesSeconds: secs(done(dev100).Sub(commit100)),
		// dev 1.1.0 failed when it started rolling back, and its rollback restored dev.
		ChangeFailures: 1, ChangeFailureRate: frac(1, 3),
		Restored: 1, TimeToRestoreSeconds: secs(done(dev110).Sub(transitionAt(t, dev110, promotion.RollingBack))),
	}
	checkFigures(t, "dev", rep.Figures, devFigures)
	if !reflect.DeepEqual(rep.Production, []string{"shop/dev"}) || len(rep.Series) != 2 || rep.BucketSeconds != 86400 {
		t.Fatalf("dev: production %v, %d buckets of %vs", rep.Production, len(rep.Series), rep.BucketSeconds)
	}
	// Everything ended in the second (latest) bucket: twice as many a day.
	checkFigures(t, "dev, first day", rep.Series[0].Figures, stats.Figures{})
	devFigures.DeploymentFrequencyPerDay = ptr(2.0)
	checkFigures(t, "dev, second day", rep.Series[1].Figures, devFigures)

	// The JSON has the documented names, with null where there is no data.
	var raw map[string]any
	if err := json.Unmarshal([]byte(s.must("stats", "--pipeline", "shop", "-o", "json")), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"promotions", "successRate", "meanTimeToPromoteSeconds", "rollbackRate", "approvalLatencySeconds",
		"deploymentFrequencyPerDay", "leadTimeForChangesSeconds", "changeFailureRate", "timeToRestoreSeconds"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("ferry stats -o json has no %s", k)
		}
	}
	if v, ok := raw["meanTimeToDetectSeconds"]; !ok || v != nil {
		t.Errorf("meanTimeToDetectSeconds = %v (present %v), want null: nothing was detected", v, ok)
	}

	// The table shows the same figures; a viewer of the pipeline may read them.
	out := victor.must("stats", "--pipeline", "shop")
	for _, want := range []string{"M1    promotion success rate", "80.0%", "4 of 5 attempts", "M10   audit completeness", "100.0%",
		"DORA  change failure rate", "50.0%", "1 of 2 deployments", "production: [shop/prod]"} {
		if !strings.Contains(out, want) {
			t.Errorf("ferry stats lacks %q:\n%s", want, out)
		}
	}
	if r := victor.ferry("stats"); r.code != 1 || !strings.Contains(r.stderr, `role "viewer"`) {
		t.Errorf("stats of every pipeline by a pipeline viewer: exit %d %q", r.code, r.stderr)
	}
	if r := s.ferry("stats", "--pipeline", "shop", "--env", "qa"); r.code != 1 || !strings.Contains(r.stderr, `environment "qa" is not in pipeline shop`) {
		t.Errorf("unknown environment: exit %d %q", r.code, r.stderr)
	}
	if r := s.ferry("stats", "--window", "2d", "--bucket", "5h"); r.code != 1 || !strings.Contains(r.stderr, "not a whole number of 5h0m0s buckets") {
		t.Errorf("uneven buckets: exit %d %q", r.code, r.stderr)
	}
}

// createReleaseWith creates a release of shop with one artifact and the flags given.
func createReleaseWith(s *server, version string, args ...string) {
	s.t.Helper()
	s.must(append([]string{"release", "create", "--pipeline", "shop", "--version", version, "--artifact", "api=x/api@" + digest(version)}, args...)...)
}

func showRelease(s *server, version string) release.Release {
	s.t.Helper()
	var r release.Release
	if err := json.Unmarshal([]byte(s.must("release", "show", version, "--pipeline", "shop", "-o", "json")), &r); err != nil {
		s.t.Fatal(err)
	}
	return r
}

// promoteTo promotes a release and waits until it ends, approving it as
// approver when one is given.
func promoteTo(s *server, version, env string, approver *server) view.Promotion {
	s.t.Helper()
	var p view.Promotion
	if err := json.Unmarshal([]byte(s.must("promote", "--pipeline", "shop", "--release", version, "--to", env, "-o", "json")), &p); err != nil {
		s.t.Fatal(err)
	}
	if approver == nil {
		return s.waitEnded(p.ID)
	}
	return approveAndWait(s, approver, p.ID)
}

// approveAndWait waits until a promotion awaits approval, approves it and
// waits until it ends.
func approveAndWait(s *server, approver *server, id string) view.Promotion {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.promotion(id).State != promotion.AwaitingApproval {
		if time.Now().After(deadline) {
			s.t.Fatalf("promotion %s never awaited approval: %s", id, s.promotion(id).State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	approver.must("approve", id, "--comment", "ok")
	return s.waitEnded(id)
}

// approvalWait is how long p spent awaiting approval, from its transitions.
func approvalWait(t *testing.T, p view.Promotion) time.Duration {
	t.Helper()
	return transitionAt(t, p, promotion.Gating, promotion.AwaitingApproval).Sub(transitionAt(t, p, promotion.AwaitingApproval))
}

// transitionAt is when p first moved into to (from from, when given).
func transitionAt(t *testing.T, p view.Promotion, to promotion.State, from ...promotion.State) time.Time {
	t.Helper()
	for _, tr := range p.Transitions {
		if tr.To == to && (len(from) == 0 || tr.From == from[0]) {
			return tr.At
		}
	}
	t.Fatalf("promotion %s has no transition to %s %v: %+v", p.ID, to, from, p.Transitions)
	return time.Time{}
}

func readStats(t *testing.T, s *server, args ...string) stats.Report {
	t.Helper()
	var rep stats.Report
	out := s.must(append([]string{"stats", "-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("decode stats: %v\n%s", err, out)
	}
	return rep
}

// checkFigures reports each figure of got that differs from want.
func checkFigures(t *testing.T, what string, got, want stats.Figures) {
	t.Helper()
	for _, d := range got.Diff(want) {
		t.Errorf("%s: %s", what, d)
	}
}

func ptr[T any](v T) *T { return &v }

func secs(d time.Duration) *float64 { return ptr(d.Seconds()) }

func frac(n, d int) *float64 { return ptr(float64(n) / float64(d)) }
