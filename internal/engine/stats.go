package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/stats"
	"github.com/ferry-dev/ferry/internal/store"
)

// Window limits of Stats.
const (
	// DefaultStatsWindow is the window of Stats when the request gives none: 30 days.
	DefaultStatsWindow = 30 * 24 * time.Hour
	// MaxStatsWindow is the longest window Stats accepts: 366 days.
	MaxStatsWindow = 366 * 24 * time.Hour
)

// StatsRequest selects the promotions whose figures Stats computes.
type StatsRequest struct {
	// Pipeline, when set, counts only that pipeline's promotions.
	Pipeline string
	// Environment, when set, counts only promotions into environments of
	// that name, and makes them the production environments.
	Environment string
	// Window is how far back from now the figures look. Defaults to
	// DefaultStatsWindow.
	Window time.Duration
	// Bucket, when set, adds a series of figures per bucket of this length.
	Bucket time.Duration
	// Until, when set, ends the window there instead of now (a dashboard
	// aligns its days to midnight).
	Until time.Time
}

// Stats computes the promotion and delivery figures of the promotions that
// ended in the window (see package stats and docs/stats.md). Production
// environments are the environments no other environment of their
// pipeline's revision lists in after (the last ones of the pipeline), or
// the environment the request names.
func (e *Engine) Stats(ctx context.Context, req StatsRequest) (*stats.Report, error) {
	if req.Window == 0 {
		req.Window = DefaultStatsWindow
	}
	switch {
	case req.Window < 0:
		return nil, errorf(CodeInvalid, "window %s: want a positive duration", req.Window)
	case req.Window > MaxStatsWindow:
		return nil, errorf(CodeInvalid, "window %s is longer than the longest allowed, 366d", req.Window)
	}
	now := e.cfg.Now().UTC()
	if !req.Until.IsZero() {
		now = req.Until.UTC()
	}
	q := stats.Query{From: now.Add(-req.Window), To: now, Bucket: req.Bucket}
	var records []stats.Record
	production := []string{}
	err := e.store.View(ctx, func(tx store.Tx) error {
		var err error
		if production, err = e.productionEnvironments(ctx, tx, req); err != nil {
			return err
		}
		records, err = e.statsRecords(ctx, tx, req, q)
		return err
	})
	if err != nil {
		return nil, err
	}
	rep, err := stats.Compute(records, q)
	if err != nil {
		return nil, &Error{Code: CodeInvalid, Message: err.Error()}
	}
	rep.Pipeline, rep.Environment, rep.Production = req.Pipeline, req.Environment, production
	return rep, nil
}

// productionEnvironments lists, as "pipeline/environment", the environments
// the request counts as production in the latest revisions; it checks that
// the pipeline and environment named exist.
func (e *Engine) productionEnvironments(ctx context.Context, tx store.Tx, req StatsRequest) ([]string, error) {
	var revs []pipeline.Revision
	if req.Pipeline != "" {
		rev, err := tx.Revision(ctx, req.Pipeline, 0)
		if err != nil {
			return nil, notFound(err, "pipeline %q", req.Pipeline)
		}
		if _, ok := rev.Spec.Environment(req.Environment); req.Environment != "" && !ok {
			return nil, errorf(CodeNotFound, "environment %q is not in pipeline %s (environments: %s)",
				req.Environment, req.Pipeline, envNames(rev.Spec))
		}
		revs = []pipeline.Revision{*rev}
	} else {
		var err error
		if revs, err = tx.Pipelines(ctx); err != nil {
			return nil, fmt.Errorf("list pipelines: %w", err)
		}
	}
	out := []string{}
	for _, rev := range revs {
		for _, env := range rev.Spec.Environments {
			if req.Environment == env.Name || req.Environment == "" && isProduction(rev.Spec, env.Name) {
				out = append(out, rev.Pipeline+"/"+env.Name)
			}
		}
	}
	return out, nil
}

// isProduction reports whether no environment of spec runs after env.
func isProduction(spec pipeline.Spec, env string) bool {
	for _, other := range spec.Environments {
		if slices.Contains(other.After, env) {
			return false
		}
	}
	return true
}

// statsRecords loads every promotion that ended in q's window with its
// audit events, step attempts, approvals and release.
func (e *Engine) statsRecords(ctx context.Context, tx store.Tx, req StatsRequest, q stats.Query) ([]stats.Record, error) {
	ps, err := tx.Promotions(ctx, store.PromotionFilter{Pipeline: req.Pipeline, Environment: req.Environment,
		FinishedSince: q.From, FinishedBefore: q.To, Ascending: true})
	if err != nil {
		return nil, fmt.Errorf("list promotions ended since %s: %w", q.From.Format(time.RFC3339), err)
	}
	records := make([]stats.Record, len(ps))
	for i, p := range ps {
		r := &records[i]
		r.Promotion = p
		if r.Events, err = tx.AuditEvents(ctx, store.AuditFilter{PromotionID: p.ID}); err != nil {
			return nil, fmt.Errorf("load audit events of %s: %w", p.ID, err)
		}
		if r.Steps, err = tx.StepRuns(ctx, p.ID); err != nil {
			return nil, fmt.Errorf("load steps of %s: %w", p.ID, err)
		}
		if r.Approvals, err = tx.Approvals(ctx, p.ID); err != nil {
			return nil, fmt.Errorf("load approvals of %s: %w", p.ID, err)
		}
		if r.Release, err = e.releaseByID(ctx, tx, p.ReleaseID); err != nil {
			return nil, err
		}
		if req.Environment != "" {
			r.Production = true
			continue
		}
		rev, err := e.revision(ctx, tx, p.Pipeline, p.Revision)
		if err != nil {
			return nil, err
		}
		r.Production = isProduction(rev.Spec, p.Environment)
	}
	return records, nil
}
