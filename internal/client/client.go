// Package client is the Go client of Ferry's HTTP API. The CLI is built on it.
//
// Every POST carries a fresh Idempotency-Key, kept across the client's own
// retries after connection errors, so that a retried request takes effect at
// most once. Problem responses come back as *Error.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/view"
)

// Defaults of a Client made by New.
const (
	// DefaultRetries is how many times a request is sent again after a connection error.
	DefaultRetries = 2
	// DefaultRetryBackoff is the wait before the first retry; it doubles for each further one.
	DefaultRetryBackoff = 250 * time.Millisecond
	// DefaultUserAgent is the User-Agent of requests.
	DefaultUserAgent = "ferry-client"
)

// maxResponseBytes bounds the size of a response body the client reads.
const maxResponseBytes = 64 << 20

// Client calls one Ferry server. Its fields may be set before first use.
type Client struct {
	// Token is the API token sent as "Authorization: Bearer". Servers need
	// one unless they run with --auth=off.
	Token string
	// Actor is sent as X-Ferry-Actor: who makes the requests, for a server
	// running with --auth=off (others record the token's user). When empty
	// the header is not sent.
	Actor string
	// UserAgent is sent as User-Agent. Defaults to DefaultUserAgent.
	UserAgent string
	// Retries is how many times a request is sent again after a connection
	// error (refused, reset, closed early). POSTs keep their Idempotency-Key.
	// Defaults to DefaultRetries.
	Retries int
	// RetryBackoff is the wait before the first retry; it doubles for each
	// further one. Defaults to DefaultRetryBackoff.
	RetryBackoff time.Duration

	base string
	hc   *http.Client
}

// New returns a client of the server at baseURL ("http://127.0.0.1:7420").
// A nil hc means http.DefaultClient. Long-polls (WaitPromotion) last up to a
// minute, so hc should have no Timeout shorter than that; use contexts instead.
func New(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{
		UserAgent:    DefaultUserAgent,
		Retries:      DefaultRetries,
		RetryBackoff: DefaultRetryBackoff,
		base:         strings.TrimRight(baseURL, "/"),
		hc:           hc,
	}
}

// Error is a problem response of the API (RFC 9457).
type Error struct {
	// Status is the HTTP status of the response.
	Status int
	// Problem is the problem detail the server sent.
	Problem Problem
}

// Problem is an RFC 9457 problem detail as Ferry's API sends it.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
	// Code says what went wrong: invalid, not_found, conflict, precondition,
	// unavailable, unauthenticated, forbidden, route_not_found, method_not_allowed, too_large,
	// idempotency_mismatch or internal.
	Code string `json:"code"`
	// Errors lists the individual problems, such as each validation error of a pipeline.
	Errors []pipeline.Problem `json:"errors,omitempty"`
	// Details holds other facts about the problem, as a JSON object.
	Details json.RawMessage `json:"details,omitempty"`
}

// Error returns the problem's detail, followed by each listed problem on a
// line of its own ("file:line:column: field: message").
func (e *Error) Error() string {
	msg := e.Problem.Detail
	if msg == "" {
		msg = e.Problem.Title
	}
	if msg == "" {
		msg = fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	var b strings.Builder
	b.WriteString(msg)
	for _, p := range e.Problem.Errors {
		line := p.String()
		if strings.Contains(msg, line) {
			continue // the detail already says it
		}
		b.WriteString("\n")
		b.WriteString(line)
	}
	return b.String()
}

// Code returns the problem code of err when it is an *Error, or "".
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Problem.Code
	}
	return ""
}

// PromotionQuery selects promotions. Zero fields match everything.
type PromotionQuery struct {
	Pipeline    string
	Environment string
	// States selects promotions in any of these states.
	States []promotion.State
	// Active selects promotions that have not ended.
	Active bool
	// Release selects promotions of this release version; it needs Pipeline.
	Release string
	// Limit caps the number returned; zero means the server's default.
	Limit int
}

// AuditQuery selects audit events. Zero fields match everything.
type AuditQuery struct {
	PromotionID string
	Actor       string
	Action      string
	// Since selects events at or after this time.
	Since time.Time
	// Until selects events before this time.
	Until time.Time
	// After selects events with a sequence number above it, for paging.
	After int64
	// Limit caps the number returned; zero means the server's default.
	Limit int
}

// Health returns nil when the server answers its liveness check.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
	return err
}

// Ready returns nil when the server reports itself ready to serve.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
	return err
}

// Apply sends a pipeline's YAML; filename names it in error messages.
// Result.Created is false when the source equalled the latest revision.
func (c *Client) Apply(ctx context.Context, filename string, source []byte) (*view.ApplyResult, error) {
	var out view.ApplyResult
	body := struct {
		Filename string `json:"filename"`
		Source   string `json:"source"`
	}{filename, string(source)}
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/pipelines", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Pipelines lists the pipelines with their latest revision.
func (c *Client) Pipelines(ctx context.Context) ([]view.Pipeline, error) {
	var out []view.Pipeline
	_, err := c.do(ctx, http.MethodGet, "/api/v1/pipelines", nil, nil, &out)
	return out, err
}

// Pipeline returns a revision of a pipeline; revision 0 means the latest.
func (c *Client) Pipeline(ctx context.Context, name string, revision int) (*pipeline.Revision, error) {
	q := url.Values{}
	if revision > 0 {
		q.Set("revision", strconv.Itoa(revision))
	}
	var out pipeline.Revision
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/pipelines/"+url.PathEscape(name), q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Status returns the status of every environment of a pipeline.
func (c *Client) Status(ctx context.Context, pipelineName string) (*view.Status, error) {
	var out view.Status
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/pipelines/"+url.PathEscape(pipelineName)+"/status", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// History lists a pipeline's promotions, newest first; env "" means every
// environment and limit 0 the server's default.
func (c *Client) History(ctx context.Context, pipelineName, env string, limit int) ([]view.Promotion, error) {
	q := url.Values{}
	setNonZero(q, "environment", env)
	setLimit(q, limit)
	var out []view.Promotion
	_, err := c.do(ctx, http.MethodGet, "/api/v1/pipelines/"+url.PathEscape(pipelineName)+"/history", q, nil, &out)
	return out, err
}

// CreateRelease creates r in r.Pipeline. It returns the stored release and
// whether it was created now (false: an identical release existed). The same
// version with other content is an *Error with status 409.
func (c *Client) CreateRelease(ctx context.Context, r release.Release) (*release.Release, bool, error) {
	body := struct {
		Version    string             `json:"version"`
		Artifacts  []release.Artifact `json:"artifacts"`
		Commit     string             `json:"commit,omitempty"`
		CommitTime *time.Time         `json:"commitTime,omitempty"`
		Source     string             `json:"source,omitempty"`
		BuildURL   string             `json:"buildUrl,omitempty"`
		Labels     map[string]string  `json:"labels,omitempty"`
	}{r.Version, r.Artifacts, r.Commit, r.CommitTime, r.Source, r.BuildURL, r.Labels}
	var out release.Release
	status, err := c.do(ctx, http.MethodPost, "/api/v1/pipelines/"+url.PathEscape(r.Pipeline)+"/releases", nil, body, &out)
	if err != nil {
		return nil, false, err
	}
	return &out, status == http.StatusCreated, nil
}

// Releases lists a pipeline's releases, newest first; limit 0 means the server's default.
func (c *Client) Releases(ctx context.Context, pipelineName string, limit int) ([]release.Release, error) {
	q := url.Values{}
	setLimit(q, limit)
	var out []release.Release
	_, err := c.do(ctx, http.MethodGet, "/api/v1/pipelines/"+url.PathEscape(pipelineName)+"/releases", q, nil, &out)
	return out, err
}

// Release returns a pipeline's release by version.
func (c *Client) Release(ctx context.Context, pipelineName, version string) (*release.Release, error) {
	var out release.Release
	path := "/api/v1/pipelines/" + url.PathEscape(pipelineName) + "/releases/" + url.PathEscape(version)
	if _, err := c.do(ctx, http.MethodGet, path, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Promote asks for a release to be promoted into an environment.
func (c *Client) Promote(ctx context.Context, req engine.PromoteRequest) (*view.Promotion, error) {
	return c.promotion(ctx, http.MethodPost, "/api/v1/promotions", nil, req)
}

// Rollback asks for an environment to be rolled back.
func (c *Client) Rollback(ctx context.Context, req engine.RollbackRequest) (*view.Promotion, error) {
	return c.promotion(ctx, http.MethodPost, "/api/v1/rollbacks", nil, req)
}

// Abort aborts a promotion that has not ended.
func (c *Client) Abort(ctx context.Context, id, reason string) (*view.Promotion, error) {
	body := struct {
		Reason string `json:"reason"`
	}{reason}
	return c.promotion(ctx, http.MethodPost, "/api/v1/promotions/"+url.PathEscape(id)+"/abort", nil, body)
}

// Resume continues a promotion paused by an inconclusive check.
func (c *Client) Resume(ctx context.Context, id, reason string) (*view.Promotion, error) {
	body := struct {
		Reason string `json:"reason"`
	}{reason}
	return c.promotion(ctx, http.MethodPost, "/api/v1/promotions/"+url.PathEscape(id)+"/resume", nil, body)
}

// Promotion returns a promotion.
func (c *Client) Promotion(ctx context.Context, id string) (*view.Promotion, error) {
	return c.promotion(ctx, http.MethodGet, "/api/v1/promotions/"+url.PathEscape(id), nil, nil)
}

// WaitPromotion returns the promotion once its version exceeds afterVersion,
// or as it is when timeout passes first (the server caps it at a minute;
// zero means the server's default of 30 seconds).
func (c *Client) WaitPromotion(ctx context.Context, id string, afterVersion int64, timeout time.Duration) (*view.Promotion, error) {
	q := url.Values{"waitVersion": {strconv.FormatInt(afterVersion, 10)}}
	if timeout > 0 {
		q.Set("timeout", timeout.String())
	}
	return c.promotion(ctx, http.MethodGet, "/api/v1/promotions/"+url.PathEscape(id), q, nil)
}

// Promotions lists promotions matching q, newest first.
func (c *Client) Promotions(ctx context.Context, q PromotionQuery) ([]view.Promotion, error) {
	v := url.Values{}
	setNonZero(v, "pipeline", q.Pipeline)
	setNonZero(v, "environment", q.Environment)
	for _, st := range q.States {
		v.Add("state", string(st))
	}
	if q.Active {
		v.Set("active", "true")
	}
	setNonZero(v, "release", q.Release)
	setLimit(v, q.Limit)
	var out []view.Promotion
	_, err := c.do(ctx, http.MethodGet, "/api/v1/promotions", v, nil, &out)
	return out, err
}

// Logs returns the output of a promotion's steps in order.
func (c *Client) Logs(ctx context.Context, id string) ([]view.LogChunk, error) {
	var out []view.LogChunk
	_, err := c.do(ctx, http.MethodGet, "/api/v1/promotions/"+url.PathEscape(id)+"/logs", nil, nil, &out)
	return out, err
}

// Audit lists audit events matching q in sequence order.
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]audit.Event, error) {
	v := url.Values{}
	setNonZero(v, "promotion", q.PromotionID)
	setNonZero(v, "actor", q.Actor)
	setNonZero(v, "action", q.Action)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	setLimit(v, q.Limit)
	var out []audit.Event
	_, err := c.do(ctx, http.MethodGet, "/api/v1/audit", v, nil, &out)
	return out, err
}

// Cluster lists the live replicas sharing the server's store, by ID, each
// with the promotions it drives.
func (c *Client) Cluster(ctx context.Context) ([]view.Replica, error) {
	var out []view.Replica
	_, err := c.do(ctx, http.MethodGet, "/api/v1/cluster", nil, nil, &out)
	return out, err
}

func (c *Client) promotion(ctx context.Context, method, path string, q url.Values, body any) (*view.Promotion, error) {
	var out view.Promotion
	if _, err := c.do(ctx, method, path, q, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func setNonZero(q url.Values, name, value string) {
	if value != "" {
		q.Set(name, value)
	}
}

func setLimit(q url.Values, limit int) {
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
}

// do sends one request, retrying after connection errors, and decodes a
// successful JSON response into out. It returns the response status.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) (int, error) {
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
	}
	var key string
	if method == http.MethodPost {
		key = uuid.NewString()
	}
	backoff := c.RetryBackoff
	if backoff <= 0 {
		backoff = DefaultRetryBackoff
	}
	for attempt := 0; ; attempt++ {
		status, err := c.send(ctx, method, target, body, key, out)
		if err == nil || attempt >= c.Retries || !retryable(ctx, err) {
			if err != nil {
				var apiErr *Error
				if errors.As(err, &apiErr) {
					return status, apiErr
				}
				return status, fmt.Errorf("%s %s: %w", method, path, err)
			}
			return status, nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("%s %s: %w", method, path, err)
		case <-t.C:
		}
		backoff *= 2
	}
}

// send makes one attempt of a request.
func (c *Client) send(ctx context.Context, method, target string, body []byte, key string, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.Actor != "" {
		req.Header.Set("X-Ferry-Actor", c.Actor)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 400 {
		return resp.StatusCode, problemError(resp, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode response: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// problemError turns an error response into an *Error, also when it is not a
// problem detail (a proxy's HTML page, say).
func problemError(resp *http.Response, data []byte) *Error {
	e := &Error{Status: resp.StatusCode}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if strings.HasSuffix(mt, "json") {
		var raw struct {
			Problem
			Errors json.RawMessage `json:"errors,omitempty"`
		}
		if err := json.Unmarshal(data, &raw); err == nil {
			e.Problem = raw.Problem
			if len(raw.Errors) > 0 {
				// Errors that are not validation problems are left out.
				_ = json.Unmarshal(raw.Errors, &e.Problem.Errors)
			}
		}
	}
	if e.Problem.Status == 0 {
		e.Problem.Status = resp.StatusCode
	}
	if e.Problem.Title == "" {
		e.Problem.Title = http.StatusText(resp.StatusCode)
	}
	if e.Problem.Detail == "" && !strings.HasSuffix(mt, "json") {
		text := strings.TrimSpace(string(data))
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		e.Problem.Detail = fmt.Sprintf("HTTP %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), text)
	}
	return e
}

// retryable reports whether err is a connection error worth another attempt.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return false
	}
	var opErr *net.OpError
	var urlErr *url.Error
	switch {
	case errors.As(err, &opErr),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return true
	case errors.As(err, &urlErr) && urlErr.Timeout():
		return true
	}
	return false
}
