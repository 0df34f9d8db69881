package analysis

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/promtest"
)

// fakePrometheus serves body with status for /prom/api/v1/query, and records
// the form of the last request.
func fakePrometheus(t *testing.T, status int, body string) (Prometheus, *url.Values) {
	t.Helper()
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/prom/api/v1/query" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("ParseForm: %v", err)
		}
		form = r.PostForm
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return Prometheus{Address: srv.URL + "/prom", Client: srv.Client()}, &form
}

func TestPrometheusResults(t *testing.T) {
	at := time.Date(2025, 3, 10, 12, 0, 0, 250_000_000, time.UTC)
	inf := math.Inf(1)
	half := 0.5
	tests := []struct {
		name string
		body string
		want Value
	}{
		{
			name: "vector",
			body: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"job":"api","code":"500"},"value":[1741608000.25,"0.5"]},
				{"metric":{"job":"web"},"value":[1741608000.25,"NaN"]},
				{"metric":{},"value":[1741608000.25,"+Inf"]}]}}`,
			want: Value{Vector: []Sample{
				{Labels: map[string]string{"job": "api", "code": "500"}, Value: 0.5},
				{Labels: map[string]string{}, Value: inf},
			}},
		},
		{
			name: "empty vector",
			body: `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		},
		{
			name: "only NaN samples",
			body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}`,
		},
		{
			name: "scalar",
			body: `{"status":"success","data":{"resultType":"scalar","result":[1741608000.25,"0.5"]},"warnings":["ignored"]}`,
			want: Value{Scalar: &half},
		},
		{
			name: "NaN scalar",
			body: `{"status":"success","data":{"resultType":"scalar","result":[1741608000.25,"NaN"]}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, form := fakePrometheus(t, http.StatusOK, tt.body)
			got, err := p.Query(t.Context(), "up", at)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if got.String() != tt.want.String() || len(got.Vector) != len(tt.want.Vector) || got.Empty() != tt.want.Empty() {
				t.Fatalf("Query = %+v, want %+v", got, tt.want)
			}
			for i, s := range got.Vector {
				if len(s.Labels) != len(tt.want.Vector[i].Labels) || s.Labels["job"] != tt.want.Vector[i].Labels["job"] {
					t.Errorf("sample %d labels %v, want %v", i, s.Labels, tt.want.Vector[i].Labels)
				}
			}
			if form.Get("query") != "up" || form.Get("time") != "1741608000.250" {
				t.Errorf("form %v, want query=up time=1741608000.250", *form)
			}
		})
	}
}

func TestPrometheusErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"bad query", http.StatusBadRequest,
			`{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed left parenthesis"}`,
			"prometheus: bad_data: 1:5: parse error: unclosed left parenthesis (status 400)"},
		{"timeout", http.StatusServiceUnavailable,
			`{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`,
			"prometheus: timeout: query timed out in expression evaluation (status 503)"},
		{"not the API", http.StatusBadGateway, "<html>Bad Gateway</html>",
			"/prom/api/v1/query: status 502: <html>Bad Gateway</html>"},
		{"not JSON", http.StatusOK, "hello", "response is not the query API's JSON: hello"},
		{"range vector", http.StatusOK,
			`{"status":"success","data":{"resultType":"matrix","result":[]}}`, "the query returns a range vector"},
		{"string", http.StatusOK,
			`{"status":"success","data":{"resultType":"string","result":[1,"a"]}}`, "the query returns a string"},
		{"bad sample", http.StatusOK,
			`{"status":"success","data":{"resultType":"scalar","result":[1,"many"]}}`, `sample value "many" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := fakePrometheus(t, tt.status, tt.body)
			_, err := p.Query(t.Context(), "up", time.Time{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Query: %v, want %q", err, tt.want)
			}
		})
	}
	p, _ := fakePrometheus(t, http.StatusBadRequest, `{"status":"error","errorType":"bad_data","error":"x"}`)
	var apiErr *APIError
	if _, err := p.Query(t.Context(), "up", time.Time{}); !errors.As(err, &apiErr) || apiErr.Type != "bad_data" || apiErr.StatusCode != 400 {
		t.Errorf("Query: %v, want an *APIError of type bad_data", err)
	}
	for _, addr := range []string{"", "prometheus:9090", "ftp://prometheus"} {
		if _, err := (Prometheus{Address: addr}).Query(t.Context(), "up", time.Time{}); err == nil || !strings.Contains(err.Error(), "is not an http or https URL") {
			t.Errorf("address %q: %v", addr, err)
		}
	}
}

// TestPrometheus runs analyses against a real Prometheus server that
// scrapes a target whose request and error counters grow with every scrape.
// The subtests share the server, since a server's first scrape takes seconds.
func TestPrometheus(t *testing.T) {
	const (
		requestsPerScrape = 1000
		errorRate         = `sum(rate(errors_total[5s])) / sum(rate(requests_total[5s]))`
	)
	var errorsPerScrape atomic.Int64
	errorsPerScrape.Store(2) // an error rate of 0.002
	target := promtest.NewTarget(t)
	target.SetCounter("requests_total", nil, 0)
	target.SetCounter("errors_total", nil, 0)
	target.OnScrape(func() {
		target.Add("requests_total", nil, requestsPerScrape)
		target.Add("errors_total", nil, float64(errorsPerScrape.Load()))
	})
	prom := promtest.Start(t, promtest.Config{Targets: []string{target.Address()}, ScrapeInterval: time.Second})
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	provider := Prometheus{Address: prom.URL(), Client: &http.Client{Transport: transport, Timeout: 10 * time.Second}}
	prom.Await(t, errorRate, 30*time.Second)

	run := func(t *testing.T, a Analysis) (Verdict, []Measurement) {
		t.Helper()
		a.Provider = provider
		var ms []Measurement
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		v, err := Run(ctx, a, RealClock{}, func(m Measurement) { ms = append(ms, m) })
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		return v, ms
	}

	t.Run("low error rate", func(t *testing.T) {
		v, ms := run(t, Analysis{
			Query:            "scalar(" + errorRate + ")",
			Interval:         time.Second,
			Count:            3,
			SuccessCondition: "result < 0.01",
			FailureCondition: "result > 0.05",
		})
		if v != Successful || letters(ms) != "S S S" {
			t.Fatalf("verdict %s, measurements %q %+v; want successful, S S S", v, letters(ms), ms)
		}
		for _, m := range ms {
			if m.Value.Scalar == nil || math.Abs(*m.Value.Scalar-0.002) > 1e-9 {
				t.Errorf("measured %v, want 0.002", m.Value)
			}
		}
		if d := ms[2].At.Sub(ms[0].At); d < 2*time.Second || d > 4*time.Second {
			t.Errorf("three measurements a second apart took %v", d)
		}
	})

	t.Run("vector", func(t *testing.T) {
		v, ms := run(t, Analysis{
			Query:            `sum by (job) (rate(errors_total[5s])) / sum by (job) (rate(requests_total[5s]))`,
			SuccessCondition: "result.all(x, x < 0.01)",
		})
		if v != Successful || len(ms[0].Value.Vector) != 1 || ms[0].Value.Vector[0].Labels["job"] != "test" {
			t.Fatalf("verdict %s, measurements %+v; want successful with one series of job test", v, ms)
		}
	})

	t.Run("high error rate", func(t *testing.T) {
		errorsPerScrape.Store(200) // an error rate of 0.2
		prom.Await(t, errorRate+" > 0.05", 20*time.Second)
		v, ms := run(t, Analysis{
			Query:            "scalar(" + errorRate + ")",
			Interval:         time.Second,
			Count:            3,
			SuccessCondition: "result < 0.01",
			FailureCondition: "result > 0.05",
		})
		if v != Failed || letters(ms) != "F" {
			t.Fatalf("verdict %s, measurements %q %+v; want failed at the first", v, letters(ms), ms)
		}
	})

	t.Run("no data", func(t *testing.T) {
		for _, query := range []string{
			`sum(rate(missing_total[5s]))`,         // an empty vector
			`scalar(sum(rate(missing_total[5s])))`, // NaN
		} {
			for noData, want := range map[string]string{
				NoDataFail:         "F",
				NoDataPass:         "S",
				NoDataInconclusive: "I",
				NoDataWait:         "W I",
			} {
				v, ms := run(t, Analysis{
					Query:            query,
					Interval:         time.Second,
					NoData:           noData,
					SuccessCondition: "result < 0.01",
				})
				if letters(ms) != want || ms[0].Value == nil || !ms[0].Value.Empty() {
					t.Errorf("%s with noData %s: verdict %s, measurements %q %+v; want %s", query, noData, v, letters(ms), ms, want)
				}
			}
		}
	})

	t.Run("the past", func(t *testing.T) {
		v, err := provider.Query(t.Context(), "requests_total", time.Now().Add(-time.Hour))
		if err != nil || !v.Empty() {
			t.Errorf("requests_total an hour before the server started: %v, %v; want no data", v, err)
		}
	})

	t.Run("bad query", func(t *testing.T) {
		v, ms := run(t, Analysis{
			Query:                 "sum(rate(errors_total[5s])",
			ConsecutiveErrorLimit: -1,
			SuccessCondition:      "result < 0.01",
		})
		if v != Errored || len(ms) != 1 || !strings.Contains(ms[0].Error, "prometheus: bad_data: ") {
			t.Fatalf("verdict %s, measurements %+v; want one bad_data error", v, ms)
		}
	})
}

// fakeRangePrometheus serves body with status for /prom/api/v1/query_range,
// and records the form of the last request.
func fakeRangePrometheus(t *testing.T, status int, body string) (Prometheus, *url.Values) {
	t.Helper()
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/prom/api/v1/query_range" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("ParseForm: %v", err)
		}
		form = r.PostForm
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return Prometheus{Address: srv.URL + "/prom", Client: srv.Client()}, &form
}

func TestPrometheusQueryRange(t *testing.T) {
	start := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	end := start.Add(3 * time.Second)
	// Two series: the second lacks the first timestamp and has a NaN at the
	// third; the series come in no particular time order.
	p, form := fakeRangePrometheus(t, http.StatusOK, `{"status":"success","data":{"resultType":"matrix","result":[
		{"metric":{"pod":"a"},"values":[[1741608002,"3"],[1741608000,"1"],[1741608001,"2"],[1741608003,"NaN"]]},
		{"metric":{"pod":"b"},"values":[[1741608001,"10"],[1741608002,"NaN"],[1741608003,"NaN"]]}]}}`)
	got, err := p.QueryRange(t.Context(), "rate(x[1m])", start, end, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 12, 3}
	if len(got) != len(want) {
		t.Fatalf("QueryRange = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("QueryRange = %v, want %v", got, want)
		}
	}
	if f := *form; f.Get("query") != "rate(x[1m])" || f.Get("start") != "1741608000.000" ||
		f.Get("end") != "1741608003.000" || f.Get("step") != "1.5" {
		t.Errorf("form %v", f)
	}

	p, _ = fakeRangePrometheus(t, http.StatusOK, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
	if got, err := p.QueryRange(t.Context(), "x", start, end, time.Second); err != nil || len(got) != 0 {
		t.Errorf("empty matrix: %v, %v", got, err)
	}

	errs := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"bad query", http.StatusBadRequest,
			`{"status":"error","errorType":"bad_data","error":"parse error"}`,
			"prometheus: bad_data: parse error (status 400)"},
		{"not the API", http.StatusBadGateway, "<html>Bad Gateway</html>",
			"/prom/api/v1/query_range: status 502: <html>Bad Gateway</html>"},
		{"vector", http.StatusOK,
			`{"status":"success","data":{"resultType":"vector","result":[]}}`, "returns a vector, not a matrix"},
		{"bad sample", http.StatusOK,
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"many"]]}]}}`,
			`sample value "many" is not a number`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := fakeRangePrometheus(t, tt.status, tt.body)
			_, err := p.QueryRange(t.Context(), "x", start, end, time.Second)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("QueryRange: %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := p.QueryRange(t.Context(), "x", start, end, 0); err == nil {
		t.Error("step 0: no error")
	}
	if _, err := p.QueryRange(t.Context(), "x", end, start, time.Second); err == nil {
		t.Error("end before start: no error")
	}
	if _, err := (Prometheus{Address: "prometheus:9090"}).QueryRange(t.Context(), "x", start, end, time.Second); err == nil ||
		!strings.Contains(err.Error(), "is not an http or https URL") {
		t.Errorf("bad address: %v", err)
	}
}
