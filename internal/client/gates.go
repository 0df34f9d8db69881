package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ferry-dev/ferry/internal/view"
)

// PlanQuery asks what would happen if a release were promoted now.
type PlanQuery struct {
	Pipeline    string
	Release     string
	Environment string
	// Expedite plans a hotfix promotion that skips soak.
	Expedite bool
	// OverrideWindow plans a break-glass promotion that ignores deployment
	// windows and freezes.
	OverrideWindow bool
	// Reason is the reason the promotion would carry.
	Reason string
}

// comment is the body of the approve, reject and review requests.
type comment struct {
	Comment string `json:"comment,omitempty"`
}

// Approve records the caller's approval of a promotion awaiting approval;
// comment may be empty.
func (c *Client) Approve(ctx context.Context, id, text string) (*view.Promotion, error) {
	return c.promotion(ctx, http.MethodPost, "/api/v1/promotions/"+url.PathEscape(id)+"/approve", nil, comment{text})
}

// Reject records the caller's rejection of a promotion awaiting approval,
// which ends it; the server requires a comment.
func (c *Client) Reject(ctx context.Context, id, text string) (*view.Promotion, error) {
	return c.promotion(ctx, http.MethodPost, "/api/v1/promotions/"+url.PathEscape(id)+"/reject", nil, comment{text})
}

// Approvals lists the promotions awaiting approval that the caller may
// decide on.
func (c *Client) Approvals(ctx context.Context) ([]view.Promotion, error) {
	var out []view.Promotion
	_, err := c.do(ctx, http.MethodGet, "/api/v1/approvals", nil, nil, &out)
	return out, err
}

// Plan evaluates an environment's gates for a release without promoting it.
func (c *Client) Plan(ctx context.Context, q PlanQuery) (*view.Plan, error) {
	v := url.Values{}
	v.Set("pipeline", q.Pipeline)
	v.Set("release", q.Release)
	v.Set("environment", q.Environment)
	if q.Expedite {
		v.Set("expedite", "true")
	}
	if q.OverrideWindow {
		v.Set("overrideWindow", "true")
	}
	setNonZero(v, "reason", q.Reason)
	var out view.Plan
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/plan", v, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Reviews lists the expedited and break-glass promotions nobody has
// reviewed yet.
func (c *Client) Reviews(ctx context.Context) ([]view.Promotion, error) {
	var out []view.Promotion
	_, err := c.do(ctx, http.MethodGet, "/api/v1/reviews", nil, nil, &out)
	return out, err
}

// Review records the caller's after-the-fact review of an expedited or
// break-glass promotion; the server requires a comment.
func (c *Client) Review(ctx context.Context, id, text string) (*view.Promotion, error) {
	return c.promotion(ctx, http.MethodPost, "/api/v1/promotions/"+url.PathEscape(id)+"/review", nil, comment{text})
}
