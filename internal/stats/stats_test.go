package stats

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
)

// checkFigures reports each figure of got that differs from want.
func checkFigures(t *testing.T, what string, got, want Figures) {
	t.Helper()
	for _, d := range got.Diff(want) {
		t.Errorf("%s: %s", what, d)
	}
}

func compute(t *testing.T, records []Record, q Query) *Report {
	t.Helper()
	rep, err := Compute(records, q)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestNoData checks that with nothing to measure every figure is null and
// every count 0, in the report and in each bucket, and that the JSON says so.
func TestNoData(t *testing.T) {
	// A promotion that ended before the window and one that has not ended
	// are not in it.
	var s script
	s.promote("before", "prod", true, rel("1", hm(-5, 0), nil), hm(-4, 0)).to(hm(-4, 0), promotion.Gating).
		deployed(hm(-3, 0)).to(hm(-1, 0), promotion.Succeeded)
	s.promote("open", "prod", true, rel("2", hm(0, 0), nil), hm(1, 0)).to(hm(1, 0), promotion.Gating).deployed(hm(1, 1))
	for _, records := range [][]Record{nil, s.list()} {
		rep := compute(t, records, Query{From: t0, To: hm(48, 0), Bucket: 24 * time.Hour})
		checkFigures(t, "no data", rep.Figures, Figures{})
		if len(rep.Series) != 2 {
			t.Fatalf("series of %d buckets, want 2", len(rep.Series))
		}
		for i, b := range rep.Series {
			checkFigures(t, "empty bucket", b.Figures, Figures{})
			if want := t0.Add(time.Duration(i) * 24 * time.Hour); !b.From.Equal(want) || !b.To.Equal(want.Add(24*time.Hour)) {
				t.Errorf("bucket %d: %s to %s", i, b.From, b.To)
			}
		}
		var m map[string]any
		b, _ := json.Marshal(rep)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"successRate", "meanTimeToPromoteSeconds", "rollbackRate", "approvalLatencySeconds",
			"deploymentFrequencyPerDay", "leadTimeForChangesSeconds", "changeFailureRate", "timeToRestoreSeconds",
			"verificationFailureRate", "incidentRate", "meanTimeToDetectSeconds", "telemetryCoverage", "auditCompleteness"} {
			if v, ok := m[k]; !ok || v != nil {
				t.Errorf("JSON %s = %v (present %v), want null", k, v, ok)
			}
		}
		if m["promotions"] != 0.0 {
			t.Errorf("JSON promotions = %v, want 0", m["promotions"])
		}
	}
}

// TestHistory scripts a day and a half of a dev → prod pipeline and checks
// every figure against arithmetic done by hand.
func TestHistory(t *testing.T) {
	var s script
	// Releases: r1 committed an hour before it was built at 00:00; r2
	// committed at 00:40, built at 01:40; r3 built at 03:20 without a commit time.
	r1 := rel("1.0.0", hm(0, 0), ptr(hm(-1, 0)))
	r2 := rel("1.1.0", hm(1, 40), ptr(hm(0, 40)))
	r3 := rel("1.2.0", hm(3, 20), nil)

	// A: r1 into dev, all green, done 00:13.
	s.promote("A", "dev", false, r1, hm(0, 10)).to(hm(0, 10), promotion.Gating).deployed(hm(0, 11)).
		step(promotion.PhaseVerify, 0, 1, promotion.StepSucceeded, hm(0, 12), hm(0, 13)).to(hm(0, 13), promotion.Succeeded)
	// B: r1 into prod, waits 30 minutes for bob (00:21 → 00:51), succeeds 00:55.
	s.promote("B", "prod", true, r1, hm(0, 20)).to(hm(0, 20), promotion.Gating).to(hm(0, 21), promotion.AwaitingApproval).
		decide("bob", promotion.Approve, hm(0, 51)).to(hm(0, 51), promotion.Gating).deployed(hm(0, 51)).
		step(promotion.PhaseVerify, 0, 1, promotion.StepSucceeded, hm(0, 53), hm(0, 55)).to(hm(0, 55), promotion.Succeeded)
	// C: r2 into dev, its smoke check fails twice, rolled back 01:56.
	s.promote("C", "dev", false, r2, hm(1, 50)).to(hm(1, 50), promotion.Gating).deployed(hm(1, 51)).
		step(promotion.PhaseVerify, 0, 1, promotion.StepFailed, hm(1, 52), hm(1, 53)).
		step(promotion.PhaseVerify, 0, 2, promotion.StepFailed, hm(1, 53), hm(1, 54)).
		to(hm(1, 54), promotion.RollingBack).
		step(promotion.PhaseRollback, 0, 1, promotion.StepSucceeded, hm(1, 54), hm(1, 56)).
		to(hm(1, 56), promotion.RolledBack)
	// D: r2 into prod, smoke fails once then passes on retry, succeeds 02:05.
	s.promote("D", "prod", true, r2, hm(2, 0)).to(hm(2, 0), promotion.Gating).deployed(hm(2, 1)).
		step(promotion.PhaseVerify, 0, 1, promotion.StepFailed, hm(2, 2), hm(2, 3)).
		step(promotion.PhaseVerify, 0, 2, promotion.StepSucceeded, hm(2, 3), hm(2, 5)).
		to(hm(2, 5), promotion.Succeeded)
	// F: r3 into dev, superseded in the queue at 03:25: never attempted.
	s.promote("F", "dev", false, r3, hm(3, 20)).to(hm(3, 25), promotion.Superseded)
	// E: r3 into prod, waits 10 minutes for alice, then 5 for carol, fails
	// its check at 03:50 and is rolled back by 03:58.
	s.promote("E", "prod", true, r3, hm(3, 30)).to(hm(3, 30), promotion.Gating).
		to(hm(3, 31), promotion.AwaitingApproval).decide("alice", promotion.Approve, hm(3, 41)).
		to(hm(3, 41), promotion.Gating, promotion.AwaitingApproval).decide("carol", promotion.Approve, hm(3, 46)).
		to(hm(3, 46), promotion.Gating).deployed(hm(3, 46)).
		step(promotion.PhaseVerify, 0, 1, promotion.StepFailed, hm(3, 48), hm(3, 50)).
		to(hm(3, 50), promotion.RollingBack).to(hm(3, 58), promotion.RolledBack)
	// G: r3 into prod again, rejected by dave after 30 minutes (04:01 → 04:31).
	s.promote("G", "prod", true, r3, hm(4, 0)).to(hm(4, 0), promotion.Gating).to(hm(4, 1), promotion.AwaitingApproval).
		decide("dave", promotion.Reject, hm(4, 31)).to(hm(4, 31), promotion.Rejected)
	// I: r3 into prod once more, succeeds 04:45.
	s.promote("I", "prod", true, r3, hm(4, 40)).to(hm(4, 40), promotion.Gating).deployed(hm(4, 41)).
		step(promotion.PhaseVerify, 0, 1, promotion.StepSucceeded, hm(4, 43), hm(4, 45)).to(hm(4, 45), promotion.Succeeded)

	rep := compute(t, s.list(), Query{From: t0, To: hm(48, 0)})
	checkFigures(t, "history", rep.Figures, Figures{
		// A B C D E F G I ended in the window.
		Promotions: 8,
		// A B C D E I started deploying (F was superseded, G rejected); A B D I succeeded.
		Attempts: 6, Succeeded: 4, SuccessRate: frac(4, 6),
		// Into prod with success: B 00:55 − 00:00 = 55m, D 02:05 − 01:40 = 25m,
		// I 04:45 − 03:20 = 85m; mean 165m / 3 = 55m.
		PromotedToProduction: 3, MeanTimeToPromoteSeconds: secs(55 * time.Minute),
		// C and E were rolled back.
		RolledBack: 2, RollbackRate: frac(2, 6),
		// Every attempt ran its checks; C's last smoke attempt failed, and E's;
		// D's first attempt failed but its retry passed.
		Verified: 6, VerificationFailed: 2, VerificationFailureRate: frac(2, 6),
		// A B D I went live (succeeded, no watch window); no alert.
		Live: 4, Incidents: 0, IncidentRate: frac(0, 4),
		// B waited 30m, E 10m + 5m, G 30m: 75m / 3 = 25m.
		AwaitedApproval: 3, ApprovalLatencySeconds: secs(25 * time.Minute),
		WithTelemetry: 6, TelemetryCoverage: frac(6, 6),
		AuditComplete: 8, AuditCompleteness: frac(8, 8),
		// Production deployments: B D E I (G never deployed); B D I succeeded,
		// 3 in 2 days.
		Deployments: 4, SuccessfulDeployments: 3, DeploymentFrequencyPerDay: ptr(1.5),
		// Lead times: B 00:55 − (−01:00) = 115m, D 02:05 − 00:40 = 85m; median
		// (85 + 115) / 2 = 100m. I's release has no commit time.
		LeadTimeCount: 2, WithoutCommitTime: 1, LeadTimeForChangesSeconds: secs(100 * time.Minute),
		// E failed; its own rollback restored prod 03:58 − 03:50 = 8m after.
		ChangeFailures: 1, ChangeFailureRate: frac(1, 4),
		Restored: 1, Unrestored: 0, TimeToRestoreSeconds: secs(8 * time.Minute),
	})
	if len(rep.AuditGaps) != 0 || rep.Series != nil || !rep.From.Equal(t0) || !rep.To.Equal(hm(48, 0)) {
		t.Errorf("report: gaps %v, series %v, from %s to %s", rep.AuditGaps, rep.Series, rep.From, rep.To)
	}

	// The same history narrowed to one day from 01:00 leaves out A and B.
	rep = compute(t, s.list(), Query{From: hm(1, 0), To: hm(25, 0)})
	checkFigures(t, "from 01:00", rep.Figures, Figures{
		Promotions: 6, Attempts: 4, Succeeded: 2, SuccessRate: frac(2, 4),
		// D 25m and I 85m: mean 55m.
		PromotedToProduction: 2, MeanTimeToPromoteSeconds: secs(55 * time.Minute),
		RolledBack: 2, RollbackRate: frac(2, 4),
		Verified: 4, VerificationFailed: 2, VerificationFailureRate: frac(2, 4),
		Live: 2, IncidentRate: frac(0, 2),
		// E 15m and G 30m: 22m30s.
		AwaitedApproval: 2, ApprovalLatencySeconds: secs(22*time.Minute + 30*time.Second),
		WithTelemetry: 4, TelemetryCoverage: frac(4, 4),
		AuditComplete: 6, AuditCompleteness: frac(6, 6),
		// D E I; D I succeeded in one day.
		Deployments: 3, SuccessfulDeployments: 2, DeploymentFrequencyPerDay: ptr(2.0),
		LeadTimeCount: 1, WithoutCommitTime: 1, LeadTimeForChangesSeconds: secs(85 * time.Minute),
		ChangeFailures: 1, ChangeFailureRate: frac(1, 3), Restored: 1, TimeToRestoreSeconds: secs(8 * time.Minute),
	})
}

// TestWatchWindowsAndAlerts scripts post-promotion failures: a watch window
// failed by an alert, one failed on its own, and an alert after success.
func TestWatchWindowsAndAlerts(t *testing.T) {
	var s script
	// Each release is built at the hour its promotion starts, an hour after its commit.
	r := func(v string, h int) *release.Release { return rel(v, hm(h, 0), ptr(hm(h-1, 0))) }
	// P1: watched 00:05 → 00:35 and succeeded; nothing happened.
	s.promote("P1", "prod", true, r("1", 0), hm(0, 0)).to(hm(0, 0), promotion.Gating).deployed(hm(0, 1)).
		to(hm(0, 5), promotion.Watching).to(hm(0, 35), promotion.Succeeded)
	// P2: watched from 01:05; an alert at 01:12; the watch fails at 01:15;
	// rolled back 01:20. Detected 7m after going live; restored 8m after the alert.
	s.promote("P2", "prod", true, r("2", 1), hm(1, 0)).to(hm(1, 0), promotion.Gating).deployed(hm(1, 1)).
		to(hm(1, 5), promotion.Watching).alert(hm(1, 12)).to(hm(1, 15), promotion.RollingBack).to(hm(1, 20), promotion.RolledBack)
	// P3: into prod-eu, watched from 02:05, fails on its own at 02:25 and
	// its rollback fails at 02:30: detected 20m after going live; nothing
	// in prod-eu succeeds afterwards, so it is not restored.
	s.promote("P3", "prod-eu", true, r("3", 2), hm(2, 0)).to(hm(2, 0), promotion.Gating).deployed(hm(2, 1)).
		to(hm(2, 5), promotion.Watching).to(hm(2, 25), promotion.RollingBack).to(hm(2, 30), promotion.RollbackFailed)
	// P4: watched 03:05 → 03:10, succeeded; an alert at 03:20 (15m after
	// going live); P5 restores prod at 04:10, 50m after the alert.
	s.promote("P4", "prod", true, r("4", 3), hm(3, 0)).to(hm(3, 0), promotion.Gating).deployed(hm(3, 1)).
		to(hm(3, 5), promotion.Watching).to(hm(3, 10), promotion.Succeeded).alert(hm(3, 20))
	// P5: no watch window; an alert at 04:02 while it deploys does not count
	// (it was not live yet); succeeded 04:10.
	s.promote("P5", "prod", true, r("5", 4), hm(4, 0)).to(hm(4, 0), promotion.Gating).to(hm(4, 1), promotion.Deploying).alert(hm(4, 2)).
		to(hm(4, 3), promotion.Verifying).to(hm(4, 10), promotion.Succeeded)

	rep := compute(t, s.list(), Query{From: t0, To: hm(24, 0)})
	checkFigures(t, "watch windows", rep.Figures, Figures{
		Promotions: 5, Attempts: 5,
		// P1 P4 P5 succeeded; P2 and P3 rolled back (P3's rollback failed).
		Succeeded: 3, SuccessRate: frac(3, 5),
		// Each release was built at the hour its promotion started: P1 35m,
		// P4 10m, P5 10m; mean 55m / 3.
		PromotedToProduction: 3, MeanTimeToPromoteSeconds: secs(55 * time.Minute / 3),
		RolledBack: 2, RollbackRate: frac(2, 5),
		// No check ran: nothing to measure, so no verification failure rate,
		// and a telemetry coverage of 0.
		Verified: 0, VerificationFailureRate: nil, WithTelemetry: 0, TelemetryCoverage: frac(0, 5),
		// All five went live; P2 P3 P4 had incidents, detected after 7m, 20m
		// and 15m: mean 42m / 3 = 14m.
		Live: 5, Incidents: 3, IncidentRate: frac(3, 5), MeanTimeToDetectSeconds: secs(14 * time.Minute),
		AuditComplete: 5, AuditCompleteness: frac(5, 5),
		Deployments: 5, SuccessfulDeployments: 3, DeploymentFrequencyPerDay: ptr(3.0),
		// Every release was committed an hour before it was built: 95m, 70m, 70m; median 70m.
		LeadTimeCount: 3, LeadTimeForChangesSeconds: secs(70 * time.Minute),
		// P2 P3 P4 failed. Restored: P2 after 8m, P4 after 50m; median 29m.
		ChangeFailures: 3, ChangeFailureRate: frac(3, 5),
		Restored: 2, Unrestored: 1, TimeToRestoreSeconds: secs(29 * time.Minute),
	})
}

// TestManualRollback checks that a ferry rollback counts against the
// promotion it undid, and that a rollback refused at its gates does not.
func TestManualRollback(t *testing.T) {
	var s script
	r1, r2 := rel("1", hm(0, 0), nil), rel("2", hm(1, 0), nil)
	// Q1: r1 into prod, succeeded 00:10.
	s.promote("Q1", "prod", true, r1, hm(0, 0)).to(hm(0, 0), promotion.Gating).deployed(hm(0, 5)).to(hm(0, 10), promotion.Succeeded)
	// R0: a rollback at 00:20, rejected at its gates at 00:25: undoes nothing.
	s.rollback("R0", "prod", true, r1, hm(0, 20)).to(hm(0, 20), promotion.Gating).to(hm(0, 25), promotion.Rejected)
	// Q2: r2 into prod, succeeded 01:10.
	s.promote("Q2", "prod", true, r2, hm(1, 0)).to(hm(1, 0), promotion.Gating).deployed(hm(1, 5)).to(hm(1, 10), promotion.Succeeded)
	// R1: a person rolls prod back to r1 at 01:30; done 01:35.
	s.rollback("R1", "prod", true, r1, hm(1, 30)).to(hm(1, 30), promotion.Gating).deployed(hm(1, 31)).to(hm(1, 35), promotion.Succeeded)

	rep := compute(t, s.list(), Query{From: t0, To: hm(24, 0)})
	checkFigures(t, "manual rollback", rep.Figures, Figures{
		Promotions: 4,
		// Only promote-kind promotions are attempts: Q1 and Q2, both succeeded.
		Attempts: 2, Succeeded: 2, SuccessRate: frac(2, 2),
		// Q1 10m, Q2 10m.
		PromotedToProduction: 2, MeanTimeToPromoteSeconds: secs(10 * time.Minute),
		// R1 undid Q2.
		RolledBack: 1, RollbackRate: frac(1, 2),
		WithTelemetry: 0, TelemetryCoverage: frac(0, 2),
		Live: 2, IncidentRate: frac(0, 2),
		AuditComplete: 4, AuditCompleteness: frac(4, 4),
		Deployments: 2, SuccessfulDeployments: 2, DeploymentFrequencyPerDay: ptr(2.0),
		WithoutCommitTime: 2,
		// Q2 failed when R1 was asked for (01:30); R1 restored prod at 01:35.
		ChangeFailures: 1, ChangeFailureRate: frac(1, 2), Restored: 1, TimeToRestoreSeconds: secs(5 * time.Minute),
	})
}

// TestAuditCompleteness breaks the audit trail of one promotion in each way
// the check looks for.
func TestAuditCompleteness(t *testing.T) {
	var s script
	r := rel("1", hm(0, 0), nil)
	full := func(id string) *builder {
		return s.promote(id, "dev", false, r, hm(1, 0)).to(hm(1, 0), promotion.Gating).
			to(hm(1, 1), promotion.AwaitingApproval).decide("bob", promotion.Approve, hm(1, 2)).
			to(hm(1, 2), promotion.Gating).deployed(hm(1, 3)).
			step(promotion.PhaseVerify, 0, 1, promotion.StepSucceeded, hm(1, 5), hm(1, 6)).to(hm(1, 6), promotion.Succeeded)
	}
	drop := func(b *builder, match func(i int, action string) bool) {
		var kept []audit.Event
		for i, ev := range b.r.Events {
			if !match(i, ev.Action) {
				kept = append(kept, ev)
			}
		}
		b.r.Events = kept
	}
	full("complete")
	drop(full("no-create"), func(_ int, a string) bool { return a == ActionCreate })
	// The transition into deploying is the fourth transition.
	n := 0
	drop(full("gap"), func(_ int, a string) bool {
		if a == ActionTransition {
			n++
			return n == 4
		}
		return false
	})
	drop(full("no-step-start"), func(_ int, a string) bool { return a == ActionStepStart })
	b := full("wrong-finish")
	for i, ev := range b.r.Events {
		if ev.Action == ActionStepFinish && strings.Contains(string(ev.Details), `"verify"`) {
			b.r.Events[i].Details = []byte(`{"phase":"verify","step":"verify-0","attempt":1,"state":"failed"}`)
		}
	}
	drop(full("no-approval-event"), func(_ int, a string) bool { return a == "promotion.approve" })
	b = full("no-actor")
	b.r.Events[0].Actor = ""
	b = full("garbled")
	for i, ev := range b.r.Events {
		if ev.Action == ActionTransition {
			b.r.Events[i].Details = []byte(`{"state":"gating"}`)
			break
		}
	}
	b = full("stale-state")
	b.r.Promotion.State = promotion.Failed

	rep := compute(t, s.list(), Query{From: t0, To: hm(24, 0)})
	if rep.Promotions != 9 || rep.AuditComplete != 1 || !reflect.DeepEqual(rep.AuditCompleteness, frac(1, 9)) {
		t.Errorf("audit: %d of %d complete (%s), want 1 of 9", rep.AuditComplete, rep.Promotions, show(rep.AuditCompleteness))
	}
	want := map[string]string{
		"no-create":         "no promotion.create event",
		"gap":               "transition to verifying at 2025-03-01T01:04:00Z starts from deploying, but the previous one ended in gating",
		"no-step-start":     "step deploy/deploy-0 attempt 1 has no step.start event (and 1 more)",
		"wrong-finish":      "step verify/verify-0 attempt 1 has no step.finish event saying succeeded",
		"no-approval-event": "the approve by bob at 2025-03-01T01:02:00Z has no audit event",
		"no-actor":          `audit event`,
		"garbled":           "does not say from which state to which",
		"stale-state":       "the transitions end in succeeded, but the promotion is failed",
	}
	var ids []string
	for _, g := range rep.AuditGaps {
		ids = append(ids, g.PromotionID)
		if w, ok := want[g.PromotionID]; !ok || !strings.Contains(g.Problem, w) {
			t.Errorf("gap of %s: %q, want it to contain %q", g.PromotionID, g.Problem, w)
		}
	}
	if len(ids) != len(want) || slices.Contains(ids, "complete") {
		t.Errorf("gaps of %v, want the 8 broken promotions", ids)
	}
}

// TestSeries checks that each bucket counts the promotions that ended in
// it, and that a restoration in a later bucket still counts for the
// failure's bucket.
func TestSeries(t *testing.T) {
	var s script
	r1, r2 := rel("1", hm(0, 0), ptr(hm(-2, 0))), rel("2", hm(48, 0), ptr(hm(47, 0)))
	// Day 1: r1 fails in prod at 01:03, rolls back, and the rollback fails at 01:10.
	s.promote("D1", "prod", true, r1, hm(1, 0)).to(hm(1, 0), promotion.Gating).deployed(hm(1, 1)).to(hm(1, 3), promotion.RollingBack).
		to(hm(1, 10), promotion.RollbackFailed)
	// Day 2: nothing. Day 3: r2 succeeds in prod at 49:10, restoring it 48h07m after the failure.
	s.promote("D3", "prod", true, r2, hm(49, 0)).to(hm(49, 0), promotion.Gating).deployed(hm(49, 1)).to(hm(49, 10), promotion.Succeeded)

	rep := compute(t, s.list(), Query{From: t0, To: hm(72, 0), Bucket: 24 * time.Hour})
	if len(rep.Series) != 3 || rep.BucketSeconds != 86400 {
		t.Fatalf("%d buckets of %vs, want 3 of 86400s", len(rep.Series), rep.BucketSeconds)
	}
	day1 := Figures{
		Promotions: 1, Attempts: 1, SuccessRate: frac(0, 1), RolledBack: 1, RollbackRate: frac(1, 1),
		TelemetryCoverage: frac(0, 1), AuditComplete: 1, AuditCompleteness: frac(1, 1),
		Deployments: 1, DeploymentFrequencyPerDay: ptr(0.0),
		ChangeFailures: 1, ChangeFailureRate: frac(1, 1),
		Restored: 1, TimeToRestoreSeconds: secs(48*time.Hour + 7*time.Minute),
	}
	day3 := Figures{
		Promotions: 1, Attempts: 1, Succeeded: 1, SuccessRate: frac(1, 1),
		// 49:10 − 48:00.
		PromotedToProduction: 1, MeanTimeToPromoteSeconds: secs(70 * time.Minute),
		RollbackRate: frac(0, 1), TelemetryCoverage: frac(0, 1), Live: 1, IncidentRate: frac(0, 1),
		AuditComplete: 1, AuditCompleteness: frac(1, 1),
		Deployments: 1, SuccessfulDeployments: 1, DeploymentFrequencyPerDay: ptr(1.0), ChangeFailureRate: frac(0, 1),
		// 49:10 − 47:00.
		LeadTimeCount: 1, LeadTimeForChangesSeconds: secs(130 * time.Minute),
	}
	checkFigures(t, "day 1", rep.Series[0].Figures, day1)
	checkFigures(t, "day 2", rep.Series[1].Figures, Figures{})
	checkFigures(t, "day 3", rep.Series[2].Figures, day3)
	// The whole window: both, over 3 days.
	checkFigures(t, "window", rep.Figures, Figures{
		Promotions: 2, Attempts: 2, Succeeded: 1, SuccessRate: frac(1, 2),
		PromotedToProduction: 1, MeanTimeToPromoteSeconds: secs(70 * time.Minute),
		RolledBack: 1, RollbackRate: frac(1, 2), TelemetryCoverage: frac(0, 2), Live: 1, IncidentRate: frac(0, 1),
		AuditComplete: 2, AuditCompleteness: frac(2, 2),
		Deployments: 2, SuccessfulDeployments: 1, DeploymentFrequencyPerDay: ptr(1.0 / 3),
		LeadTimeCount: 1, LeadTimeForChangesSeconds: secs(130 * time.Minute),
		ChangeFailures: 1, ChangeFailureRate: frac(1, 2), Restored: 1, TimeToRestoreSeconds: secs(48*time.Hour + 7*time.Minute),
	})
}

// TestWindowBounds checks that a promotion ending exactly at the start of
// the window counts and one ending exactly at its end does not.
func TestWindowBounds(t *testing.T) {
	var s script
	r := rel("1", hm(0, 0), nil)
	s.promote("at-start", "dev", false, r, hm(0, 0)).to(hm(1, 0), promotion.Superseded)
	s.promote("at-end", "dev", false, r, hm(0, 0)).to(hm(2, 0), promotion.Superseded)
	rep := compute(t, s.list(), Query{From: hm(1, 0), To: hm(2, 0)})
	if rep.Promotions != 1 {
		t.Errorf("promotions = %d, want 1 (the one that ended at the start)", rep.Promotions)
	}
}

func TestQueryErrors(t *testing.T) {
	tests := []struct {
		q    Query
		want string
	}{
		{Query{From: t0, To: t0}, "the window must end after it starts"},
		{Query{From: t0, To: hm(24, 0), Bucket: time.Minute}, "bucket 1m0s is shorter than 1h0m0s"},
		{Query{From: t0, To: hm(24, 0), Bucket: 48 * time.Hour}, "bucket 48h0m0s is longer than the window 24h0m0s"},
		{Query{From: t0, To: hm(24, 0), Bucket: 5 * time.Hour}, "not a whole number of 5h0m0s buckets"},
		{Query{From: t0, To: hm(24*42, 0), Bucket: time.Hour}, "makes 1008 buckets of 1h0m0s; at most 1000"},
	}
	for _, tt := range tests {
		_, err := Compute(nil, tt.q)
		if !errors.Is(err, ErrInvalidQuery) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compute(%+v) = %v, want ErrInvalidQuery containing %q", tt.q, err, tt.want)
		}
	}
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestDiffNamesEachDifferingFigure(t *testing.T) {
	a := Figures{Promotions: 4, SuccessRate: frac(3, 4)}
	if d := a.Diff(a); len(d) != 0 {
		t.Fatalf("equal figures differ: %v", d)
	}
	b := a
	b.Promotions, b.SuccessRate = 5, nil
	want := []string{"promotions = 4, want 5", "successRate = 0.75, want null"}
	if d := a.Diff(b); !reflect.DeepEqual(d, want) {
		t.Fatalf("Diff = %q, want %q", d, want)
	}
}
