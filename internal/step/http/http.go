// Package http runs steps and checks that make one HTTP request and expect a
// status: a deploy webhook, a smoke test, a health endpoint.
package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/step"
)

const (
	// DefaultTimeout is how long a request may take, response body included,
	// unless http.timeout says otherwise: 30 seconds.
	DefaultTimeout = 30 * time.Second
	// BodyLimit is how much of the response body goes to the step's output: 4 KiB.
	BodyLimit = 4 << 10
	// UserAgent is the User-Agent of Ferry's requests unless the step sets one.
	UserAgent = "ferry"
)

// Driver runs http steps. The zero value is ready to use.
type Driver struct {
	// Client sends the requests. Defaults to a client with
	// http.DefaultTransport. Redirects are followed as Client does, except
	// when the step expects a 3xx status: then the redirect is the answer.
	Client *http.Client
}

var _ step.Driver = Driver{}

// Run makes the step's request: http.method (default GET) to http.url with
// http.headers and http.body, within http.timeout (default 30s). The request
// also carries Idempotency-Key (req.IdempotencyKey) and traceparent
// (req.TraceParent) unless http.headers sets them. The step succeeds when the
// status is http.expectStatus, or any 2xx when that is 0.
//
// Run writes one line to req.Output — the method, URL, status and duration,
// or the error — then up to BodyLimit bytes of the response body. A failure's
// message reads "GET http://127.0.0.1:8081/healthz: status 503, want 200",
// "...: timed out after 30s" or "...: " and the transport's error. When ctx
// ends first, the Result is Interrupted. Passwords in URLs are never shown.
func (d Driver) Run(ctx context.Context, req step.Request) step.Result {
	h := req.Step.HTTP
	if h == nil {
		return step.Result{Message: fmt.Sprintf("step %q has no http", req.Step.Name)}
	}
	out := req.Output
	if out == nil {
		out = io.Discard
	}
	method := strings.ToUpper(h.Method)
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.Parse(h.URL)
	if err != nil {
		return step.Result{Message: fmt.Sprintf("url %q: %v", h.URL, err)}
	}
	where := method + " " + u.Redacted()
	timeout := h.Timeout.D()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if ctx.Err() != nil {
		return step.Result{Interrupted: true, Message: "interrupted before start"}
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var body io.Reader
	if h.Body != "" {
		body = strings.NewReader(h.Body)
	}
	hr, err := http.NewRequestWithContext(rctx, method, h.URL, body)
	if err != nil {
		return step.Result{Message: fmt.Sprintf("%s: %v", where, err)}
	}
	hr.Header.Set("User-Agent", UserAgent)
	if req.IdempotencyKey != "" {
		hr.Header.Set("Idempotency-Key", req.IdempotencyKey)
	}
	if req.TraceParent != "" {
		hr.Header.Set("Traceparent", req.TraceParent)
	}
	for k, v := range h.Headers {
		if strings.EqualFold(k, "Host") {
			hr.Host = v
			continue
		}
		hr.Header.Set(k, v)
	}

	client := d.Client
	if client == nil {
		client = &http.Client{}
	}
	if h.ExpectStatus >= 300 && h.ExpectStatus < 400 {
		c := *client
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		client = &c
	}

	began := time.Now()
	resp, err := client.Do(hr)
	if err != nil {
		var res step.Result
		switch {
		case ctx.Err() != nil:
			res = step.Result{Interrupted: true, Message: "interrupted"}
		case errors.Is(rctx.Err(), context.DeadlineExceeded):
			res = step.Result{Message: fmt.Sprintf("%s: timed out after %v", where, timeout)}
		default:
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // its text repeats the method and URL
			}
			res = step.Result{Message: fmt.Sprintf("%s: %v", where, err)}
		}
		fmt.Fprintln(out, res.Message)
		return res
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, BodyLimit+1))
	// Read a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))

	fmt.Fprintf(out, "%s: %s (%v)\n", where, resp.Status, time.Since(began).Round(time.Millisecond))
	if len(b) > 0 {
		truncated := len(b) > BodyLimit
		if truncated {
			b = b[:BodyLimit]
		}
		_, _ = out.Write(b)
		if b[len(b)-1] != '\n' {
			fmt.Fprintln(out)
		}
		if truncated {
			fmt.Fprintf(out, "[ferry: response body truncated after %d bytes]\n", BodyLimit)
		}
	}

	code := resp.StatusCode
	switch {
	case h.ExpectStatus == 0 && code >= 200 && code < 300, code == h.ExpectStatus:
		return step.Result{OK: true}
	case h.ExpectStatus == 0:
		return step.Result{Message: fmt.Sprintf("%s: status %d, want 2xx", where, code)}
	default:
		return step.Result{Message: fmt.Sprintf("%s: status %d, want %d", where, code, h.ExpectStatus)}
	}
}
