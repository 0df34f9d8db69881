package promotion_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ferry-dev/ferry/internal/promotion"
)

// envModel is one environment of one pipeline, holding every promotion ever
// queued for it, driven the way the engine drives it: promotions start only
// through NextToStart, newer releases supersede queued ones through
// Supersedes, and every other event goes through Apply.
type envModel struct {
	now time.Time
	// ps holds every promotion ever queued, in queue order: ps[i].Seq == i+1.
	ps      []promotion.Promotion
	plans   []promotion.Plan
	created []time.Time // the release creation time of ps[i]
	// history records the transitions Apply returned for ps[i].
	history [][]promotion.Transition
	// final is ps[i] as it was when it ended; nil while it runs.
	final []*promotion.Promotion
	// failures counts the failed attempts of each step of each promotion.
	failures map[stepKey]int
}

type stepKey struct {
	seq   int64
	phase promotion.Phase
	index int
}

func (m *envModel) holder() (int, bool) {
	for i, p := range m.ps {
		if p.State.HoldsEnvironment() {
			return i, true
		}
	}
	return 0, false
}

// running returns the index of the promotion whose step attempt is running.
func (m *envModel) running() (int, bool) {
	i, ok := m.holder()
	if !ok || !stepState(m.ps[i].State) || m.ps[i].WakeAt != nil {
		return 0, false
	}
	return i, true
}

func (m *envModel) nonTerminal() []int {
	var is []int
	for i, p := range m.ps {
		if !p.State.Terminal() {
			is = append(is, i)
		}
	}
	return is
}

// likely is true three times in four.
var likely = rapid.SampledFrom([]bool{true, true, true, false})

var planGen = rapid.Custom(func(t *rapid.T) promotion.Plan {
	backoff := rapid.SampledFrom([]time.Duration{0, 500 * time.Millisecond, 2 * time.Second, 20 * time.Second, 90 * time.Second})
	steps := func(label string) []promotion.StepPlan {
		n := rapid.IntRange(0, 3).Draw(t, label+" steps")
		var sps []promotion.StepPlan
		for j := range n {
			sps = append(sps, promotion.StepPlan{
				Name:    fmt.Sprintf("%s%d", label, j),
				Retries: rapid.IntRange(0, 2).Draw(t, "retries"),
				Backoff: backoff.Draw(t, "backoff"),
			})
		}
		return sps
	}
	pl := promotion.Plan{
		Deploy:       steps("deploy"),
		Verify:       steps("verify"),
		AutoRollback: likely.Draw(t, "auto rollback"),
	}
	if rapid.Bool().Draw(t, "watch") {
		pl.Watch = []promotion.StepPlan{{Name: "watch"}}
	}
	return pl
})

// enqueue queues a new promotion and supersedes the queued ones it makes obsolete.
func (m *envModel) enqueue(t *rapid.T) {
	seq := int64(len(m.ps) + 1)
	kind := rapid.SampledFrom([]promotion.Kind{promotion.KindPromote, promotion.KindPromote, promotion.KindPromote, promotion.KindRollback}).Draw(t, "kind")
	created := m.now.Add(time.Duration(rapid.IntRange(-3600, 60).Draw(t, "release age")) * time.Second)
	p := promotion.Promotion{
		ID:             fmt.Sprintf("p%d", seq),
		Seq:            seq,
		Pipeline:       "web",
		Environment:    "prod",
		Kind:           kind,
		ReleaseID:      fmt.Sprintf("rel-%d", seq),
		ReleaseVersion: fmt.Sprintf("1.%d.0", seq),
		State:          promotion.Queued,
		Actor:          "ci",
		CreatedAt:      m.now,
		UpdatedAt:      m.now,
	}
	if likely.Draw(t, "has rollback target") {
		p.RollbackID, p.RollbackVersion = "rel-0", "1.0.0"
	}
	m.ps = append(m.ps, p)
	m.plans = append(m.plans, planGen.Draw(t, "plan"))
	m.created = append(m.created, created)
	m.history = append(m.history, nil)
	m.final = append(m.final, nil)

	for i := range m.ps[:len(m.ps)-1] {
		q := m.ps[i]
		got := promotion.Supersedes(p, q, created, m.created[i])
		want := q.State == promotion.Queued && p.Kind == promotion.KindPromote && q.Kind == promotion.KindPromote &&
			!created.Before(m.created[i])
		if got != want {
			t.Fatalf("Supersedes(%s %s, %s %s %s) = %v, want %v", p.ID, p.Kind, q.ID, q.Kind, q.State, got, want)
		}
		if got {
			m.apply(t, i, promotion.Event{Type: promotion.EvSupersede, Reason: "a newer release was queued: " + p.ReleaseVersion})
		}
	}
	if promotion.Supersedes(p, p, created, created) {
		t.Fatalf("%s supersedes itself", p.ID)
	}
}

// start starts the next queued promotion, as the engine does when the
// environment is released.
func (m *envModel) start(t *rapid.T) {
	var open []promotion.Promotion
	for _, i := range m.nonTerminal() {
		open = append(open, m.ps[i])
	}
	open = rapid.Permutation(open).Draw(t, "order")
	next, ok := promotion.NextToStart(open)
	// The environment takes the oldest queued promotion, once it is free.
	_, held := m.holder()
	oldest := -1
	for i, p := range m.ps {
		if p.State == promotion.Queued {
			oldest = i
			break
		}
	}
	if want := !held && oldest >= 0; ok != want {
		t.Fatalf("NextToStart found %v (%s), want %v: held %v, oldest queued %d", ok, next.ID, want, held, oldest)
	}
	if !ok {
		return
	}
	if next.ID != m.ps[oldest].ID {
		t.Fatalf("NextToStart chose %s, want the oldest queued %s", next.ID, m.ps[oldest].ID)
	}
	m.apply(t, oldest, promotion.Event{Type: promotion.EvStart})
}

func (m *envModel) gates(t *rapid.T) {
	if i, ok := m.holder(); ok && m.ps[i].State == promotion.Gating {
		g := rapid.SampledFrom([]promotion.GateResult{promotion.GatePass, promotion.GatePass, promotion.GatePending, promotion.GateFail}).Draw(t, "gate")
		m.apply(t, i, promotion.Event{Type: promotion.EvGates, Gate: g, Reason: "gates said " + string(g)})
	}
}

func (m *envModel) decide(t *rapid.T, ev promotion.EventType) {
	if i, ok := m.holder(); ok && m.ps[i].State == promotion.AwaitingApproval {
		m.apply(t, i, promotion.Event{Type: ev})
	}
}

func (m *envModel) stepEnded(t *rapid.T, ev promotion.EventType) {
	if i, ok := m.running(); ok {
		m.apply(t, i, promotion.Event{Type: ev, Reason: "exit status 1"})
	}
}

// wake fires the holder's retry timer once it is due.
func (m *envModel) wake(t *rapid.T) {
	i, ok := m.holder()
	if !ok || m.ps[i].WakeAt == nil {
		return
	}
	if due := *m.ps[i].WakeAt; m.now.Before(due) {
		m.now = due
	}
	m.apply(t, i, promotion.Event{Type: promotion.EvWake})
}

func (m *envModel) abort(t *rapid.T) {
	is := m.nonTerminal()
	if len(is) == 0 {
		return
	}
	m.apply(t, rapid.SampledFrom(is).Draw(t, "abort"), promotion.Event{Type: promotion.EvAbort, Reason: "aborted by ana"})
}

// alert fires an alert for the holder while it verifies or watches.
func (m *envModel) alert(t *rapid.T) {
	if i, ok := m.holder(); ok && (m.ps[i].State == promotion.Verifying || m.ps[i].State == promotion.Watching) {
		m.apply(t, i, promotion.Event{Type: promotion.EvAlert, Reason: "HighErrorRate firing"})
	}
}

// endWatch ends the holder's watch window early.
func (m *envModel) endWatch(t *rapid.T) {
	if i, ok := m.holder(); ok && m.ps[i].State == promotion.Watching {
		m.apply(t, i, promotion.Event{Type: promotion.EvResume, Reason: "watch ended by ana"})
	}
}

func (m *envModel) tick(t *rapid.T) {
	m.now = m.now.Add(time.Duration(rapid.IntRange(0, 120).Draw(t, "seconds")) * time.Second)
}

// probe sends every event to one promotion, most often the one holding the
// environment, without committing the results: Apply must accept exactly the
// events that make sense and leave everything else untouched.
func (m *envModel) probe(t *rapid.T) {
	if len(m.ps) == 0 {
		return
	}
	i := rapid.IntRange(0, len(m.ps)-1).Draw(t, "promotion")
	if h, ok := m.holder(); ok && likely.Draw(t, "probe the holder") {
		i = h
	}
	before := m.snapshot()
	for _, ev := range allEvents() {
		m.check(t, i, ev)
	}
	if !reflect.DeepEqual(before, m.snapshot()) {
		t.Fatalf("probing %s changed the model", m.ps[i].ID)
	}
}

func (m *envModel) snapshot() []promotion.Promotion {
	s := make([]promotion.Promotion, len(m.ps))
	for i, p := range m.ps {
		s[i] = clone(p)
	}
	return s
}

// expect says, from the state diagram, what ev does to p: the state it
// leads to, or false when p must refuse it.
func expect(p promotion.Promotion, plan promotion.Plan, ev promotion.Event) (promotion.State, bool) {
	s := p.State
	switch {
	case s.Terminal():
		return s, false
	case ev.Type == promotion.EvAbort:
		return promotion.Aborted, true
	case s == promotion.Queued && ev.Type == promotion.EvStart:
		return promotion.Gating, true
	case s == promotion.Queued && ev.Type == promotion.EvSupersede:
		return promotion.Superseded, true
	case s == promotion.Gating && ev.Type == promotion.EvGates:
		switch ev.Gate {
		case promotion.GatePass:
			return firstState(p, plan, plan.Deploy, plan.Verify), true
		case promotion.GatePending:
			return promotion.AwaitingApproval, true
		case promotion.GateFail:
			return promotion.Rejected, true
		}
	case s == promotion.AwaitingApproval && ev.Type == promotion.EvApprove:
		return promotion.Gating, true
	case s == promotion.AwaitingApproval && ev.Type == promotion.EvReject:
		return promotion.Rejected, true
	case ev.Type == promotion.EvAlert && (s == promotion.Verifying || s == promotion.Watching ||
		s == promotion.Paused && (p.Cursor.Phase == promotion.PhaseVerify || p.Cursor.Phase == promotion.PhaseWatch)):
		return failedState(p, plan), true
	case s == promotion.Watching && ev.Type == promotion.EvResume:
		return promotion.Succeeded, true
	case stepState(s) && p.WakeAt != nil:
		return s, ev.Type == promotion.EvWake
	case stepState(s):
		c := p.Cursor
		steps := plan.Steps(c.Phase)
		switch ev.Type {
		case promotion.EvStepInterrupted:
			return s, true
		case promotion.EvStepInconclusive:
			return promotion.Paused, true
		case promotion.EvStepSucceeded:
			switch {
			case c.Index+1 < len(steps):
				return s, true
			case c.Phase == promotion.PhaseDeploy:
				return firstState(p, plan, nil, plan.Verify), true
			case c.Phase == promotion.PhaseVerify:
				return firstState(p, plan, nil, nil), true
			case c.Phase == promotion.PhaseWatch:
				return promotion.Succeeded, true
			default:
				return promotion.RolledBack, true
			}
		case promotion.EvStepFailed:
			switch {
			case c.Failures < steps[c.Index].Retries:
				return s, true
			case c.Phase == promotion.PhaseRollback:
				return promotion.RollbackFailed, true
			default:
				return failedState(p, plan), true
			}
		}
	}
	return s, false
}

// failedState is where a promotion whose release went bad (a step or check
// failed, an alert fired) goes: it rolls back when it can.
func failedState(p promotion.Promotion, plan promotion.Plan) promotion.State {
	switch {
	case p.Kind != promotion.KindPromote || !plan.AutoRollback || p.RollbackID == "":
		return promotion.Failed
	case len(plan.Rollback()) == 0:
		return promotion.RolledBack
	}
	return promotion.RollingBack
}

// firstState is where a promotion goes when it enters the deploy steps,
// the checks, then the watch window, skipping the empty ones.
func firstState(p promotion.Promotion, plan promotion.Plan, deploy, verify []promotion.StepPlan) promotion.State {
	switch {
	case len(deploy) > 0:
		return promotion.Deploying
	case len(verify) > 0:
		return promotion.Verifying
	case p.Kind == promotion.KindPromote && len(plan.Watch) > 0:
		return promotion.Watching
	}
	return promotion.Succeeded
}

// backoff is the wait before retry n of a step: its backoff (a second by
// default) doubled for each earlier retry, at most a minute.
func backoff(base time.Duration, n int) time.Duration {
	if base <= 0 {
		base = time.Second
	}
	for range n - 1 {
		if base >= time.Minute {
			break
		}
		base *= 2
	}
	return min(base, time.Minute)
}

func phaseOf(s promotion.State) promotion.Phase {
	switch s {
	case promotion.Deploying:
		return promotion.PhaseDeploy
	case promotion.Verifying:
		return promotion.PhaseVerify
	case promotion.Watching:
		return promotion.PhaseWatch
	case promotion.RollingBack:
		return promotion.PhaseRollback
	}
	return ""
}

// check applies ev to ps[i] and checks the result against the state diagram
// without committing it. It reports the result and whether ev was accepted.
func (m *envModel) check(t *rapid.T, i int, ev promotion.Event) (promotion.Result, bool) {
	p, plan := m.ps[i], m.plans[i]
	before, planBefore := clone(p), clonePlan(plan)
	want, valid := expect(p, plan, ev)
	res, err := promotion.Apply(p, plan, ev, m.now)
	if !reflect.DeepEqual(p, before) || !reflect.DeepEqual(plan, planBefore) {
		t.Fatalf("Apply(%s, %s) modified its input", p.ID, eventName(ev))
	}
	if !valid {
		var ie *promotion.InvalidEventError
		if !errors.As(err, &ie) {
			t.Fatalf("%s in %s (waiting %v): err = %v, want *InvalidEventError", eventName(ev), p.State, p.WakeAt != nil, err)
		}
		if ie.State != p.State || ie.Event != ev.Type {
			t.Fatalf("error names %s/%s, want %s/%s", ie.State, ie.Event, p.State, ev.Type)
		}
		return promotion.Result{}, false
	}
	if err != nil {
		t.Fatalf("%s in %s (cursor %+v): %v", eventName(ev), p.State, p.Cursor, err)
	}
	got := res.Promotion
	if got.State != want {
		t.Fatalf("%s: %s in %s (cursor %+v) led to %s, want %s", p.ID, eventName(ev), p.State, p.Cursor, got.State, want)
	}

	// Transitions chain from the old state to the new one.
	from := p.State
	for _, tr := range res.Transitions {
		if tr.From != from || tr.Reason == "" {
			t.Fatalf("%s: transitions %v do not chain from %s", p.ID, res.Transitions, p.State)
		}
		from = tr.To
	}
	if from != got.State || (len(res.Transitions) == 0) != (got.State == p.State) {
		t.Fatalf("%s: transitions %v do not lead from %s to %s", p.ID, res.Transitions, p.State, got.State)
	}
	if len(res.Transitions) > 0 && got.Message == "" {
		t.Fatalf("%s: %s without a message", p.ID, got.State)
	}
	if got.ID != p.ID || got.Seq != p.Seq || got.Kind != p.Kind || got.ReleaseID != p.ReleaseID ||
		got.RollbackID != p.RollbackID || !got.CreatedAt.Equal(p.CreatedAt) || !got.UpdatedAt.Equal(m.now) {
		t.Fatalf("%s: Apply rewrote fields it does not own: %+v", p.ID, got)
	}

	// The actions are exactly the work the new state implies.
	count := map[promotion.ActionType]int{}
	for _, a := range res.Actions {
		count[a.Type]++
		if a.Type == promotion.ActRunStep && a.Cursor != got.Cursor {
			t.Fatalf("%s: runs step %+v, cursor is %+v", p.ID, a.Cursor, got.Cursor)
		}
	}
	wantCount := map[promotion.ActionType]int{}
	switch {
	case got.State == promotion.Gating:
		wantCount[promotion.ActEvaluateGates] = 1
	case stepState(got.State) && got.WakeAt == nil:
		wantCount[promotion.ActRunStep] = 1
	case stepState(got.State):
		wantCount[promotion.ActWait] = 1
	case got.State.Terminal():
		wantCount[promotion.ActReleaseEnvironment] = 1
		if got.State == promotion.Succeeded && got.Kind == promotion.KindPromote {
			wantCount[promotion.ActPromoteDownstream] = 1
		}
	}
	stops := ev.Type == promotion.EvAbort || ev.Type == promotion.EvAlert ||
		ev.Type == promotion.EvResume && p.State == promotion.Watching
	if stops && stepState(p.State) && p.WakeAt == nil {
		wantCount[promotion.ActStopStep] = 1
	}
	for _, ty := range []promotion.ActionType{promotion.ActEvaluateGates, promotion.ActRunStep, promotion.ActWait,
		promotion.ActStopStep, promotion.ActReleaseEnvironment, promotion.ActPromoteDownstream} {
		if count[ty] != wantCount[ty] {
			t.Fatalf("%s: %s in %s → %s: actions %v, want %v", p.ID, eventName(ev), p.State, got.State, res.Actions, wantCount)
		}
	}
	if len(res.Actions) > 0 && count[promotion.ActStopStep] == 1 && res.Actions[0].Type != promotion.ActStopStep {
		t.Fatalf("%s: the running step is stopped after %v", p.ID, res.Actions[0])
	}

	// The cursor moves as the step's outcome says.
	c, nc := p.Cursor, got.Cursor
	switch {
	case got.State.Terminal():
		if got.FinishedAt == nil || !got.FinishedAt.Equal(m.now) || got.WakeAt != nil || nc != (promotion.Cursor{}) {
			t.Fatalf("%s: ended as %+v", p.ID, got)
		}
	case got.State == promotion.Paused:
		if nc != c || got.WakeAt != nil {
			t.Fatalf("%s: paused with cursor %+v → %+v, WakeAt %v", p.ID, c, nc, got.WakeAt)
		}
	case !stepState(got.State):
		if nc != (promotion.Cursor{}) || got.WakeAt != nil {
			t.Fatalf("%s: %s with cursor %+v, WakeAt %v", p.ID, got.State, nc, got.WakeAt)
		}
	case ev.Type == promotion.EvStepInterrupted:
		if want := (promotion.Cursor{Phase: c.Phase, Index: c.Index, Attempt: c.Attempt + 1, Failures: c.Failures}); nc != want {
			t.Fatalf("%s: interrupted %+v → %+v, want %+v", p.ID, c, nc, want)
		}
	case ev.Type == promotion.EvWake:
		if nc != c || got.WakeAt != nil {
			t.Fatalf("%s: woke %+v → %+v (WakeAt %v)", p.ID, c, nc, got.WakeAt)
		}
	case ev.Type == promotion.EvStepFailed && got.State == p.State:
		sp := m.plans[i].Steps(c.Phase)[c.Index]
		if want := (promotion.Cursor{Phase: c.Phase, Index: c.Index, Attempt: c.Attempt + 1, Failures: c.Failures + 1}); nc != want {
			t.Fatalf("%s: failed %+v → %+v, want %+v", p.ID, c, nc, want)
		}
		if wake := m.now.Add(backoff(sp.Backoff, nc.Failures)); got.WakeAt == nil || !got.WakeAt.Equal(wake) {
			t.Fatalf("%s: retry %d of %s due at %v, want %v", p.ID, nc.Failures, sp.Name, got.WakeAt, wake)
		}
	case ev.Type == promotion.EvStepSucceeded && got.State == p.State:
		if want := (promotion.Cursor{Phase: c.Phase, Index: c.Index + 1, Attempt: 1}); nc != want {
			t.Fatalf("%s: succeeded %+v → %+v, want %+v", p.ID, c, nc, want)
		}
	default: // entering a phase
		if want := (promotion.Cursor{Phase: phaseOf(got.State), Attempt: 1}); nc != want || got.WakeAt != nil {
			t.Fatalf("%s: entered %s with cursor %+v, want %+v", p.ID, got.State, nc, want)
		}
	}
	if p.State == promotion.Queued && ev.Type == promotion.EvStart && (got.StartedAt == nil || !got.StartedAt.Equal(m.now)) {
		t.Fatalf("%s: started with StartedAt %v", p.ID, got.StartedAt)
	}
	return res, true
}

// apply applies an event the engine would send and commits the result.
func (m *envModel) apply(t *rapid.T, i int, ev promotion.Event) {
	p := m.ps[i]
	res, ok := m.check(t, i, ev)
	if !ok {
		t.Fatalf("%s in %s was refused", eventName(ev), p.State)
	}
	if ev.Type == promotion.EvStepFailed {
		k := stepKey{p.Seq, p.Cursor.Phase, p.Cursor.Index}
		m.failures[k]++
		retries := m.plans[i].Steps(k.phase)[k.index].Retries
		if m.failures[k] > retries+1 {
			t.Fatalf("%s: step %s/%d failed %d times with %d retries", p.ID, k.phase, k.index, m.failures[k], retries)
		}
		if c := res.Promotion.Cursor; c.Phase == k.phase && c.Index == k.index && (m.failures[k] > retries || c.Failures != m.failures[k]) {
			t.Fatalf("%s: step %s/%d stays after %d failures (cursor counts %d) with %d retries", p.ID, k.phase, k.index, m.failures[k], c.Failures, retries)
		}
	}
	m.ps[i] = res.Promotion
	m.history[i] = append(m.history[i], res.Transitions...)
	if res.Promotion.State.Terminal() {
		done := clone(res.Promotion)
		m.final[i] = &done
		for _, ev := range allEvents() {
			m.check(t, i, ev) // every event is refused
		}
	}
}

// invariants checks what must hold after every action.
func (m *envModel) invariants(t *rapid.T) {
	holders, queued, ended := 0, 0, 0
	for i, p := range m.ps {
		plan := m.plans[i]
		if !p.State.Valid() {
			t.Fatalf("%s: invalid state %q", p.ID, p.State)
		}
		if p.Seq != int64(i+1) {
			t.Fatalf("%s: Seq %d at position %d", p.ID, p.Seq, i)
		}
		switch {
		case p.State == promotion.Queued:
			queued++
		case p.State.HoldsEnvironment():
			holders++
		case p.State.Terminal():
			ended++
		}

		// The recorded transitions lead from the queue to the current state.
		from := promotion.Queued
		for _, tr := range m.history[i] {
			if tr.From != from {
				t.Fatalf("%s: history %v does not chain", p.ID, m.history[i])
			}
			if tr.To == promotion.Superseded && tr.From != promotion.Queued {
				t.Fatalf("%s: superseded from %s", p.ID, tr.From)
			}
			from = tr.To
		}
		if from != p.State {
			t.Fatalf("%s: history %v ends at %s, state is %s", p.ID, m.history[i], from, p.State)
		}

		if p.State.Terminal() {
			if m.final[i] == nil || !reflect.DeepEqual(*m.final[i], p) {
				t.Fatalf("%s: changed after it ended", p.ID)
			}
			if p.FinishedAt == nil {
				t.Fatalf("%s: %s without FinishedAt", p.ID, p.State)
			}
		} else if p.FinishedAt != nil || m.final[i] != nil {
			t.Fatalf("%s: %s but finished", p.ID, p.State)
		}
		if (p.State == promotion.Queued) != (p.StartedAt == nil) && !p.State.Terminal() {
			t.Fatalf("%s: %s with StartedAt %v", p.ID, p.State, p.StartedAt)
		}

		if stepState(p.State) {
			c := p.Cursor
			steps := plan.Steps(c.Phase)
			if c.Phase != phaseOf(p.State) || c.Index < 0 || c.Index >= len(steps) {
				t.Fatalf("%s: %s with cursor %+v over %d steps", p.ID, p.State, c, len(steps))
			}
			if c.Attempt < c.Failures+1 || c.Failures > steps[c.Index].Retries {
				t.Fatalf("%s: cursor %+v, step has %d retries", p.ID, c, steps[c.Index].Retries)
			}
			if p.WakeAt != nil && c.Failures == 0 {
				t.Fatalf("%s: waiting with no failure", p.ID)
			}
		} else if p.WakeAt != nil || (!p.State.Terminal() && p.Cursor != (promotion.Cursor{})) {
			t.Fatalf("%s: %s with cursor %+v and WakeAt %v", p.ID, p.State, p.Cursor, p.WakeAt)
		}
	}
	if holders > 1 {
		t.Fatalf("%d promotions hold the environment", holders)
	}
	if queued+holders+ended != len(m.ps) {
		t.Fatalf("%d queued + %d holding + %d ended != %d queued in all", queued, holders, ended, len(m.ps))
	}
}

// drain drives the environment to rest the way a healthy engine would: every
// queued promotion must eventually start and end.
func (m *envModel) drain(t *rapid.T) {
	for range 10 * (len(m.ps) + 1) * 20 {
		i, ok := m.holder()
		if !ok {
			var open []promotion.Promotion
			for _, j := range m.nonTerminal() {
				open = append(open, m.ps[j])
			}
			next, ok := promotion.NextToStart(open)
			if !ok {
				break
			}
			m.apply(t, int(next.Seq-1), promotion.Event{Type: promotion.EvStart})
			m.invariants(t)
			continue
		}
		var ev promotion.Event
		switch p := m.ps[i]; {
		case p.State == promotion.Gating:
			ev = promotion.Event{Type: promotion.EvGates, Gate: promotion.GatePass}
		case p.State == promotion.AwaitingApproval:
			ev = promotion.Event{Type: promotion.EvApprove}
		case p.WakeAt != nil:
			m.now = *p.WakeAt
			ev = promotion.Event{Type: promotion.EvWake}
		default:
			// Retries are bounded, so failing steps also come to rest.
			ev = promotion.Event{Type: rapid.SampledFrom([]promotion.EventType{promotion.EvStepSucceeded, promotion.EvStepFailed}).Draw(t, "outcome")}
		}
		m.apply(t, i, ev)
		m.invariants(t)
	}
	for _, p := range m.ps {
		if !p.State.Terminal() {
			t.Fatalf("%s is still %s after the environment came to rest", p.ID, p.State)
		}
	}
}

func TestEnvironmentStateMachine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runEnvironment(t) })
}

// runEnvironment drives one environment through random actions, checking
// the invariants after each one, then drives it to rest.
func runEnvironment(t *rapid.T) *envModel {
	m := &envModel{now: t0, failures: map[stepKey]int{}}
	// An action is drawn in proportion to its weight; actions that do not apply
	// to the environment as it is do nothing.
	actions := []struct {
		name   string
		weight int
		do     func(*rapid.T)
	}{
		{"enqueue", 2, m.enqueue},
		{"start", 3, m.start},
		{"gates", 3, m.gates},
		{"approve", 2, func(t *rapid.T) { m.decide(t, promotion.EvApprove) }},
		{"reject", 1, func(t *rapid.T) { m.decide(t, promotion.EvReject) }},
		{"succeeded", 4, func(t *rapid.T) { m.stepEnded(t, promotion.EvStepSucceeded) }},
		{"failed", 5, func(t *rapid.T) { m.stepEnded(t, promotion.EvStepFailed) }},
		{"interrupted", 1, func(t *rapid.T) { m.stepEnded(t, promotion.EvStepInterrupted) }},
		{"wake", 4, m.wake},
		{"abort", 1, m.abort},
		{"alert", 1, m.alert},
		{"end watch", 1, m.endWatch},
		{"tick", 1, m.tick},
		{"probe", 2, m.probe},
	}
	var names []string
	do := map[string]func(*rapid.T){}
	for _, a := range actions {
		do[a.name] = a.do
		for range a.weight {
			names = append(names, a.name)
		}
	}
	pick := rapid.SampledFrom(names)

	m.invariants(t)
	for range rapid.IntRange(0, 200).Draw(t, "actions") {
		do[pick.Draw(t, "action")](t)
		m.invariants(t)
	}
	m.drain(t)
	return m
}

// TestStepFailuresBounded drives one promotion through random step outcomes:
// a step fails at most Retries+1 times before the promotion leaves it, it
// leaves on a failure only once its retries are used up, and interrupted
// attempts are counted as attempts but not as failures.
func TestStepFailuresBounded(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		plan := planGen.Draw(t, "plan")
		p := queued()
		if !likely.Draw(t, "has rollback target") {
			p = withoutRollbackTarget(p)
		}
		clock := t0
		apply := func(ev promotion.EventType, gate promotion.GateResult) {
			res, err := promotion.Apply(p, plan, promotion.Event{Type: ev, Gate: gate}, clock)
			if err != nil {
				t.Fatalf("%s in %s: %v", ev, p.State, err)
			}
			p = res.Promotion
		}
		apply(promotion.EvStart, "")
		apply(promotion.EvGates, promotion.GatePass)

		type visit struct{ failures, interruptions int }
		visits := map[stepKey]*visit{}
		outcome := rapid.SampledFrom([]promotion.EventType{
			promotion.EvStepSucceeded, promotion.EvStepFailed, promotion.EvStepFailed, promotion.EvStepInterrupted,
		})
		for steps := 0; !p.State.Terminal(); steps++ {
			if steps > 1000 {
				t.Fatalf("still %s after %d events", p.State, steps)
			}
			if p.WakeAt != nil {
				clock = *p.WakeAt
				apply(promotion.EvWake, "")
				continue
			}
			c := p.Cursor
			k := stepKey{phase: c.Phase, index: c.Index}
			v := visits[k]
			if v == nil {
				v = &visit{}
				visits[k] = v
			}
			retries := plan.Steps(c.Phase)[c.Index].Retries
			ev := outcome.Draw(t, "outcome")
			if ev == promotion.EvStepInterrupted && v.interruptions >= 3 {
				ev = promotion.EvStepSucceeded
			}
			apply(ev, "")
			stayed := stepState(p.State) && p.Cursor.Phase == k.phase && p.Cursor.Index == k.index
			switch ev {
			case promotion.EvStepFailed:
				v.failures++
				if v.failures > retries+1 {
					t.Fatalf("step %s/%d failed %d times with %d retries", k.phase, k.index, v.failures, retries)
				}
				if stayed != (v.failures <= retries) {
					t.Fatalf("step %s/%d: failure %d of %d retries, stayed %v", k.phase, k.index, v.failures, retries, stayed)
				}
			case promotion.EvStepInterrupted:
				v.interruptions++
				if !stayed {
					t.Fatalf("step %s/%d: left on an interruption", k.phase, k.index)
				}
			case promotion.EvStepSucceeded:
				if stayed {
					t.Fatalf("step %s/%d: stayed after succeeding", k.phase, k.index)
				}
			}
			if stayed && (p.Cursor.Failures != v.failures || p.Cursor.Attempt != 1+v.failures+v.interruptions) {
				t.Fatalf("step %s/%d: cursor %+v after %d failures and %d interruptions",
					k.phase, k.index, p.Cursor, v.failures, v.interruptions)
			}
		}
	})
}
