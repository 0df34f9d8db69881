package api

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// failingCollector is a collector whose scrape fails, as the promotion
// gauges do when the store cannot be read.
type failingCollector struct{ desc *prometheus.Desc }

func (c failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(c.desc, errors.New("store unreachable"))
}

// TestMetricsServesTheGivenRegistry checks that GET /metrics serves the
// registry of Config.Metrics in the text format, leaves out (and logs) a
// collector that fails, and logs successful scrapes at debug level only.
func TestMetricsServesTheGivenRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	jobs := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_jobs_total", Help: "Jobs."})
	jobs.Add(7)
	reg.MustRegister(jobs)
	b := setup(t, func(c *Config) { c.Metrics = reg })
	rec := b.do(t, http.MethodGet, "/metrics", "")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") ||
		!strings.Contains(rec.Body.String(), "\ntest_jobs_total 7\n") {
		t.Fatalf("GET /metrics: %d %q\n%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if logs := b.logs.String(); !strings.Contains(logs, "level=DEBUG") || !strings.Contains(logs, "path=/metrics") {
		t.Errorf("a successful scrape is not logged at debug level:\n%s", logs)
	}

	reg.MustRegister(failingCollector{prometheus.NewDesc("test_broken", "Broken.", nil, nil)})
	rec = b.do(t, http.MethodGet, "/metrics", "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "\ntest_jobs_total 7\n") {
		t.Fatalf("GET /metrics with a failing collector: %d\n%s", rec.Code, rec.Body)
	}
	if logs := b.logs.String(); !strings.Contains(logs, "store unreachable") {
		t.Errorf("the failing collector's error is not logged:\n%s", logs)
	}
}

// TestMetricsNeedsAToken checks that, with authentication on, a scrape
// without a token is refused.
func TestMetricsNeedsAToken(t *testing.T) {
	b := setup(t, func(c *Config) { c.DisableAuth = false })
	readProblem(t, b.do(t, http.MethodGet, "/metrics", ""), http.StatusUnauthorized, codeUnauthenticated)
}
