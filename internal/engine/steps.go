package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/step"
	"github.com/ferry-dev/ferry/internal/step/watch"
	"github.com/ferry-dev/ferry/internal/store"
)

// startStep runs the step attempt at cursor c of promotion id in a goroutine
// the engine owns.
func (e *Engine) startStep(id string, c promotion.Cursor) {
	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancelCause(e.stepCtx)
	self := &runningStep{cancel: cancel, cursor: c}
	e.running[id] = self
	e.steps.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.steps.Done()
		defer func() {
			e.mu.Lock()
			// A promotion stopped by an alert may already run its next
			// step (the rollback's first) while this one winds down.
			if e.running[id] == self {
				delete(e.running, id)
			}
			e.mu.Unlock()
			cancel(nil)
		}()
		e.execStep(ctx, id, c)
	}()
}

// runningStep is a step attempt running in this process.
type runningStep struct {
	cancel context.CancelCauseFunc
	cursor promotion.Cursor
}

// stopStep stops the running step of promotion id: the attempt at c, or
// whichever runs when c is nil.
func (e *Engine) stopStep(id string, c *promotion.Cursor) {
	e.mu.Lock()
	r := e.running[id]
	e.mu.Unlock()
	if r == nil || c != nil && (r.cursor.Phase != c.Phase || r.cursor.Index != c.Index || r.cursor.Attempt != c.Attempt) {
		return
	}
	r.cancel(errAborted)
}

// stopMessage is the message that stops the attempt at c of promotion id on
// whichever replica runs it.
func stopMessage(id string, c promotion.Cursor) string {
	return fmt.Sprintf("%s%s %s %d %d", msgStop, id, c.Phase, c.Index, c.Attempt)
}

// parseStopMessage parses the body of a stop message: a promotion ID,
// optionally followed by the attempt to stop.
func parseStopMessage(body string) (string, *promotion.Cursor) {
	f := strings.Fields(body)
	if len(f) != 4 {
		return strings.TrimSpace(body), nil
	}
	index, err1 := strconv.Atoi(f[2])
	attempt, err2 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil {
		return f[0], nil
	}
	return f[0], &promotion.Cursor{Phase: promotion.Phase(f[1]), Index: index, Attempt: attempt}
}

// stepInput is what a step attempt needs from the store.
type stepInput struct {
	p       promotion.Promotion
	env     pipeline.Environment
	spec    pipeline.Step
	weight  *int // FERRY_CANARY_WEIGHT of a canary's set-weight step
	release *release.Release
	run     promotion.StepRun
	// watchUntil is, for the watch window, when it ends: its length after
	// the start of its first attempt, so that a restart does not extend it.
	watchUntil time.Time
}

func (e *Engine) loadStep(ctx context.Context, id string, c promotion.Cursor) (*stepInput, error) {
	var in stepInput
	err := e.store.View(ctx, func(tx store.Tx) error {
		p, err := tx.Promotion(ctx, id)
		if err != nil {
			return fmt.Errorf("load promotion %s: %w", id, err)
		}
		in.p = *p
		rev, err := e.revision(ctx, tx, p.Pipeline, p.Revision)
		if err != nil {
			return err
		}
		env, ok := rev.Spec.Environment(p.Environment)
		if !ok {
			return fmt.Errorf("environment %s not in revision %d", p.Environment, p.Revision)
		}
		in.env = env
		if in.spec, in.weight, ok = stepAt(env, c); !ok {
			return fmt.Errorf("no step at %s[%d]", c.Phase, c.Index)
		}
		relID := p.ReleaseID
		if c.Phase == promotion.PhaseRollback {
			relID = p.RollbackID
		}
		if in.release, err = e.releaseByID(ctx, tx, relID); err != nil {
			return err
		}
		runs, err := tx.StepRuns(ctx, id)
		if err != nil {
			return fmt.Errorf("load step runs of %s: %w", id, err)
		}
		found := false
		for _, r := range runs {
			if r.Phase == c.Phase && r.Index == c.Index && r.Attempt == c.Attempt {
				in.run, found = r, true
			}
			if r.Phase == promotion.PhaseWatch && env.Watch != nil {
				if until := r.StartedAt.Add(env.Watch.For.D()); in.watchUntil.IsZero() || until.Before(in.watchUntil) {
					in.watchUntil = until
				}
			}
		}
		if !found {
			return fmt.Errorf("no record of step %s[%d] attempt %d", c.Phase, c.Index, c.Attempt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &in, nil
}

func (e *Engine) execStep(ctx context.Context, id string, c promotion.Cursor) {
	bg := context.WithoutCancel(ctx)
	in, err := e.loadStep(bg, id, c)
	if err != nil {
		log := e.logID(id).With("phase", c.Phase, "index", c.Index, "attempt", c.Attempt)
		log.Error("load step", "err", err)
		e.finishStep(bg, log, id, c, step.Result{Message: err.Error()})
		return
	}
	log := e.logFor(&in.p).With("phase", c.Phase, "index", c.Index, "attempt", c.Attempt, "step", in.spec.Name)
	driver, ok := e.cfg.Drivers[in.spec.Kind()]
	if c.Phase == promotion.PhaseWatch {
		driver, ok = watch.Window{Checks: in.env.Watch.Checks, Until: in.watchUntil,
			Every: in.env.Watch.EveryOrDefault(), Drivers: e.cfg.Drivers, Now: e.cfg.Now}, true
	}
	if !ok {
		e.finishStep(bg, log, id, c, step.Result{Message: fmt.Sprintf("no driver for step kind %q", in.spec.Kind())})
		return
	}
	secrets := step.SecretValues(in.spec, e.cfg.BaseEnv)
	capture := step.NewCapture(e.cfg.MaxLogBytes, secrets, e.cfg.LogInterval, func(b []byte) {
		chunk := &store.LogChunk{PromotionID: id, Phase: c.Phase, Index: c.Index, Attempt: c.Attempt,
			Data: append([]byte(nil), b...), At: e.cfg.Now().UTC()}
		if err := e.store.Update(bg, func(tx store.Tx) error { return tx.AppendStepLog(bg, chunk) }); err != nil {
			log.Error("store step output", "err", err)
		}
	})
	req := step.Request{
		PromotionID: id, Pipeline: in.p.Pipeline, Environment: in.p.Environment,
		Release: *in.release, Rollback: c.Phase == promotion.PhaseRollback || in.p.Kind == promotion.KindRollback,
		Phase: c.Phase, Step: in.spec, Attempt: c.Attempt, IdempotencyKey: in.run.IdempotencyKey,
		CanaryWeight: in.weight, Baseline: in.p.RollbackVersion,
		Output: capture,
	}
	span, traceParent := e.startStepSpan(id, c, in)
	req.TraceParent = traceParent
	var startErr error
	req.Started = func(pid int, start uint64) error {
		// The process group must be on record before the step may go on:
		// it is what a replica taking over reaps.
		startErr = e.retry(ctx, log, "record step process", func() error {
			return e.store.Update(bg, func(tx store.Tx) error {
				run := in.run
				run.PID, run.PIDStart = pid, start
				return tx.UpdateStepRun(bg, &run)
			})
		})
		return startErr
	}
	if e.cfg.StepStarted != nil {
		e.cfg.StepStarted(in.p, time.Now())
	}
	log.Debug("step started", "kind", in.spec.Kind())
	began := time.Now()
	res := driver.Run(ctx, req)
	took := time.Since(began)
	if startErr != nil {
		res = step.Result{Interrupted: true, Message: "interrupted: " + startErr.Error()}
	}
	if err := capture.Close(); err != nil {
		log.Error("close step output", "err", err)
	}
	out := StepOutcome{Phase: c.Phase, Name: in.spec.Name, Kind: in.spec.Kind(), Attempt: c.Attempt,
		Check: isCheckAt(in.env, c), State: stepState(res), Duration: took}
	log.Info("step finished", "kind", out.Kind, "state", out.State, "duration_seconds", took.Seconds(), "message", redact(res.Message, secrets))
	e.endStepSpan(span, c, res)
	e.finishStep(bg, log, id, c, res)
	if e.cfg.StepFinished != nil {
		e.cfg.StepFinished(in.p, out)
	}
}

// stepState names a driver's result as a step attempt's state.
func stepState(res step.Result) promotion.StepState {
	switch {
	case res.Interrupted:
		return promotion.StepInterrupted
	case res.OK:
		return promotion.StepSucceeded
	case res.Inconclusive:
		return promotion.StepInconclusive
	}
	return promotion.StepFailed
}

// retry calls fn until it succeeds, backing off up to 2 seconds between
// tries while the store is unreachable. It gives up when ctx ends, or after
// a few tries once the engine is stopping: the next start resumes from what
// is stored.
func (e *Engine) retry(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	backoff := 50 * time.Millisecond
	for try := 1; ; try++ {
		err := fn()
		if err == nil || CodeOf(err) != "" && CodeOf(err) != CodeUnavailable {
			return err
		}
		if ctx.Err() != nil || e.isStopping() && try >= 3 {
			return err
		}
		log.Warn(what+": retrying", "err", err, "try", try)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// finishStep records the end of a step attempt and, if the promotion is
// still at that step, applies the matching event — in one transaction. It
// retries while the store is unreachable. If the attempt is no longer this
// replica's (another replica took the promotion over while this one could
// not reach the store), the outcome is dropped: the attempt was stopped and
// recorded as interrupted by the replica that took over.
func (e *Engine) finishStep(ctx context.Context, log *slog.Logger, id string, c promotion.Cursor, res step.Result) {
	err := e.retry(ctx, log, "record step result", func() error { return e.recordStep(ctx, id, c, res) })
	if err != nil {
		log.Error("record step result", "err", err)
	}
}

func (e *Engine) recordStep(ctx context.Context, id string, c promotion.Cursor, res step.Result) error {
	return e.commit(ctx, func(t *txn) error {
		p, err := t.tx.Promotion(ctx, id)
		if err != nil {
			return fmt.Errorf("load promotion %s: %w", id, err)
		}
		current := !p.State.Terminal() && p.Cursor.Phase == c.Phase && p.Cursor.Index == c.Index &&
			p.Cursor.Attempt == c.Attempt && p.WakeAt == nil
		runs, err := t.tx.StepRuns(ctx, id)
		if err != nil {
			return fmt.Errorf("load step runs of %s: %w", id, err)
		}
		var run *promotion.StepRun
		for i := range runs {
			r := &runs[i]
			if r.Phase == c.Phase && r.Index == c.Index && r.Attempt == c.Attempt {
				run = r
			}
		}
		if run == nil {
			return fmt.Errorf("no record of step %s[%d] attempt %d of %s", c.Phase, c.Index, c.Attempt, id)
		}
		if run.State != promotion.StepRunning || run.Owner != e.cfg.InstanceID {
			e.logFor(p).Warn("step attempt was taken over; dropping its outcome", "attempt", c.Attempt, "state", run.State, "owner", run.Owner)
			return nil
		}
		ev := promotion.Event{Reason: res.Message}
		switch {
		case res.Interrupted && !current:
			run.State = promotion.StepAborted
		case res.Interrupted:
			run.State, ev.Type = promotion.StepInterrupted, promotion.EvStepInterrupted
		case res.OK:
			run.State, ev.Type = promotion.StepSucceeded, promotion.EvStepSucceeded
		case res.Inconclusive:
			run.State, ev.Type = promotion.StepInconclusive, promotion.EvStepInconclusive
		default:
			run.State, ev.Type = promotion.StepFailed, promotion.EvStepFailed
		}
		if !current && run.State != promotion.StepAborted {
			// The promotion moved on (it was aborted): the outcome is kept, nothing follows.
			ev.Type = ""
		}
		now := t.now
		run.ExitCode, run.Error, run.FinishedAt = res.ExitCode, res.Message, &now
		if err := t.tx.UpdateStepRun(ctx, run); err != nil {
			return fmt.Errorf("record end of step %s: %w", run.Name, err)
		}
		details := map[string]any{"phase": c.Phase, "step": run.Name, "attempt": c.Attempt, "state": run.State, "environment": p.Environment}
		if res.ExitCode != nil {
			details["exitCode"] = *res.ExitCode
		}
		if err := t.audit(SystemActor, "step.finish", "promotion/"+id, id, res.Message, details); err != nil {
			return err
		}
		t.changed[id] = true
		if !current {
			// The promotion ended while the step ran (an abort): the environment is free now.
			return e.startNext(t, p.Pipeline, p.Environment)
		}
		if ev.Type == "" {
			return nil
		}
		return e.fire(t, SystemActor, p, ev)
	})
}

// timer is an armed wake-up of a promotion.
type timer struct {
	t  *time.Timer
	at time.Time
}

// arm sets the timer of a promotion waiting until at.
func (e *Engine) arm(id string, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return
	}
	if t, ok := e.timers[id]; ok {
		t.t.Stop()
	}
	d := at.Sub(e.cfg.Now())
	e.timers[id] = timer{at: at, t: time.AfterFunc(max(d, 0), func() {
		e.mu.Lock()
		if cur, ok := e.timers[id]; ok && cur.at.Equal(at) {
			delete(e.timers, id)
		}
		stopping := e.stopping
		if !stopping {
			e.background.Add(1)
		}
		e.mu.Unlock()
		if stopping {
			return
		}
		defer e.background.Done()
		e.wake(id)
	})}
}

// Rearm re-arms every timer against the clock. A server never needs it; it
// is for a clock that jumps (Config.Now in tests).
func (e *Engine) Rearm() {
	e.mu.Lock()
	due := make(map[string]time.Time, len(e.timers))
	for id, t := range e.timers {
		due[id] = t.at
	}
	e.mu.Unlock()
	for id, at := range due {
		e.arm(id, at)
	}
}

// wake delivers a promotion's timer.
func (e *Engine) wake(id string) {
	ctx := context.Background()
	err := e.commit(ctx, func(t *txn) error {
		p, err := t.tx.Promotion(ctx, id)
		if err != nil {
			return fmt.Errorf("load promotion %s: %w", id, err)
		}
		if p.WakeAt == nil || p.State.Terminal() {
			return nil
		}
		if p.WakeAt.After(t.now) {
			t.effects = append(t.effects, effect{kind: effWait, id: id, at: *p.WakeAt})
			return nil
		}
		return e.fire(t, SystemActor, p, promotion.Event{Type: promotion.EvWake})
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		e.logID(id).Error("wake promotion", "err", err)
	}
}
