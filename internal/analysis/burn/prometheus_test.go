package burn_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis"
	"github.com/ferry-dev/ferry/internal/analysis/burn"
	"github.com/ferry-dev/ferry/internal/promtest"
)

// TestPrometheus evaluates a real Prometheus that scrapes a target whose
// failed requests the test raises from a healthy rate to a burning one.
func TestPrometheus(t *testing.T) {
	const requestsPerScrape = 100
	var errorsPerScrape atomic.Int64
	errorsPerScrape.Store(1) // an error ratio of 0.01: a burn rate of 0.1
	ok := map[string]string{"code": "200"}
	failed := map[string]string{"code": "500"}
	target := promtest.NewTarget(t)
	target.SetCounter("http_requests_total", ok, 0)
	target.SetCounter("http_requests_total", failed, 0)
	target.OnScrape(func() {
		e := errorsPerScrape.Load()
		target.Add("http_requests_total", ok, float64(requestsPerScrape-e))
		target.Add("http_requests_total", failed, float64(e))
	})
	prom := promtest.Start(t, promtest.Config{Targets: []string{target.Address()}, ScrapeInterval: time.Second})
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	provider := analysis.Prometheus{Address: prom.URL(), Client: &http.Client{Transport: transport, Timeout: 10 * time.Second}}

	spec := burn.Spec{
		Errors:    `sum(rate(http_requests_total{code=~"5.."}[$window]))`,
		Total:     `sum(rate(http_requests_total[$window]))`,
		Objective: 90, // a budget of 0.1: the rule fires above an error ratio of 0.2
		Period:    time.Hour,
		Rules:     []burn.Rule{{Long: 10 * time.Second, Short: 5 * time.Second, Factor: 2}},
	}
	// Both windows have data once the short one holds two scrapes.
	prom.Await(t, `sum(rate(http_requests_total[5s])) > 0`, 30*time.Second)

	t.Run("healthy", func(t *testing.T) {
		r := burn.Evaluate(t.Context(), provider, spec, time.Now())
		if r.Err != nil || r.Blocked || r.NoData || !strings.HasPrefix(r.Reason, "within error budget: highest burn rate 0.1 (") {
			t.Fatalf("blocked %v, no data %v, reason %q, err %v; want within budget at a burn rate of 0.1",
				r.Blocked, r.NoData, r.Reason, r.Err)
		}
		for _, w := range r.Windows {
			if w.BurnRate == nil || *w.BurnRate < 0.09 || *w.BurnRate > 0.11 {
				t.Errorf("%v: burn rate %v, want 0.1", w.Window, deref(w.BurnRate))
			}
		}
	})

	t.Run("burning", func(t *testing.T) {
		errorsPerScrape.Store(50) // an error ratio of 0.5: a burn rate of 5
		deadline := time.Now().Add(15 * time.Second)
		var r burn.Result
		for {
			r = burn.Evaluate(t.Context(), provider, spec, time.Now())
			if r.Err != nil {
				t.Fatalf("Err: %v", r.Err)
			}
			if r.Blocked || time.Now().After(deadline) {
				break
			}
			select {
			case <-t.Context().Done():
				t.Fatal(t.Context().Err())
			case <-time.After(250 * time.Millisecond):
			}
		}
		if !r.Blocked {
			t.Fatalf("not blocked after 15s of burning: %q", r.Reason)
		}
		if !strings.HasPrefix(r.Reason, "burning error budget: 10s burn rate ") ||
			!strings.HasSuffix(r.Reason, " exceed 2 (objective 90% over 1h)") || !strings.Contains(r.Reason, "and 5s burn rate ") {
			t.Errorf("reason %q", r.Reason)
		}
		if rr := r.Rules[0]; !rr.Firing || *rr.LongBurn <= 2 || *rr.ShortBurn <= 2 {
			t.Errorf("rule %+v: long %v, short %v", rr.Rule, deref(rr.LongBurn), deref(rr.ShortBurn))
		}
	})

	t.Run("no data", func(t *testing.T) {
		s := spec
		s.Errors = `sum(rate(missing_errors_total[$window]))`
		s.Total = `sum(rate(missing_requests_total[$window]))`
		r := burn.Evaluate(t.Context(), provider, s, time.Now())
		if r.Err != nil || r.Blocked || !r.NoData || r.Reason != "no data for 5s, 10s; cannot judge the burn rate" {
			t.Errorf("blocked %v, no data %v, reason %q, err %v", r.Blocked, r.NoData, r.Reason, r.Err)
		}
	})

	t.Run("query error", func(t *testing.T) {
		s := spec
		s.Total = `sum(rate(http_requests_total[$window])`
		r := burn.Evaluate(t.Context(), provider, s, time.Now())
		if r.Err == nil || r.Blocked || !strings.Contains(r.Reason, "total over 5s: prometheus: bad_data") {
			t.Errorf("blocked %v, reason %q, err %v", r.Blocked, r.Reason, r.Err)
		}
	})
}
