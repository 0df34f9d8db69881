package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
)

// VerifyAudit has the server verify its whole audit chain. A broken chain is
// a report with OK false, not an error.
func (c *Client) VerifyAudit(ctx context.Context) (*audit.Report, error) {
	var out audit.Report
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/audit/verify", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuditPublicKey returns the public key that verifies the server's
// checkpoints.
func (c *Client) AuditPublicKey(ctx context.Context) (audit.PublicKey, error) {
	var out struct {
		PublicKey string `json:"publicKey"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/audit/pubkey", nil, nil, &out); err != nil {
		return nil, err
	}
	return audit.ParsePublicKey(out.PublicKey)
}

// CreateCheckpoint has the server sign the audit chain's head; created is
// false when the head had a checkpoint already, which is returned.
func (c *Client) CreateCheckpoint(ctx context.Context) (cp *audit.Checkpoint, created bool, err error) {
	var out audit.Checkpoint
	status, err := c.do(ctx, http.MethodPost, "/api/v1/audit/checkpoints", nil, nil, &out)
	if err != nil {
		return nil, false, err
	}
	return &out, status == http.StatusCreated, nil
}

// ExportQuery selects what an export holds: zero fields export the whole log.
type ExportQuery struct {
	// Since selects events at or after this time.
	Since time.Time
	// PromotionID selects the events of one promotion.
	PromotionID string
}

// ExportAudit streams an export of the audit log (JSON lines) to w.
func (c *Client) ExportAudit(ctx context.Context, q ExportQuery, w io.Writer) error {
	v := url.Values{}
	setNonZero(v, "promotion", q.PromotionID)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	target := c.base + "/api/v1/audit/export"
	if len(v) > 0 {
		target += "?" + v.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson, application/problem+json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.Actor != "" {
		req.Header.Set("X-Ferry-Actor", c.Actor)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET /api/v1/audit/export: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		return problemError(resp, data)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("GET /api/v1/audit/export: %w", err)
	}
	return nil
}
