package gate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis/burn"
	"github.com/ferry-dev/ferry/internal/expr"
	"github.com/ferry-dev/ferry/internal/gate/window"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) // a Wednesday

func ptr[T any](v T) *T { return &v }

func rel() release.Release {
	return release.Release{ID: "r1", Pipeline: "shop", Version: "1.0.0", CreatedBy: "ci", Commit: "abc",
		Labels:    map[string]string{"risk": "high"},
		Artifacts: []release.Artifact{{Name: "api", URI: "x/api", Digest: "sha256:" + strings.Repeat("a", 64)}}}
}

// succeeded is the release's promotion into env, finished at t.
func succeeded(env string, t time.Time) promotion.Promotion {
	return promotion.Promotion{ID: "up-" + env, Environment: env, Kind: promotion.KindPromote, State: promotion.Succeeded, FinishedAt: &t, ReleaseID: "r1"}
}

func evaluate(t *testing.T, env pipeline.Environment, in Input) Outcome {
	t.Helper()
	cel, err := expr.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	progs, err := Compile(cel, env)
	if err != nil {
		t.Fatal(err)
	}
	in.Environment = env
	if in.Release.ID == "" {
		in.Release = rel()
	}
	if in.Now.IsZero() {
		in.Now = now
	}
	if in.Previous == nil {
		// The promotion has waited for approvals for an hour.
		in.Previous = []promotion.GateEvaluation{{Name: KindApprovals, Kind: KindApprovals, Result: promotion.GatePending, Since: ptr(now.Add(-time.Hour))}}
	}
	if in.Promotion.ID == "" {
		in.Promotion = promotion.Promotion{ID: "p1", Pipeline: "shop", Environment: env.Name, Kind: promotion.KindPromote,
			Actor: "rita", Revision: 3, StartedAt: ptr(now.Add(-time.Hour)), ReleaseID: "r1"}
	}
	return Evaluate(context.Background(), in, progs)
}

func prod(g *pipeline.Gates) pipeline.Environment {
	return pipeline.Environment{Name: "prod", After: []string{"staging"}, Gates: g}
}

func TestSoak(t *testing.T) {
	env := prod(&pipeline.Gates{Soak: pipeline.Duration(30 * time.Minute)})
	o := evaluate(t, env, Input{History: []promotion.Promotion{succeeded("staging", now.Add(-10*time.Minute))}})
	if o.Result != promotion.GatePending || o.WakeAt == nil || !o.WakeAt.Equal(now.Add(20*time.Minute)) || o.Approval {
		t.Fatalf("10 of 30 minutes: %+v", o)
	}
	if !strings.Contains(o.Reason, "20m0s left") {
		t.Fatalf("reason %q does not say how long is left", o.Reason)
	}
	o = evaluate(t, env, Input{History: []promotion.Promotion{succeeded("staging", now.Add(-31*time.Minute))}})
	if o.Result != promotion.GatePass {
		t.Fatalf("after 31 minutes: %+v", o)
	}
	failedAt := now.Add(-5 * time.Minute)
	bad := promotion.Promotion{ID: "x", Environment: "eu", State: promotion.RolledBack, FinishedAt: &failedAt}
	o = evaluate(t, env, Input{History: []promotion.Promotion{succeeded("staging", now.Add(-31*time.Minute)), bad}})
	if o.Result != promotion.GateFail || !strings.Contains(o.Reason, "rolled_back in eu") {
		t.Fatalf("rolled back since: %+v", o)
	}
	o = evaluate(t, env, Input{
		Promotion: promotion.Promotion{ID: "p1", Kind: promotion.KindPromote, Expedited: true, Actor: "ops", Reason: "hotfix", Revision: 3},
		History:   []promotion.Promotion{succeeded("staging", now.Add(-time.Minute))},
	})
	if o.Result != promotion.GatePass || !strings.Contains(o.Gates[1].Reason, "expedited by ops: hotfix") {
		t.Fatalf("expedited: %+v", o)
	}
}

func TestPolicies(t *testing.T) {
	env := prod(&pipeline.Gates{Policies: []pipeline.Policy{
		{Name: "provenance", Expr: `release.commit != ""`},
		{Name: "low-risk", Expr: `release.labels["risk"] == "low"`, Message: "only low-risk releases"},
	}})
	o := evaluate(t, env, Input{History: []promotion.Promotion{succeeded("staging", now)}})
	if o.Result != promotion.GateFail || !strings.HasPrefix(o.Reason, "low-risk: only low-risk releases") {
		t.Fatalf("policy: %+v", o)
	}
	if o.Gates[1].Result != promotion.GatePass || o.Gates[2].Result != promotion.GateFail {
		t.Fatalf("gates: %+v", o.Gates)
	}
}

func TestWindowsAcrossDST(t *testing.T) {
	env := prod(&pipeline.Gates{Windows: &window.Spec{Allow: []window.Allow{{Days: []string{"mon", "tue", "wed", "thu"}, From: "09:00", To: "16:00", Timezone: "Europe/Berlin"}}}})
	hist := []promotion.Promotion{succeeded("staging", now.Add(-time.Hour))}
	// Saturday 2026-03-28 12:00Z: the next window is Monday 09:00 Berlin, after the spring-forward: 07:00Z.
	o := evaluate(t, env, Input{History: hist, Now: time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)})
	if o.Result != promotion.GatePending || o.WakeAt == nil || !o.WakeAt.Equal(time.Date(2026, 3, 30, 7, 0, 0, 0, time.UTC)) {
		t.Fatalf("weekend before DST: %+v", o)
	}
	// Saturday 2026-10-24: after the fall-back, Monday 09:00 Berlin is 08:00Z.
	o = evaluate(t, env, Input{History: hist, Now: time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC)})
	if o.WakeAt == nil || !o.WakeAt.Equal(time.Date(2026, 10, 26, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("weekend before the fall-back: %+v", o)
	}
	// Break-glass passes, and says who.
	o = evaluate(t, env, Input{History: hist, Now: time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC),
		Promotion: promotion.Promotion{ID: "p1", Kind: promotion.KindPromote, OverrideWindow: true, Actor: "root", Reason: "outage", Revision: 3}})
	if o.Result != promotion.GatePass || !strings.Contains(o.Gates[1].Reason, "break-glass by root: outage") {
		t.Fatalf("break-glass: %+v", o)
	}
}

func approvalsEnv(a *pipeline.Approvals) pipeline.Environment {
	return pipeline.Environment{Name: "prod", Gates: &pipeline.Gates{Approvals: a}}
}

func approval(user string, d promotion.Decision, roles ...string) promotion.Approval {
	r := rel()
	return promotion.Approval{PromotionID: "p1", User: user, Decision: d, Roles: roles, ReleaseDigest: r.ContentDigest(), Revision: 3, At: now.Add(-time.Minute)}
}

func TestApprovals(t *testing.T) {
	a := &pipeline.Approvals{Required: "2", From: []string{"role:approver"}, Timeout: pipeline.Duration(8 * time.Hour)}
	env := approvalsEnv(a)

	o := evaluate(t, env, Input{Approvals: []promotion.Approval{approval("alice", promotion.Approve, "approver")}})
	if o.Result != promotion.GatePending || !o.Approval || o.WakeAt == nil || !o.WakeAt.Equal(now.Add(7*time.Hour)) {
		t.Fatalf("one of two: %+v", o)
	}
	o = evaluate(t, env, Input{Approvals: []promotion.Approval{approval("alice", promotion.Approve, "approver"), approval("bob", promotion.Approve, "admin")}})
	if o.Result != promotion.GatePass || !strings.Contains(o.Gates[1].Reason, "approved by alice, bob (2 of 2)") {
		t.Fatalf("two approvers from the role: %+v", o)
	}
	// Self-approval (the requester, rita) does not count; a viewer does not count.
	o = evaluate(t, env, Input{Approvals: []promotion.Approval{approval("alice", promotion.Approve, "approver"), approval("rita", promotion.Approve, "approver"), approval("vic", promotion.Approve, "viewer")}})
	if o.Result != promotion.GatePending || !strings.Contains(o.Reason, "rita requested the promotion") || !strings.Contains(o.Reason, "vic is not among the approvers") {
		t.Fatalf("self-approval: %+v", o)
	}
	// An approval given on another revision or another release content is void.
	old := approval("bob", promotion.Approve, "approver")
	old.Revision = 2
	o = evaluate(t, env, Input{Approvals: []promotion.Approval{approval("alice", promotion.Approve, "approver"), old}})
	if o.Result != promotion.GatePending || !strings.Contains(o.Reason, "voided: bob") {
		t.Fatalf("voided approval: %+v", o)
	}
	// A rejection refuses.
	rej := approval("bob", promotion.Reject, "approver")
	rej.Comment = "not today"
	o = evaluate(t, env, Input{Approvals: []promotion.Approval{approval("alice", promotion.Approve, "approver"), rej}})
	if o.Result != promotion.GateFail || !strings.Contains(o.Reason, "rejected by bob: not today") {
		t.Fatalf("rejection: %+v", o)
	}
	// Past the timeout: rejected.
	o = evaluate(t, env, Input{Now: now.Add(8 * time.Hour)})
	if o.Result != promotion.GateFail || !strings.Contains(o.Reason, "no decision within 8h0m0s") {
		t.Fatalf("timeout: %+v", o)
	}
	// Risk-based count: low risk needs none.
	low := rel()
	low.Labels = map[string]string{"risk": "low"}
	o = evaluate(t, approvalsEnv(&pipeline.Approvals{Required: `release.labels["risk"] == "low" ? 0 : 2`}), Input{Release: low})
	if o.Result != promotion.GatePass {
		t.Fatalf("low risk: %+v", o)
	}
}

func TestApprovalEscalation(t *testing.T) {
	a := &pipeline.Approvals{Required: "1", Timeout: pipeline.Duration(8 * time.Hour), OnTimeout: "escalate",
		Escalate: &pipeline.Escalate{After: pipeline.Duration(2 * time.Hour), Webhook: "http://127.0.0.1/hook"}}
	env := approvalsEnv(a)
	// Started an hour ago: escalation due in an hour, timeout in seven.
	o := evaluate(t, env, Input{})
	if o.Escalate || o.WakeAt == nil || !o.WakeAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("before escalation: %+v", o)
	}
	o = evaluate(t, env, Input{Now: now.Add(time.Hour)})
	if !o.Escalate || o.Result != promotion.GatePending {
		t.Fatalf("escalation due: %+v", o)
	}
	o = evaluate(t, env, Input{Now: now.Add(9 * time.Hour), Escalated: true})
	if o.Result != promotion.GatePending || o.Escalate {
		t.Fatalf("onTimeout escalate keeps waiting once escalated: %+v", o)
	}
}

func TestApprovalDeadlinesWaitForOtherGates(t *testing.T) {
	env := pipeline.Environment{Name: "prod", After: []string{"staging"}, Gates: &pipeline.Gates{
		Soak:      pipeline.Duration(time.Hour),
		Approvals: &pipeline.Approvals{Required: "1", Timeout: pipeline.Duration(time.Minute)},
	}}
	// Soaking, and no approval for far longer than the timeout: not rejected,
	// since the promotion has not started waiting for people yet.
	o := evaluate(t, env, Input{Previous: []promotion.GateEvaluation{}, History: []promotion.Promotion{succeeded("staging", now.Add(-10*time.Minute))}})
	if o.Result != promotion.GatePending || o.Approval || o.WakeAt == nil || !o.WakeAt.Equal(now.Add(50*time.Minute)) {
		t.Fatalf("soaking: %+v", o)
	}
	if g := o.Gates[len(o.Gates)-1]; g.Since != nil || !strings.Contains(g.Reason, "deadlines start once the other gates pass") {
		t.Fatalf("approvals while soaking: %+v", g)
	}
	// Soaked: the approval clock starts now.
	o = evaluate(t, env, Input{Previous: []promotion.GateEvaluation{}, History: []promotion.Promotion{succeeded("staging", now.Add(-2*time.Hour))}})
	if g := o.Gates[len(o.Gates)-1]; !o.Approval || g.Since == nil || !g.Since.Equal(now) || !o.WakeAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("waiting for approvals: %+v", o)
	}
}

func TestErrorBudget(t *testing.T) {
	env := pipeline.Environment{Name: "prod", Gates: &pipeline.Gates{ErrorBudget: &pipeline.ErrorBudget{Objective: 99.9}}}
	o := evaluate(t, env, Input{})
	if o.Result != promotion.GatePending || o.WakeAt == nil || !o.WakeAt.Equal(now.Add(5*time.Second)) {
		t.Fatalf("not measured yet: %+v", o)
	}
	o = evaluate(t, env, Input{Budget: &burn.Result{Blocked: true, Reason: "burning error budget: 1h burn rate 20.1 and 5m burn rate 31.0 exceed 14.4"}})
	if o.Result != promotion.GatePending || !strings.Contains(o.Reason, "burn rate 20.1") || !o.WakeAt.Equal(now.Add(BudgetRecheck)) {
		t.Fatalf("burning: %+v", o)
	}
	o = evaluate(t, env, Input{Budget: &burn.Result{Reason: "within error budget: highest burn rate 0.8 (1h)"}})
	if o.Result != promotion.GatePass {
		t.Fatalf("within budget: %+v", o)
	}
	o = evaluate(t, env, Input{Budget: &burn.Result{Err: errors.New("connection refused"), Reason: "cannot judge the burn rate: connection refused"}})
	if o.Result != promotion.GatePending || !strings.Contains(o.Reason, "trying again") {
		t.Fatalf("prometheus down: %+v", o)
	}
	o = evaluate(t, env, Input{Promotion: promotion.Promotion{ID: "p1", Kind: promotion.KindRollback, Revision: 3}})
	if o.Result != promotion.GatePass {
		t.Fatalf("rollback: %+v", o)
	}
}
