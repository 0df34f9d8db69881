package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

// recover resumes work after a start. With a store of its own (SQLite) the
// engine claims every promotion with work in flight at once; with a shared
// store only those whose driver's lease expired, the rest being driven by
// live replicas. Step attempts left running are stopped (their process
// groups reaped when on this host) and recorded as interrupted before the
// next attempt, with the same idempotency key and attempt + 1, starts: a
// step never runs twice at the same time, even across a crash. Queued
// promotions whose environment is free are started.
func (e *Engine) recover(ctx context.Context) error {
	before := e.cfg.Now().UTC()
	if !e.cfg.Shared {
		before = before.Add(100 * 365 * 24 * time.Hour)
	}
	if err := e.sweep(ctx, before); err != nil {
		return err
	}
	var queued, gating []promotion.Promotion
	err := e.store.View(ctx, func(tx store.Tx) error {
		var err error
		if queued, err = tx.Promotions(ctx, store.PromotionFilter{States: []promotion.State{promotion.Queued}, Ascending: true}); err != nil {
			return fmt.Errorf("list queued promotions: %w", err)
		}
		if gating, err = tx.Promotions(ctx, store.PromotionFilter{States: []promotion.State{promotion.Gating}, Ascending: true}); err != nil {
			return fmt.Errorf("list gating promotions: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range gating {
		if err := e.resumeGating(ctx, p.ID); err != nil {
			return err
		}
	}
	envs := map[[2]string]bool{}
	for _, p := range queued {
		envs[[2]string{p.Pipeline, p.Environment}] = true
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
		runs, err := t.tx.StepRuns(ctx, r.PromotionID)
		if err != nil {
			return fmt.Errorf("load step runs of %s: %w", r.PromotionID, err)
		}
		stillRunning := false
		for _, x := range runs {
			if x.Phase == r.Phase && x.Index == r.Index && x.Attempt == r.Attempt {
				stillRunning = x.State == promotion.StepRunning
				r = x
			}
		}
		if !stillRunning {
			return nil // recorded meanwhile, by its own replica or another
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
			return e.startNext(t, p.Pipeline, p.Environment)
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
		if p.WakeAt != nil {
			t.effects = append(t.effects, effect{kind: effWait, id: id, at: *p.WakeAt})
			return nil
		}
		return e.gateAndFire(t, p)
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
