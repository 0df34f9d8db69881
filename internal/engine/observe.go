package engine

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/step"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/traceid"
)

// StepOutcome is how one step attempt ended, as Config.StepFinished receives it.
type StepOutcome struct {
	Phase promotion.Phase
	// Name is the step's name as the promotion shows it.
	Name string
	// Kind is the step's driver: exec, http, prometheus, web, canary.
	Kind    string
	Attempt int
	// Check is true for a verification: a preflight check, a check under
	// verify (also when a rollback runs it again) or a canary phase's
	// analysis; false for a deploy step or a canary's set-weight step.
	Check bool
	// State is succeeded, failed, inconclusive, or interrupted (the step was
	// stopped: the server shut down, the promotion was aborted, or the
	// replica lost its lease).
	State promotion.StepState
	// Duration is how long the driver ran the attempt.
	Duration time.Duration
}

// logAttrs are the attributes every log line about a promotion carries.
func logAttrs(p *promotion.Promotion) []any {
	return []any{
		slog.String("promotion_id", p.ID),
		slog.String("trace_id", traceid.String(p.ID)),
		slog.String("pipeline", p.Pipeline),
		slog.String("environment", p.Environment),
	}
}

// logFor returns the engine's logger for lines about p.
func (e *Engine) logFor(p *promotion.Promotion) *slog.Logger {
	return e.log.With(logAttrs(p)...)
}

// logID returns the engine's logger for lines about the promotion with the
// given ID, looking up its pipeline and environment. It is for lines that
// have only the ID at hand (mostly errors); when the lookup fails the lines
// carry the promotion and trace IDs alone.
func (e *Engine) logID(id string) *slog.Logger {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var p *promotion.Promotion
	err := e.store.View(ctx, func(tx store.Tx) error {
		var err error
		p, err = tx.Promotion(ctx, id)
		return err
	})
	if err != nil {
		return e.log.With(slog.String("promotion_id", id), slog.String("trace_id", traceid.String(id)))
	}
	return e.logFor(p)
}

// onCommit runs fn once the transaction has committed, after its effects
// have started. A transaction that is retried starts over without it.
func (t *txn) onCommit(fn func()) { t.after = append(t.after, fn) }

// observeCommit logs the transitions a transaction committed and runs the
// functions it asked to run on commit.
func (e *Engine) observeCommit(t *txn) {
	for _, ct := range t.trans {
		e.logFor(&ct.p).Info("promotion transition", "from", ct.tr.From, "to", ct.tr.To,
			"kind", ct.p.Kind, "release", ct.p.ReleaseVersion, "reason", ct.tr.Reason)
	}
	for _, fn := range t.after {
		fn()
	}
}

// gatesEvaluated reports a committed gate evaluation to Config.GatesEvaluated:
// p carries the new evaluation, previous the one before it.
func (e *Engine) gatesEvaluated(t *txn, p *promotion.Promotion, previous []promotion.GateEvaluation) {
	if e.cfg.GatesEvaluated == nil {
		return
	}
	committed := *p
	t.onCommit(func() { e.cfg.GatesEvaluated(committed, previous) })
}

// isCheckAt reports whether the step at cursor c of env verifies rather than
// changes something: see StepOutcome.Check.
func isCheckAt(env pipeline.Environment, c promotion.Cursor) bool {
	switch c.Phase {
	case promotion.PhasePreflight, promotion.PhaseVerify, promotion.PhaseWatch:
		return true
	case promotion.PhaseRollback:
		return c.Index >= len(rollbackFirst(env))+len(env.Steps)
	case promotion.PhaseCanary:
		// Each canary phase lists its set-weight steps, its pause, then its analysis.
		items := canaryItems(env)
		if c.Index < 0 || c.Index >= len(items) {
			return false
		}
		inPhase := 0
		for i := c.Index - 1; i >= 0 && items[i].Phase == items[c.Index].Phase; i-- {
			inPhase++
		}
		return inPhase >= len(env.Strategy.Canary.SetWeight) && items[c.Index].Step != nil
	}
	return false
}

// urlHost returns the host of a URL, for logs that must not show its path or
// query (which may hold a secret).
func urlHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(not a URL)"
	}
	return u.Host
}

// redactURL returns err's message with raw, which err may quote, cut down
// to its scheme and host.
func redactURL(err error, raw string) string {
	if raw == "" {
		return err.Error()
	}
	short := "(not a URL)"
	if u, perr := url.Parse(raw); perr == nil {
		short = u.Scheme + "://" + u.Host + "/…"
	}
	return strings.ReplaceAll(err.Error(), raw, short)
}

// redact replaces every secret value in s, as step output is redacted.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, step.Redacted)
		}
	}
	return s
}

// RunningSteps returns how many step attempts this replica is running now.
func (e *Engine) RunningSteps() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.running)
}
