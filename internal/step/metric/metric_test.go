package metric_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promtest"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/step"
	"github.com/ferry-dev/ferry/internal/step/metric"
)

const apiDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// fakeClock moves on by the whole interval whenever the analysis waits.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// syncBuffer is an output safe to read while a check writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func request(s pipeline.Step, out io.Writer) step.Request {
	return step.Request{
		PromotionID: "p-42",
		Pipeline:    "shop",
		Environment: "prod",
		Release: release.Release{
			ID: "r-1", Pipeline: "shop", Version: "1.2.3",
			Artifacts: []release.Artifact{{Name: "api", URI: "registry.example.com/shop/api", Digest: apiDigest}},
		},
		Step:   s,
		Output: out,
	}
}

// lines splits output into header, measurements and the rest.
func lines(t *testing.T, out string) (header string, ms []metric.Measurement, rest []string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for i := 0; sc.Scan(); i++ {
		if i == 0 {
			header = sc.Text()
			continue
		}
		if m, ok := metric.ParseMeasurement(sc.Text()); ok {
			ms = append(ms, m)
			continue
		}
		rest = append(rest, sc.Text())
	}
	return header, ms, rest
}

func dur(d time.Duration) pipeline.Duration { return pipeline.Duration(d) }

func TestParseMeasurement(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)
	for _, m := range []metric.Measurement{
		{At: at, Value: 0.25, Verdict: analysis.Successful},
		{At: at, Value: []any{1.0, 2.0}, Verdict: analysis.Failed},
		{At: at, Value: map[string]any{"ok": true}, Verdict: analysis.Inconclusive},
		{At: at, Verdict: analysis.Errored, Error: "boom"},
	} {
		line := m.Line()
		if !strings.HasPrefix(line, "measurement {") {
			t.Errorf("line %q", line)
		}
		got, ok := metric.ParseMeasurement(line + "\n")
		if !ok {
			t.Fatalf("ParseMeasurement(%q) failed", line)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(m)
		if string(gb) != string(wb) || !got.At.Equal(at) {
			t.Errorf("round trip: got %s, want %s", gb, wb)
		}
	}
	for _, line := range []string{
		`{"at":"2025-01-02T03:04:05Z","value":null,"verdict":"error"}`, // no prefix
		"measuring x every 1s, 3 times", "measurement {", "measurement {}", "successful: 1 of 1",
	} {
		if _, ok := metric.ParseMeasurement(line); ok {
			t.Errorf("ParseMeasurement(%q) succeeded", line)
		}
	}
	m, _ := metric.ParseMeasurement(`measurement {"at":"2025-01-02T03:04:05Z","value":null,"verdict":"inconclusive"}`)
	if s := m.String(); s != "2025-01-02T03:04:05Z no data inconclusive" {
		t.Errorf("String() = %q", s)
	}
}

func TestVariables(t *testing.T) {
	got := metric.Variables(request(pipeline.Step{}, nil))
	want := map[string]string{
		"environment": "prod", "pipeline": "shop", "release": "1.2.3", "promotion": "p-42",
		"artifact.api.digest": apiDigest,
	}
	if len(got) != len(want) {
		t.Fatalf("Variables = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// webServer answers each request with the next of values (the last one
// repeated) as {"data":{"errorRate":v}}, and records the requests.
type webServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	method, path, query, header, body string
}

func newWebServer(t *testing.T, status int, values ...any) *webServer {
	ws := &webServer{}
	n := 0
	ws.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ws.mu.Lock()
		ws.requests = append(ws.requests, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Release"), string(b)})
		v := values[min(n, len(values)-1)]
		n++
		ws.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"errorRate": v}})
	}))
	t.Cleanup(ws.Close)
	return ws
}

func (ws *webServer) recorded() []recorded {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return append([]recorded(nil), ws.requests...)
}

func webStep(u string, m pipeline.Measure) pipeline.Step {
	return pipeline.Step{Name: "error-rate", Web: &pipeline.WebCheck{
		URL:      u + "/rate?env=${environment}&digest=${artifact.api.digest}",
		Method:   "POST",
		Headers:  map[string]string{"X-Release": "${release}"},
		Body:     `{"promotion":"${promotion}","pipeline":"${pipeline}"}`,
		JSONPath: "$.data.errorRate",
		Measure:  m,
	}}
}

func TestWebSuccessful(t *testing.T) {
	ws := newWebServer(t, http.StatusOK, 0.01)
	var out strings.Builder
	d := metric.Driver{Clock: newFakeClock()}
	res := d.Run(context.Background(), request(webStep(ws.URL, pipeline.Measure{
		Interval: dur(time.Minute), Count: 3, SuccessCondition: "result < 0.05",
	}), &out))
	if !res.OK || res.Inconclusive || res.Interrupted || res.Message != "" {
		t.Fatalf("result %+v, want OK; output:\n%s", res, out.String())
	}
	header, ms, rest := lines(t, out.String())
	wantHeader := "measuring " + ws.URL + "/rate?env=prod&digest=" + apiDigest + " every 1m0s, 3 times"
	if header != wantHeader {
		t.Errorf("header %q, want %q", header, wantHeader)
	}
	if len(ms) != 3 {
		t.Fatalf("%d measurements, want 3; output:\n%s", len(ms), out.String())
	}
	for i, m := range ms {
		if m.Verdict != analysis.Successful || m.Value != 0.01 || m.Error != "" {
			t.Errorf("measurement %d: %+v", i, m)
		}
		if i > 0 && m.At.Sub(ms[i-1].At) != time.Minute {
			t.Errorf("measurement %d at %v, %v after the one before", i, m.At, m.At.Sub(ms[i-1].At))
		}
	}
	if len(rest) != 1 || rest[0] != "successful: 3 of 3 measurements successful" {
		t.Errorf("summary %q", rest)
	}
	reqs := ws.recorded()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	want := recorded{"POST", "/rate", "env=prod&digest=" + apiDigest, "1.2.3", `{"promotion":"p-42","pipeline":"shop"}`}
	if got := reqs[0]; got != want {
		t.Errorf("request %+v, want %+v", got, want)
	}
}

func TestWebFailed(t *testing.T) {
	ws := newWebServer(t, http.StatusOK, 0.01, 0.07, 0.02, 0.08)
	var out strings.Builder
	d := metric.Driver{Clock: newFakeClock()}
	res := d.Run(context.Background(), request(webStep(ws.URL, pipeline.Measure{
		Interval: dur(time.Second), Count: 10, FailureCondition: "result > 0.05", FailureLimit: 1,
	}), &out))
	want := "error-rate: 2 of 4 measurements failed (limit 1): last value 0.08 (result > 0.05)"
	if res.OK || res.Inconclusive || res.Interrupted || res.Message != want {
		t.Fatalf("result %+v, want message %q", res, want)
	}
	_, ms, rest := lines(t, out.String())
	if len(ms) != 4 || ms[1].Verdict != analysis.Failed || ms[2].Verdict != analysis.Successful {
		t.Errorf("measurements %+v", ms)
	}
	if len(rest) != 1 || rest[0] != want {
		t.Errorf("summary %q", rest)
	}
}

func TestWebInconclusive(t *testing.T) {
	ws := newWebServer(t, http.StatusOK, 0.03)
	var out strings.Builder
	d := metric.Driver{Clock: newFakeClock()}
	res := d.Run(context.Background(), request(webStep(ws.URL, pipeline.Measure{
		Count: 2, SuccessCondition: "result < 0.01", FailureCondition: "result > 0.05",
	}), &out))
	want := "error-rate: inconclusive: 1 of 1 measurements inconclusive (limit 0): last value 0.03 (neither result < 0.01 nor result > 0.05)"
	if res.OK || !res.Inconclusive || res.Message != want {
		t.Fatalf("result %+v, want inconclusive %q", res, want)
	}
}

func TestWebErrored(t *testing.T) {
	ws := newWebServer(t, http.StatusServiceUnavailable, 0.01)
	var out strings.Builder
	d := metric.Driver{Clock: newFakeClock()}
	res := d.Run(context.Background(), request(webStep(ws.URL, pipeline.Measure{
		Count: 5, SuccessCondition: "result < 0.01", ConsecutiveErrorLimit: 1,
	}), &out))
	if res.OK || res.Inconclusive || res.Interrupted ||
		!strings.HasPrefix(res.Message, "error-rate: 2 measurements in a row failed with an error (limit 1): web: POST ") ||
		!strings.Contains(res.Message, "status 503") {
		t.Fatalf("result %+v", res)
	}
	_, ms, _ := lines(t, out.String())
	if len(ms) != 2 || ms[0].Verdict != analysis.Errored || ms[0].Value != nil || ms[0].Error == "" {
		t.Errorf("measurements %+v", ms)
	}
}

func TestBadSteps(t *testing.T) {
	d := metric.Driver{Clock: newFakeClock()}
	for _, tc := range []struct {
		step pipeline.Step
		want string
	}{
		{pipeline.Step{Name: "x"}, `x: step "x" has neither prometheus nor web`},
		{pipeline.Step{Name: "x", Prometheus: &pipeline.PrometheusCheck{
			Address: "http://127.0.0.1:1", Query: "up{x=\"${color}\"}",
			Measure: pipeline.Measure{SuccessCondition: "result == 1"},
		}}, "x: prometheus.query: interpolate: unknown variable ${color}"},
		{pipeline.Step{Name: "x", Prometheus: &pipeline.PrometheusCheck{
			Address: "http://127.0.0.1:1", Query: "up{x=\"${artifact.web.digest}\"}",
			Measure: pipeline.Measure{SuccessCondition: "result == 1"},
		}}, "x: prometheus.query: interpolate: no value for ${artifact.web.digest}"},
		{pipeline.Step{Name: "x", Prometheus: &pipeline.PrometheusCheck{
			Address: "http://127.0.0.1:1", Query: "up",
		}}, "x: analysis: successCondition or failureCondition is required"},
	} {
		res := d.Run(context.Background(), request(tc.step, nil))
		if res.OK || !strings.HasPrefix(res.Message, tc.want) {
			t.Errorf("message %q, want prefix %q", res.Message, tc.want)
		}
	}
}

// cancelOnMeasurement cancels once a measurement line is written.
type cancelOnMeasurement struct {
	syncBuffer
	cancel context.CancelFunc
}

func (c *cancelOnMeasurement) Write(p []byte) (int, error) {
	if strings.HasPrefix(string(p), metric.Prefix) {
		defer c.cancel()
	}
	return c.syncBuffer.Write(p)
}

func TestInterrupted(t *testing.T) {
	ws := newWebServer(t, http.StatusOK, 0.01)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnMeasurement{cancel: cancel}
	res := metric.Driver{}.Run(ctx, request(webStep(ws.URL, pipeline.Measure{
		Interval: dur(time.Hour), Count: 3, SuccessCondition: "result < 0.05",
	}), out))
	if !res.Interrupted || res.OK || res.Message != "interrupted after 1 measurements" {
		t.Fatalf("result %+v", res)
	}
	if res := (metric.Driver{}).Run(ctx, request(webStep(ws.URL, pipeline.Measure{SuccessCondition: "true"}), nil)); !res.Interrupted {
		t.Errorf("cancelled before start: %+v", res)
	}
}

// TestPrometheus measures with a real Prometheus server, shared by the
// subtests, that scrapes a target. The server is reached through a proxy
// that records the queries it receives.
func TestPrometheus(t *testing.T) {
	target := promtest.NewTarget(t)
	target.SetGauge("http_error_ratio", map[string]string{"environment": "prod", "digest": apiDigest}, 0.01)
	target.SetGauge("http_error_ratio", map[string]string{"environment": "staging", "digest": apiDigest}, 0.07)
	prom := promtest.Start(t, promtest.Config{Targets: []string{target.Address()}})
	prom.Await(t, `http_error_ratio{environment="staging"}`, 20*time.Second)

	promURL, _ := url.Parse(prom.URL())
	var mu sync.Mutex
	var queries []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil {
			mu.Lock()
			queries = append(queries, r.PostForm.Get("query"))
			mu.Unlock()
		}
		r.Body = io.NopCloser(strings.NewReader(r.PostForm.Encode()))
		r.ContentLength = int64(len(r.PostForm.Encode()))
		httputil.NewSingleHostReverseProxy(promURL).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	received := func() []string {
		mu.Lock()
		defer mu.Unlock()
		q := queries
		queries = nil
		return q
	}

	check := func(query string, m pipeline.Measure) pipeline.Step {
		return pipeline.Step{Name: "error-rate", Prometheus: &pipeline.PrometheusCheck{
			Address: proxy.URL, Query: query, Timeout: dur(5 * time.Second), Measure: m,
		}}
	}
	const query = `scalar(max(http_error_ratio{environment="${environment}",digest="${artifact.api.digest}"}))`
	d := metric.Driver{}

	t.Run("good", func(t *testing.T) {
		received()
		var out strings.Builder
		res := d.Run(context.Background(), request(check(query, pipeline.Measure{
			Interval: dur(20 * time.Millisecond), Count: 3,
			SuccessCondition: "result < 0.05", FailureCondition: "result > 0.05",
		}), &out))
		if !res.OK {
			t.Fatalf("result %+v; output:\n%s", res, out.String())
		}
		want := `scalar(max(http_error_ratio{environment="prod",digest="` + apiDigest + `"}))`
		header, ms, rest := lines(t, out.String())
		if header != "measuring "+want+" every 20ms, 3 times" {
			t.Errorf("header %q", header)
		}
		if len(ms) != 3 || len(rest) != 1 {
			t.Fatalf("output:\n%s", out.String())
		}
		for _, m := range ms {
			if m.Verdict != analysis.Successful || m.Value != 0.01 {
				t.Errorf("measurement %+v", m)
			}
		}
		got := received()
		if len(got) != 3 || got[0] != want {
			t.Errorf("Prometheus received %q, want 3 times %q", got, want)
		}
	})

	t.Run("high error rate", func(t *testing.T) {
		received()
		req := request(check(query, pipeline.Measure{
			Interval: dur(10 * time.Millisecond), Count: 5, FailureCondition: "result > 0.05", FailureLimit: 1,
		}), nil)
		req.Environment = "staging"
		res := d.Run(context.Background(), req)
		want := "error-rate: 2 of 2 measurements failed (limit 1): last value 0.07 (result > 0.05)"
		if res.OK || res.Inconclusive || res.Message != want {
			t.Fatalf("result %+v, want message %q", res, want)
		}
		if got := received(); len(got) != 2 || !strings.Contains(got[0], `environment="staging"`) {
			t.Errorf("Prometheus received %q", got)
		}
	})

	t.Run("vector", func(t *testing.T) {
		received()
		var out strings.Builder
		res := d.Run(context.Background(), request(check(`http_error_ratio`, pipeline.Measure{
			FailureCondition: "result.exists(r, r > 0.05)",
		}), &out))
		if res.OK || !strings.Contains(res.Message, "last value [") {
			t.Fatalf("result %+v", res)
		}
		_, ms, _ := lines(t, out.String())
		if len(ms) != 1 {
			t.Fatalf("output:\n%s", out.String())
		}
		if l, ok := ms[0].Value.([]any); !ok || len(l) != 2 {
			t.Errorf("value %#v, want a list of two", ms[0].Value)
		}
	})

	t.Run("no data", func(t *testing.T) {
		received()
		var out strings.Builder
		res := d.Run(context.Background(), request(check(`missing_metric{environment="${environment}"}`, pipeline.Measure{
			Count: 3, SuccessCondition: "result < 0.05", NoData: analysis.NoDataInconclusive,
		}), &out))
		want := "error-rate: inconclusive: 1 of 1 measurements inconclusive (limit 0): last value no data (noData: inconclusive)"
		if res.OK || !res.Inconclusive || res.Message != want {
			t.Fatalf("result %+v, want %q", res, want)
		}
		_, ms, _ := lines(t, out.String())
		if len(ms) != 1 || ms[0].Value != nil || ms[0].Verdict != analysis.Inconclusive {
			t.Errorf("measurements %+v", ms)
		}
		if got := received(); len(got) != 1 || got[0] != `missing_metric{environment="prod"}` {
			t.Errorf("Prometheus received %q", got)
		}
	})
}
