package http_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/step"
	ferryhttp "github.com/ferry-dev/ferry/internal/step/http"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// received is what the test server saw of one request.
type received struct {
	method string
	path   string
	host   string
	header http.Header
	body   string
}

type testServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newServer(t *testing.T, h http.HandlerFunc) *testServer {
	t.Helper()
	s := &testServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, received{r.Method, r.URL.Path, r.Host, r.Header.Clone(), string(b)})
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) last(t *testing.T) received {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("the server received no request")
	}
	return s.reqs[len(s.reqs)-1]
}

func request(h pipeline.HTTP, out io.Writer) step.Request {
	return step.Request{
		PromotionID:    "prm_1",
		Step:           pipeline.Step{Name: "smoke", HTTP: &h},
		Attempt:        1,
		IdempotencyKey: "idem-1",
		TraceParent:    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		Output:         out,
	}
}

func TestRunSendsRequest(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"deployed":true}`)
	})
	var out bytes.Buffer
	res := ferryhttp.Driver{}.Run(t.Context(), request(pipeline.HTTP{
		Method:  "post",
		URL:     s.URL + "/deploy",
		Headers: map[string]string{"Content-Type": "application/json", "X-Token": "abc", "Host": "deploy.internal"},
		Body:    `{"version":"1.2.3"}`,
	}, &out))
	if !res.OK || res.Message != "" {
		t.Fatalf("result %+v, want success", res)
	}
	got := s.last(t)
	if got.method != "POST" || got.path != "/deploy" || got.body != `{"version":"1.2.3"}` || got.host != "deploy.internal" {
		t.Errorf("server received %+v", got)
	}
	for name, want := range map[string]string{
		"Content-Type":    "application/json",
		"X-Token":         "abc",
		"Idempotency-Key": "idem-1",
		"Traceparent":     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"User-Agent":      "ferry",
	} {
		if v := got.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	first, rest, _ := strings.Cut(out.String(), "\n")
	if !strings.HasPrefix(first, "POST "+s.URL+"/deploy: 202 Accepted (") {
		t.Errorf("summary line %q", first)
	}
	if rest != "{\"deployed\":true}\n" {
		t.Errorf("body in output %q", rest)
	}
}

func TestRunDefaultsToGetAnd2xx(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusNoContent)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(status.Load())) })
	d := ferryhttp.Driver{Client: s.Client()}
	if res := d.Run(t.Context(), request(pipeline.HTTP{URL: s.URL + "/healthz"}, nil)); !res.OK {
		t.Fatalf("204: result %+v", res)
	}
	if m := s.last(t).method; m != "GET" {
		t.Errorf("method %s, want GET", m)
	}
	status.Store(http.StatusNotFound)
	res := d.Run(t.Context(), request(pipeline.HTTP{URL: s.URL + "/healthz"}, nil))
	if want := "GET " + s.URL + "/healthz: status 404, want 2xx"; res.OK || res.Message != want {
		t.Fatalf("result %+v, want message %q", res, want)
	}
}

func TestRunWrongStatus(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "backend down", http.StatusServiceUnavailable)
	})
	var out bytes.Buffer
	res := ferryhttp.Driver{}.Run(t.Context(), request(pipeline.HTTP{URL: s.URL + "/healthz", ExpectStatus: 200}, &out))
	want := "GET " + s.URL + "/healthz: status 503, want 200"
	if res.OK || res.Interrupted || res.Message != want {
		t.Fatalf("result %+v, want message %q", res, want)
	}
	if !strings.Contains(out.String(), "503 Service Unavailable") || !strings.Contains(out.String(), "backend down") {
		t.Errorf("output %q lacks the status and body", out.String())
	}
}

func TestRunExpectRedirect(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusFound)
		}
	})
	res := ferryhttp.Driver{}.Run(t.Context(), request(pipeline.HTTP{URL: s.URL + "/old", ExpectStatus: 302}, nil))
	if !res.OK {
		t.Fatalf("result %+v, want the redirect itself accepted", res)
	}
	// Expecting 200, the redirect is followed.
	if res := (ferryhttp.Driver{}).Run(t.Context(), request(pipeline.HTTP{URL: s.URL + "/old", ExpectStatus: 200}, nil)); !res.OK {
		t.Fatalf("result %+v, want the redirect followed", res)
	}
	if p := s.last(t).path; p != "/new" {
		t.Errorf("last path %s, want /new", p)
	}
}

// blockingServer answers once its handler's request ends.
func blockingServer(t *testing.T) (*testServer, <-chan struct{}) {
	arrived := make(chan struct{}, 10)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	return s, arrived
}

func TestRunTimeout(t *testing.T) {
	s, _ := blockingServer(t)
	var out bytes.Buffer
	began := time.Now()
	res := ferryhttp.Driver{}.Run(t.Context(), request(pipeline.HTTP{
		URL:     s.URL + "/slow",
		Timeout: pipeline.Duration(100 * time.Millisecond),
	}, &out))
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Run took %v", took)
	}
	want := "GET " + s.URL + "/slow: timed out after 100ms"
	if res.OK || res.Interrupted || res.Message != want {
		t.Fatalf("result %+v, want message %q", res, want)
	}
	if out.String() != want+"\n" {
		t.Errorf("output %q", out.String())
	}
}

func TestRunCancelled(t *testing.T) {
	s, arrived := blockingServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan step.Result)
	go func() { done <- ferryhttp.Driver{}.Run(ctx, request(pipeline.HTTP{URL: s.URL}, nil)) }()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never arrived")
	}
	cancel()
	if res := <-done; !res.Interrupted || res.OK {
		t.Fatalf("result %+v, want Interrupted", res)
	}
}

func TestRunTransportError(t *testing.T) {
	s := newServer(t, func(http.ResponseWriter, *http.Request) {})
	url := s.URL + "/healthz"
	s.Close()
	res := ferryhttp.Driver{}.Run(t.Context(), request(pipeline.HTTP{URL: url}, nil))
	if res.OK || res.Interrupted || !strings.HasPrefix(res.Message, "GET "+url+": ") || !strings.Contains(res.Message, "connection refused") {
		t.Fatalf("result %+v, want a connection error naming the request", res)
	}
	if strings.Count(res.Message, url) != 1 {
		t.Errorf("message %q repeats the URL", res.Message)
	}
}

func TestRunBodyLimit(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("y", 10000))
	})
	var out bytes.Buffer
	if res := (ferryhttp.Driver{}).Run(t.Context(), request(pipeline.HTTP{URL: s.URL}, &out)); !res.OK {
		t.Fatalf("result %+v", res)
	}
	_, rest, _ := strings.Cut(out.String(), "\n")
	want := strings.Repeat("y", ferryhttp.BodyLimit) + "\n[ferry: response body truncated after 4096 bytes]\n"
	if rest != want {
		t.Errorf("output after the summary: %d bytes ending %q", len(rest), rest[max(0, len(rest)-60):])
	}
}

func TestRunHidesURLPassword(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	var out bytes.Buffer
	url := strings.Replace(s.URL, "http://", "http://deployer:s3cret@", 1)
	res := ferryhttp.Driver{}.Run(t.Context(), request(pipeline.HTTP{URL: url}, &out))
	if res.OK || strings.Contains(res.Message, "s3cret") || strings.Contains(out.String(), "s3cret") {
		t.Fatalf("password shown: message %q, output %q", res.Message, out.String())
	}
	if h := s.last(t).header.Get("Authorization"); !strings.HasPrefix(h, "Basic ") {
		t.Errorf("Authorization %q, want basic auth from the URL", h)
	}
}

func TestRunWithoutHTTP(t *testing.T) {
	req := request(pipeline.HTTP{}, nil)
	req.Step.HTTP = nil
	if res := (ferryhttp.Driver{}).Run(t.Context(), req); res.OK || res.Message == "" {
		t.Fatalf("result %+v, want a failure", res)
	}
}
