package promotion

import (
	"fmt"
	"time"
)

// StepPlan is what the transition function needs to know of one step.
type StepPlan struct {
	Name    string
	Retries int
	// Pause, for an item of a canary phase, waits this long instead of
	// running a step; Manual waits in paused for a person (ferry advance).
	Pause  time.Duration
	Manual bool
	// Backoff is the wait before the first retry; it doubles per retry up to MaxBackoff.
	Backoff time.Duration
}

// Plan is what the transition function needs to know of the pipeline
// revision a promotion pinned.
type Plan struct {
	// Preflight checks run before the deploy steps; a failure ends the
	// promotion failed with nothing deployed.
	Preflight []StepPlan
	Deploy    []StepPlan
	// Canary lists the canary strategy's items in order: each phase's
	// set-weight steps, its pause, its analysis.
	Canary []StepPlan
	// RollbackFirst runs before the rollback's redeploy (set the canary weight back to 0).
	RollbackFirst []StepPlan
	Verify        []StepPlan
	// Watch is the post-promotion watch window, one item, or empty.
	Watch []StepPlan
	// AutoRollback redeploys the previous release when a step or check fails.
	AutoRollback bool
}

// Rollback returns the steps run when rolling back: RollbackFirst, the
// deploy steps, then the checks.
func (pl Plan) Rollback() []StepPlan {
	return append(append(append([]StepPlan(nil), pl.RollbackFirst...), pl.Deploy...), pl.Verify...)
}

// Steps returns the steps of a phase.
func (pl Plan) Steps(ph Phase) []StepPlan {
	switch ph {
	case PhasePreflight:
		return pl.Preflight
	case PhaseDeploy:
		return pl.Deploy
	case PhaseCanary:
		return pl.Canary
	case PhaseVerify:
		return pl.Verify
	case PhaseRollback:
		return pl.Rollback()
	case PhaseWatch:
		return pl.Watch
	}
	return nil
}

// Backoff defaults and limits.
const (
	DefaultBackoff = time.Second
	MaxBackoff     = time.Minute
)

// EventType names what happened to a promotion.
type EventType string

// The events a promotion reacts to.
const (
	// EvStart: the environment is free and the promotion is first in its queue.
	EvStart EventType = "start"
	// EvGates: gates were evaluated; see Event.Gate.
	EvGates EventType = "gates"
	// EvApprove and EvReject: a person decided on an awaiting promotion.
	EvApprove EventType = "approve"
	EvReject  EventType = "reject"
	// EvStepSucceeded, EvStepFailed and EvStepInterrupted: the current step attempt ended.
	EvStepSucceeded   EventType = "step_succeeded"
	EvStepFailed      EventType = "step_failed"
	EvStepInterrupted EventType = "step_interrupted"
	// EvWake: the promotion's timer fired.
	EvWake EventType = "wake"
	// EvAbort: a person aborted the promotion.
	EvAbort EventType = "abort"
	// EvSupersede: a newer release was queued for the same environment.
	EvSupersede EventType = "supersede"
	// EvStepInconclusive: the current check could not decide; the promotion pauses.
	EvStepInconclusive EventType = "step_inconclusive"
	// EvResume: a person resumes a paused promotion, counting the check as
	// passed; for a watching promotion, it ends the watch window early.
	EvResume EventType = "resume"
	// EvAlert: an alert fired for a verifying or watching promotion whose
	// environment rolls back on alerts.
	EvAlert EventType = "alert"
)

// GateResult is the outcome of evaluating gates.
type GateResult string

// The outcomes of a gate evaluation.
const (
	GatePass    GateResult = "pass"
	GateFail    GateResult = "fail"
	GatePending GateResult = "pending"
)

// Event is something that happened to a promotion.
type Event struct {
	Type EventType
	// Gate is the outcome of EvGates.
	Gate GateResult
	// Reason explains the event in words (a gate's reason, a step's error, an abort's reason).
	Reason string
	// WakeAt is, for a pending EvGates, when to evaluate the gates again (a
	// soak ends, a window opens, an approval times out).
	WakeAt *time.Time
	// Approval is set on a pending EvGates when what is missing is approvals:
	// the promotion then waits in awaiting_approval.
	Approval bool
}

// ActionType names work the engine must do after committing a decision.
type ActionType string

// The actions the transition function asks for.
const (
	// ActEvaluateGates: evaluate the environment's gates and report EvGates.
	ActEvaluateGates ActionType = "evaluate_gates"
	// ActRunStep: run the step at the cursor and report its result.
	ActRunStep ActionType = "run_step"
	// ActWait: report EvWake at Promotion.WakeAt.
	ActWait ActionType = "wait"
	// ActStopStep: terminate the running step attempt, if any.
	ActStopStep ActionType = "stop_step"
	// ActReleaseEnvironment: the promotion ended; start the next queued one.
	ActReleaseEnvironment ActionType = "release_environment"
	// ActPromoteDownstream: the release succeeded here; promote it to auto-promote environments after this one.
	ActPromoteDownstream ActionType = "promote_downstream"
)

// Action is work the engine must do after committing a decision.
type Action struct {
	Type ActionType
	// Cursor is the step to run for ActRunStep.
	Cursor Cursor
}

// Result is the outcome of applying an event.
type Result struct {
	// Promotion is the promotion after the event.
	Promotion Promotion
	// Transitions lists the state changes, in order; empty when the state did not change.
	Transitions []Transition
	// Actions lists the work to do once Promotion is committed.
	Actions []Action
}

// InvalidEventError reports an event that makes no sense in a promotion's state.
type InvalidEventError struct {
	State State
	Event EventType
}

func (e *InvalidEventError) Error() string {
	return fmt.Sprintf("event %s is not valid in state %s", e.Event, e.State)
}

// Apply decides what ev means for p under plan at time now. It does no I/O
// and does not modify p. An event that is not valid in p's state returns an
// *InvalidEventError and changes nothing.
func Apply(p Promotion, plan Plan, ev Event, now time.Time) (Result, error) {
	m := machine{p: p, plan: plan, now: now}
	if err := m.apply(ev); err != nil {
		return Result{}, err
	}
	// Every accepted event changes the promotion (its state, cursor, attempt
	// or timer), so every one of them is an update.
	m.p.UpdatedAt = now
	return Result{Promotion: m.p, Transitions: m.trans, Actions: m.acts}, nil
}

type machine struct {
	p     Promotion
	plan  Plan
	now   time.Time
	trans []Transition
	acts  []Action
}

func (m *machine) invalid(ev EventType) error {
	return &InvalidEventError{State: m.p.State, Event: ev}
}

func (m *machine) to(s State, reason string) {
	m.trans = append(m.trans, Transition{From: m.p.State, To: s, Reason: reason})
	m.p.State = s
	m.p.Message = reason
	if s.Terminal() {
		t := m.now
		m.p.FinishedAt = &t
		m.p.WakeAt = nil
		m.p.Cursor = Cursor{}
		m.acts = append(m.acts, Action{Type: ActReleaseEnvironment})
		if s == Succeeded && m.p.Kind == KindPromote {
			m.acts = append(m.acts, Action{Type: ActPromoteDownstream})
		}
	}
}

func (m *machine) inStep() bool {
	switch m.p.State {
	case Deploying, Verifying, Watching, RollingBack:
		return true
	}
	return false
}

func (m *machine) apply(ev Event) error {
	if ev.Type == EvAbort {
		if m.p.State.Terminal() {
			return m.invalid(ev.Type)
		}
		if m.inStep() && m.p.WakeAt == nil {
			m.acts = append(m.acts, Action{Type: ActStopStep})
		}
		m.to(Aborted, orDefault(ev.Reason, "aborted"))
		return nil
	}
	switch m.p.State {
	case Queued:
		switch ev.Type {
		case EvStart:
			t := m.now
			m.p.StartedAt = &t
			m.to(Gating, "environment is free: evaluating gates")
			m.acts = append(m.acts, Action{Type: ActEvaluateGates})
			return nil
		case EvSupersede:
			m.to(Superseded, orDefault(ev.Reason, "a newer release was queued"))
			return nil
		}
	case Gating:
		switch {
		case ev.Type == EvGates && m.p.WakeAt == nil:
			switch ev.Gate {
			case GatePass:
				if len(m.plan.Preflight) > 0 {
					m.enterPhase(PhasePreflight, orDefault(ev.Reason, "gates passed: running preflight checks"))
				} else {
					m.enterPhase(PhaseDeploy, orDefault(ev.Reason, "gates passed"))
				}
				return nil
			case GatePending:
				if ev.WakeAt != nil && !ev.Approval {
					// Wait in gating for the time the gates name (a soak, a window).
					m.wait(*ev.WakeAt, orDefault(ev.Reason, "waiting for a gate"))
					return nil
				}
				m.to(AwaitingApproval, orDefault(ev.Reason, "waiting for approval"))
				if ev.WakeAt != nil {
					m.wait(*ev.WakeAt, m.p.Message)
				}
				return nil
			case GateFail:
				m.to(Rejected, orDefault(ev.Reason, "a gate refused the promotion"))
				return nil
			}
		case ev.Type == EvWake && m.p.WakeAt != nil:
			m.p.WakeAt = nil
			m.acts = append(m.acts, Action{Type: ActEvaluateGates})
			return nil
		case ev.Type == EvReject && m.p.WakeAt != nil:
			// A rejection while the promotion waits for a window or a soak ends it.
			m.to(Rejected, orDefault(ev.Reason, "rejected"))
			return nil
		}
	case AwaitingApproval:
		switch ev.Type {
		case EvApprove:
			m.p.WakeAt = nil
			m.to(Gating, orDefault(ev.Reason, "approved: evaluating gates"))
			m.acts = append(m.acts, Action{Type: ActEvaluateGates})
			return nil
		case EvReject:
			m.to(Rejected, orDefault(ev.Reason, "rejected"))
			return nil
		case EvWake:
			if m.p.WakeAt == nil {
				break
			}
			m.p.WakeAt = nil
			m.to(Gating, orDefault(ev.Reason, "approval deadline reached: evaluating gates"))
			m.acts = append(m.acts, Action{Type: ActEvaluateGates})
			return nil
		}
	case Paused:
		if ev.Type == EvResume {
			back := Verifying
			switch m.p.Cursor.Phase {
			case PhasePreflight, PhaseDeploy, PhaseCanary:
				back = Deploying
			case PhaseRollback:
				back = RollingBack
			case PhaseWatch:
				back = Watching
			}
			m.to(back, orDefault(ev.Reason, "resumed"))
			m.stepSucceeded()
			return nil
		}
	case Watching:
		switch ev.Type {
		case EvResume:
			if m.p.WakeAt == nil {
				m.acts = append(m.acts, Action{Type: ActStopStep})
			}
			m.to(Succeeded, orDefault(ev.Reason, "watch window ended early"))
			return nil
		case EvAlert:
			m.alert(ev.Reason)
			return nil
		}
	}
	switch m.p.State {
	case Verifying:
		if ev.Type == EvAlert {
			m.alert(ev.Reason)
			return nil
		}
	case Paused:
		if ev.Type == EvAlert && (m.p.Cursor.Phase == PhaseVerify || m.p.Cursor.Phase == PhaseWatch) {
			m.alert(ev.Reason)
			return nil
		}
	}
	switch m.p.State {
	case Deploying, Verifying, Watching, RollingBack:
		switch ev.Type {
		case EvStepSucceeded:
			if m.p.WakeAt != nil {
				break
			}
			m.stepSucceeded()
			return nil
		case EvStepFailed:
			if m.p.WakeAt != nil {
				break
			}
			m.stepFailed(ev.Reason)
			return nil
		case EvStepInconclusive:
			if m.p.WakeAt != nil {
				break
			}
			m.to(Paused, orDefault(ev.Reason, "a check was inconclusive")+": waiting for a person to resume or abort")
			return nil
		case EvStepInterrupted:
			if m.p.WakeAt != nil {
				break
			}
			m.p.Cursor.Attempt++
			m.acts = append(m.acts, Action{Type: ActRunStep, Cursor: m.p.Cursor})
			return nil
		case EvWake:
			if m.p.WakeAt == nil {
				break
			}
			m.p.WakeAt = nil
			if m.current().Pause > 0 {
				m.stepSucceeded() // the canary pause is over
				return nil
			}
			m.acts = append(m.acts, Action{Type: ActRunStep, Cursor: m.p.Cursor})
			return nil
		}
	}
	return m.invalid(ev.Type)
}

// current returns the plan of the item at the cursor.
func (m *machine) current() StepPlan {
	steps := m.plan.Steps(m.p.Cursor.Phase)
	if c := m.p.Cursor.Index; c >= 0 && c < len(steps) {
		return steps[c]
	}
	return StepPlan{}
}

// startCursor starts the item at the cursor: a step to run, or a canary
// pause, timed or waiting for a person.
func (m *machine) startCursor() {
	it := m.current()
	switch {
	case it.Manual:
		m.to(Paused, fmt.Sprintf("%s: waiting for ferry advance", it.Name))
	case it.Pause > 0:
		m.wait(m.now.Add(it.Pause), fmt.Sprintf("%s: pausing %s", it.Name, it.Pause))
	default:
		m.acts = append(m.acts, Action{Type: ActRunStep, Cursor: m.p.Cursor})
	}
}

// wait sets the promotion's timer: the engine reports EvWake at t.
func (m *machine) wait(t time.Time, reason string) {
	m.p.WakeAt = &t
	m.p.Message = reason
	m.acts = append(m.acts, Action{Type: ActWait})
}

// enterPhase moves to the state of phase ph and starts its first step,
// skipping empty phases.
func (m *machine) enterPhase(ph Phase, reason string) {
	for {
		switch ph {
		case PhasePreflight:
			m.to(Deploying, reason)
		case PhaseDeploy, PhaseCanary:
			if m.p.State != Deploying {
				m.to(Deploying, reason)
			}
		case PhaseVerify:
			m.to(Verifying, reason)
		case PhaseWatch:
			m.to(Watching, reason)
		case PhaseRollback:
			m.to(RollingBack, reason)
		}
		if len(m.plan.Steps(ph)) > 0 {
			m.p.Cursor = Cursor{Phase: ph, Index: 0, Attempt: 1}
			m.startCursor()
			return
		}
		switch ph {
		case PhasePreflight:
			ph = PhaseDeploy
			continue
		case PhaseDeploy:
			ph = PhaseCanary
			continue
		case PhaseCanary:
			ph, reason = PhaseVerify, "no deploy steps: verifying"
			continue
		case PhaseVerify:
			m.succeedChecks("no checks: succeeded")
		case PhaseWatch:
			m.to(Succeeded, "succeeded")
		case PhaseRollback:
			m.to(RolledBack, fmt.Sprintf("rolled back to %s (nothing to run)", m.p.RollbackVersion))
		}
		return
	}
}

func (m *machine) stepSucceeded() {
	c := m.p.Cursor
	steps := m.plan.Steps(c.Phase)
	if c.Index+1 < len(steps) {
		m.p.Cursor = Cursor{Phase: c.Phase, Index: c.Index + 1, Attempt: 1}
		m.startCursor()
		return
	}
	switch c.Phase {
	case PhasePreflight:
		m.p.Message = "preflight checks passed: deploying"
		m.enterPhase(PhaseDeploy, m.p.Message)
	case PhaseDeploy:
		if len(m.plan.Canary) > 0 {
			m.p.Message = "deploy steps succeeded: canary phases"
			m.enterPhase(PhaseCanary, m.p.Message)
			return
		}
		m.enterPhase(PhaseVerify, "deploy steps succeeded: verifying")
	case PhaseCanary:
		m.enterPhase(PhaseVerify, "canary phases succeeded: verifying")
	case PhaseVerify:
		m.succeedChecks("all steps and checks succeeded")
	case PhaseWatch:
		m.to(Succeeded, "watch window passed: succeeded")
	case PhaseRollback:
		m.to(RolledBack, fmt.Sprintf("rolled back to %s", m.p.RollbackVersion))
	}
}

// succeedChecks ends a promotion whose checks passed: it succeeds, or, when
// the environment has a watch window, starts watching.
func (m *machine) succeedChecks(reason string) {
	if m.p.Kind == KindPromote && len(m.plan.Watch) > 0 {
		m.enterPhase(PhaseWatch, "checks passed: watching")
		return
	}
	m.to(Succeeded, reason)
}

// alert rolls back a verifying or watching promotion because an alert fired,
// stopping the check that runs.
func (m *machine) alert(reason string) {
	if m.p.State != Paused && m.p.WakeAt == nil {
		m.acts = append(m.acts, Action{Type: ActStopStep})
	}
	m.p.WakeAt = nil
	m.fail("alert firing: " + orDefault(reason, "an alert fired"))
}

func (m *machine) stepFailed(reason string) {
	c := m.p.Cursor
	steps := m.plan.Steps(c.Phase)
	var sp StepPlan
	if c.Index < len(steps) {
		sp = steps[c.Index]
	}
	c.Failures++
	if c.Failures <= sp.Retries {
		wait := RetryBackoff(sp.Backoff, c.Failures)
		at := m.now.Add(wait)
		m.p.WakeAt = &at
		c.Attempt++
		m.p.Cursor = c
		m.p.Message = fmt.Sprintf("step %s failed (%s); retry %d of %d in %s", sp.Name, reason, c.Failures, sp.Retries, wait)
		m.acts = append(m.acts, Action{Type: ActWait})
		return
	}
	why := fmt.Sprintf("step %s failed: %s", sp.Name, reason)
	switch c.Phase {
	case PhaseVerify:
		why = fmt.Sprintf("check %s failed: %s", sp.Name, reason)
	case PhaseWatch:
		why = "watch failed: " + reason
	}
	switch {
	case c.Phase == PhasePreflight:
		m.to(Failed, fmt.Sprintf("preflight check %s failed: %s; nothing was deployed", sp.Name, reason))
	case c.Phase == PhaseRollback:
		m.to(RollbackFailed, "rollback "+why)
	default:
		m.fail(why)
	}
}

// fail ends a promotion whose release went bad: it rolls back when it can.
func (m *machine) fail(why string) {
	switch {
	case m.p.Kind == KindRollback:
		m.to(Failed, why)
	case !m.plan.AutoRollback:
		m.to(Failed, why+"; automatic rollback is off")
	case m.p.RollbackID == "":
		m.to(Failed, why+"; no previous release to roll back to")
	default:
		m.enterPhase(PhaseRollback, why+"; rolling back to "+m.p.RollbackVersion)
	}
}

// RetryBackoff returns the wait before retry number n (1-based) of a step
// whose first backoff is base: base doubled n-1 times, at most MaxBackoff.
func RetryBackoff(base time.Duration, n int) time.Duration {
	if base <= 0 {
		base = DefaultBackoff
	}
	d := base
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
