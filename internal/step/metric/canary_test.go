package metric_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis/judge"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promtest"
	"github.com/ferry-dev/ferry/internal/step"
	"github.com/ferry-dev/ferry/internal/step/metric"
)

// realNowClock tells the real time but does not wait: After records the
// delay and fires at once.
type realNowClock struct {
	mu     sync.Mutex
	waited []time.Duration
}

func (c *realNowClock) Now() time.Time { return time.Now() }

func (c *realNowClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waited = append(c.waited, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}

func canaryRequest(c *pipeline.CanaryCheck, out *strings.Builder) step.Request {
	req := request(pipeline.Step{Name: "canary", Canary: c}, out)
	req.Baseline = "1.2.2"
	return req
}

func judgement(t *testing.T, out string) judge.Result {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if r, ok := metric.ParseJudgement(line); ok {
			return r
		}
	}
	t.Fatalf("no judgement in output:\n%s", out)
	return judge.Result{}
}

// TestCanary judges canaries against a real Prometheus server that scrapes
// a target with an error ratio and a latency for the baseline (version
// 1.2.2) and the canary (1.2.3). The canary's latency follows the
// baseline's; its error ratio is ten times the baseline's.
func TestCanary(t *testing.T) {
	target := promtest.NewTarget(t)
	base := []float64{0.010, 0.012, 0.011, 0.013, 0.009, 0.0105, 0.0115, 0.0095}
	var mu sync.Mutex
	scrape := 0
	set := func() {
		mu.Lock()
		v := base[scrape%len(base)]
		scrape++
		mu.Unlock()
		target.SetGauge("error_ratio", map[string]string{"environment": "prod", "version": "1.2.2"}, v)
		target.SetGauge("error_ratio", map[string]string{"environment": "prod", "version": "1.2.3"}, 10*v)
		for _, pod := range []string{"a", "b"} { // two series each, summed per step
			target.SetGauge("latency_seconds", map[string]string{"environment": "prod", "version": "1.2.2", "pod": pod}, 10*v)
			target.SetGauge("latency_seconds", map[string]string{"environment": "prod", "version": "1.2.3", "pod": pod}, 10*v)
		}
	}
	set()
	target.OnScrape(set)
	prom := promtest.Start(t, promtest.Config{Targets: []string{target.Address()}})
	prom.Await(t, `count_over_time(error_ratio{version="1.2.3"}[10s]) >= 8`, 40*time.Second)

	const (
		baselineErrors = `error_ratio{environment="${environment}",version="${baseline}"}`
		canaryErrors   = `error_ratio{environment="${environment}",version="${release}"}`
		baselineLat    = `latency_seconds{environment="${environment}",version="${baseline}"}`
		canaryLat      = `latency_seconds{environment="${environment}",version="${release}"}`
	)
	latency := pipeline.CanaryMetric{Name: "latency", Baseline: baselineLat, Canary: canaryLat, Direction: "increase"}
	errorsMetric := pipeline.CanaryMetric{Name: "errors", Baseline: baselineErrors, Canary: canaryErrors, Direction: "increase"}
	check := func(metrics ...pipeline.CanaryMetric) *pipeline.CanaryCheck {
		return &pipeline.CanaryCheck{
			Prometheus: prom.URL(), Window: dur(10 * time.Second), Step: dur(time.Second), Metrics: metrics,
		}
	}

	t.Run("equal", func(t *testing.T) {
		clock := &realNowClock{}
		c := check(latency)
		c.Delay = dur(time.Hour)
		var out strings.Builder
		res := metric.Driver{Clock: clock}.Run(context.Background(), canaryRequest(c, &out))
		if !res.OK {
			t.Fatalf("result %+v; output:\n%s", res, out.String())
		}
		if len(clock.waited) != 1 || clock.waited[0] != time.Hour {
			t.Errorf("waited %v, want [1h0m0s]", clock.waited)
		}
		r := judgement(t, out.String())
		if r.Verdict != judge.Passed || len(r.Metrics) != 1 || r.Metrics[0].Classification != judge.Pass ||
			r.Metrics[0].BaselineCount < 8 || r.Metrics[0].CanaryCount < 8 {
			t.Errorf("judgement %+v; output:\n%s", r, out.String())
		}
		if !strings.Contains(out.String(), "metric latency: pass p=") {
			t.Errorf("output:\n%s", out.String())
		}
	})

	t.Run("higher error ratio", func(t *testing.T) {
		var out strings.Builder
		res := metric.Driver{}.Run(context.Background(), canaryRequest(check(latency, errorsMetric), &out))
		if res.OK || res.Inconclusive || res.Interrupted {
			t.Fatalf("result %+v; output:\n%s", res, out.String())
		}
		if !strings.HasPrefix(res.Message, "canary: canary failed: ") || !strings.Contains(res.Message, "errors (high)") {
			t.Errorf("message %q", res.Message)
		}
		r := judgement(t, out.String())
		if r.Verdict != judge.Failed {
			t.Errorf("judgement %+v", r)
		}
		if !strings.Contains(out.String(), "metric errors: high p=") {
			t.Errorf("output:\n%s", out.String())
		}
	})

	t.Run("critical", func(t *testing.T) {
		critical := errorsMetric
		critical.Critical = true
		lat := latency
		lat.Weight = 100
		var out strings.Builder
		res := metric.Driver{}.Run(context.Background(), canaryRequest(check(lat, critical), &out))
		if res.OK || res.Inconclusive || !strings.Contains(res.Message, "critical metric failed") {
			t.Fatalf("result %+v; output:\n%s", res, out.String())
		}
	})

	t.Run("marginal", func(t *testing.T) {
		lat := latency
		lat.Weight = 4 // score 80: marginal between 75 and 95
		var out strings.Builder
		res := metric.Driver{}.Run(context.Background(), canaryRequest(check(lat, errorsMetric), &out))
		if res.OK || !res.Inconclusive || !strings.Contains(res.Message, "marginal: score 80.0") {
			t.Fatalf("result %+v; output:\n%s", res, out.String())
		}
	})

	t.Run("decrease is not bad", func(t *testing.T) {
		m := errorsMetric
		m.Direction = "decrease"
		var out strings.Builder
		if res := (metric.Driver{}).Run(context.Background(), canaryRequest(check(m), &out)); !res.OK {
			t.Fatalf("result %+v; output:\n%s", res, out.String())
		}
	})

	t.Run("no data", func(t *testing.T) {
		m := pipeline.CanaryMetric{Name: "missing", Baseline: `absent_metric{version="${baseline}"}`, Canary: `absent_metric{version="${release}"}`}
		var out strings.Builder
		res := metric.Driver{}.Run(context.Background(), canaryRequest(check(m), &out))
		if res.OK || res.Inconclusive || !strings.Contains(res.Message, "no data") {
			t.Fatalf("result %+v; output:\n%s", res, out.String())
		}
	})

	t.Run("query error", func(t *testing.T) {
		m := pipeline.CanaryMetric{Name: "broken", Baseline: baselineErrors, Canary: `sum(error_ratio`}
		var out strings.Builder
		res := metric.Driver{}.Run(context.Background(), canaryRequest(check(m), &out))
		if res.OK || !strings.Contains(res.Message, "metric broken: canary query sum(error_ratio: prometheus: bad_data") {
			t.Fatalf("result %+v; output:\n%s", res, out.String())
		}
	})
}

func TestCanaryBadRequests(t *testing.T) {
	metricOf := func(baseline string) []pipeline.CanaryMetric {
		return []pipeline.CanaryMetric{{Name: "errors", Baseline: baseline, Canary: "up"}}
	}
	for _, tt := range []struct {
		name  string
		check *pipeline.CanaryCheck
		edit  func(*step.Request)
		want  string
	}{
		{"no metrics", &pipeline.CanaryCheck{Prometheus: "http://127.0.0.1:1"}, nil, "canary: no metrics to judge"},
		{"bad alpha", &pipeline.CanaryCheck{Prometheus: "http://127.0.0.1:1", Alpha: 2, Metrics: metricOf("up")}, nil, "canary: alpha 2"},
		{"no baseline", &pipeline.CanaryCheck{Prometheus: "http://127.0.0.1:1", Metrics: metricOf(`up{v="${baseline}"}`)},
			func(r *step.Request) { r.Baseline = "" }, "metric errors: baseline: interpolate: no value for ${baseline}"},
		{"unreachable", &pipeline.CanaryCheck{Prometheus: "http://127.0.0.1:1", Metrics: metricOf(`up{v="${baseline}"}`)},
			nil, `metric errors: baseline query up{v="1.2.2"}: prometheus: POST http://127.0.0.1:1/api/v1/query_range`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			req := canaryRequest(tt.check, &out)
			if tt.edit != nil {
				tt.edit(&req)
			}
			res := metric.Driver{}.Run(context.Background(), req)
			if res.OK || res.Inconclusive || !strings.Contains(res.Message, tt.want) {
				t.Errorf("result %+v, want a failure with %q", res, tt.want)
			}
		})
	}

	t.Run("interrupted during the delay", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		c := &pipeline.CanaryCheck{Prometheus: "http://127.0.0.1:1", Delay: dur(time.Hour), Metrics: metricOf("up")}
		var out strings.Builder
		done := make(chan step.Result)
		go func() { done <- metric.Driver{}.Run(ctx, canaryRequest(c, &out)) }()
		time.Sleep(20 * time.Millisecond)
		cancel()
		select {
		case res := <-done:
			if !res.Interrupted {
				t.Errorf("result %+v", res)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	})
}

func TestParseJudgement(t *testing.T) {
	r, ok := metric.ParseJudgement(metric.JudgementPrefix + `{"verdict":"pass","score":100,"reason":"x","metrics":[]}` + "\n")
	if !ok || r.Verdict != judge.Passed || r.Score != 100 {
		t.Errorf("ParseJudgement = %+v, %v", r, ok)
	}
	for _, line := range []string{"judgement {}", "judgement {", "measurement {}", `judgement {"verdict":"pass"} x`} {
		if _, ok := metric.ParseJudgement(line); ok {
			t.Errorf("ParseJudgement(%q) ok", line)
		}
	}
}
