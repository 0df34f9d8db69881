package analysis

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Provider answers the query of an analysis: a metrics system such as
// Prometheus, or any HTTP endpoint that returns JSON.
type Provider interface {
	// Query evaluates query as of at. A query that matches nothing returns
	// an empty Value, not an error.
	Query(ctx context.Context, query string, at time.Time) (Value, error)
}

var (
	_ Provider = Prometheus{}
	_ Provider = Web{}
)

// Value is the answer to one query: a scalar, a vector of samples, or a JSON
// document. At most one of its fields is set; none is set when the query
// found no data.
type Value struct {
	// Scalar is a single number, such as the result of a PromQL query
	// wrapped in scalar().
	Scalar *float64 `json:"scalar,omitempty"`
	// Vector holds one sample per matching series, such as the result of a
	// PromQL instant vector query.
	Vector []Sample `json:"vector,omitempty"`
	// JSON is a decoded JSON document (nil, bool, float64, string, []any or
	// map[string]any), from the Web provider.
	JSON any `json:"json,omitempty"`
}

// Sample is the value of one series at one time.
type Sample struct {
	Labels map[string]string `json:"labels"`
	Value  float64           `json:"value"`
}

// Empty reports whether v holds no data.
func (v Value) Empty() bool { return v.Scalar == nil && len(v.Vector) == 0 && v.JSON == nil }

// result returns v as the variable result of conditions sees it: a double for
// a scalar, a list of doubles for a vector, the document itself for JSON.
func (v Value) result() any {
	switch {
	case v.JSON != nil:
		return v.JSON
	case v.Scalar != nil:
		return *v.Scalar
	}
	out := make([]float64, len(v.Vector))
	for i, s := range v.Vector {
		out[i] = s.Value
	}
	return out
}

// String returns a short rendering of v for logs and messages.
func (v Value) String() string {
	switch {
	case v.Empty():
		return "no data"
	case v.JSON != nil:
		return fmt.Sprint(v.JSON)
	case v.Scalar != nil:
		return fmt.Sprint(*v.Scalar)
	}
	return fmt.Sprint(v.result())
}

const (
	// DefaultTimeout is how long a provider's request may take, response
	// included, when the provider has no Client of its own: 30 seconds.
	DefaultTimeout = 30 * time.Second
	// ResponseLimit is the largest response body a provider reads: 8 MiB.
	ResponseLimit = 8 << 20
	// snippetLimit is how much of an unexpected response body an error
	// message quotes.
	snippetLimit = 512
)

// defaultClient is the client of providers without one.
var defaultClient = &http.Client{Timeout: DefaultTimeout}

// readBody reads resp's body, up to ResponseLimit bytes.
func readBody(resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, ResponseLimit+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(b) > ResponseLimit {
		return nil, fmt.Errorf("response is larger than %d bytes", ResponseLimit)
	}
	return b, nil
}

// snippet returns the start of body for an error message.
func snippet(body []byte) string {
	if len(body) > snippetLimit {
		return string(body[:snippetLimit]) + "..."
	}
	return string(body)
}
