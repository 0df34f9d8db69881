package promotion

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func mustApply(t *testing.T, p Promotion, plan Plan, ev Event) Result {
	t.Helper()
	res, err := Apply(p, plan, ev, t0)
	if err != nil {
		t.Fatalf("%s in %s: %v", ev.Type, p.State, err)
	}
	return res
}

func actionTypes(r Result) []ActionType {
	var out []ActionType
	for _, a := range r.Actions {
		out = append(out, a.Type)
	}
	return out
}

func TestGatingWaitsForATimeThenReevaluates(t *testing.T) {
	p := Promotion{ID: "p", State: Gating, Kind: KindPromote}
	plan := Plan{Deploy: []StepPlan{{Name: "d"}}}
	at := t0.Add(30 * time.Minute)
	res := mustApply(t, p, plan, Event{Type: EvGates, Gate: GatePending, WakeAt: &at, Reason: "soak: 30m left"})
	if res.Promotion.State != Gating || len(res.Transitions) != 0 || res.Promotion.WakeAt == nil || !res.Promotion.WakeAt.Equal(at) {
		t.Fatalf("pending with a time: state %s, transitions %v, wake %v", res.Promotion.State, res.Transitions, res.Promotion.WakeAt)
	}
	if got := actionTypes(res); len(got) != 1 || got[0] != ActWait || res.Promotion.Message != "soak: 30m left" {
		t.Fatalf("actions %v, message %q", got, res.Promotion.Message)
	}
	// A second evaluation while the timer is armed is refused.
	if _, err := Apply(res.Promotion, plan, Event{Type: EvGates, Gate: GatePass}, t0); !errors.As(err, new(*InvalidEventError)) {
		t.Fatalf("EvGates while waiting: %v", err)
	}
	woke := mustApply(t, res.Promotion, plan, Event{Type: EvWake})
	if woke.Promotion.WakeAt != nil || woke.Promotion.State != Gating {
		t.Fatalf("after wake: %+v", woke.Promotion)
	}
	if got := actionTypes(woke); len(got) != 1 || got[0] != ActEvaluateGates {
		t.Fatalf("wake actions %v", got)
	}
}

func TestAwaitingApprovalTimesOut(t *testing.T) {
	p := Promotion{ID: "p", State: Gating, Kind: KindPromote}
	deadline := t0.Add(8 * time.Hour)
	res := mustApply(t, p, Plan{}, Event{Type: EvGates, Gate: GatePending, Approval: true, WakeAt: &deadline, Reason: "needs 2 approvals"})
	if res.Promotion.State != AwaitingApproval || res.Promotion.WakeAt == nil || !res.Promotion.WakeAt.Equal(deadline) {
		t.Fatalf("awaiting: %+v", res.Promotion)
	}
	woke := mustApply(t, res.Promotion, Plan{}, Event{Type: EvWake})
	if woke.Promotion.State != Gating || woke.Promotion.WakeAt != nil || actionTypes(woke)[0] != ActEvaluateGates {
		t.Fatalf("after the deadline: %+v %v", woke.Promotion, actionTypes(woke))
	}
	// Approval before the deadline clears the timer.
	appr := mustApply(t, res.Promotion, Plan{}, Event{Type: EvApprove})
	if appr.Promotion.State != Gating || appr.Promotion.WakeAt != nil {
		t.Fatalf("after approval: %+v", appr.Promotion)
	}
}

func TestPreflightRunsFirstAndFailsWithoutRollback(t *testing.T) {
	plan := Plan{Preflight: []StepPlan{{Name: "quota"}}, Deploy: []StepPlan{{Name: "d"}}, AutoRollback: true}
	p := Promotion{ID: "p", State: Gating, Kind: KindPromote, RollbackID: "r0", RollbackVersion: "0.9"}
	res := mustApply(t, p, plan, Event{Type: EvGates, Gate: GatePass})
	if res.Promotion.State != Deploying || res.Promotion.Cursor.Phase != PhasePreflight {
		t.Fatalf("after gates: %s %+v", res.Promotion.State, res.Promotion.Cursor)
	}
	ok := mustApply(t, res.Promotion, plan, Event{Type: EvStepSucceeded})
	if ok.Promotion.State != Deploying || ok.Promotion.Cursor.Phase != PhaseDeploy || len(ok.Transitions) != 0 {
		t.Fatalf("after preflight: %s %+v transitions %v", ok.Promotion.State, ok.Promotion.Cursor, ok.Transitions)
	}
	failed := mustApply(t, res.Promotion, plan, Event{Type: EvStepFailed, Reason: "quota exhausted"})
	if failed.Promotion.State != Failed || failed.Promotion.Message != "preflight check quota failed: quota exhausted; nothing was deployed" {
		t.Fatalf("preflight failure: %s %q", failed.Promotion.State, failed.Promotion.Message)
	}
}

func TestInconclusiveCheckPausesUntilResumed(t *testing.T) {
	plan := Plan{Deploy: []StepPlan{{Name: "d"}}, Verify: []StepPlan{{Name: "error-rate"}, {Name: "latency"}}}
	p := Promotion{ID: "p", State: Verifying, Kind: KindPromote, Cursor: Cursor{Phase: PhaseVerify, Index: 0, Attempt: 1}}
	res := mustApply(t, p, plan, Event{Type: EvStepInconclusive, Reason: "error-rate: 2 inconclusive measurements"})
	if res.Promotion.State != Paused || res.Promotion.Cursor != p.Cursor || len(res.Actions) != 0 {
		t.Fatalf("inconclusive: %s %+v %v", res.Promotion.State, res.Promotion.Cursor, res.Actions)
	}
	for _, ev := range []EventType{EvStepSucceeded, EvStepFailed, EvWake} {
		if _, err := Apply(res.Promotion, plan, Event{Type: ev}, t0); !errors.As(err, new(*InvalidEventError)) {
			t.Errorf("%s while paused: %v", ev, err)
		}
	}
	resumed := mustApply(t, res.Promotion, plan, Event{Type: EvResume, Reason: "resumed by alice: dashboards look fine"})
	if resumed.Promotion.State != Verifying || resumed.Promotion.Cursor.Index != 1 || actionTypes(resumed)[0] != ActRunStep {
		t.Fatalf("resumed: %s %+v %v", resumed.Promotion.State, resumed.Promotion.Cursor, actionTypes(resumed))
	}
	aborted := mustApply(t, res.Promotion, plan, Event{Type: EvAbort})
	if aborted.Promotion.State != Aborted {
		t.Fatalf("abort while paused: %s", aborted.Promotion.State)
	}
	for _, a := range aborted.Actions {
		if a.Type == ActStopStep {
			t.Fatal("abort of a paused promotion stops a step that is not running")
		}
	}
}

func TestCanaryPhases(t *testing.T) {
	plan := Plan{
		Deploy: []StepPlan{{Name: "deploy"}},
		Canary: []StepPlan{
			{Name: "phase 1 (5%): route"}, {Name: "phase 1 (5%): pause", Pause: time.Minute}, {Name: "phase 1 (5%): error-rate"},
			{Name: "phase 2 (50%): route"}, {Name: "phase 2 (50%): pause", Manual: true},
			{Name: "phase 3 (100%): route"},
		},
		RollbackFirst: []StepPlan{{Name: "weight 0: route"}},
		Verify:        []StepPlan{{Name: "smoke"}},
		AutoRollback:  true,
	}
	p := Promotion{ID: "p", State: Deploying, Kind: KindPromote, RollbackID: "r0", RollbackVersion: "0.9", Cursor: Cursor{Phase: PhaseDeploy, Attempt: 1}}
	r := mustApply(t, p, plan, Event{Type: EvStepSucceeded})
	if c := r.Promotion.Cursor; c.Phase != PhaseCanary || c.Index != 0 || actionTypes(r)[0] != ActRunStep {
		t.Fatalf("after deploy: %+v %v", c, actionTypes(r))
	}
	r = mustApply(t, r.Promotion, plan, Event{Type: EvStepSucceeded}) // weight 5 set: timed pause
	if r.Promotion.WakeAt == nil || !r.Promotion.WakeAt.Equal(t0.Add(time.Minute)) || r.Promotion.Cursor.Index != 1 {
		t.Fatalf("pause: %+v", r.Promotion)
	}
	r = mustApply(t, r.Promotion, plan, Event{Type: EvWake}) // the pause ends: the analysis runs
	if c := r.Promotion.Cursor; c.Index != 2 || r.Promotion.WakeAt != nil || actionTypes(r)[0] != ActRunStep {
		t.Fatalf("after the pause: %+v %v", c, actionTypes(r))
	}
	failed := mustApply(t, r.Promotion, plan, Event{Type: EvStepFailed, Reason: "error rate 7%"})
	if failed.Promotion.State != RollingBack || failed.Promotion.Cursor.Phase != PhaseRollback || failed.Promotion.Cursor.Index != 0 {
		t.Fatalf("analysis failure: %s %+v (the rollback starts by setting weight 0)", failed.Promotion.State, failed.Promotion.Cursor)
	}
	r = mustApply(t, r.Promotion, plan, Event{Type: EvStepSucceeded}) // analysis passed
	r = mustApply(t, r.Promotion, plan, Event{Type: EvStepSucceeded}) // weight 50 set: manual pause
	if r.Promotion.State != Paused || !strings.Contains(r.Promotion.Message, "ferry advance") {
		t.Fatalf("manual pause: %s %q", r.Promotion.State, r.Promotion.Message)
	}
	r = mustApply(t, r.Promotion, plan, Event{Type: EvResume, Reason: "advanced by alice"})
	if r.Promotion.State != Deploying || r.Promotion.Cursor.Index != 5 {
		t.Fatalf("advanced: %s %+v", r.Promotion.State, r.Promotion.Cursor)
	}
	r = mustApply(t, r.Promotion, plan, Event{Type: EvStepSucceeded}) // 100%: verify
	if r.Promotion.State != Verifying || r.Promotion.Cursor.Phase != PhaseVerify {
		t.Fatalf("after the last phase: %s %+v", r.Promotion.State, r.Promotion.Cursor)
	}
}
