package web

import (
	"context"
	"time"

	"github.com/ferry-dev/ferry/internal/stats"
)

// StatsSource computes the delivery figures the executive view charts.
type StatsSource interface {
	Stats(ctx context.Context, q StatsQuery) (*stats.Report, error)
}

// StatsQuery asks for one pipeline's figures over [Since, Until), by day.
type StatsQuery struct {
	Pipeline string
	Since    time.Time
	Until    time.Time
}
