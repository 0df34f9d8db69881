package analysis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Prometheus queries a Prometheus server, or anything that serves its HTTP
// API (Thanos, Mimir, VictoriaMetrics), with instant and range queries.
type Prometheus struct {
	// Address is the server's base URL, such as http://prometheus:9090 or
	// https://example.com/prometheus; the API is under Address/api/v1.
	Address string
	// Client sends the requests. Defaults to a client that gives up after
	// DefaultTimeout.
	Client *http.Client
}

// APIError is an error the Prometheus API reported, such as a query that
// does not parse (Type "bad_data") or that timed out ("timeout").
type APIError struct {
	StatusCode int
	Type       string
	Message    string
}

// Error returns "prometheus: TYPE: MESSAGE (status CODE)".
func (e *APIError) Error() string {
	return fmt.Sprintf("prometheus: %s: %s (status %d)", e.Type, e.Message, e.StatusCode)
}

// Query runs query as an instant query at time at (the server's present when
// at is zero), with POST /api/v1/query. A vector result becomes
// Value.Vector, a scalar Value.Scalar; samples whose value is NaN, as when a
// ratio divides by zero, are left out, and a NaN scalar is no data. Range
// vectors and strings are errors.
func (p Prometheus) Query(ctx context.Context, query string, at time.Time) (Value, error) {
	form := url.Values{"query": {query}}
	if !at.IsZero() {
		form.Set("time", formatTime(at))
	}
	where, resultType, raw, err := p.post(ctx, "api/v1/query", form)
	if err != nil {
		return Value{}, err
	}
	v, err := decodeResult(resultType, raw)
	if err != nil {
		return Value{}, fmt.Errorf("prometheus: %s: %w", where, err)
	}
	return v, nil
}

// QueryRange runs query as a range query from start to end, one sample every
// step, with POST /api/v1/query_range, and returns the values in time order.
// When the query returns several series, their values at each timestamp are
// summed; samples whose value is NaN are left out, and a timestamp with only
// NaN samples has no value. Errors are those of Query.
func (p Prometheus) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]float64, error) {
	if step <= 0 {
		return nil, fmt.Errorf("prometheus: range query step %v: want a positive duration", step)
	}
	if end.Before(start) {
		return nil, fmt.Errorf("prometheus: range query ends (%s) before it starts (%s)",
			end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	form := url.Values{
		"query": {query},
		"start": {formatTime(start)},
		"end":   {formatTime(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	where, resultType, raw, err := p.post(ctx, "api/v1/query_range", form)
	if err != nil {
		return nil, err
	}
	values, err := decodeMatrix(resultType, raw)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %s: %w", where, err)
	}
	return values, nil
}

// formatTime writes t as the API's seconds since the epoch, to the millisecond.
func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// post sends form to the API endpoint at path under the address and returns
// a description of the request and the data of a successful answer.
func (p Prometheus) post(ctx context.Context, path string, form url.Values) (where, resultType string, result json.RawMessage, err error) {
	base, err := url.Parse(p.Address)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", "", nil, fmt.Errorf("prometheus: address %q is not an http or https URL", p.Address)
	}
	endpoint := base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", "", nil, fmt.Errorf("prometheus: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	client := p.Client
	if client == nil {
		client = defaultClient
	}
	where = "POST " + endpoint.Redacted()
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the method and URL
		}
		return "", "", nil, fmt.Errorf("prometheus: %s: %w", where, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return "", "", nil, fmt.Errorf("prometheus: %s: %w", where, err)
	}

	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status == "" {
		if resp.StatusCode != http.StatusOK {
			return "", "", nil, fmt.Errorf("prometheus: %s: status %d: %s", where, resp.StatusCode, snippet(body))
		}
		return "", "", nil, fmt.Errorf("prometheus: %s: response is not the query API's JSON: %s", where, snippet(body))
	}
	if r.Status != "success" || resp.StatusCode != http.StatusOK {
		e := &APIError{StatusCode: resp.StatusCode, Type: r.ErrorType, Message: r.Error}
		if e.Type == "" {
			e.Type = r.Status
		}
		return "", "", nil, e
	}
	return where, r.Data.ResultType, r.Data.Result, nil
}

// decodeMatrix turns the data.result of a successful range query into the
// per-timestamp sums of its series, in time order.
func decodeMatrix(resultType string, raw json.RawMessage) ([]float64, error) {
	if resultType != "matrix" {
		return nil, fmt.Errorf("the range query returns a %s, not a matrix", resultType)
	}
	var series []struct {
		Values [][2]json.RawMessage `json:"values"`
	}
	if err := json.Unmarshal(raw, &series); err != nil {
		return nil, fmt.Errorf("matrix result: %w", err)
	}
	sums := map[string]float64{}
	at := map[string]float64{}
	for _, s := range series {
		for _, point := range s.Values {
			f, err := sampleValue(point[1])
			if err != nil {
				return nil, fmt.Errorf("matrix result: %w", err)
			}
			if math.IsNaN(f) {
				continue
			}
			key := string(point[0])
			if _, ok := at[key]; !ok {
				var ts float64
				if err := json.Unmarshal(point[0], &ts); err != nil {
					return nil, fmt.Errorf("matrix result: timestamp %s is not a number", point[0])
				}
				at[key] = ts
			}
			sums[key] += f
		}
	}
	keys := make([]string, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(at[a], at[b]) })
	values := make([]float64, len(keys))
	for i, k := range keys {
		values[i] = sums[k]
	}
	return values, nil
}

// decodeResult turns the data.result of a successful query into a Value.
func decodeResult(resultType string, raw json.RawMessage) (Value, error) {
	switch resultType {
	case "scalar":
		var point [2]json.RawMessage
		if err := json.Unmarshal(raw, &point); err != nil {
			return Value{}, fmt.Errorf("scalar result: %w", err)
		}
		f, err := sampleValue(point[1])
		if err != nil {
			return Value{}, fmt.Errorf("scalar result: %w", err)
		}
		if math.IsNaN(f) {
			return Value{}, nil
		}
		return Value{Scalar: &f}, nil
	case "vector":
		var series []struct {
			Metric map[string]string  `json:"metric"`
			Value  [2]json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(raw, &series); err != nil {
			return Value{}, fmt.Errorf("vector result: %w", err)
		}
		var v Value
		for _, s := range series {
			f, err := sampleValue(s.Value[1])
			if err != nil {
				return Value{}, fmt.Errorf("vector result: %w", err)
			}
			if math.IsNaN(f) {
				continue
			}
			labels := s.Metric
			if labels == nil {
				labels = map[string]string{}
			}
			v.Vector = append(v.Vector, Sample{Labels: labels, Value: f})
		}
		return v, nil
	case "matrix":
		return Value{}, errors.New("the query returns a range vector; an analysis needs an instant vector or a scalar")
	}
	return Value{}, fmt.Errorf("the query returns a %s; an analysis needs an instant vector or a scalar", resultType)
}

// sampleValue parses the value of a [timestamp, "value"] pair, which the API
// writes as a string so that it can say NaN and +Inf.
func sampleValue(raw json.RawMessage) (float64, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("sample value %s is not a string", raw)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q is not a number", s)
	}
	return f, nil
}
