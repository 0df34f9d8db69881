package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/view"
)

type testBundle struct {
	svc  *fakeService
	h    http.Handler
	logs *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// setup returns a handler over a fake service and a real SQLite store;
// configure adjusts the Config first.
func setup(t *testing.T, configure ...func(*Config)) *testBundle {
	t.Helper()
	b := &testBundle{svc: &fakeService{}, logs: &syncBuffer{}}
	cfg := Config{
		Service:     b.svc,
		Store:       openStore(t),
		DisableAuth: true,
		Logger:      slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, c := range configure {
		c(&cfg)
	}
	b.h = New(cfg)
	return b
}

// do serves one request; headers are name, value pairs.
func (b *testBundle) do(t *testing.T, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequestWithContext(t.Context(), method, target, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	return rec
}

// readProblem checks that rec is a problem response with status and code and returns it.
func readProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) map[string]any {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem is not JSON: %v: %s", err, rec.Body)
	}
	for _, member := range []string{"type", "title", "status", "detail", "instance", "code"} {
		if _, ok := p[member]; !ok {
			t.Errorf("problem lacks %q: %s", member, rec.Body)
		}
	}
	if p["status"] != float64(status) {
		t.Errorf("problem status = %v, want %d", p["status"], status)
	}
	if p["code"] != code {
		t.Fatalf("problem code = %v, want %q; body: %s", p["code"], code, rec.Body)
	}
	if p["type"] != problemTypeBase+code {
		t.Errorf("problem type = %v, want %s", p["type"], problemTypeBase+code)
	}
	return p
}

func TestEngineErrorsMapToStatuses(t *testing.T) {
	tests := []struct {
		code   engine.Code
		status int
	}{
		{engine.CodeInvalid, http.StatusBadRequest},
		{engine.CodeNotFound, http.StatusNotFound},
		{engine.CodeConflict, http.StatusConflict},
		{engine.CodePrecondition, http.StatusUnprocessableEntity},
		{engine.CodeUnavailable, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			b := setup(t)
			b.svc.err = fmt.Errorf("wrapped: %w", &engine.Error{Code: tt.code, Message: "it went wrong: " + string(tt.code)})
			rec := b.do(t, http.MethodGet, "/api/v1/pipelines", "")
			p := readProblem(t, rec, tt.status, string(tt.code))
			if p["detail"] != "it went wrong: "+string(tt.code) {
				t.Errorf("detail = %v", p["detail"])
			}
			if p["instance"] != "/api/v1/pipelines" {
				t.Errorf("instance = %v", p["instance"])
			}
		})
	}
}

func TestUnexpectedErrorIs500WithoutCause(t *testing.T) {
	b := setup(t)
	b.svc.err = errors.New("dial tcp 10.1.2.3:5432: secret detail")
	rec := b.do(t, http.MethodGet, "/api/v1/pipelines", "")
	p := readProblem(t, rec, http.StatusInternalServerError, codeInternal)
	if strings.Contains(rec.Body.String(), "secret detail") {
		t.Errorf("500 problem leaks the cause: %v", p["detail"])
	}
	if !strings.Contains(b.logs.String(), "secret detail") {
		t.Errorf("the cause is not logged: %s", b.logs)
	}
}

func TestValidationErrorsAreListed(t *testing.T) {
	b := setup(t)
	problems := []pipeline.Problem{
		{File: "shop.yaml", Line: 3, Column: 5, Field: "environments[0].name", Message: "is required"},
		{File: "shop.yaml", Line: 9, Column: 7, Field: "environments[1].after", Message: `"qa" is not an environment`},
	}
	b.svc.apply = func(string, string, []byte) (view.ApplyResult, error) {
		return view.ApplyResult{}, &engine.Error{Code: engine.CodeInvalid, Message: "shop.yaml has 2 problems", Details: problems}
	}
	rec := b.do(t, http.MethodPost, "/api/v1/pipelines", `{"filename":"shop.yaml","source":"name: shop\n"}`)
	readProblem(t, rec, http.StatusBadRequest, codeInvalid)
	var got struct {
		Errors []pipeline.Problem `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Errors, problems) {
		t.Errorf("errors = %+v, want %+v", got.Errors, problems)
	}
}

func TestNonListDetailsAreDetails(t *testing.T) {
	b := setup(t)
	b.svc.promote = func(engine.PromoteRequest) (*view.Promotion, error) {
		return nil, &engine.Error{Code: engine.CodePrecondition, Message: "not in staging yet",
			Details: map[string]any{"missing": []string{"staging"}}}
	}
	rec := b.do(t, http.MethodPost, "/api/v1/promotions", `{"pipeline":"shop","release":"1.0.0","environment":"prod"}`)
	p := readProblem(t, rec, http.StatusUnprocessableEntity, codePrecondition)
	if _, ok := p["errors"]; ok {
		t.Errorf("errors present for an object: %s", rec.Body)
	}
	if d, ok := p["details"].(map[string]any); !ok || d["missing"] == nil {
		t.Errorf("details = %v", p["details"])
	}
}

func TestUnknownRouteIs404Problem(t *testing.T) {
	b := setup(t)
	for _, target := range []string{"/nope", "/api/v1/nope", "/api/v2/pipelines", "/api/v1/promotions/x/y/z"} {
		rec := b.do(t, http.MethodGet, target, "")
		readProblem(t, rec, http.StatusNotFound, codeNoRoute)
	}
}

func TestWrongMethodIs405Problem(t *testing.T) {
	b := setup(t)
	rec := b.do(t, http.MethodDelete, "/api/v1/promotions/abc", "")
	readProblem(t, rec, http.StatusMethodNotAllowed, codeMethodNotAllowed)
	if allow := rec.Header().Get("Allow"); allow != "GET" {
		t.Errorf("Allow = %q, want GET", allow)
	}
	rec = b.do(t, http.MethodPut, "/api/v1/pipelines", `{}`)
	readProblem(t, rec, http.StatusMethodNotAllowed, codeMethodNotAllowed)
	if allow := rec.Header().Get("Allow"); allow != "GET, POST" {
		t.Errorf("Allow = %q, want GET, POST", allow)
	}
}

func TestBodyOverLimitIs413(t *testing.T) {
	b := setup(t, func(c *Config) { c.MaxBodyBytes = 64 })
	big := `{"pipeline":"shop","release":"1.0.0","environment":"prod","reason":"` + strings.Repeat("x", 100) + `"}`

	// With a Content-Length, refused before reading.
	rec := b.do(t, http.MethodPost, "/api/v1/promotions", big)
	readProblem(t, rec, http.StatusRequestEntityTooLarge, codeTooLarge)

	// Without one (chunked), refused while reading, with and without an idempotency key.
	for _, key := range []string{"", "k1"} {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/v1/promotions",
			io.MultiReader(strings.NewReader(big)))
		req.ContentLength = -1
		if key != "" {
			req.Header.Set(HeaderIdempotencyKey, key)
		}
		rec = httptest.NewRecorder()
		b.h.ServeHTTP(rec, req)
		readProblem(t, rec, http.StatusRequestEntityTooLarge, codeTooLarge)
	}
	if n := b.svc.count("Promote"); n != 0 {
		t.Errorf("Promote called %d times for oversized bodies", n)
	}
}

func TestMalformedBodiesAre400(t *testing.T) {
	tests := []struct {
		name, body string
		// want are substrings of the problem's detail.
		want []string
	}{
		{"syntax", "{\n  \"pipeline\": \"shop\",\n  \"release\" \"1.0\"\n}", []string{"malformed JSON", "line 3, column 13", "offset"}},
		{"unknown field", `{"pipeline":"shop","relase":"1.0","environment":"prod"}`, []string{`unknown field "relase"`}},
		{"wrong type", `{"pipeline":"shop","force":"yes"}`, []string{`field "force" must be a boolean, not JSON string`, "line 1"}},
		{"not an object", `["shop"]`, []string{"must be an object"}},
		{"trailing data", `{"pipeline":"shop"} {"x":1}`, []string{"unexpected data after the JSON value"}},
		{"truncated", `{"pipeline":"sh`, []string{"unexpected end"}},
		{"empty", ` `, []string{"request body is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			rec := b.do(t, http.MethodPost, "/api/v1/promotions", tt.body)
			p := readProblem(t, rec, http.StatusBadRequest, codeInvalid)
			detail, _ := p["detail"].(string)
			for _, w := range tt.want {
				if !strings.Contains(detail, w) {
					t.Errorf("detail %q does not contain %q", detail, w)
				}
			}
			if n := b.svc.count("Promote"); n != 0 {
				t.Errorf("Promote called %d times", n)
			}
		})
	}
}

func TestApplyAnswers201WhenCreatedAnd200WhenUnchanged(t *testing.T) {
	b := setup(t)
	var gotFilename, gotSource string
	b.svc.apply = func(_, filename string, source []byte) (view.ApplyResult, error) {
		gotFilename, gotSource = filename, string(source)
		return view.ApplyResult{Pipeline: "shop", Revision: 3, Digest: "sha256:ab", Created: strings.Contains(gotSource, "new")}, nil
	}
	rec := b.do(t, http.MethodPost, "/api/v1/pipelines", `{"filename":"shop.yaml","source":"name: shop # new\n"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status = %d, want 201: %s", rec.Code, rec.Body)
	}
	if gotFilename != "shop.yaml" || gotSource != "name: shop # new\n" {
		t.Errorf("Apply got %q, %q", gotFilename, gotSource)
	}
	var res view.ApplyResult
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.Revision != 3 || !res.Created {
		t.Errorf("body = %s (%v)", rec.Body, err)
	}
	rec = b.do(t, http.MethodPost, "/api/v1/pipelines", `{"filename":"shop.yaml","source":"name: shop\n"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", rec.Code, rec.Body)
	}
	rec = b.do(t, http.MethodPost, "/api/v1/pipelines", `{"filename":"shop.yaml"}`)
	readProblem(t, rec, http.StatusBadRequest, codeInvalid)
}

func TestCreateReleaseStatuses(t *testing.T) {
	b := setup(t)
	stored := map[string]release.Release{}
	b.svc.createRelease = func(r release.Release) (*release.Release, bool, error) {
		if old, ok := stored[r.Version]; ok {
			if d := release.Difference(&old, &r); d != "" {
				return nil, false, &engine.Error{Code: engine.CodeConflict, Message: "release " + r.Version + " exists: " + d}
			}
			return &old, false, nil
		}
		r.ID = "rel-" + r.Version
		stored[r.Version] = r
		return &r, true, nil
	}
	body := func(digit string) string {
		return `{"version":"1.0.0","artifacts":[{"name":"api","uri":"reg/shop/api","digest":"sha256:` + strings.Repeat(digit, 64) + `"}],"labels":{"team":"a"}}`
	}
	if rec := b.do(t, http.MethodPost, "/api/v1/pipelines/shop/releases", body("a")); rec.Code != http.StatusCreated {
		t.Fatalf("create: status = %d: %s", rec.Code, rec.Body)
	}
	if stored["1.0.0"].Pipeline != "shop" {
		t.Errorf("pipeline from the path not passed: %+v", stored["1.0.0"])
	}
	if rec := b.do(t, http.MethodPost, "/api/v1/pipelines/shop/releases", body("a")); rec.Code != http.StatusOK {
		t.Fatalf("identical: status = %d: %s", rec.Code, rec.Body)
	}
	rec := b.do(t, http.MethodPost, "/api/v1/pipelines/shop/releases", body("b"))
	p := readProblem(t, rec, http.StatusConflict, codeConflict)
	if !strings.Contains(p["detail"].(string), `artifact "api"`) {
		t.Errorf("detail does not name the artifact: %v", p["detail"])
	}
	// The server assigns ID and creation time; a client cannot.
	rec = b.do(t, http.MethodPost, "/api/v1/pipelines/shop/releases", `{"version":"2","id":"mine","artifacts":[]}`)
	readProblem(t, rec, http.StatusBadRequest, codeInvalid)
}

func TestActorComesFromHeader(t *testing.T) {
	b := setup(t)
	b.svc.promote = func(engine.PromoteRequest) (*view.Promotion, error) {
		return testPromotion("p1", 1, promotion.Queued), nil
	}
	body := `{"pipeline":"shop","release":"1.0.0","environment":"prod"}`
	b.do(t, http.MethodPost, "/api/v1/promotions", body)
	b.do(t, http.MethodPost, "/api/v1/promotions", body, HeaderActor, "alice")
	if want := []string{DefaultActor, "alice"}; !slices.Equal(b.svc.actors, want) {
		t.Errorf("actors = %v, want %v", b.svc.actors, want)
	}
	rec := b.do(t, http.MethodPost, "/api/v1/promotions", body, HeaderActor, strings.Repeat("a", MaxActorLength+1))
	readProblem(t, rec, http.StatusBadRequest, codeInvalid)
}

func TestPromoteAnswers201(t *testing.T) {
	b := setup(t)
	var got engine.PromoteRequest
	b.svc.promote = func(req engine.PromoteRequest) (*view.Promotion, error) {
		got = req
		return testPromotion("p1", 1, promotion.Queued), nil
	}
	rec := b.do(t, http.MethodPost, "/api/v1/promotions",
		`{"pipeline":"shop","release":"1.0.0","environment":"prod","reason":"hotfix","force":true}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status = %d: %s", rec.Code, rec.Body)
	}
	// The engine gets who asks: with authentication off, the actor as global admin.
	if got.Principal == nil || got.Principal.User != DefaultActor || len(got.Principal.Grants) != 1 ||
		got.Principal.Grants[0] != (auth.Grant{Role: auth.RoleAdmin}) {
		t.Errorf("principal = %+v, want %s as global admin", got.Principal, DefaultActor)
	}
	got.Principal = nil
	want := engine.PromoteRequest{Pipeline: "shop", Release: "1.0.0", Environment: "prod", Reason: "hotfix", Force: true}
	if got != want {
		t.Errorf("request = %+v, want %+v", got, want)
	}
	var p view.Promotion
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.ID != "p1" {
		t.Errorf("body = %s (%v)", rec.Body, err)
	}
}

func TestIdempotentRepeatIsReplayed(t *testing.T) {
	b := setup(t)
	n := 0
	b.svc.promote = func(engine.PromoteRequest) (*view.Promotion, error) {
		n++
		return testPromotion("p"+string(rune('0'+n)), 1, promotion.Queued), nil
	}
	body := `{"pipeline":"shop","release":"1.0.0","environment":"prod"}`
	first := b.do(t, http.MethodPost, "/api/v1/promotions", body, HeaderIdempotencyKey, "key-1", HeaderActor, "alice")
	if first.Code != http.StatusCreated {
		t.Fatalf("first: status = %d: %s", first.Code, first.Body)
	}
	if first.Header().Get(HeaderReplayed) != "" {
		t.Errorf("first response marked replayed")
	}
	again := b.do(t, http.MethodPost, "/api/v1/promotions", body, HeaderIdempotencyKey, "key-1", HeaderActor, "alice")
	if again.Code != first.Code || again.Body.String() != first.Body.String() ||
		again.Header().Get("Content-Type") != first.Header().Get("Content-Type") {
		t.Errorf("replay = %d %q %s, want %d %q %s", again.Code, again.Header().Get("Content-Type"), again.Body,
			first.Code, first.Header().Get("Content-Type"), first.Body)
	}
	if again.Header().Get(HeaderReplayed) != "true" {
		t.Errorf("replay not marked: %v", again.Header())
	}
	if got := b.svc.count("Promote"); got != 1 {
		t.Errorf("Promote called %d times, want 1", got)
	}

	// The same key with another body is refused.
	other := b.do(t, http.MethodPost, "/api/v1/promotions", strings.Replace(body, "prod", "staging", 1),
		HeaderIdempotencyKey, "key-1", HeaderActor, "alice")
	readProblem(t, other, http.StatusUnprocessableEntity, codeIdempotencyMismatch)
	// So is the same key and body on another path.
	other = b.do(t, http.MethodPost, "/api/v1/rollbacks", body, HeaderIdempotencyKey, "key-1", HeaderActor, "alice")
	readProblem(t, other, http.StatusUnprocessableEntity, codeIdempotencyMismatch)

	// Keys are scoped by actor: bob's key-1 is another key.
	bob := b.do(t, http.MethodPost, "/api/v1/promotions", body, HeaderIdempotencyKey, "key-1", HeaderActor, "bob")
	if bob.Code != http.StatusCreated || bob.Header().Get(HeaderReplayed) != "" {
		t.Errorf("bob: status = %d, replayed = %q", bob.Code, bob.Header().Get(HeaderReplayed))
	}
	if got := b.svc.count("Promote"); got != 2 {
		t.Errorf("Promote called %d times, want 2", got)
	}
}

func TestIdempotencyStoresClientErrorsButNotServerErrors(t *testing.T) {
	b := setup(t)
	b.svc.promote = func(engine.PromoteRequest) (*view.Promotion, error) {
		return nil, &engine.Error{Code: engine.CodeNotFound, Message: `release "9.9" of pipeline shop does not exist`}
	}
	body := `{"pipeline":"shop","release":"9.9","environment":"prod"}`
	for range 2 {
		readProblem(t, b.do(t, http.MethodPost, "/api/v1/promotions", body, HeaderIdempotencyKey, "k404"), http.StatusNotFound, codeNotFound)
	}
	if got := b.svc.count("Promote"); got != 1 {
		t.Errorf("404: Promote called %d times, want 1 (the 404 is replayed)", got)
	}

	b.svc.promote = func(engine.PromoteRequest) (*view.Promotion, error) {
		return nil, &engine.Error{Code: engine.CodeUnavailable, Message: "shutting down"}
	}
	for range 2 {
		readProblem(t, b.do(t, http.MethodPost, "/api/v1/promotions", body, HeaderIdempotencyKey, "k503"), http.StatusServiceUnavailable, codeUnavailable)
	}
	if got := b.svc.count("Promote"); got != 3 {
		t.Errorf("503: Promote called %d times in all, want 3 (a 503 is not stored)", got)
	}
}

func TestIdempotencyConcurrentDuplicatesRunOnce(t *testing.T) {
	b := setup(t)
	b.svc.promote = func(engine.PromoteRequest) (*view.Promotion, error) {
		time.Sleep(20 * time.Millisecond)
		return testPromotion("p1", 1, promotion.Queued), nil
	}
	body := `{"pipeline":"shop","release":"1.0.0","environment":"prod"}`
	const n = 8
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			codes[i] = b.do(t, http.MethodPost, "/api/v1/promotions", body, HeaderIdempotencyKey, "same").Code
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusCreated {
			t.Errorf("request %d: status %d", i, c)
		}
	}
	if got := b.svc.count("Promote"); got != 1 {
		t.Errorf("Promote called %d times, want 1", got)
	}
}

func TestIdempotencyKeyIsChecked(t *testing.T) {
	b := setup(t)
	rec := b.do(t, http.MethodPost, "/api/v1/promotions", `{}`, HeaderIdempotencyKey, strings.Repeat("k", MaxIdempotencyKeyLength+1))
	readProblem(t, rec, http.StatusBadRequest, codeInvalid)
}

func TestWithoutStoreKeysAreIgnored(t *testing.T) {
	b := setup(t, func(c *Config) { c.Store = nil })
	b.svc.promote = func(engine.PromoteRequest) (*view.Promotion, error) {
		return testPromotion("p1", 1, promotion.Queued), nil
	}
	body := `{"pipeline":"shop","release":"1.0.0","environment":"prod"}`
	for range 2 {
		if rec := b.do(t, http.MethodPost, "/api/v1/promotions", body, HeaderIdempotencyKey, "k"); rec.Code != http.StatusCreated {
			t.Fatalf("status = %d", rec.Code)
		}
	}
	if got := b.svc.count("Promote"); got != 2 {
		t.Errorf("Promote called %d times, want 2", got)
	}
}

func TestLongPoll(t *testing.T) {
	t.Run("returns the change", func(t *testing.T) {
		b := setup(t)
		var gotAfter int64
		var gotDeadline time.Duration
		b.svc.wait = func(ctx context.Context, id string, after int64) (*view.Promotion, error) {
			gotAfter = after
			dl, _ := ctx.Deadline()
			gotDeadline = time.Until(dl)
			return testPromotion(id, after+1, promotion.Deploying), nil
		}
		rec := b.do(t, http.MethodGet, "/api/v1/promotions/p1?waitVersion=4&timeout=10m", "")
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d: %s", rec.Code, rec.Body)
		}
		var p view.Promotion
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Version != 5 {
			t.Errorf("body = %s (%v)", rec.Body, err)
		}
		if gotAfter != 4 {
			t.Errorf("afterVersion = %d, want 4", gotAfter)
		}
		if gotDeadline > MaxWaitTimeout || gotDeadline < MaxWaitTimeout-5*time.Second {
			t.Errorf("wait deadline in %s, want about %s (capped)", gotDeadline, MaxWaitTimeout)
		}
	})
	t.Run("default timeout", func(t *testing.T) {
		b := setup(t)
		var gotDeadline time.Duration
		b.svc.wait = func(ctx context.Context, id string, after int64) (*view.Promotion, error) {
			dl, _ := ctx.Deadline()
			gotDeadline = time.Until(dl)
			return testPromotion(id, after+1, promotion.Deploying), nil
		}
		b.do(t, http.MethodGet, "/api/v1/promotions/p1?waitVersion=0", "")
		if gotDeadline > DefaultWaitTimeout || gotDeadline < DefaultWaitTimeout-5*time.Second {
			t.Errorf("wait deadline in %s, want about %s", gotDeadline, DefaultWaitTimeout)
		}
	})
	t.Run("timeout returns the current state", func(t *testing.T) {
		b := setup(t)
		b.svc.wait = func(ctx context.Context, _ string, _ int64) (*view.Promotion, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		b.svc.promotion = func(id string) (*view.Promotion, error) { return testPromotion(id, 4, promotion.Gating), nil }
		rec := b.do(t, http.MethodGet, "/api/v1/promotions/p1?waitVersion=4&timeout=1", "")
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d: %s", rec.Code, rec.Body)
		}
		var p view.Promotion
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Version != 4 || p.State != promotion.Gating {
			t.Errorf("body = %s (%v)", rec.Body, err)
		}
	})
	t.Run("not found", func(t *testing.T) {
		b := setup(t)
		readProblem(t, b.do(t, http.MethodGet, "/api/v1/promotions/nope?waitVersion=1", ""), http.StatusNotFound, codeNotFound)
	})
	for _, q := range []string{"waitVersion=abc", "waitVersion=-1", "waitVersion=1&timeout=soon", "waitVersion=1&timeout=0s",
		"waitVersion=1&timeout=-5", "timeout=30s"} {
		t.Run(q, func(t *testing.T) {
			b := setup(t)
			readProblem(t, b.do(t, http.MethodGet, "/api/v1/promotions/p1?"+q, ""), http.StatusBadRequest, codeInvalid)
			if b.svc.count("WaitPromotion") != 0 {
				t.Errorf("WaitPromotion called")
			}
		})
	}
}

func TestPromotionsQuery(t *testing.T) {
	b := setup(t)
	b.svc.release = func(pipeline, version string) (*release.Release, error) {
		if version == "1.0.0" {
			return &release.Release{ID: "rel-1", Pipeline: pipeline, Version: version}, nil
		}
		return nil, &engine.Error{Code: engine.CodeNotFound, Message: "no such release"}
	}
	rec := b.do(t, http.MethodGet, "/api/v1/promotions?pipeline=shop&environment=prod&state=queued,gating&state=deploying&active=true&release=1.0.0&limit=5", "")
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	f := b.svc.promotionFilter
	if f.Pipeline != "shop" || f.Environment != "prod" || !f.Active || f.Limit != 5 || f.ReleaseID != "rel-1" ||
		!slices.Equal(f.States, []promotion.State{promotion.Queued, promotion.Gating, promotion.Deploying}) {
		t.Errorf("filter = %+v", f)
	}

	b.do(t, http.MethodGet, "/api/v1/promotions", "")
	if f := b.svc.promotionFilter; f.Limit != DefaultLimit || f.Active || len(f.States) != 0 {
		t.Errorf("default filter = %+v", f)
	}

	// An unknown release matches nothing.
	before := b.svc.count("Promotions")
	rec = b.do(t, http.MethodGet, "/api/v1/promotions?pipeline=shop&release=9.9", "")
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != "[]" || b.svc.count("Promotions") != before {
		t.Errorf("unknown release: status = %d, body %s", rec.Code, rec.Body)
	}

	for _, q := range []string{"limit=abc", "limit=0", "limit=100000", "active=maybe", "state=running", "release=1.0.0"} {
		rec := b.do(t, http.MethodGet, "/api/v1/promotions?"+q, "")
		p := readProblem(t, rec, http.StatusBadRequest, codeInvalid)
		if !strings.Contains(p["detail"].(string), strings.Split(q, "=")[0]) {
			t.Errorf("%s: detail %q does not name the parameter", q, p["detail"])
		}
	}
}

func TestAuditQuery(t *testing.T) {
	b := setup(t)
	rec := b.do(t, http.MethodGet, "/api/v1/audit?promotion=p1&actor=alice&action=promotion.abort&since=2025-01-02T03:04:05Z&after=17&limit=3", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d: %s", rec.Code, rec.Body)
	}
	f := b.svc.auditFilter
	want := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if f.PromotionID != "p1" || f.Actor != "alice" || f.Action != "promotion.abort" || !f.Since.Equal(want) || f.AfterSeq != 17 || f.Limit != 3 {
		t.Errorf("filter = %+v", f)
	}
	for _, q := range []string{"since=yesterday", "after=x", "after=-1", "limit=-1"} {
		readProblem(t, b.do(t, http.MethodGet, "/api/v1/audit?"+q, ""), http.StatusBadRequest, codeInvalid)
	}
}

func TestHistoryAndPipelineQuery(t *testing.T) {
	b := setup(t)
	b.do(t, http.MethodGet, "/api/v1/pipelines/shop/history?environment=prod&limit=7", "")
	if !slices.Equal(b.svc.historyArgs, []any{"shop", "prod", 7}) {
		t.Errorf("History args = %v", b.svc.historyArgs)
	}
	b.do(t, http.MethodGet, "/api/v1/pipelines/shop?revision=2", "")
	if !slices.Equal(b.svc.pipelineArgs, []any{"shop", 2}) {
		t.Errorf("Pipeline args = %v", b.svc.pipelineArgs)
	}
	b.do(t, http.MethodGet, "/api/v1/pipelines/shop", "")
	if !slices.Equal(b.svc.pipelineArgs, []any{"shop", 0}) {
		t.Errorf("Pipeline args = %v, want latest (0)", b.svc.pipelineArgs)
	}
	readProblem(t, b.do(t, http.MethodGet, "/api/v1/pipelines/shop?revision=0", ""), http.StatusBadRequest, codeInvalid)
	readProblem(t, b.do(t, http.MethodGet, "/api/v1/pipelines/shop?revision=x", ""), http.StatusBadRequest, codeInvalid)
}

func TestListsAreNeverNull(t *testing.T) {
	b := setup(t)
	for _, target := range []string{"/api/v1/pipelines", "/api/v1/promotions", "/api/v1/audit", "/api/v1/pipelines/shop/history", "/api/v1/cluster"} {
		rec := b.do(t, http.MethodGet, target, "")
		if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != "[]" {
			t.Errorf("%s: %d %s, want 200 []", target, rec.Code, rec.Body)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	ready := errors.New("store: database is locked")
	b := setup(t, func(c *Config) { c.Ready = func(context.Context) error { return ready } })
	rec := b.do(t, http.MethodGet, "/healthz", "")
	if rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Errorf("healthz = %d %q", rec.Code, rec.Body)
	}
	p := readProblem(t, b.do(t, http.MethodGet, "/readyz", ""), http.StatusServiceUnavailable, codeUnavailable)
	if !strings.Contains(p["detail"].(string), "database is locked") {
		t.Errorf("detail = %v", p["detail"])
	}
	ready = nil
	if rec := b.do(t, http.MethodGet, "/readyz", ""); rec.Code != http.StatusOK {
		t.Errorf("readyz = %d", rec.Code)
	}
}

func TestPanicBecomes500(t *testing.T) {
	b := setup(t)
	b.svc.promotion = func(string) (*view.Promotion, error) { panic("boom") }
	readProblem(t, b.do(t, http.MethodGet, "/api/v1/promotions/p1", ""), http.StatusInternalServerError, codeInternal)
	if !strings.Contains(b.logs.String(), "boom") {
		t.Errorf("panic not logged")
	}
}

func TestRequestsAreLogged(t *testing.T) {
	b := setup(t)
	b.do(t, http.MethodGet, "/api/v1/pipelines?token=x", "", HeaderActor, "alice")
	logs := b.logs.String()
	for _, want := range []string{"method=GET", "path=/api/v1/pipelines", "status=200", "duration="} {
		if !strings.Contains(logs, want) {
			t.Errorf("log %q lacks %q", logs, want)
		}
	}
	if strings.Contains(logs, "token=x") {
		t.Errorf("log contains the query: %s", logs)
	}
}

func TestClusterListsReplicas(t *testing.T) {
	b := setup(t)
	started := time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)
	seen := started.Add(time.Hour)
	b.svc.cluster = func() ([]view.Replica, error) {
		return []view.Replica{
			{ID: "a:1", Host: "a", Addr: "10.0.0.1:7420", StartedAt: started, SeenAt: seen, Self: true,
				Driving: []view.PromotionRef{{ID: "p1", Pipeline: "shop", Environment: "prod", State: promotion.Deploying,
					Kind: promotion.KindPromote, Release: view.ReleaseRef{ID: "r1", Version: "1.2.3"}}}},
			{ID: "b:2", Host: "b", Addr: "10.0.0.2:7420", StartedAt: started, SeenAt: seen},
		}, nil
	}
	rec := b.do(t, http.MethodGet, "/api/v1/cluster", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d: %s", rec.Code, rec.Body)
	}
	var got []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body is not a JSON list: %v: %s", err, rec.Body)
	}
	if len(got) != 2 || got[0]["id"] != "a:1" || got[0]["self"] != true || got[0]["seenAt"] != "2025-01-02T04:00:00Z" {
		t.Fatalf("replicas = %s", rec.Body)
	}
	driving := got[0]["driving"].([]any)
	if len(driving) != 1 {
		t.Fatalf("driving = %v", got[0]["driving"])
	}
	ref := driving[0].(map[string]any)
	if ref["pipeline"] != "shop" || ref["environment"] != "prod" || ref["state"] != "deploying" {
		t.Errorf("driven promotion = %v", ref)
	}
	// A replica driving nothing has an empty list, not null.
	if d, ok := got[1]["driving"].([]any); !ok || len(d) != 0 {
		t.Errorf("driving of an idle replica = %v, want []", got[1]["driving"])
	}

	b.svc.cluster = nil
	b.svc.err = &engine.Error{Code: engine.CodeUnavailable, Message: "store unreachable"}
	readProblem(t, b.do(t, http.MethodGet, "/api/v1/cluster", ""), http.StatusServiceUnavailable, codeUnavailable)
	readProblem(t, b.do(t, http.MethodPost, "/api/v1/cluster", "{}"), http.StatusMethodNotAllowed, codeMethodNotAllowed)
}
