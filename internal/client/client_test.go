package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/api"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/view"
)

// request is what a test server saw.
type request struct {
	method, path, query, actor, key string
	body                            string
}

// recordingServer answers every request with respond and records it.
func recordingServer(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, n int)) (*Client, *[]request) {
	t.Helper()
	var mu sync.Mutex
	var seen []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Ferry-Actor"),
			r.Header.Get("Idempotency-Key"), string(body)})
		n := len(seen)
		mu.Unlock()
		respond(w, r, n)
	}))
	t.Cleanup(srv.Close)
	c := New(srv.URL+"/", srv.Client())
	c.RetryBackoff = time.Millisecond
	return c, &seen
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestPostCarriesActorAndIdempotencyKey(t *testing.T) {
	c, seen := recordingServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		writeJSON(w, http.StatusCreated, view.Promotion{ID: "p1", State: promotion.Queued, Version: 1})
	})
	c.Actor = "alice"
	p, err := c.Promote(t.Context(), engine.PromoteRequest{Pipeline: "shop", Release: "1.0.0", Environment: "prod", Reason: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "p1" {
		t.Errorf("promotion = %+v", p)
	}
	if _, err := c.Promote(t.Context(), engine.PromoteRequest{Pipeline: "shop"}); err != nil {
		t.Fatal(err)
	}
	got := *seen
	if got[0].method != http.MethodPost || got[0].path != "/api/v1/promotions" || got[0].actor != "alice" {
		t.Errorf("request = %+v", got[0])
	}
	if got[0].key == "" || got[1].key == "" || got[0].key == got[1].key {
		t.Errorf("idempotency keys = %q, %q; want two different keys", got[0].key, got[1].key)
	}
	if !strings.Contains(got[0].body, `"environment":"prod"`) {
		t.Errorf("body = %s", got[0].body)
	}
}

func TestRetryAfterConnectionErrorKeepsKey(t *testing.T) {
	c, seen := recordingServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			// Drop the connection without answering.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		writeJSON(w, http.StatusOK, view.Promotion{ID: "p1", State: promotion.Aborted})
	})
	if _, err := c.Abort(t.Context(), "p1", "stop"); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	got := *seen
	if len(got) != 2 {
		t.Fatalf("%d attempts, want 2", len(got))
	}
	if got[0].key == "" || got[0].key != got[1].key {
		t.Errorf("keys = %q, %q; want the same key on the retry", got[0].key, got[1].key)
	}
	if got[1].path != "/api/v1/promotions/p1/abort" || got[1].body != `{"reason":"stop"}` {
		t.Errorf("request = %+v", got[1])
	}
}

func TestConnectionRefusedGivesUpAfterRetries(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c := New(base, nil)
	c.RetryBackoff = time.Millisecond
	err := c.Health(t.Context())
	if err == nil || !strings.Contains(err.Error(), "GET /healthz") {
		t.Fatalf("err = %v", err)
	}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		t.Errorf("a connection error is not an API error: %v", err)
	}
}

func TestProblemBecomesError(t *testing.T) {
	problems := []pipeline.Problem{
		{File: "shop.yaml", Line: 3, Column: 5, Field: "environments[0].name", Message: "is required"},
		{File: "shop.yaml", Line: 9, Column: 7, Message: "unknown field"},
	}
	c, _ := recordingServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"type": "x", "title": "Invalid request", "status": 400, "code": "invalid",
			"detail": "shop.yaml has 2 problems", "errors": problems,
		})
	})
	_, err := c.Apply(t.Context(), "shop.yaml", []byte("name: shop\n"))
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %T %v, want *Error", err, err)
	}
	if apiErr.Status != 400 || apiErr.Problem.Code != "invalid" || len(apiErr.Problem.Errors) != 2 {
		t.Errorf("error = %+v", apiErr)
	}
	want := "shop.yaml has 2 problems\nshop.yaml:3:5: environments[0].name: is required\nshop.yaml:9:7: unknown field"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if Code(err) != "invalid" {
		t.Errorf("Code = %q", Code(err))
	}
}

func TestProblemDetailRepeatingTheListIsNotDoubled(t *testing.T) {
	p := pipeline.Problem{File: "a.yaml", Line: 1, Column: 1, Message: "bad"}
	e := &Error{Status: 400, Problem: Problem{Detail: p.String(), Errors: []pipeline.Problem{p}}}
	if e.Error() != "a.yaml:1:1: bad" {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestNonProblemErrorResponse(t *testing.T) {
	c, _ := recordingServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html>bad gateway</html>")
	})
	_, err := c.Pipelines(t.Context())
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadGateway {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "bad gateway") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestQueriesAreEncoded(t *testing.T) {
	c, seen := recordingServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if strings.HasSuffix(r.URL.Path, "/p1") {
			writeJSON(w, http.StatusOK, view.Promotion{ID: "p1"})
			return
		}
		writeJSON(w, http.StatusOK, []any{})
	})
	ctx := t.Context()
	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	_, _ = c.Promotions(ctx, PromotionQuery{Pipeline: "shop", Environment: "prod", States: []promotion.State{promotion.Queued, promotion.Gating},
		Active: true, Release: "1.0.0", Limit: 5})
	_, _ = c.Audit(ctx, AuditQuery{PromotionID: "p1", Actor: "alice", Action: "promotion.abort", Since: since, After: 9, Limit: 3})
	_, _ = c.History(ctx, "shop", "prod", 7)
	_, _ = c.WaitPromotion(ctx, "p1", 4, 45*time.Second)
	_, _ = c.Releases(ctx, "my shop", 0)
	want := []string{
		"/api/v1/promotions?active=true&environment=prod&limit=5&pipeline=shop&release=1.0.0&state=queued&state=gating",
		"/api/v1/audit?action=promotion.abort&actor=alice&after=9&limit=3&promotion=p1&since=2025-01-02T03%3A04%3A05Z",
		"/api/v1/pipelines/shop/history?environment=prod&limit=7",
		"/api/v1/promotions/p1?timeout=45s&waitVersion=4",
		"/api/v1/pipelines/my shop/releases?",
	}
	for i, w := range want {
		got := (*seen)[i].path + "?" + (*seen)[i].query
		if got != w {
			t.Errorf("request %d = %s, want %s", i, got, w)
		}
	}
}

func TestCreateReleaseReportsCreated(t *testing.T) {
	status := http.StatusCreated
	c, seen := recordingServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		writeJSON(w, status, release.Release{ID: "r1", Pipeline: "shop", Version: "1.0.0"})
	})
	r := release.Release{Pipeline: "shop", Version: "1.0.0", BuildURL: "https://ci/1",
		Artifacts: []release.Artifact{{Name: "api", URI: "reg/api", Digest: "sha256:" + strings.Repeat("a", 64)}}}
	_, created, err := c.CreateRelease(t.Context(), r)
	if err != nil || !created {
		t.Errorf("created = %v, err = %v", created, err)
	}
	status = http.StatusOK
	if _, created, _ = c.CreateRelease(t.Context(), r); created {
		t.Errorf("created on 200")
	}
	body := (*seen)[0].body
	if (*seen)[0].path != "/api/v1/pipelines/shop/releases" || strings.Contains(body, `"pipeline"`) ||
		!strings.Contains(body, `"buildUrl":"https://ci/1"`) {
		t.Errorf("request = %+v", (*seen)[0])
	}
}

// panicService implements no method: every call panics, which the API turns
// into a 500. It is enough to show that each client method reaches a route.
type panicService struct{ api.Service }

// TestEveryMethodReachesARoute runs each client method against the real API
// handler: none may come back route_not_found or method_not_allowed.
func TestEveryMethodReachesARoute(t *testing.T) {
	srv := httptest.NewServer(api.New(api.Config{Service: panicService{}, DisableAuth: true}))
	t.Cleanup(srv.Close)
	c := New(srv.URL, srv.Client())
	ctx := t.Context()
	calls := map[string]func(context.Context) error{
		"Health": c.Health,
		"Ready":  c.Ready,
		"Apply": func(ctx context.Context) error {
			_, err := c.Apply(ctx, "f.yaml", []byte("name: x"))
			return err
		},
		"Pipelines": func(ctx context.Context) error { _, err := c.Pipelines(ctx); return err },
		"Pipeline":  func(ctx context.Context) error { _, err := c.Pipeline(ctx, "shop", 2); return err },
		"Status":    func(ctx context.Context) error { _, err := c.Status(ctx, "shop"); return err },
		"History":   func(ctx context.Context) error { _, err := c.History(ctx, "shop", "prod", 3); return err },
		"CreateRelease": func(ctx context.Context) error {
			_, _, err := c.CreateRelease(ctx, release.Release{Pipeline: "shop", Version: "1"})
			return err
		},
		"Releases":   func(ctx context.Context) error { _, err := c.Releases(ctx, "shop", 3); return err },
		"Release":    func(ctx context.Context) error { _, err := c.Release(ctx, "shop", "1.0.0"); return err },
		"Promote":    func(ctx context.Context) error { _, err := c.Promote(ctx, engine.PromoteRequest{}); return err },
		"Rollback":   func(ctx context.Context) error { _, err := c.Rollback(ctx, engine.RollbackRequest{}); return err },
		"Abort":      func(ctx context.Context) error { _, err := c.Abort(ctx, "p1", "r"); return err },
		"Promotion":  func(ctx context.Context) error { _, err := c.Promotion(ctx, "p1"); return err },
		"Promotions": func(ctx context.Context) error { _, err := c.Promotions(ctx, PromotionQuery{Limit: 1}); return err },
		"WaitPromotion": func(ctx context.Context) error {
			_, err := c.WaitPromotion(ctx, "p1", 1, time.Second)
			return err
		},
		"Logs":    func(ctx context.Context) error { _, err := c.Logs(ctx, "p1"); return err },
		"Audit":   func(ctx context.Context) error { _, err := c.Audit(ctx, AuditQuery{After: 1}); return err },
		"Cluster": func(ctx context.Context) error { _, err := c.Cluster(ctx); return err },
	}
	for name, call := range calls {
		err := call(ctx)
		if code := Code(err); code == "route_not_found" || code == "method_not_allowed" || code == "invalid" {
			t.Errorf("%s: %v (%s)", name, err, code)
		}
	}
}

func TestClusterDecodesReplicas(t *testing.T) {
	started := time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)
	c, seen := recordingServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		writeJSON(w, http.StatusOK, []view.Replica{{ID: "a:1", Host: "a", Addr: "10.0.0.1:7420", StartedAt: started,
			SeenAt: started, Self: true, Driving: []view.PromotionRef{{ID: "p1", Pipeline: "shop", Environment: "prod",
				State: promotion.Verifying, Kind: promotion.KindPromote}}}})
	})
	reps, err := c.Cluster(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if (*seen)[0].method != http.MethodGet || (*seen)[0].path != "/api/v1/cluster" {
		t.Errorf("request = %+v", (*seen)[0])
	}
	if len(reps) != 1 || !reps[0].Self || !reps[0].StartedAt.Equal(started) || len(reps[0].Driving) != 1 ||
		reps[0].Driving[0].Environment != "prod" || reps[0].Driving[0].State != promotion.Verifying {
		t.Errorf("replicas = %+v", reps)
	}
}
