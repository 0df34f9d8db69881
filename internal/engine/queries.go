package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/traceid"
	"github.com/ferry-dev/ferry/internal/view"
)

// Pipelines lists the latest revision of every pipeline.
func (e *Engine) Pipelines(ctx context.Context) ([]view.Pipeline, error) {
	var out []view.Pipeline
	err := e.store.View(ctx, func(tx store.Tx) error {
		revs, err := tx.Pipelines(ctx)
		if err != nil {
			return fmt.Errorf("list pipelines: %w", err)
		}
		out = make([]view.Pipeline, 0, len(revs))
		for _, r := range revs {
			envs := make([]string, len(r.Spec.Environments))
			for i, env := range r.Spec.Environments {
				envs[i] = env.Name
			}
			out = append(out, view.Pipeline{Name: r.Pipeline, Revision: r.Number, Digest: r.Digest, Environments: envs, UpdatedAt: r.CreatedAt})
		}
		return nil
	})
	return out, err
}

// Pipeline returns a revision of a pipeline; revision 0 means the latest.
func (e *Engine) Pipeline(ctx context.Context, name string, revision int) (*pipeline.Revision, error) {
	var out *pipeline.Revision
	err := e.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Revision(ctx, name, revision)
		if err != nil && revision != 0 {
			return notFound(err, "revision %d of pipeline %q", revision, name)
		}
		return notFoundOrNil(err, "pipeline %q", name)
	})
	return out, err
}

// Releases lists a pipeline's releases, newest first.
func (e *Engine) Releases(ctx context.Context, pipelineName string, limit int) ([]release.Release, error) {
	var out []release.Release
	err := e.store.View(ctx, func(tx store.Tx) error {
		if _, err := tx.Revision(ctx, pipelineName, 0); err != nil {
			return notFound(err, "pipeline %q", pipelineName)
		}
		var err error
		out, err = tx.Releases(ctx, pipelineName, limit)
		return err
	})
	return out, err
}

// Release returns a release by version.
func (e *Engine) Release(ctx context.Context, pipelineName, version string) (*release.Release, error) {
	var out *release.Release
	err := e.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Release(ctx, pipelineName, version)
		return notFoundOrNil(err, "release %q of pipeline %s", version, pipelineName)
	})
	return out, err
}

// Promotion returns a promotion with its steps and transitions.
func (e *Engine) Promotion(ctx context.Context, id string) (*view.Promotion, error) {
	var out *view.Promotion
	err := e.store.View(ctx, func(tx store.Tx) error {
		p, err := tx.Promotion(ctx, id)
		if err != nil {
			return notFound(err, "promotion %q", id)
		}
		out, err = e.promotionView(ctx, tx, p, true)
		return err
	})
	return out, err
}

// Promotions lists promotions matching f, with their steps.
func (e *Engine) Promotions(ctx context.Context, f store.PromotionFilter) ([]view.Promotion, error) {
	var out []view.Promotion
	err := e.store.View(ctx, func(tx store.Tx) error {
		ps, err := tx.Promotions(ctx, f)
		if err != nil {
			return fmt.Errorf("list promotions: %w", err)
		}
		out = make([]view.Promotion, 0, len(ps))
		for i := range ps {
			v, err := e.promotionView(ctx, tx, &ps[i], false)
			if err != nil {
				return err
			}
			out = append(out, *v)
		}
		return nil
	})
	return out, err
}

// WaitPromotion returns a promotion once its version is greater than
// afterVersion, or when ctx ends (then with its current state and no error).
func (e *Engine) WaitPromotion(ctx context.Context, id string, afterVersion int64) (*view.Promotion, error) {
	for {
		changed := e.watch(id)
		v, err := e.Promotion(ctx, id)
		if err != nil {
			return nil, err
		}
		if v.Version > afterVersion {
			return v, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return e.Promotion(context.WithoutCancel(ctx), id)
		}
	}
}

// Logs returns a promotion's step output.
func (e *Engine) Logs(ctx context.Context, id string) ([]view.LogChunk, error) {
	var out []view.LogChunk
	err := e.store.View(ctx, func(tx store.Tx) error {
		p, err := tx.Promotion(ctx, id)
		if err != nil {
			return notFound(err, "promotion %q", id)
		}
		rev, err := e.revision(ctx, tx, p.Pipeline, p.Revision)
		if err != nil {
			return err
		}
		env, _ := rev.Spec.Environment(p.Environment)
		chunks, err := tx.StepLogs(ctx, id)
		if err != nil {
			return fmt.Errorf("load logs of %s: %w", id, err)
		}
		out = make([]view.LogChunk, 0, len(chunks))
		for _, c := range chunks {
			s, _ := stepSpec(env, promotion.Cursor{Phase: c.Phase, Index: c.Index})
			out = append(out, view.LogChunk{Phase: c.Phase, Step: s.Name, Index: c.Index, Attempt: c.Attempt, At: c.At, Text: string(c.Data)})
		}
		return nil
	})
	return out, err
}

// Status returns every environment of a pipeline: what runs there, what holds it, what waits.
func (e *Engine) Status(ctx context.Context, pipelineName string) (*view.Status, error) {
	var out *view.Status
	err := e.store.View(ctx, func(tx store.Tx) error {
		rev, err := tx.Revision(ctx, pipelineName, 0)
		if err != nil {
			return notFound(err, "pipeline %q", pipelineName)
		}
		out = &view.Status{Pipeline: pipelineName, Revision: rev.Number}
		for _, env := range rev.Spec.Environments {
			es := view.Environment{Name: env.Name, After: env.After, AutoPromote: env.AutoPromote, Queued: []view.PromotionRef{}}
			if es.After == nil {
				es.After = []string{}
			}
			deps, err := tx.Deployments(ctx, pipelineName, env.Name, 1)
			if err != nil {
				return fmt.Errorf("load deployments of %s: %w", env.Name, err)
			}
			if len(deps) > 0 {
				es.Current = &view.ReleaseRef{ID: deps[0].ReleaseID, Version: deps[0].ReleaseVersion}
				at := deps[0].At
				es.DeployedAt = &at
			}
			active, err := tx.Promotions(ctx, store.PromotionFilter{Pipeline: pipelineName, Environment: env.Name, Active: true, Ascending: true})
			if err != nil {
				return fmt.Errorf("load promotions of %s: %w", env.Name, err)
			}
			for _, p := range active {
				ref := promotionRef(&p)
				if p.State == promotion.Queued {
					es.Queued = append(es.Queued, ref)
				} else {
					es.Active = &ref
				}
			}
			last, err := tx.Promotions(ctx, store.PromotionFilter{Pipeline: pipelineName, Environment: env.Name,
				States: terminalStates(), Limit: 1})
			if err != nil {
				return fmt.Errorf("load promotions of %s: %w", env.Name, err)
			}
			if len(last) > 0 {
				ref := promotionRef(&last[0])
				es.Last = &ref
			}
			out.Environments = append(out.Environments, es)
		}
		return nil
	})
	return out, err
}

// History lists a pipeline's promotions, newest first, optionally of one environment.
func (e *Engine) History(ctx context.Context, pipelineName, env string, limit int) ([]view.Promotion, error) {
	if _, err := e.Pipeline(ctx, pipelineName, 0); err != nil {
		return nil, err
	}
	return e.Promotions(ctx, store.PromotionFilter{Pipeline: pipelineName, Environment: env, Limit: limit})
}

// Audit returns audit events matching f.
func (e *Engine) Audit(ctx context.Context, f store.AuditFilter) ([]audit.Event, error) {
	var out []audit.Event
	err := e.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.AuditEvents(ctx, f)
		return err
	})
	return out, err
}

func terminalStates() []promotion.State {
	var out []promotion.State
	for _, s := range promotion.States {
		if s.Terminal() {
			out = append(out, s)
		}
	}
	return out
}

func promotionRef(p *promotion.Promotion) view.PromotionRef {
	return view.PromotionRef{ID: p.ID, State: p.State, Kind: p.Kind, Release: view.ReleaseRef{ID: p.ReleaseID, Version: p.ReleaseVersion}}
}

// promotionView builds the API's view of a promotion: every step of its plan
// with the state of its latest attempt, and, when full, its transitions.
func (e *Engine) promotionView(ctx context.Context, tx store.Tx, p *promotion.Promotion, full bool) (*view.Promotion, error) {
	v := &view.Promotion{
		ID: p.ID, TraceID: traceid.String(p.ID), Pipeline: p.Pipeline, Environment: p.Environment, Kind: p.Kind, State: p.State,
		Release: view.ReleaseRef{ID: p.ReleaseID, Version: p.ReleaseVersion}, Revision: p.Revision,
		Reason: p.Reason, Actor: p.Actor, Forced: p.Forced, Message: p.Message, Steps: []view.Step{},
		Expedited: p.Expedited, OverrideWindow: p.OverrideWindow, Gates: p.Gates, Review: p.Review,
		CreatedAt: p.CreatedAt, StartedAt: p.StartedAt, FinishedAt: p.FinishedAt, UpdatedAt: p.UpdatedAt,
		WakeAt: p.WakeAt, Version: p.Version,
	}
	if p.RollbackID != "" {
		v.RollbackTo = &view.ReleaseRef{ID: p.RollbackID, Version: p.RollbackVersion}
	}
	rev, err := e.revision(ctx, tx, p.Pipeline, p.Revision)
	if err != nil {
		return nil, err
	}
	env, _ := rev.Spec.Environment(p.Environment)
	runs, err := tx.StepRuns(ctx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("load step runs of %s: %w", p.ID, err)
	}
	type key struct {
		phase promotion.Phase
		index int
	}
	latest := map[key]promotion.StepRun{}
	attempts := map[key]int{}
	rollingBack := false
	for _, r := range runs {
		k := key{r.Phase, r.Index}
		attempts[k]++
		if cur, ok := latest[k]; !ok || r.Attempt >= cur.Attempt {
			latest[k] = r
		}
		if r.Phase == promotion.PhaseRollback {
			rollingBack = true
		}
	}
	add := func(ph promotion.Phase, steps []pipeline.Step) {
		for i, s := range steps {
			k := key{ph, i}
			vs := view.Step{Name: s.Name, Phase: ph, Index: i, State: "pending", Attempts: attempts[k]}
			if r, ok := latest[k]; ok {
				st := r.StartedAt
				vs.State, vs.ExitCode, vs.Error, vs.StartedAt, vs.FinishedAt = string(r.State), r.ExitCode, r.Error, &st, r.FinishedAt
			}
			v.Steps = append(v.Steps, vs)
		}
	}
	addItems := func(ph promotion.Phase, items []pipeline.CanaryItem) {
		for i, it := range items {
			if it.Step == nil {
				continue // a canary pause
			}
			k := key{ph, i}
			vs := view.Step{Name: it.Name, Phase: ph, Index: i, State: "pending", Attempts: attempts[k]}
			if r, ok := latest[k]; ok {
				st := r.StartedAt
				vs.State, vs.ExitCode, vs.Error, vs.StartedAt, vs.FinishedAt = string(r.State), r.ExitCode, r.Error, &st, r.FinishedAt
			}
			v.Steps = append(v.Steps, vs)
		}
	}
	add(promotion.PhasePreflight, preflight(env))
	add(promotion.PhaseDeploy, env.Steps)
	if items := canaryItems(env); len(items) > 0 {
		addItems(promotion.PhaseCanary, items)
		phases := env.Strategy.Canary.Phases
		v.Canary = &view.Canary{Phases: len(phases)}
		switch {
		case p.Cursor.Phase == promotion.PhaseCanary && p.Cursor.Index < len(items):
			v.Canary.Phase, v.Canary.Weight = items[p.Cursor.Index].Phase, items[p.Cursor.Index].Weight
		case p.State == promotion.Verifying || p.State == promotion.Succeeded:
			v.Canary.Phase, v.Canary.Weight = len(phases), phases[len(phases)-1].Weight
		}
	}
	add(promotion.PhaseVerify, env.Verify)
	if env.Watch != nil {
		add(promotion.PhaseWatch, []pipeline.Step{{Name: watchStepName}})
		var start *time.Time
		for _, r := range runs {
			if r.Phase == promotion.PhaseWatch && (start == nil || r.StartedAt.Before(*start)) {
				st := r.StartedAt
				start = &st
			}
		}
		if start != nil {
			v.Watch = &view.Watch{For: env.Watch.For.D().String(), StartedAt: *start, Until: start.Add(env.Watch.For.D()),
				Open: p.State == promotion.Watching || p.State == promotion.Paused && p.Cursor.Phase == promotion.PhaseWatch}
		}
	}
	if rollingBack || p.State == promotion.RollingBack || p.State == promotion.RolledBack || p.State == promotion.RollbackFailed {
		addItems(promotion.PhaseRollback, append(append(rollbackFirst(env), plain(env.Steps)...), plain(env.Verify)...))
	}
	if !full {
		return v, nil
	}
	if v.Approvals, err = tx.Approvals(ctx, p.ID); err != nil {
		return nil, fmt.Errorf("load approvals of %s: %w", p.ID, err)
	}
	if v.Alerts, err = promotionAlerts(ctx, tx, p.ID); err != nil {
		return nil, err
	}
	events, err := tx.AuditEvents(ctx, store.AuditFilter{PromotionID: p.ID, Action: "promotion.transition"})
	if err != nil {
		return nil, fmt.Errorf("load transitions of %s: %w", p.ID, err)
	}
	for _, ev := range events {
		var d struct {
			From promotion.State `json:"from"`
			To   promotion.State `json:"to"`
		}
		if err := json.Unmarshal(ev.Details, &d); err != nil {
			return nil, fmt.Errorf("decode transition %d: %w", ev.Seq, err)
		}
		v.Transitions = append(v.Transitions, view.Transition{From: d.From, To: d.To, Reason: ev.Reason, Actor: ev.Actor, At: ev.Time})
	}
	if v.Notifications, err = notificationViews(ctx, tx, p.ID); err != nil {
		return nil, err
	}
	return v, nil
}

func notFoundOrNil(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return notFound(err, format, args...)
}
