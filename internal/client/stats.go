package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ferry-dev/ferry/internal/stats"
)

// StatsQuery selects the promotions whose figures Stats asks for. Empty
// fields are left to the server: every pipeline and environment, a window
// of 30 days, no series.
type StatsQuery struct {
	Pipeline    string
	Environment string
	// Window and Bucket are durations such as "30d" or "12h".
	Window string
	Bucket string
}

// Stats returns the promotion and delivery figures of the promotions that
// ended in the window.
func (c *Client) Stats(ctx context.Context, q StatsQuery) (*stats.Report, error) {
	v := url.Values{}
	setNonZero(v, "pipeline", q.Pipeline)
	setNonZero(v, "environment", q.Environment)
	setNonZero(v, "window", q.Window)
	setNonZero(v, "bucket", q.Bucket)
	var out stats.Report
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/stats", v, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
