package stats

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/promotion"
)

// history is every record with the facts derived from it.
type history struct {
	facts []*facts
	// byEnv holds the facts of each "pipeline/environment", by end time.
	byEnv map[string][]*facts
}

// transition is one promotion.transition audit event, decoded.
type transition struct {
	from, to promotion.State
	at       time.Time
}

// facts are what the figures need to know of one record.
type facts struct {
	rec      *Record
	p        *promotion.Promotion
	finished time.Time // zero when the promotion has not ended

	transitions []transition
	// reachedDeploying: it passed its gates and started work.
	reachedDeploying bool
	// deployed: a deploy, canary or check step ran, or it reached verification.
	deployed bool
	// liveAt is when it passed verification: entered watching, or succeeded.
	liveAt *time.Time
	// watchFailedAt is when its watch window failed.
	watchFailedAt *time.Time
	// alertAt is the first alert at or after liveAt.
	alertAt *time.Time
	// failedAt is its first transition into rolling_back or failed.
	failedAt *time.Time
	// undoneAt is when a later rollback promotion of its environment
	// (ferry rollback) was created to undo it.
	undoneAt *time.Time

	waitedForApproval bool
	approvalWait      time.Duration

	verificationRan    bool
	verificationFailed bool
	measured           bool

	// auditProblem says why the audit trail is incomplete; "" when it is complete.
	auditProblem string
}

func (f *facts) inWindow(from, to time.Time) bool {
	return !f.finished.IsZero() && !f.finished.Before(from) && f.finished.Before(to)
}

// rolledBack: rolled back automatically, or undone by a later rollback.
func (f *facts) rolledBack() bool {
	return f.p.State == promotion.RolledBack || f.p.State == promotion.RollbackFailed || f.undoneAt != nil
}

// incidentAt is when a live promotion's first post-promotion failure signal
// came: its watch window failed, or an alert fired. Nil when none did.
func (f *facts) incidentAt() *time.Time { return earliest(f.watchFailedAt, f.alertAt) }

// isDeployment: a promote-kind promotion that deployed and ended with a verdict.
func (f *facts) isDeployment() bool {
	if f.p.Kind != promotion.KindPromote || !f.deployed {
		return false
	}
	switch f.p.State {
	case promotion.Succeeded, promotion.Failed, promotion.RolledBack, promotion.RollbackFailed:
		return true
	}
	return false
}

// changeFailedAt is when a deployment was found to have failed: its first
// move to rolling_back or failed, its first alert after going live, or the
// creation of the rollback that undid it, whichever came first. Nil when it
// did not fail.
func (f *facts) changeFailedAt() *time.Time {
	var at *time.Time
	switch f.p.State {
	case promotion.Failed, promotion.RolledBack, promotion.RollbackFailed:
		at = f.failedAt
		if at == nil {
			// The audit trail lacks the transition: the end is the latest it can have been.
			at = &f.finished
		}
	}
	return earliest(at, f.alertAt, f.undoneAt)
}

// restoredAt is when the environment of a failed deployment ran a good
// release again: the end of its own rollback, or else the first promotion
// of either kind into the environment that succeeded at or after the failure.
func (h *history) restoredAt(f *facts, failedAt time.Time) *time.Time {
	if f.p.State == promotion.RolledBack {
		return &f.finished
	}
	for _, g := range h.byEnv[envKey(f.p)] {
		if g != f && g.p.State == promotion.Succeeded && !g.finished.Before(failedAt) {
			return &g.finished
		}
	}
	return nil
}

func envKey(p *promotion.Promotion) string { return p.Pipeline + "/" + p.Environment }

func earliest(ts ...*time.Time) *time.Time {
	var out *time.Time
	for _, t := range ts {
		if t != nil && (out == nil || t.Before(*out)) {
			out = t
		}
	}
	return out
}

// analyze derives the facts of every record.
func analyze(records []Record) *history {
	h := &history{byEnv: map[string][]*facts{}}
	for i := range records {
		f := derive(&records[i])
		h.facts = append(h.facts, f)
		if !f.finished.IsZero() {
			h.byEnv[envKey(f.p)] = append(h.byEnv[envKey(f.p)], f)
		}
	}
	for _, fs := range h.byEnv {
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].finished.Before(fs[j].finished) })
	}
	// A rollback promotion that started work undoes the promote-kind
	// promotion that last succeeded in its environment before it was created.
	for _, r := range h.facts {
		if r.p.Kind != promotion.KindRollback || !r.reachedDeploying {
			continue
		}
		var undone *facts
		for _, g := range h.byEnv[envKey(r.p)] {
			if g.finished.After(r.p.CreatedAt) {
				break
			}
			if g.p.Kind == promotion.KindPromote && g.p.State == promotion.Succeeded {
				undone = g
			}
		}
		if undone != nil {
			at := r.p.CreatedAt
			undone.undoneAt = earliest(undone.undoneAt, &at)
		}
	}
	return h
}

// derive reads one record.
func derive(r *Record) *facts {
	f := &facts{rec: r, p: &r.Promotion}
	if r.Promotion.FinishedAt != nil {
		f.finished = *r.Promotion.FinishedAt
	}
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	var alerts []time.Time
	created := false
	for i := range r.Events {
		ev := &r.Events[i]
		if err := ev.Validate(); err != nil {
			problem("audit event %d: %v", ev.Seq, err)
		}
		switch ev.Action {
		case ActionCreate:
			created = true
		case ActionTransition:
			var d struct {
				From promotion.State `json:"from"`
				To   promotion.State `json:"to"`
			}
			if err := json.Unmarshal(ev.Details, &d); err != nil || d.From == "" || d.To == "" {
				problem("transition event %d does not say from which state to which", ev.Seq)
				continue
			}
			f.transitions = append(f.transitions, transition{from: d.From, to: d.To, at: ev.Time})
		case ActionAlert:
			alerts = append(alerts, ev.Time)
		}
	}
	if !created {
		problem("no %s event", ActionCreate)
	}
	f.readTransitions(problem)
	for _, at := range alerts {
		if f.liveAt != nil && !at.Before(*f.liveAt) {
			f.alertAt = earliest(f.alertAt, &at)
		}
	}
	f.readSteps()
	checkSteps(r, problem)
	checkApprovals(r, problem)
	if len(problems) > 0 {
		f.auditProblem = problems[0]
		if len(problems) > 1 {
			f.auditProblem += fmt.Sprintf(" (and %d more)", len(problems)-1)
		}
	}
	return f
}

// readTransitions derives the times of the promotion's milestones from its
// transitions, and checks that they form one unbroken chain from queued to
// the stored state.
func (f *facts) readTransitions(problem func(string, ...any)) {
	prev := promotion.Queued
	var awaitingSince *time.Time
	for i := range f.transitions {
		tr := &f.transitions[i]
		if tr.from != prev {
			problem("transition to %s at %s starts from %s, but the previous one ended in %s",
				tr.to, tr.at.UTC().Format(time.RFC3339Nano), tr.from, prev)
		}
		prev = tr.to
		if awaitingSince != nil && tr.from == promotion.AwaitingApproval {
			f.approvalWait += tr.at.Sub(*awaitingSince)
			awaitingSince = nil
		}
		switch tr.to {
		case promotion.AwaitingApproval:
			f.waitedForApproval = true
			awaitingSince = &tr.at
		case promotion.Deploying:
			f.reachedDeploying = true
		case promotion.Verifying:
			f.deployed = true
		case promotion.Watching:
			f.liveAt = earliest(f.liveAt, &tr.at)
		case promotion.Succeeded:
			if f.liveAt == nil {
				f.liveAt = &tr.at
			}
		case promotion.RollingBack, promotion.Failed, promotion.RollbackFailed, promotion.RolledBack:
			if tr.to == promotion.RollingBack || tr.to == promotion.Failed {
				f.failedAt = earliest(f.failedAt, &tr.at)
			}
			if tr.from == promotion.Watching && f.watchFailedAt == nil {
				f.watchFailedAt = &tr.at
			}
		}
	}
	if awaitingSince != nil && !f.finished.IsZero() {
		f.approvalWait += f.finished.Sub(*awaitingSince)
	}
	if prev != f.p.State {
		problem("the transitions end in %s, but the promotion is %s", prev, f.p.State)
	}
}

// readSteps derives the verification facts from the step attempts.
func (f *facts) readSteps() {
	type key struct {
		phase promotion.Phase
		index int
	}
	last := map[key]promotion.StepRun{}
	for _, s := range f.rec.Steps {
		switch s.Phase {
		case promotion.PhaseDeploy:
			f.deployed = true
			continue
		case promotion.PhaseVerify, promotion.PhaseCanary:
			f.deployed = true
		default:
			continue
		}
		f.verificationRan = true
		switch s.State {
		case promotion.StepSucceeded, promotion.StepFailed, promotion.StepInconclusive:
			f.measured = true
		}
		k := key{s.Phase, s.Index}
		if prev, ok := last[k]; !ok || s.Attempt >= prev.Attempt {
			last[k] = s
		}
	}
	for _, s := range last {
		if s.State == promotion.StepFailed {
			f.verificationFailed = true
		}
	}
}

// stepEvent is what a step.start or step.finish event says.
type stepEvent struct {
	Phase   promotion.Phase     `json:"phase"`
	Step    string              `json:"step"`
	Attempt int                 `json:"attempt"`
	State   promotion.StepState `json:"state,omitempty"`
}

// checkSteps checks that every step attempt has its step.start event, and
// every finished one its step.finish event with the same outcome.
func checkSteps(r *Record, problem func(string, ...any)) {
	var starts, finishes []stepEvent
	for _, ev := range r.Events {
		if ev.Action != ActionStepStart && ev.Action != ActionStepFinish {
			continue
		}
		var d stepEvent
		if err := json.Unmarshal(ev.Details, &d); err != nil {
			problem("%s event %d does not name its step", ev.Action, ev.Seq)
			continue
		}
		if ev.Action == ActionStepStart {
			starts = append(starts, d)
		} else {
			finishes = append(finishes, d)
		}
	}
	for _, s := range r.Steps {
		want := stepEvent{Phase: s.Phase, Step: s.Name, Attempt: s.Attempt}
		if !slices.Contains(starts, want) {
			problem("step %s/%s attempt %d has no %s event", s.Phase, s.Name, s.Attempt, ActionStepStart)
		}
		if s.FinishedAt == nil {
			continue
		}
		want.State = s.State
		if !slices.Contains(finishes, want) {
			problem("step %s/%s attempt %d has no %s event saying %s", s.Phase, s.Name, s.Attempt, ActionStepFinish, s.State)
		}
	}
}

// checkApprovals checks that every recorded decision has its event, by the
// person who decided, at the time recorded.
func checkApprovals(r *Record, problem func(string, ...any)) {
	for _, a := range r.Approvals {
		found := slices.ContainsFunc(r.Events, func(ev audit.Event) bool {
			return ev.Action == "promotion."+string(a.Decision) && ev.Actor == a.User && ev.Time.Equal(a.At)
		})
		if !found {
			problem("the %s by %s at %s has no audit event", a.Decision, a.User, a.At.UTC().Format(time.RFC3339Nano))
		}
	}
}
