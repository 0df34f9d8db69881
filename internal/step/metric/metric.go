// Package metric runs metric checks: steps whose prometheus, web or canary
// is set.
// A check measures a query (or a JSON endpoint) repeatedly with the analysis
// package and succeeds, fails or ends inconclusive by its conditions and
// limits.
//
// The driver writes a header line, one line per measurement and a summary
// line to the step's output:
//
//	measuring sum(rate(errors_total{env="prod"}[5m])) every 1m0s, 10 times
//	measurement {"at":"2025-01-02T03:04:05Z","value":0.01,"verdict":"successful"}
//	...
//	successful: 10 of 10 measurements successful
//
// ParseMeasurement reads a measurement line back.
package metric

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/step"
)

// Prefix starts every measurement line of a check's output.
const Prefix = "measurement "

// Driver runs Prometheus, web and canary checks.
type Driver struct {
	// Client makes the queries; nil means a new client. The check's timeout
	// bounds each query either way.
	Client *http.Client
	// Clock paces the measurements; nil means the real clock.
	Clock analysis.Clock
}

var _ step.Driver = Driver{}

// Measurement is one measurement as a check's output records it.
type Measurement struct {
	At time.Time `json:"at"`
	// Value is what the conditions saw: a number (a scalar), a list of
	// numbers (a vector), any JSON (a web check), or nil when the
	// measurement had no data or erred.
	Value   any              `json:"value"`
	Verdict analysis.Verdict `json:"verdict"`
	Error   string           `json:"error,omitempty"`
}

// String describes the measurement in one line, such as
// "2025-01-02T03:04:05Z 0.01 successful".
func (m Measurement) String() string {
	s := m.At.Format(time.RFC3339Nano) + " " + valueString(m.Value) + " " + string(m.Verdict)
	if m.Error != "" {
		s += ": " + m.Error
	}
	return s
}

// Line returns the output line that records m, without a newline.
func (m Measurement) Line() string {
	b, err := json.Marshal(m)
	if err != nil { // a JSON value that came from JSON always marshals
		b, _ = json.Marshal(Measurement{At: m.At, Verdict: m.Verdict, Error: err.Error()})
	}
	return Prefix + string(b)
}

// ParseMeasurement reads a line written for a measurement. It reports false
// for any other line.
func ParseMeasurement(line string) (Measurement, bool) {
	rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), Prefix)
	if !ok {
		return Measurement{}, false
	}
	var m Measurement
	dec := json.NewDecoder(strings.NewReader(rest))
	if err := dec.Decode(&m); err != nil || dec.More() || m.Verdict == "" {
		return Measurement{}, false
	}
	return m, true
}

// fromAnalysis converts a measurement of the analysis package.
func fromAnalysis(m analysis.Measurement) Measurement {
	out := Measurement{At: m.At, Verdict: m.Verdict, Error: m.Error}
	if m.Value != nil {
		out.Value = result(*m.Value)
	}
	return out
}

// result returns what conditions see of v: nil for no data.
func result(v analysis.Value) any {
	switch {
	case v.Empty():
		return nil
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

func valueString(v any) string {
	switch v := v.(type) {
	case nil:
		return "no data"
	case float64:
		return fmt.Sprint(v)
	case string:
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Variables returns the values a check's query, URL, headers and body may
// use: environment, pipeline, release (the version), promotion, baseline
// (the version running before the promotion) and artifact.NAME.digest for each artifact of the release. Empty values are
// left out, so that using them is an error rather than an empty string.
func Variables(req step.Request) map[string]string {
	vars := map[string]string{}
	set := func(name, value string) {
		if value != "" {
			vars[name] = value
		}
	}
	set("environment", req.Environment)
	pipelineName := req.Pipeline
	if pipelineName == "" {
		pipelineName = req.Release.Pipeline
	}
	set("pipeline", pipelineName)
	set("release", req.Release.Version)
	set("promotion", req.PromotionID)
	set("baseline", req.Baseline)
	for _, a := range req.Release.Artifacts {
		set("artifact."+a.Name+".digest", a.Digest)
	}
	return vars
}

// check is a step's analysis with what the output shows of it.
type check struct {
	analysis analysis.Analysis
	subject  string // the query or the redacted URL
}

// build interpolates the step's check and makes its analysis.
func (d Driver) build(req step.Request) (check, error) {
	vars := Variables(req)
	interpolate := func(field, s string) (string, error) {
		out, err := analysis.Interpolate(s, vars)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		return out, nil
	}
	var (
		c       check
		measure pipeline.Measure
	)
	switch s := req.Step; {
	case s.Prometheus != nil:
		p := s.Prometheus
		query, err := interpolate("prometheus.query", p.Query)
		if err != nil {
			return check{}, err
		}
		c.analysis.Provider = analysis.Prometheus{Address: p.Address, Client: d.client(p.Timeout.D())}
		c.analysis.Query = query
		c.subject = query
		measure = p.Measure
	case s.Web != nil:
		w := s.Web
		u, err := interpolate("web.url", w.URL)
		if err != nil {
			return check{}, err
		}
		body, err := interpolate("web.body", w.Body)
		if err != nil {
			return check{}, err
		}
		var headers map[string]string
		if len(w.Headers) > 0 {
			headers = make(map[string]string, len(w.Headers))
			for k, v := range w.Headers {
				if headers[k], err = interpolate("web.headers."+k, v); err != nil {
					return check{}, err
				}
			}
		}
		c.analysis.Provider = analysis.Web{
			URL: u, Method: w.Method, Headers: headers, Body: body, JSONPath: w.JSONPath,
			Client: d.client(w.Timeout.D()),
		}
		c.analysis.Query = u
		c.subject = redact(u)
		measure = w.Measure
	default:
		return check{}, fmt.Errorf("step %q has neither prometheus nor web", s.Name)
	}
	c.analysis.Interval = measure.Interval.D()
	c.analysis.Count = measure.Count
	c.analysis.SuccessCondition = measure.SuccessCondition
	c.analysis.FailureCondition = measure.FailureCondition
	c.analysis.FailureLimit = measure.FailureLimit
	c.analysis.InconclusiveLimit = measure.InconclusiveLimit
	c.analysis.ConsecutiveErrorLimit = measure.ConsecutiveErrorLimit
	c.analysis.NoData = measure.NoData
	if err := c.analysis.Validate(); err != nil {
		return check{}, err
	}
	return c, nil
}

// client returns the driver's client bounded by timeout (DefaultTimeout when 0).
func (d Driver) client(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = analysis.DefaultTimeout
	}
	c := &http.Client{}
	if d.Client != nil {
		*c = *d.Client
	}
	c.Timeout = timeout
	return c
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}

// tally counts a run's measurements and keeps the last of each kind.
type tally struct {
	taken, successful, failed, inconclusive, errorsInARow int
	lastFailed, lastInconclusive, lastError               Measurement
}

func (t *tally) add(m Measurement) {
	if m.Verdict != analysis.Waiting && m.Verdict != analysis.Errored {
		t.taken++
	}
	if m.Verdict == analysis.Errored {
		t.errorsInARow++
		t.lastError = m
	} else {
		t.errorsInARow = 0
	}
	switch m.Verdict {
	case analysis.Successful:
		t.successful++
	case analysis.Failed:
		t.failed++
		t.lastFailed = m
	case analysis.Inconclusive:
		t.inconclusive++
		t.lastInconclusive = m
	}
}

// Run measures the step's check until its verdict. A successful check is
// OK; a failed one, or one whose measurements erred too often in a row,
// fails with a message such as
// "error-rate: 2 of 10 measurements failed (limit 1): last value 0.07 (result > 0.05)";
// an inconclusive one has Inconclusive set. When ctx ends first, the Result
// is Interrupted. A canary check is judged instead (see runCanary).
func (d Driver) Run(ctx context.Context, req step.Request) step.Result {
	if req.Step.Canary != nil {
		return d.runCanary(ctx, req)
	}
	out := req.Output
	if out == nil {
		out = io.Discard
	}
	name := req.Step.Name
	fail := func(msg string) step.Result {
		msg = name + ": " + msg
		fmt.Fprintln(out, msg)
		return step.Result{Message: msg}
	}
	c, err := d.build(req)
	if err != nil {
		return fail(err.Error())
	}
	if ctx.Err() != nil {
		return step.Result{Interrupted: true, Message: "interrupted before start"}
	}
	interval, count := c.analysis.Interval, c.analysis.Count
	if interval == 0 {
		interval = analysis.DefaultInterval
	}
	if count == 0 {
		count = analysis.DefaultCount
	}
	times := "times"
	if count == 1 {
		times = "time"
	}
	fmt.Fprintf(out, "measuring %s every %v, %d %s\n", c.subject, interval, count, times)

	var t tally
	var line bytes.Buffer
	verdict, err := analysis.Run(ctx, c.analysis, d.Clock, func(am analysis.Measurement) {
		m := fromAnalysis(am)
		t.add(m)
		line.Reset()
		line.WriteString(m.Line())
		line.WriteByte('\n')
		_, _ = out.Write(line.Bytes())
	})
	switch {
	case ctx.Err() != nil:
		msg := fmt.Sprintf("interrupted after %d measurements", t.taken)
		fmt.Fprintln(out, msg)
		return step.Result{Interrupted: true, Message: msg}
	case err != nil:
		return fail(err.Error())
	}
	a := c.analysis
	switch verdict {
	case analysis.Successful:
		fmt.Fprintf(out, "successful: %d of %d measurements successful\n", t.successful, t.taken)
		return step.Result{OK: true}
	case analysis.Failed:
		return fail(fmt.Sprintf("%d of %d measurements failed (limit %d): last value %s (%s)",
			t.failed, t.taken, a.FailureLimit, valueString(t.lastFailed.Value), failedBecause(a, t.lastFailed)))
	case analysis.Inconclusive:
		msg := fmt.Sprintf("%s: inconclusive: %d of %d measurements inconclusive (limit %d): last value %s (%s)",
			name, t.inconclusive, t.taken, a.InconclusiveLimit, valueString(t.lastInconclusive.Value), inconclusiveBecause(a, t.lastInconclusive))
		fmt.Fprintln(out, msg)
		return step.Result{Inconclusive: true, Message: msg}
	case analysis.Errored:
		limit := a.ConsecutiveErrorLimit
		switch {
		case limit == 0:
			limit = analysis.DefaultConsecutiveErrorLimit
		case limit < 0:
			limit = 0
		}
		return fail(fmt.Sprintf("%d measurements in a row failed with an error (limit %d): %s",
			t.errorsInARow, limit, t.lastError.Error))
	}
	return fail(fmt.Sprintf("analysis ended with verdict %q", verdict))
}

// failedBecause says why m failed.
func failedBecause(a analysis.Analysis, m Measurement) string {
	switch {
	case m.Value == nil:
		return "noData: " + analysis.NoDataFail
	case a.FailureCondition != "":
		return a.FailureCondition
	}
	return "want " + a.SuccessCondition
}

// inconclusiveBecause says why m was inconclusive.
func inconclusiveBecause(a analysis.Analysis, m Measurement) string {
	if m.Value == nil {
		noData := a.NoData
		if noData == "" {
			noData = analysis.DefaultNoData
		}
		return "noData: " + noData
	}
	return fmt.Sprintf("neither %s nor %s", a.SuccessCondition, a.FailureCondition)
}
