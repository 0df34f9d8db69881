package analysis

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const statusDoc = `{"status":"ok","data":{"errorRate":0.002,"items":[{"name":"api","ready":true},{"name":"web","ready":false}]},"none":null}`

func webServer(t *testing.T, status int, body string) (*httptest.Server, *http.Request) {
	t.Helper()
	got := new(http.Request)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*got = *r.Clone(r.Context())
		got.Body = io.NopCloser(strings.NewReader(string(b)))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestWebJSONPath(t *testing.T) {
	srv, _ := webServer(t, http.StatusOK, statusDoc)
	tests := []struct {
		path string
		want string // fmt of the value; "no data" when empty
	}{
		{"", "map[data:map[errorRate:0.002 items:[map[name:api ready:true] map[name:web ready:false]]] none:<nil> status:ok]"},
		{"$", "map[data:map[errorRate:0.002 items:[map[name:api ready:true] map[name:web ready:false]]] none:<nil> status:ok]"},
		{"$.status", "ok"},
		{"$.data.errorRate", "0.002"},
		{"data.errorRate", "0.002"},
		{"$['data']['items'][1].name", "web"},
		{`$.data.items[0]["ready"]`, "true"},
		{"$.data.items[2]", "no data"},
		{"$.data.missing", "no data"},
		{"$.status.deeper", "no data"},
		{"$.none", "no data"},
	}
	for _, tt := range tests {
		v, err := Web{URL: srv.URL, JSONPath: tt.path, Client: srv.Client()}.Query(t.Context(), "", time.Time{})
		if err != nil {
			t.Errorf("jsonPath %q: %v", tt.path, err)
			continue
		}
		if got := v.String(); got != tt.want {
			t.Errorf("jsonPath %q: %s, want %s", tt.path, got, tt.want)
		}
	}
	for _, path := range []string{"$.", "$..a", "$.a[", "$.a[-1]", "$.a[x]", "$.*", "$x"} {
		_, err := Web{URL: srv.URL, JSONPath: path, Client: srv.Client()}.Query(t.Context(), "", time.Time{})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("web: jsonPath %q: ", path)) {
			t.Errorf("jsonPath %q: %v, want an error", path, err)
		}
	}
}

func TestWebRequest(t *testing.T) {
	srv, got := webServer(t, http.StatusOK, `[1, 2]`)
	w := Web{
		URL:     srv.URL + "/metrics?window=5m",
		Method:  "post",
		Headers: map[string]string{"Authorization": "Bearer t0ken", "Host": "metrics.example.com"},
		Body:    `{"query":"errors"}`,
		Client:  srv.Client(),
	}
	v, err := w.Query(t.Context(), "ignored", time.Time{})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if v.Empty() || v.String() != "[1 2]" {
		t.Errorf("value %v, want [1 2]", v)
	}
	body, _ := io.ReadAll(got.Body)
	if got.Method != http.MethodPost || got.URL.RequestURI() != "/metrics?window=5m" ||
		got.Header.Get("Authorization") != "Bearer t0ken" || got.Host != "metrics.example.com" ||
		string(body) != `{"query":"errors"}` {
		t.Errorf("request %s %s host %s headers %v body %s", got.Method, got.URL, got.Host, got.Header, body)
	}

	// An empty list is data; conditions decide what it means.
	srv, _ = webServer(t, http.StatusOK, `[]`)
	if v, err := (Web{URL: srv.URL, Client: srv.Client()}).Query(t.Context(), "", time.Time{}); err != nil || v.Empty() {
		t.Errorf("[]: %v, %v; want data", v, err)
	}
}

func TestWebErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"status", http.StatusServiceUnavailable, `{"status":"down"}`, `/status: status 503, want 2xx: {"status":"down"}`},
		{"not JSON", http.StatusOK, "<html>", "response is not JSON"},
		{"two documents", http.StatusOK, "{} {}", "more than one JSON document"},
	}
	for _, tt := range tests {
		srv, _ := webServer(t, tt.status, tt.body)
		_, err := Web{URL: srv.URL + "/status", Client: srv.Client()}.Query(t.Context(), "", time.Time{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := (Web{URL: "localhost:8080/x"}).Query(t.Context(), "", time.Time{}); err == nil || !strings.Contains(err.Error(), "not an http or https URL") {
		t.Errorf("relative URL: %v", err)
	}
	_, err := Web{URL: "http://user:secret@127.0.0.1:1/x"}.Query(t.Context(), "", time.Time{})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("unreachable: %v; want an error without the password", err)
	}
}

// TestWebAnalysis runs an analysis whose conditions read a JSON document.
func TestWebAnalysis(t *testing.T) {
	srv, _ := webServer(t, http.StatusOK, statusDoc)
	clock := &fakeClock{now: start}
	v, err := Run(t.Context(), Analysis{
		Provider:         Web{URL: srv.URL, JSONPath: "$.data", Client: srv.Client()},
		Interval:         time.Second,
		Count:            2,
		SuccessCondition: `result.errorRate < 0.01 && result.items.exists(i, i.name == "api" && i.ready)`,
		FailureCondition: "result.errorRate > 0.05",
	}, clock, nil)
	if err != nil || v != Successful {
		t.Errorf("Run = %s, %v; want successful", v, err)
	}
}
