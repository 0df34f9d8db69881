package api

import (
	"context"
	"net/http"
	"time"

	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/stats"
)

// Stats is the part of the engine that computes promotion and delivery figures.
type Stats interface {
	Stats(ctx context.Context, req engine.StatsRequest) (*stats.Report, error)
}

// DefaultStatsWindow is the window of GET /api/v1/stats without a window parameter.
const DefaultStatsWindow = "30d"

// getStats computes the figures of the promotions that ended in the window.
func (s *server) getStats(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req := engine.StatsRequest{Pipeline: q.Get("pipeline"), Environment: q.Get("environment")}
	var err error
	window := q.Get("window")
	if window == "" {
		window = DefaultStatsWindow
	}
	if req.Window, err = statsDuration("window", window); err != nil {
		return err
	}
	if bucket := q.Get("bucket"); bucket != "" {
		if req.Bucket, err = statsDuration("bucket", bucket); err != nil {
			return err
		}
	}
	rep, err := s.svc.Stats(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

// statsDuration parses a positive duration with days ("30d", "12h").
func statsDuration(param, value string) (time.Duration, error) {
	d, err := pipeline.ParseDuration(value)
	if err != nil || d <= 0 {
		return 0, invalidf("query parameter %s=%q: want a positive duration such as 30d, 7d or 12h", param, value)
	}
	return d, nil
}
