package metric

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis"
	"github.com/ferry-dev/ferry/internal/analysis/judge"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/step"
)

// Defaults of a canary check's fields, used where a field is zero.
const (
	DefaultCanaryWindow = 10 * time.Minute
	DefaultCanaryStep   = 30 * time.Second
)

// JudgementPrefix starts the last line of a canary check's output, which
// holds the judgement as JSON (a judge.Result).
const JudgementPrefix = "judgement "

// canaryConfig returns the judge's configuration for the canary check c.
func canaryConfig(c *pipeline.CanaryCheck) judge.Config {
	cfg := judge.Config{
		Metrics:           make(map[string]judge.MetricConfig, len(c.Metrics)),
		Alpha:             c.Alpha,
		PassThreshold:     c.PassThreshold,
		MarginalThreshold: c.MarginalThreshold,
	}
	for _, m := range c.Metrics {
		cfg.Metrics[m.Name] = judge.MetricConfig{
			Direction:  judge.Direction(m.Direction),
			Critical:   m.Critical,
			Weight:     m.Weight,
			EffectSize: m.EffectSize,
		}
	}
	return cfg
}

// runCanary judges the canary check of req: after the check's delay, it
// queries each metric's baseline and canary over the window and compares
// them with judge.Judge. A pass is OK; a marginal judgement is Inconclusive,
// so that the promotion waits for a person; a fail fails with the reason
// and the failing metrics.
//
// The output has one line per metric and a last line with the judgement:
//
//	waiting 1m0s before judging
//	judging 2 metrics over 10m0s every 30s
//	metric errors: high p=0.0001 adjusted p=0.0002 estimate=0.04 samples 21/21
//	metric latency: pass p=0.41 adjusted p=0.41 estimate=0.001 samples 21/21
//	judgement {"verdict":"fail",...}
func (d Driver) runCanary(ctx context.Context, req step.Request) step.Result {
	out := req.Output
	if out == nil {
		out = io.Discard
	}
	name := req.Step.Name
	c := req.Step.Canary
	fail := func(msg string) step.Result {
		msg = name + ": " + msg
		fmt.Fprintln(out, msg)
		return step.Result{Message: msg}
	}
	interrupted := func() step.Result {
		msg := "interrupted before the judgement"
		fmt.Fprintln(out, msg)
		return step.Result{Interrupted: true, Message: msg}
	}
	if len(c.Metrics) == 0 {
		return fail("canary: no metrics to judge")
	}
	cfg := canaryConfig(c)
	if err := cfg.Validate(); err != nil {
		return fail("canary: " + err.Error())
	}

	// Interpolate every query before waiting, so that a mistake shows at once.
	vars := Variables(req)
	type queries struct{ baseline, canary string }
	qs := make([]queries, len(c.Metrics))
	for i, m := range c.Metrics {
		var err error
		if qs[i].baseline, err = analysis.Interpolate(m.Baseline, vars); err != nil {
			return fail(fmt.Sprintf("metric %s: baseline: %v", m.Name, err))
		}
		if qs[i].canary, err = analysis.Interpolate(m.Canary, vars); err != nil {
			return fail(fmt.Sprintf("metric %s: canary: %v", m.Name, err))
		}
	}
	if ctx.Err() != nil {
		return step.Result{Interrupted: true, Message: "interrupted before start"}
	}

	clock := d.Clock
	if clock == nil {
		clock = analysis.RealClock{}
	}
	if delay := c.Delay.D(); delay > 0 {
		fmt.Fprintf(out, "waiting %v before judging\n", delay)
		select {
		case <-ctx.Done():
			return interrupted()
		case <-clock.After(delay):
		}
	}
	window, stepEvery := c.Window.D(), c.Step.D()
	if window <= 0 {
		window = DefaultCanaryWindow
	}
	if stepEvery <= 0 {
		stepEvery = DefaultCanaryStep
	}
	metrics := "metrics"
	if len(c.Metrics) == 1 {
		metrics = "metric"
	}
	fmt.Fprintf(out, "judging %d %s over %v every %v\n", len(c.Metrics), metrics, window, stepEvery)

	end := clock.Now()
	start := end.Add(-window)
	prom := analysis.Prometheus{Address: c.Prometheus, Client: d.client(0)}
	baseline := make(map[string][]float64, len(c.Metrics))
	canary := make(map[string][]float64, len(c.Metrics))
	for i, m := range c.Metrics {
		for _, q := range []struct {
			which, query string
			into         map[string][]float64
		}{{"baseline", qs[i].baseline, baseline}, {"canary", qs[i].canary, canary}} {
			values, err := prom.QueryRange(ctx, q.query, start, end, stepEvery)
			if err != nil {
				if ctx.Err() != nil {
					return interrupted()
				}
				return fail(fmt.Sprintf("metric %s: %s query %s: %v", m.Name, q.which, q.query, err))
			}
			q.into[m.Name] = values
		}
	}

	r := judge.Judge(baseline, canary, cfg)
	for _, m := range r.Metrics {
		fmt.Fprintf(out, "metric %s: %s p=%s adjusted p=%s estimate=%s samples %d/%d\n",
			m.Name, m.Classification, number(m.PValue), number(m.AdjustedPValue), number(m.Estimate),
			m.BaselineCount, m.CanaryCount)
	}
	b, err := json.Marshal(r)
	if err != nil { // a Result holds only finite numbers and strings
		return fail("canary: " + err.Error())
	}
	fmt.Fprintln(out, JudgementPrefix+string(b))

	switch r.Verdict {
	case judge.Passed:
		fmt.Fprintf(out, "pass: %s\n", r.Reason)
		return step.Result{OK: true}
	case judge.Marginal:
		msg := fmt.Sprintf("%s: marginal: %s (marginal from %g, pass from %g): resume or abort the promotion",
			name, r.Reason, threshold(c.MarginalThreshold, judge.DefaultMarginalThreshold), threshold(c.PassThreshold, judge.DefaultPassThreshold))
		fmt.Fprintln(out, msg)
		return step.Result{Inconclusive: true, Message: msg}
	}
	msg := "canary failed: " + r.Reason
	if failing := failingMetrics(r); failing != "" && !strings.Contains(r.Reason, failing) {
		msg += "; failing metrics: " + failing
	}
	return fail(msg)
}

// failingMetrics lists the metrics of r that did not pass, as "errors (high)".
func failingMetrics(r judge.Result) string {
	var failing []string
	for _, m := range r.Metrics {
		if m.Classification != judge.Pass {
			failing = append(failing, fmt.Sprintf("%s (%s)", m.Name, m.Classification))
		}
	}
	return strings.Join(failing, ", ")
}

// ParseJudgement reads the judgement line of a canary check's output. It
// reports false for any other line.
func ParseJudgement(line string) (judge.Result, bool) {
	rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), JudgementPrefix)
	if !ok {
		return judge.Result{}, false
	}
	var r judge.Result
	dec := json.NewDecoder(strings.NewReader(rest))
	if err := dec.Decode(&r); err != nil || dec.More() || r.Verdict == "" {
		return judge.Result{}, false
	}
	return r, true
}

func threshold(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// number formats a statistic, "-" when it could not be computed.
func number(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'g', 4, 64)
}
