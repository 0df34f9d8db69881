package engine

import (
	"context"
	"fmt"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

// recover resumes every unfinished promotion after a start. Step attempts
// left running by a previous process are first stopped (their process
// groups reaped) and recorded as interrupted; only then does the next
// attempt, with the same idempotency key and attempt + 1, start. So a step
// never runs twice at the same time, even across a crash.
func (e *Engine) recover(ctx context.Context) error {
	var active []promotion.Promotion
	var running []promotion.StepRun
	err := e.store.View(ctx, func(tx store.Tx) error {
		var err error
		if active, err = tx.Promotions(ctx, store.PromotionFilter{Active: true, Ascending: true}); err != nil {
			return fmt.Errorf("list unfinished promotions: %w", err)
		}
		if running, err = tx.RunningStepRuns(ctx); err != nil {
			return fmt.Errorf("list running steps: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(active) > 0 || len(running) > 0 {
		e.log.Info("resuming", "unfinished_promotions", len(active), "running_steps", len(running))
	}

	// Orphans first: nothing new starts until every recorded process is gone.
	for _, r := range running {
		if r.PID != 0 && e.cfg.Reaper != nil {
			e.log.Info("stopping orphaned step process", "promotion_id", r.PromotionID, "step", r.Name, "attempt", r.Attempt, "pid", r.PID)
			if err := e.cfg.Reaper(ctx, r.PID, r.PIDStart, e.cfg.ReapGrace); err != nil {
				return fmt.Errorf("stop orphaned step %s of %s (pid %d): %w", r.Name, r.PromotionID, r.PID, err)
			}
		}
	}
	for _, r := range running {
		if err := e.interruptOrphan(ctx, r); err != nil {
			return err
		}
	}

	envs := map[[2]string]bool{}
	for _, p := range active {
		switch {
		case p.State == promotion.Queued:
			envs[[2]string{p.Pipeline, p.Environment}] = true
		case p.State == promotion.Gating:
			if err := e.resumeGating(ctx, p.ID); err != nil {
				return err
			}
		case p.WakeAt != nil:
			e.arm(p.ID, *p.WakeAt)
		case p.State == promotion.Deploying || p.State == promotion.Verifying || p.State == promotion.RollingBack:
			if err := e.resumeStep(ctx, p.ID); err != nil {
				return err
			}
		}
	}
	for k := range envs {
		if err := e.commit(ctx, func(t *txn) error { return e.startNext(t, k[0], k[1]) }); err != nil {
			return fmt.Errorf("start queue of %s/%s: %w", k[0], k[1], err)
		}
	}
	return nil
}

// interruptOrphan records a step attempt found running at start as
// interrupted and, if its promotion is still at it, moves the promotion to
// the next attempt.
func (e *Engine) interruptOrphan(ctx context.Context, r promotion.StepRun) error {
	return e.commit(ctx, func(t *txn) error {
		p, err := t.tx.Promotion(ctx, r.PromotionID)
		if err != nil {
			return fmt.Errorf("load promotion %s: %w", r.PromotionID, err)
		}
		current := !p.State.Terminal() && p.WakeAt == nil && p.Cursor.Phase == r.Phase &&
			p.Cursor.Index == r.Index && p.Cursor.Attempt == r.Attempt
		now := t.now
		r.FinishedAt = &now
		r.State = promotion.StepInterrupted
		r.Error = "interrupted: the server stopped while the step ran"
		if !current {
			r.State = promotion.StepAborted
		}
		if err := t.tx.UpdateStepRun(ctx, &r); err != nil {
			return fmt.Errorf("record interrupted step %s: %w", r.Name, err)
		}
		if err := t.audit(SystemActor, "step.finish", "promotion/"+p.ID, p.ID, r.Error,
			map[string]any{"phase": r.Phase, "step": r.Name, "attempt": r.Attempt, "state": r.State, "environment": p.Environment}); err != nil {
			return err
		}
		t.changed[p.ID] = true
		if !current {
			return nil
		}
		return e.fire(t, SystemActor, p, promotion.Event{Type: promotion.EvStepInterrupted, Reason: r.Error})
	})
}

// resumeGating evaluates the gates of a promotion left in gating.
func (e *Engine) resumeGating(ctx context.Context, id string) error {
	return e.commit(ctx, func(t *txn) error {
		p, err := t.tx.Promotion(ctx, id)
		if err != nil || p.State != promotion.Gating {
			return err
		}
		rev, err := e.revision(ctx, t.tx, p.Pipeline, p.Revision)
		if err != nil {
			return err
		}
		env, _ := rev.Spec.Environment(p.Environment)
		result, reason, err := e.evaluateGates(t, p, env)
		if err != nil {
			return err
		}
		return e.fire(t, SystemActor, p, promotion.Event{Type: promotion.EvGates, Gate: result, Reason: reason})
	})
}

// resumeStep starts the attempt a promotion's cursor points at, unless it is already recorded.
func (e *Engine) resumeStep(ctx context.Context, id string) error {
	return e.commit(ctx, func(t *txn) error {
		p, err := t.tx.Promotion(ctx, id)
		if err != nil {
			return fmt.Errorf("load promotion %s: %w", id, err)
		}
		runs, err := t.tx.StepRuns(ctx, id)
		if err != nil {
			return fmt.Errorf("load step runs of %s: %w", id, err)
		}
		for _, r := range runs {
			if r.Phase == p.Cursor.Phase && r.Index == p.Cursor.Index && r.Attempt == p.Cursor.Attempt {
				// Started already: by interruptOrphan, or before a clean shutdown recorded it.
				return nil
			}
		}
		rev, err := e.revision(ctx, t.tx, p.Pipeline, p.Revision)
		if err != nil {
			return err
		}
		env, _ := rev.Spec.Environment(p.Environment)
		return e.beginStep(t, p, env, p.Cursor)
	})
}
