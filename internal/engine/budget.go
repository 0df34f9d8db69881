package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis"
	"github.com/ferry-dev/ferry/internal/analysis/burn"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
)

// budgetFresh is how long a measured burn rate is used before it is measured again.
const budgetFresh = 30 * time.Second

// budgetEntry is the latest burn-rate measurement of one environment's error budget.
type budgetEntry struct {
	res        burn.Result
	at         time.Time
	refreshing bool
}

// budgetJob measures an error budget outside any transaction.
type budgetJob struct {
	key     string
	address string
	spec    burn.Spec
}

// budgetSpec turns an environment's errorBudget into what package burn evaluates.
func budgetSpec(pipelineName string, env pipeline.Environment) (budgetJob, error) {
	eb := env.Gates.ErrorBudget
	vars := map[string]string{"environment": env.Name, "pipeline": pipelineName}
	errs, err := analysis.Interpolate(eb.Errors, vars)
	if err != nil {
		return budgetJob{}, fmt.Errorf("errorBudget.errors: %w", err)
	}
	total, err := analysis.Interpolate(eb.Total, vars)
	if err != nil {
		return budgetJob{}, fmt.Errorf("errorBudget.total: %w", err)
	}
	spec := burn.Spec{Errors: errs, Total: total, Objective: eb.Objective, Period: eb.Period.D()}
	for _, r := range eb.Rules {
		spec.Rules = append(spec.Rules, burn.Rule{Long: r.Long.D(), Short: r.Short.D(), Factor: r.Factor})
	}
	return budgetJob{key: pipelineName + "/" + env.Name + "\x00" + eb.Prometheus + "\x00" + errs + "\x00" + total,
		address: eb.Prometheus, spec: spec}, nil
}

// budgetFor returns the environment's latest burn-rate measurement, and
// whether a new one should be taken (after the transaction commits).
func (e *Engine) budgetFor(p *promotion.Promotion, env pipeline.Environment, now time.Time) (*burn.Result, *budgetJob) {
	if env.Gates == nil || env.Gates.ErrorBudget == nil || p.Kind == promotion.KindRollback {
		return nil, nil
	}
	job, err := budgetSpec(p.Pipeline, env)
	if err != nil {
		return &burn.Result{Err: err, Reason: "cannot judge the burn rate: " + err.Error()}, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	entry := e.budgets[job.key]
	if entry != nil && now.Sub(entry.at) < budgetFresh {
		res := entry.res
		return &res, nil
	}
	if entry != nil && entry.refreshing {
		res := entry.res
		return &res, nil
	}
	if entry == nil {
		return nil, &job
	}
	res := entry.res
	return &res, &job
}

// measureBudget measures an error budget and then has the promotion's gates
// evaluated again.
func (e *Engine) measureBudget(id string, job budgetJob) {
	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		return
	}
	entry := e.budgets[job.key]
	if entry == nil {
		entry = &budgetEntry{}
		e.budgets[job.key] = entry
	}
	if entry.refreshing {
		e.mu.Unlock()
		return
	}
	entry.refreshing = true
	e.background.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.background.Done()
		ctx, cancel := context.WithTimeout(e.stepCtx, 30*time.Second)
		defer cancel()
		now := e.cfg.Now().UTC()
		res := burn.Evaluate(ctx, &analysis.Prometheus{Address: job.address}, job.spec, now)
		e.mu.Lock()
		entry.res, entry.at, entry.refreshing = res, now, false
		e.mu.Unlock()
		e.kickGates(id)
	}()
}

// kickGates evaluates the gates of a promotion that waits in gating now,
// instead of at its timer.
func (e *Engine) kickGates(id string) {
	ctx := context.Background()
	err := e.commit(ctx, func(t *txn) error {
		p, err := t.tx.Promotion(ctx, id)
		if err != nil {
			return err
		}
		if p.State != promotion.Gating || p.WakeAt == nil {
			return nil
		}
		return e.fire(t, SystemActor, p, promotion.Event{Type: promotion.EvWake})
	})
	if err != nil {
		e.logID(id).Warn("evaluate gates after measuring the error budget", "err", err)
	}
}
