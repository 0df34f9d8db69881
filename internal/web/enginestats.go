package web

import (
	"context"
	"errors"
	"math"
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

// Stats returns a pipeline's figures over [q.Since, q.Until), with one
// bucket a day.
func (s EngineStats) Stats(ctx context.Context, q StatsQuery) (StatsReport, error) {
	if !q.Until.After(q.Since) {
		return StatsReport{}, errors.New("stats: the period must end after it starts")
	}
	rep, err := s.Engine.Stats(ctx, engine.StatsRequest{Pipeline: q.Pipeline, Window: q.Until.Sub(q.Since), Until: q.Until, Bucket: day})
	if err != nil {
		return StatsReport{}, err
	}
	out := StatsReport{Pipeline: q.Pipeline, Production: rep.Production, Total: figures(rep.Figures)}
	for _, b := range rep.Series {
		out.Days = append(out.Days, StatsDay{Day: b.From, StatsFigures: figures(b.Figures)})
	}
	return out, nil
}

// figures converts the figures the executive view charts.
func figures(f stats.Figures) StatsFigures {
	return StatsFigures{
		Promotions:          f.Promotions,
		SuccessRate:         f.SuccessRate,
		MeanTimeToPromote:   seconds(f.MeanTimeToPromoteSeconds),
		RollbackRate:        f.RollbackRate,
		ApprovalLatency:     seconds(f.ApprovalLatencySeconds),
		DeploymentFrequency: f.DeploymentFrequencyPerDay,
		LeadTime:            seconds(f.LeadTimeForChangesSeconds),
		ChangeFailureRate:   f.ChangeFailureRate,
		TimeToRestore:       seconds(f.TimeToRestoreSeconds),
	}
}

func seconds(s *float64) *time.Duration {
	if s == nil {
		return nil
	}
	// Round, not truncate: the figure was a whole number of nanoseconds.
	d := time.Duration(math.Round(*s * float64(time.Second)))
	return &d
}
