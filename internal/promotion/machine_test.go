package promotion_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
)

var (
	t0  = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	now = t0.Add(10 * time.Minute)
)

// testPlan has two deploy steps and one check: d1 may be retried twice with
// the default backoff, d2 never, v1 once after 5s. Its rollback steps are
// d1, d2, v1 (indexes 0, 1, 2 of PhaseRollback).
func testPlan() promotion.Plan {
	return promotion.Plan{
		Deploy: []promotion.StepPlan{
			{Name: "d1", Retries: 2},
			{Name: "d2"},
		},
		Verify: []promotion.StepPlan{
			{Name: "v1", Retries: 1, Backoff: 5 * time.Second},
		},
		AutoRollback: true,
	}
}

// queued returns a forward promotion waiting in its queue, with a previous
// release to roll back to.
func queued() promotion.Promotion {
	return promotion.Promotion{
		ID:              "p1",
		Seq:             1,
		Pipeline:        "web",
		Environment:     "prod",
		Kind:            promotion.KindPromote,
		ReleaseID:       "rel-2",
		ReleaseVersion:  "2.0.0",
		Revision:        3,
		State:           promotion.Queued,
		Actor:           "ana",
		RollbackID:      "rel-1",
		RollbackVersion: "1.0.0",
		CreatedAt:       t0,
		UpdatedAt:       t0,
		Version:         1,
	}
}

// in returns the promotion of queued() as it is in state s with cursor c.
func in(s promotion.State, c promotion.Cursor) promotion.Promotion {
	p := queued()
	p.State = s
	p.Cursor = c
	if s != promotion.Queued {
		started := t0.Add(time.Minute)
		p.StartedAt = &started
	}
	return p
}

// waiting returns p waiting for a retry that is due at wake.
func waiting(p promotion.Promotion, wake time.Time) promotion.Promotion {
	p.WakeAt = &wake
	return p
}

func withKind(p promotion.Promotion, k promotion.Kind) promotion.Promotion {
	p.Kind = k
	return p
}

func withoutRollbackTarget(p promotion.Promotion) promotion.Promotion {
	p.RollbackID, p.RollbackVersion = "", ""
	return p
}

func cur(ph promotion.Phase, index, attempt, failures int) promotion.Cursor {
	return promotion.Cursor{Phase: ph, Index: index, Attempt: attempt, Failures: failures}
}

func act(t promotion.ActionType) promotion.Action { return promotion.Action{Type: t} }

func run(c promotion.Cursor) promotion.Action {
	return promotion.Action{Type: promotion.ActRunStep, Cursor: c}
}

var (
	evaluateGates = act(promotion.ActEvaluateGates)
	wait          = act(promotion.ActWait)
	stopStep      = act(promotion.ActStopStep)
	release       = act(promotion.ActReleaseEnvironment)
	downstream    = act(promotion.ActPromoteDownstream)
)

// clone returns a copy of p that shares no memory with it.
func clone(p promotion.Promotion) promotion.Promotion {
	c := p
	for _, f := range []**time.Time{&c.WakeAt, &c.StartedAt, &c.FinishedAt} {
		if *f != nil {
			t := **f
			*f = &t
		}
	}
	return c
}

func clonePlan(pl promotion.Plan) promotion.Plan {
	c := pl
	if pl.Deploy != nil {
		c.Deploy = append([]promotion.StepPlan{}, pl.Deploy...)
	}
	if pl.Verify != nil {
		c.Verify = append([]promotion.StepPlan{}, pl.Verify...)
	}
	return c
}

// stepState reports whether s is a state in which a step runs or waits to be retried.
func stepState(s promotion.State) bool {
	return s == promotion.Deploying || s == promotion.Verifying || s == promotion.Watching || s == promotion.RollingBack
}

// checkResult checks what holds for every accepted event: the input is not
// modified, the transitions chain from the old state to the new one, and a
// terminal state is recorded and announced exactly once.
func checkResult(t *testing.T, before promotion.Promotion, plan promotion.Plan, ev promotion.Event) promotion.Result {
	t.Helper()
	p, pl := clone(before), clonePlan(plan)
	res, err := promotion.Apply(p, pl, ev, now)
	if err != nil {
		t.Fatalf("Apply(%s, %s): %v", before.State, ev.Type, err)
	}
	if !reflect.DeepEqual(p, before) {
		t.Errorf("Apply modified its promotion:\nbefore %+v\nafter  %+v", before, p)
	}
	if !reflect.DeepEqual(pl, plan) {
		t.Errorf("Apply modified its plan")
	}
	got := res.Promotion
	from := before.State
	for i, tr := range res.Transitions {
		if tr.From != from {
			t.Errorf("transition %d starts at %s, want %s", i, tr.From, from)
		}
		if tr.Reason == "" {
			t.Errorf("transition %d (%s → %s) has no reason", i, tr.From, tr.To)
		}
		from = tr.To
	}
	if from != got.State {
		t.Errorf("transitions end at %s, promotion is %s", from, got.State)
	}
	if !got.UpdatedAt.Equal(now) {
		t.Errorf("UpdatedAt = %v, want %v", got.UpdatedAt, now)
	}
	releases, downstreams := 0, 0
	for _, a := range res.Actions {
		switch a.Type {
		case promotion.ActReleaseEnvironment:
			releases++
		case promotion.ActPromoteDownstream:
			downstreams++
		}
	}
	if got.State.Terminal() {
		if releases != 1 {
			t.Errorf("terminal state %s: %d release actions, want 1", got.State, releases)
		}
		if got.FinishedAt == nil || !got.FinishedAt.Equal(now) {
			t.Errorf("terminal state %s: FinishedAt = %v, want %v", got.State, got.FinishedAt, now)
		}
		if got.WakeAt != nil {
			t.Errorf("terminal state %s: WakeAt = %v, want nil", got.State, *got.WakeAt)
		}
		if got.Cursor != (promotion.Cursor{}) {
			t.Errorf("terminal state %s: Cursor = %+v, want zero", got.State, got.Cursor)
		}
		if got.Message == "" {
			t.Errorf("terminal state %s: no message", got.State)
		}
	} else {
		if releases != 0 {
			t.Errorf("non-terminal state %s: %d release actions, want 0", got.State, releases)
		}
		if got.FinishedAt != nil {
			t.Errorf("non-terminal state %s: FinishedAt = %v, want nil", got.State, *got.FinishedAt)
		}
	}
	wantDownstream := 0
	if got.State == promotion.Succeeded && got.Kind == promotion.KindPromote {
		wantDownstream = 1
	}
	if downstreams != wantDownstream {
		t.Errorf("state %s kind %s: %d promote-downstream actions, want %d", got.State, got.Kind, downstreams, wantDownstream)
	}
	return res
}

func TestApplyTransitions(t *testing.T) {
	noDeploy := testPlan()
	noDeploy.Deploy = nil
	noVerify := testPlan()
	noVerify.Verify = nil
	empty := promotion.Plan{AutoRollback: true}
	manual := testPlan()
	manual.AutoRollback = false

	var (
		deploy   = promotion.PhaseDeploy
		verify   = promotion.PhaseVerify
		rollback = promotion.PhaseRollback
	)

	tests := []struct {
		name   string
		plan   promotion.Plan // testPlan() when zero
		p      promotion.Promotion
		ev     promotion.Event
		path   []promotion.State // the states passed through, in order
		cursor promotion.Cursor
		wakeIn time.Duration // 0: WakeAt must be nil
		acts   []promotion.Action
	}{
		{
			name: "start leaves the queue to evaluate gates",
			p:    queued(),
			ev:   promotion.Event{Type: promotion.EvStart},
			path: []promotion.State{promotion.Gating},
			acts: []promotion.Action{evaluateGates},
		},
		{
			name: "supersede ends a queued promotion",
			p:    queued(),
			ev:   promotion.Event{Type: promotion.EvSupersede, Reason: "2.1.0 was queued"},
			path: []promotion.State{promotion.Superseded},
			acts: []promotion.Action{release},
		},
		{
			name:   "gates pass starts the first deploy step",
			p:      in(promotion.Gating, promotion.Cursor{}),
			ev:     promotion.Event{Type: promotion.EvGates, Gate: promotion.GatePass},
			path:   []promotion.State{promotion.Deploying},
			cursor: cur(deploy, 0, 1, 0),
			acts:   []promotion.Action{run(cur(deploy, 0, 1, 0))},
		},
		{
			name:   "gates pass with no deploy steps starts the first check",
			plan:   noDeploy,
			p:      in(promotion.Gating, promotion.Cursor{}),
			ev:     promotion.Event{Type: promotion.EvGates, Gate: promotion.GatePass},
			path:   []promotion.State{promotion.Deploying, promotion.Verifying},
			cursor: cur(verify, 0, 1, 0),
			acts:   []promotion.Action{run(cur(verify, 0, 1, 0))},
		},
		{
			name: "gates pass with no steps at all succeeds",
			plan: empty,
			p:    in(promotion.Gating, promotion.Cursor{}),
			ev:   promotion.Event{Type: promotion.EvGates, Gate: promotion.GatePass},
			path: []promotion.State{promotion.Deploying, promotion.Verifying, promotion.Succeeded},
			acts: []promotion.Action{release, downstream},
		},
		{
			name: "a rollback with no steps succeeds without promoting downstream",
			plan: empty,
			p:    withKind(in(promotion.Gating, promotion.Cursor{}), promotion.KindRollback),
			ev:   promotion.Event{Type: promotion.EvGates, Gate: promotion.GatePass},
			path: []promotion.State{promotion.Deploying, promotion.Verifying, promotion.Succeeded},
			acts: []promotion.Action{release},
		},
		{
			name: "gates pending wait for approval",
			p:    in(promotion.Gating, promotion.Cursor{}),
			ev:   promotion.Event{Type: promotion.EvGates, Gate: promotion.GatePending, Reason: "needs 1 approval"},
			path: []promotion.State{promotion.AwaitingApproval},
		},
		{
			name: "gates fail reject the promotion",
			p:    in(promotion.Gating, promotion.Cursor{}),
			ev:   promotion.Event{Type: promotion.EvGates, Gate: promotion.GateFail, Reason: "freeze window"},
			path: []promotion.State{promotion.Rejected},
			acts: []promotion.Action{release},
		},
		{
			name: "approval evaluates the gates again",
			p:    in(promotion.AwaitingApproval, promotion.Cursor{}),
			ev:   promotion.Event{Type: promotion.EvApprove},
			path: []promotion.State{promotion.Gating},
			acts: []promotion.Action{evaluateGates},
		},
		{
			name: "rejection ends the promotion",
			p:    in(promotion.AwaitingApproval, promotion.Cursor{}),
			ev:   promotion.Event{Type: promotion.EvReject, Reason: "not today"},
			path: []promotion.State{promotion.Rejected},
			acts: []promotion.Action{release},
		},
		{
			name:   "a deploy step succeeding runs the next one",
			p:      in(promotion.Deploying, cur(deploy, 0, 1, 0)),
			ev:     promotion.Event{Type: promotion.EvStepSucceeded},
			cursor: cur(deploy, 1, 1, 0),
			acts:   []promotion.Action{run(cur(deploy, 1, 1, 0))},
		},
		{
			name:   "the next step starts with a fresh attempt count",
			p:      in(promotion.Deploying, cur(deploy, 0, 4, 2)),
			ev:     promotion.Event{Type: promotion.EvStepSucceeded},
			cursor: cur(deploy, 1, 1, 0),
			acts:   []promotion.Action{run(cur(deploy, 1, 1, 0))},
		},
		{
			name:   "the last deploy step succeeding starts the checks",
			p:      in(promotion.Deploying, cur(deploy, 1, 1, 0)),
			ev:     promotion.Event{Type: promotion.EvStepSucceeded},
			path:   []promotion.State{promotion.Verifying},
			cursor: cur(verify, 0, 1, 0),
			acts:   []promotion.Action{run(cur(verify, 0, 1, 0))},
		},
		{
			name: "the last deploy step succeeding with no checks succeeds",
			plan: noVerify,
			p:    in(promotion.Deploying, cur(deploy, 1, 1, 0)),
			ev:   promotion.Event{Type: promotion.EvStepSucceeded},
			path: []promotion.State{promotion.Verifying, promotion.Succeeded},
			acts: []promotion.Action{release, downstream},
		},
		{
			name: "the last check succeeding succeeds and promotes downstream",
			p:    in(promotion.Verifying, cur(verify, 0, 2, 1)),
			ev:   promotion.Event{Type: promotion.EvStepSucceeded},
			path: []promotion.State{promotion.Succeeded},
			acts: []promotion.Action{release, downstream},
		},
		{
			name: "a rollback promotion succeeding does not promote downstream",
			p:    withKind(in(promotion.Verifying, cur(verify, 0, 1, 0)), promotion.KindRollback),
			ev:   promotion.Event{Type: promotion.EvStepSucceeded},
			path: []promotion.State{promotion.Succeeded},
			acts: []promotion.Action{release},
		},
		{
			name:   "a failed step with retries left waits the first backoff",
			p:      in(promotion.Deploying, cur(deploy, 0, 1, 0)),
			ev:     promotion.Event{Type: promotion.EvStepFailed, Reason: "exit status 1"},
			cursor: cur(deploy, 0, 2, 1),
			wakeIn: time.Second,
			acts:   []promotion.Action{wait},
		},
		{
			name:   "a second failure waits twice as long",
			p:      in(promotion.Deploying, cur(deploy, 0, 2, 1)),
			ev:     promotion.Event{Type: promotion.EvStepFailed},
			cursor: cur(deploy, 0, 3, 2),
			wakeIn: 2 * time.Second,
			acts:   []promotion.Action{wait},
		},
		{
			name:   "a failed check waits its own backoff",
			p:      in(promotion.Verifying, cur(verify, 0, 1, 0)),
			ev:     promotion.Event{Type: promotion.EvStepFailed},
			cursor: cur(verify, 0, 2, 1),
			wakeIn: 5 * time.Second,
			acts:   []promotion.Action{wait},
		},
		{
			name:   "interrupted attempts do not use up retries",
			p:      in(promotion.Deploying, cur(deploy, 0, 5, 2)),
			ev:     promotion.Event{Type: promotion.EvStepFailed},
			path:   []promotion.State{promotion.RollingBack},
			cursor: cur(rollback, 0, 1, 0),
			acts:   []promotion.Action{run(cur(rollback, 0, 1, 0))},
		},
		{
			name:   "a step without retries failing rolls back",
			p:      in(promotion.Deploying, cur(deploy, 1, 1, 0)),
			ev:     promotion.Event{Type: promotion.EvStepFailed, Reason: "exit status 2"},
			path:   []promotion.State{promotion.RollingBack},
			cursor: cur(rollback, 0, 1, 0),
			acts:   []promotion.Action{run(cur(rollback, 0, 1, 0))},
		},
		{
			name:   "a check failing for the last time rolls back",
			p:      in(promotion.Verifying, cur(verify, 0, 2, 1)),
			ev:     promotion.Event{Type: promotion.EvStepFailed, Reason: "error rate 7%"},
			path:   []promotion.State{promotion.RollingBack},
			cursor: cur(rollback, 0, 1, 0),
			acts:   []promotion.Action{run(cur(rollback, 0, 1, 0))},
		},
		{
			name: "a final failure without a previous release fails",
			p:    withoutRollbackTarget(in(promotion.Deploying, cur(deploy, 1, 1, 0))),
			ev:   promotion.Event{Type: promotion.EvStepFailed},
			path: []promotion.State{promotion.Failed},
			acts: []promotion.Action{release},
		},
		{
			name: "a final failure with automatic rollback off fails",
			plan: manual,
			p:    in(promotion.Verifying, cur(verify, 0, 2, 1)),
			ev:   promotion.Event{Type: promotion.EvStepFailed},
			path: []promotion.State{promotion.Failed},
			acts: []promotion.Action{release},
		},
		{
			name: "a rollback promotion failing does not roll back again",
			p:    withKind(in(promotion.Deploying, cur(deploy, 1, 1, 0)), promotion.KindRollback),
			ev:   promotion.Event{Type: promotion.EvStepFailed},
			path: []promotion.State{promotion.Failed},
			acts: []promotion.Action{release},
		},
		{
			name:   "a rollback step succeeding runs the next rollback step",
			p:      in(promotion.RollingBack, cur(rollback, 0, 1, 0)),
			ev:     promotion.Event{Type: promotion.EvStepSucceeded},
			cursor: cur(rollback, 1, 1, 0),
			acts:   []promotion.Action{run(cur(rollback, 1, 1, 0))},
		},
		{
			name:   "rollback runs the checks after the deploy steps",
			p:      in(promotion.RollingBack, cur(rollback, 1, 1, 0)),
			ev:     promotion.Event{Type: promotion.EvStepSucceeded},
			cursor: cur(rollback, 2, 1, 0),
			acts:   []promotion.Action{run(cur(rollback, 2, 1, 0))},
		},
		{
			name: "the last rollback step succeeding rolls back",
			p:    in(promotion.RollingBack, cur(rollback, 2, 1, 0)),
			ev:   promotion.Event{Type: promotion.EvStepSucceeded},
			path: []promotion.State{promotion.RolledBack},
			acts: []promotion.Action{release},
		},
		{
			name:   "a rollback step with retries left waits",
			p:      in(promotion.RollingBack, cur(rollback, 2, 1, 0)),
			ev:     promotion.Event{Type: promotion.EvStepFailed},
			cursor: cur(rollback, 2, 2, 1),
			wakeIn: 5 * time.Second,
			acts:   []promotion.Action{wait},
		},
		{
			name: "a rollback step failing for the last time fails the rollback",
			p:    in(promotion.RollingBack, cur(rollback, 1, 1, 0)),
			ev:   promotion.Event{Type: promotion.EvStepFailed, Reason: "exit status 1"},
			path: []promotion.State{promotion.RollbackFailed},
			acts: []promotion.Action{release},
		},
		{
			name:   "an interrupted step runs again with the next attempt",
			p:      in(promotion.Deploying, cur(deploy, 0, 2, 1)),
			ev:     promotion.Event{Type: promotion.EvStepInterrupted},
			cursor: cur(deploy, 0, 3, 1),
			acts:   []promotion.Action{run(cur(deploy, 0, 3, 1))},
		},
		{
			name:   "an interrupted check runs again",
			p:      in(promotion.Verifying, cur(verify, 0, 1, 0)),
			ev:     promotion.Event{Type: promotion.EvStepInterrupted},
			cursor: cur(verify, 0, 2, 0),
			acts:   []promotion.Action{run(cur(verify, 0, 2, 0))},
		},
		{
			name:   "an interrupted rollback step runs again",
			p:      in(promotion.RollingBack, cur(rollback, 1, 1, 0)),
			ev:     promotion.Event{Type: promotion.EvStepInterrupted},
			cursor: cur(rollback, 1, 2, 0),
			acts:   []promotion.Action{run(cur(rollback, 1, 2, 0))},
		},
		{
			name:   "the timer runs the waiting step",
			p:      waiting(in(promotion.Deploying, cur(deploy, 0, 2, 1)), now),
			ev:     promotion.Event{Type: promotion.EvWake},
			cursor: cur(deploy, 0, 2, 1),
			acts:   []promotion.Action{run(cur(deploy, 0, 2, 1))},
		},
		{
			name:   "the timer runs the waiting rollback step",
			p:      waiting(in(promotion.RollingBack, cur(rollback, 2, 2, 1)), now),
			ev:     promotion.Event{Type: promotion.EvWake},
			cursor: cur(rollback, 2, 2, 1),
			acts:   []promotion.Action{run(cur(rollback, 2, 2, 1))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := tt.plan
			if reflect.DeepEqual(plan, promotion.Plan{}) {
				plan = testPlan()
			}
			res := checkResult(t, tt.p, plan, tt.ev)
			got := res.Promotion

			var path []promotion.State
			for _, tr := range res.Transitions {
				path = append(path, tr.To)
			}
			if !reflect.DeepEqual(path, tt.path) {
				t.Errorf("states = %v, want %v", path, tt.path)
			}
			if got.Cursor != tt.cursor {
				t.Errorf("Cursor = %+v, want %+v", got.Cursor, tt.cursor)
			}
			switch {
			case tt.wakeIn == 0 && got.WakeAt != nil:
				t.Errorf("WakeAt = %v, want nil", *got.WakeAt)
			case tt.wakeIn != 0 && got.WakeAt == nil:
				t.Errorf("WakeAt = nil, want now + %s", tt.wakeIn)
			case tt.wakeIn != 0 && !got.WakeAt.Equal(now.Add(tt.wakeIn)):
				t.Errorf("WakeAt = now + %s, want now + %s", got.WakeAt.Sub(now), tt.wakeIn)
			}
			if !reflect.DeepEqual(res.Actions, tt.acts) {
				t.Errorf("Actions = %v, want %v", res.Actions, tt.acts)
			}
			if len(tt.path) > 0 && got.Message == "" {
				t.Error("state changed without a message")
			}
			if tt.ev.Reason != "" && tt.ev.Type != promotion.EvStepFailed && len(tt.path) > 0 && got.Message != tt.ev.Reason {
				t.Errorf("Message = %q, want the event's reason %q", got.Message, tt.ev.Reason)
			}
			if tt.ev.Type == promotion.EvStepFailed && tt.ev.Reason != "" && !strings.Contains(got.Message, tt.ev.Reason) {
				t.Errorf("Message = %q, want it to name the failure %q", got.Message, tt.ev.Reason)
			}
			// Identity and history are never rewritten.
			for _, f := range []struct{ got, want any }{
				{got.ID, tt.p.ID}, {got.Seq, tt.p.Seq}, {got.Kind, tt.p.Kind},
				{got.ReleaseID, tt.p.ReleaseID}, {got.RollbackID, tt.p.RollbackID},
				{got.CreatedAt, tt.p.CreatedAt}, {got.Version, tt.p.Version},
			} {
				if f.got != f.want {
					t.Errorf("field changed from %v to %v", f.want, f.got)
				}
			}
		})
	}
}

func TestApplyStartRecordsStartedAt(t *testing.T) {
	res := checkResult(t, queued(), testPlan(), promotion.Event{Type: promotion.EvStart})
	if got := res.Promotion.StartedAt; got == nil || !got.Equal(now) {
		t.Errorf("StartedAt = %v, want %v", got, now)
	}
	// Later transitions keep the start time.
	started := *res.Promotion.StartedAt
	res = checkResult(t, res.Promotion, testPlan(), promotion.Event{Type: promotion.EvGates, Gate: promotion.GatePass})
	if got := res.Promotion.StartedAt; got == nil || !got.Equal(started) {
		t.Errorf("StartedAt after gates = %v, want %v", got, started)
	}
}

func TestApplyRetriesUntilExhausted(t *testing.T) {
	plan := promotion.Plan{
		Deploy:       []promotion.StepPlan{{Name: "flaky", Retries: 8}},
		AutoRollback: true,
	}
	p := in(promotion.Deploying, promotion.Cursor{Phase: promotion.PhaseDeploy, Attempt: 1})
	waits := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i, want := range waits {
		want *= time.Second
		res := checkResult(t, p, plan, promotion.Event{Type: promotion.EvStepFailed, Reason: "boom"})
		p = res.Promotion
		if p.State != promotion.Deploying || p.WakeAt == nil {
			t.Fatalf("failure %d: state %s, WakeAt %v; want deploying and waiting", i+1, p.State, p.WakeAt)
		}
		if got := p.WakeAt.Sub(now); got != want {
			t.Errorf("failure %d: wait %s, want %s", i+1, got, want)
		}
		if p.Cursor.Attempt != i+2 || p.Cursor.Failures != i+1 {
			t.Errorf("failure %d: cursor %+v, want attempt %d failures %d", i+1, p.Cursor, i+2, i+1)
		}
		if !reflect.DeepEqual(res.Actions, []promotion.Action{wait}) {
			t.Errorf("failure %d: actions %v, want [wait]", i+1, res.Actions)
		}
		// A step event while waiting makes no sense: the attempt has not started.
		for _, ty := range []promotion.EventType{promotion.EvStepSucceeded, promotion.EvStepFailed, promotion.EvStepInterrupted} {
			if _, err := promotion.Apply(p, plan, promotion.Event{Type: ty}, now); !isInvalid(err) {
				t.Errorf("failure %d: %s while waiting: err = %v, want *InvalidEventError", i+1, ty, err)
			}
		}
		res = checkResult(t, p, plan, promotion.Event{Type: promotion.EvWake})
		p = res.Promotion
		if p.WakeAt != nil || p.Cursor.Attempt != i+2 {
			t.Fatalf("wake %d: WakeAt %v cursor %+v", i+1, p.WakeAt, p.Cursor)
		}
		if _, err := promotion.Apply(p, plan, promotion.Event{Type: promotion.EvWake}, now); !isInvalid(err) {
			t.Errorf("wake %d: a second wake: err = %v, want *InvalidEventError", i+1, err)
		}
	}
	res := checkResult(t, p, plan, promotion.Event{Type: promotion.EvStepFailed})
	if res.Promotion.State != promotion.RollingBack {
		t.Errorf("after %d failures: state %s, want rolling_back", len(waits)+1, res.Promotion.State)
	}
}

func TestApplyInterruptionsKeepRetries(t *testing.T) {
	plan := promotion.Plan{Deploy: []promotion.StepPlan{{Name: "d", Retries: 1}}}
	p := in(promotion.Deploying, promotion.Cursor{Phase: promotion.PhaseDeploy, Attempt: 1})
	for _, step := range []struct {
		ev       promotion.EventType
		attempt  int
		failures int
		state    promotion.State
	}{
		{promotion.EvStepInterrupted, 2, 0, promotion.Deploying},
		{promotion.EvStepInterrupted, 3, 0, promotion.Deploying},
		{promotion.EvStepFailed, 4, 1, promotion.Deploying},
		{promotion.EvWake, 4, 1, promotion.Deploying},
		{promotion.EvStepInterrupted, 5, 1, promotion.Deploying},
		{promotion.EvStepFailed, 0, 0, promotion.Failed},
	} {
		p = checkResult(t, p, plan, promotion.Event{Type: step.ev}).Promotion
		if p.State != step.state || p.Cursor.Attempt != step.attempt || p.Cursor.Failures != step.failures {
			t.Fatalf("after %s: state %s cursor %+v; want %s attempt %d failures %d",
				step.ev, p.State, p.Cursor, step.state, step.attempt, step.failures)
		}
	}
}

func TestApplyRollbackRunsDeployThenVerifySteps(t *testing.T) {
	plan := testPlan()
	p := in(promotion.Verifying, cur(promotion.PhaseVerify, 0, 2, 1))
	p = checkResult(t, p, plan, promotion.Event{Type: promotion.EvStepFailed}).Promotion
	var names []string
	for p.State == promotion.RollingBack {
		if p.Cursor.Phase != promotion.PhaseRollback || p.Cursor.Attempt != 1 {
			t.Fatalf("rolling back with cursor %+v", p.Cursor)
		}
		names = append(names, plan.Steps(promotion.PhaseRollback)[p.Cursor.Index].Name)
		p = checkResult(t, p, plan, promotion.Event{Type: promotion.EvStepSucceeded}).Promotion
	}
	if p.State != promotion.RolledBack {
		t.Errorf("state = %s, want rolled_back", p.State)
	}
	if want := []string{"d1", "d2", "v1"}; !reflect.DeepEqual(names, want) {
		t.Errorf("rollback ran %v, want %v", names, want)
	}
	if !strings.Contains(p.Message, "1.0.0") {
		t.Errorf("Message = %q, want it to name the restored version", p.Message)
	}
}

func TestPlanSteps(t *testing.T) {
	plan := testPlan()
	rb := plan.Steps(promotion.PhaseRollback)
	if len(rb) != 3 || rb[0].Name != "d1" || rb[2].Name != "v1" {
		t.Fatalf("rollback steps = %v", rb)
	}
	rb[0].Name = "changed"
	if plan.Deploy[0].Name != "d1" {
		t.Error("changing the rollback steps changed the plan")
	}
	if got := plan.Steps("other"); got != nil {
		t.Errorf("steps of an unknown phase = %v, want nil", got)
	}
}

func TestRetryBackoff(t *testing.T) {
	tests := []struct {
		base time.Duration
		n    int
		want time.Duration
	}{
		{0, 1, time.Second},
		{0, 2, 2 * time.Second},
		{0, 3, 4 * time.Second},
		{0, 4, 8 * time.Second},
		{0, 6, 32 * time.Second},
		{0, 7, time.Minute},
		{0, 8, time.Minute},
		{0, 1000, time.Minute},
		{-time.Second, 1, time.Second},
		{0, 0, time.Second},
		{0, -3, time.Second},
		{500 * time.Millisecond, 1, 500 * time.Millisecond},
		{500 * time.Millisecond, 3, 2 * time.Second},
		{10 * time.Second, 3, 40 * time.Second},
		{10 * time.Second, 4, time.Minute},
		{time.Minute, 1, time.Minute},
		{time.Hour, 1, time.Minute},
		{time.Nanosecond, 64, time.Minute},
		{time.Duration(1<<62 + 1), 3, time.Minute},
	}
	for _, tt := range tests {
		if got := promotion.RetryBackoff(tt.base, tt.n); got != tt.want {
			t.Errorf("RetryBackoff(%s, %d) = %s, want %s", tt.base, tt.n, got, tt.want)
		}
	}
}

// stateFixtures returns a promotion in every state, waiting or not where a
// step can wait, as the machine could have left it.
func stateFixtures() map[string]promotion.Promotion {
	fs := map[string]promotion.Promotion{}
	cursors := map[promotion.State]promotion.Cursor{
		promotion.Deploying:   cur(promotion.PhaseDeploy, 0, 2, 1),
		promotion.Verifying:   cur(promotion.PhaseVerify, 0, 1, 0),
		promotion.Watching:    cur(promotion.PhaseWatch, 0, 1, 0),
		promotion.RollingBack: cur(promotion.PhaseRollback, 2, 2, 1),
	}
	for _, s := range promotion.States {
		p := in(s, cursors[s])
		if s.Terminal() {
			done := t0.Add(5 * time.Minute)
			p.FinishedAt = &done
		}
		fs[string(s)] = p
		if stepState(s) {
			fs[string(s)+" (waiting)"] = waiting(p, now.Add(time.Second))
		}
	}
	return fs
}

// allEvents returns one event of every type, with every gate outcome.
func allEvents() []promotion.Event {
	return []promotion.Event{
		{Type: promotion.EvStart},
		{Type: promotion.EvGates, Gate: promotion.GatePass},
		{Type: promotion.EvGates, Gate: promotion.GatePending},
		{Type: promotion.EvGates, Gate: promotion.GateFail},
		{Type: promotion.EvGates, Gate: "maybe"},
		{Type: promotion.EvGates},
		{Type: promotion.EvApprove},
		{Type: promotion.EvReject},
		{Type: promotion.EvStepSucceeded},
		{Type: promotion.EvStepFailed},
		{Type: promotion.EvStepInterrupted},
		{Type: promotion.EvWake},
		{Type: promotion.EvAbort},
		{Type: promotion.EvSupersede},
		{Type: promotion.EvStepInconclusive},
		{Type: promotion.EvResume},
		{Type: promotion.EvAlert},
		{Type: "bogus"},
	}
}

func eventName(ev promotion.Event) string {
	if ev.Type == promotion.EvGates {
		return fmt.Sprintf("%s(%q)", ev.Type, ev.Gate)
	}
	return string(ev.Type)
}

// validEvents lists, for each fixture of stateFixtures, the events it accepts.
var validEvents = map[string][]string{
	"queued":                 {"start", "supersede", "abort"},
	"gating":                 {`gates("pass")`, `gates("pending")`, `gates("fail")`, "abort"},
	"awaiting_approval":      {"approve", "reject", "abort"},
	"deploying":              {"step_succeeded", "step_failed", "step_interrupted", "step_inconclusive", "abort"},
	"deploying (waiting)":    {"wake", "abort"},
	"verifying":              {"step_succeeded", "step_failed", "step_interrupted", "step_inconclusive", "abort", "alert"},
	"verifying (waiting)":    {"wake", "abort", "alert"},
	"watching":               {"step_succeeded", "step_failed", "step_interrupted", "step_inconclusive", "abort", "resume", "alert"},
	"watching (waiting)":     {"wake", "abort", "resume", "alert"},
	"rolling_back":           {"step_succeeded", "step_failed", "step_interrupted", "step_inconclusive", "abort"},
	"paused":                 {"resume", "abort"},
	"rolling_back (waiting)": {"wake", "abort"},
}

func isInvalid(err error) bool {
	var ie *promotion.InvalidEventError
	return errors.As(err, &ie)
}

func TestApplyAcceptsOnlyValidEvents(t *testing.T) {
	for name, p := range stateFixtures() {
		for _, ev := range allEvents() {
			t.Run(name+"/"+eventName(ev), func(t *testing.T) {
				valid := false
				for _, v := range validEvents[name] {
					valid = valid || v == eventName(ev)
				}
				if valid {
					checkResult(t, p, testPlan(), ev)
					return
				}
				before := clone(p)
				res, err := promotion.Apply(p, testPlan(), ev, now)
				var ie *promotion.InvalidEventError
				if !errors.As(err, &ie) {
					t.Fatalf("err = %v, want *InvalidEventError", err)
				}
				if ie.State != p.State || ie.Event != ev.Type {
					t.Errorf("error names state %s event %s, want %s %s", ie.State, ie.Event, p.State, ev.Type)
				}
				if ie.Error() == "" {
					t.Error("empty error message")
				}
				if !reflect.DeepEqual(res, promotion.Result{}) {
					t.Errorf("rejected event returned a result: %+v", res)
				}
				if !reflect.DeepEqual(p, before) {
					t.Errorf("rejected event modified the promotion")
				}
			})
		}
	}
}

func TestApplyAbort(t *testing.T) {
	for name, p := range stateFixtures() {
		if p.State.Terminal() {
			continue
		}
		t.Run(name, func(t *testing.T) {
			for _, reason := range []string{"", "wrong release"} {
				res := checkResult(t, p, testPlan(), promotion.Event{Type: promotion.EvAbort, Reason: reason})
				got := res.Promotion
				if got.State != promotion.Aborted {
					t.Fatalf("state = %s, want aborted", got.State)
				}
				want := []promotion.Action{release}
				if stepState(p.State) && p.WakeAt == nil {
					want = []promotion.Action{stopStep, release}
				}
				if !reflect.DeepEqual(res.Actions, want) {
					t.Errorf("actions = %v, want %v", res.Actions, want)
				}
				if want := []promotion.Transition{{From: p.State, To: promotion.Aborted, Reason: got.Message}}; !reflect.DeepEqual(res.Transitions, want) {
					t.Errorf("transitions = %v, want %v", res.Transitions, want)
				}
				if reason != "" && got.Message != reason {
					t.Errorf("Message = %q, want %q", got.Message, reason)
				}
			}
		})
	}
}

func TestApplyDoesNotModifyItsInput(t *testing.T) {
	// checkResult compares before and after for every accepted event; this
	// also covers rejected ones.
	for name, p := range stateFixtures() {
		for _, ev := range allEvents() {
			before, plan := clone(p), testPlan()
			_, _ = promotion.Apply(p, plan, ev, now)
			if !reflect.DeepEqual(p, before) || !reflect.DeepEqual(plan, testPlan()) {
				t.Errorf("%s/%s: Apply modified its input", name, eventName(ev))
			}
		}
	}
}

func TestApplyUpdatedAt(t *testing.T) {
	// Every accepted event changes the promotion, so each one moves UpdatedAt,
	// including those that keep the state (a retry, a wake, the next step).
	for name, p := range stateFixtures() {
		for _, ev := range allEvents() {
			res, err := promotion.Apply(p, testPlan(), ev, now)
			if err != nil {
				continue
			}
			if !res.Promotion.UpdatedAt.Equal(now) {
				t.Errorf("%s/%s: UpdatedAt = %v, want %v", name, eventName(ev), res.Promotion.UpdatedAt, now)
			}
			if reflect.DeepEqual(res.Promotion, p) {
				t.Errorf("%s/%s: accepted event changed nothing", name, eventName(ev))
			}
		}
	}
}

func TestStatePredicates(t *testing.T) {
	terminal := map[promotion.State]bool{
		promotion.Succeeded: true, promotion.Failed: true, promotion.RolledBack: true,
		promotion.RollbackFailed: true, promotion.Aborted: true, promotion.Superseded: true,
		promotion.Rejected: true,
	}
	if len(promotion.States) != 15 {
		t.Errorf("%d states, want 15", len(promotion.States))
	}
	for _, s := range promotion.States {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
		if s.Terminal() != terminal[s] {
			t.Errorf("%s.Terminal() = %v", s, s.Terminal())
		}
		if want := !terminal[s] && s != promotion.Queued; s.HoldsEnvironment() != want {
			t.Errorf("%s.HoldsEnvironment() = %v, want %v", s, s.HoldsEnvironment(), want)
		}
	}
	for _, s := range []promotion.State{"", "running", "Queued"} {
		if s.Valid() || s.Terminal() {
			t.Errorf("%q: Valid %v Terminal %v", s, s.Valid(), s.Terminal())
		}
	}
}

func TestNextToStart(t *testing.T) {
	p := func(id string, seq int64, s promotion.State) promotion.Promotion {
		return promotion.Promotion{ID: id, Seq: seq, State: s, Environment: "prod", Kind: promotion.KindPromote}
	}
	tests := []struct {
		name string
		ps   []promotion.Promotion
		want string // "" when none may start
	}{
		{"empty", nil, ""},
		{"one queued", []promotion.Promotion{p("a", 1, promotion.Queued)}, "a"},
		{"oldest first", []promotion.Promotion{p("b", 7, promotion.Queued), p("a", 3, promotion.Queued), p("c", 9, promotion.Queued)}, "a"},
		{"holder first", []promotion.Promotion{p("h", 1, promotion.Deploying), p("a", 2, promotion.Queued)}, ""},
		{"holder last", []promotion.Promotion{p("a", 2, promotion.Queued), p("h", 9, promotion.AwaitingApproval)}, ""},
		{"gating holds", []promotion.Promotion{p("a", 1, promotion.Queued), p("h", 2, promotion.Gating)}, ""},
		{"verifying holds", []promotion.Promotion{p("a", 1, promotion.Queued), p("h", 2, promotion.Verifying)}, ""},
		{"rolling back holds", []promotion.Promotion{p("a", 1, promotion.Queued), p("h", 2, promotion.RollingBack)}, ""},
		{"terminal ones are ignored", []promotion.Promotion{p("s", 1, promotion.Succeeded), p("f", 2, promotion.Failed), p("a", 4, promotion.Queued), p("x", 3, promotion.Superseded)}, "a"},
		{"nothing queued", []promotion.Promotion{p("s", 1, promotion.Succeeded)}, ""},
	}
	for _, tt := range tests {
		got, ok := promotion.NextToStart(tt.ps)
		if ok != (tt.want != "") || got.ID != tt.want {
			t.Errorf("%s: NextToStart = %q, %v; want %q", tt.name, got.ID, ok, tt.want)
		}
	}
}

func TestSupersedes(t *testing.T) {
	prev := promotion.Promotion{ID: "old", Pipeline: "web", Environment: "prod", Kind: promotion.KindPromote, State: promotion.Queued}
	next := promotion.Promotion{ID: "new", Pipeline: "web", Environment: "prod", Kind: promotion.KindPromote, State: promotion.Queued}
	older, newer := t0, t0.Add(time.Hour)
	change := func(p promotion.Promotion, f func(*promotion.Promotion)) promotion.Promotion {
		f(&p)
		return p
	}
	tests := []struct {
		name                 string
		next, prev           promotion.Promotion
		nextCreated, prevCre time.Time
		want                 bool
	}{
		{"newer release", next, prev, newer, older, true},
		{"same release time", next, prev, older, older, true},
		{"older release", next, prev, older, newer, false},
		{"itself", prev, prev, newer, older, false},
		{"prev started", next, change(prev, func(p *promotion.Promotion) { p.State = promotion.Gating }), newer, older, false},
		{"prev finished", next, change(prev, func(p *promotion.Promotion) { p.State = promotion.Succeeded }), newer, older, false},
		{"prev is a rollback", next, change(prev, func(p *promotion.Promotion) { p.Kind = promotion.KindRollback }), newer, older, false},
		{"next is a rollback", change(next, func(p *promotion.Promotion) { p.Kind = promotion.KindRollback }), prev, newer, older, false},
		{"other environment", change(next, func(p *promotion.Promotion) { p.Environment = "staging" }), prev, newer, older, false},
		{"other pipeline", change(next, func(p *promotion.Promotion) { p.Pipeline = "api" }), prev, newer, older, false},
	}
	for _, tt := range tests {
		if got := promotion.Supersedes(tt.next, tt.prev, tt.nextCreated, tt.prevCre); got != tt.want {
			t.Errorf("%s: Supersedes = %v, want %v", tt.name, got, tt.want)
		}
	}
}
