package web

import (
	"context"
	"errors"
	"time"

	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/stats"
)

// StatsEngine computes the figures of package stats; the engine implements it.
type StatsEngine interface {
	Stats(ctx context.Context, req engine.StatsRequest) (*stats.Report, error)
}

// EngineStats is the executive view's StatsSource: the same figures, with
// the same definitions (docs/stats.md), as ferry stats and GET /api/v1/stats.
type EngineStats struct {
	Engine StatsEngine
}

var _ StatsSource = EngineStats{}

const day = 24 * time.Hour

// Stats returns a pipeline's figures over [q.Since, q.Until), with a
// series of one bucket a day.
func (s EngineStats) Stats(ctx context.Context, q StatsQuery) (*stats.Report, error) {
	if !q.Until.After(q.Since) {
		return nil, errors.New("stats: the period must end after it starts")
	}
	return s.Engine.Stats(ctx, engine.StatsRequest{Pipeline: q.Pipeline, Window: q.Until.Sub(q.Since), Until: q.Until, Bucket: day})
}
