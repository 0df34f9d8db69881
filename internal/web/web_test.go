package web_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/step"
	stepexec "github.com/ferry-dev/ferry/internal/step/exec"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
	"github.com/ferry-dev/ferry/internal/traceid"
	"github.com/ferry-dev/ferry/internal/view"
	"github.com/ferry-dev/ferry/internal/web"
)

// testBundle is a dashboard over a real engine on a real SQLite file.
type testBundle struct {
	st   *sqlite.Store
	eng  *engine.Engine
	dash *web.Dashboard
	srv  *httptest.Server
	dir  string
}

const testPipeline = `name: shop
environments:
  - name: dev
    steps:
      - name: deploy
        exec: {run: 'echo "deploying $FERRY_RELEASE"; sleep 0.3'}
    verify:
      - name: smoke
        exec: {run: 'case "$FERRY_RELEASE" in *-bad) echo broken; exit 1;; esac'}
  - name: prod
    after: [dev]
    gates:
      approvals: {required: 1, from: ["role:approver"]}
    steps:
      - name: deploy
        exec: {run: 'true'}
`

func setup(t *testing.T, mutate ...func(*web.Config)) *testBundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{
		Store:   st,
		Drivers: map[string]step.Driver{"exec": &stepexec.Driver{Environ: os.Environ(), KillGrace: time.Second}},
		Reaper:  stepexec.Reap, BaseEnv: os.Environ(),
		Logger: slog.New(slog.DiscardHandler), ShutdownGrace: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := web.Config{Service: eng, Store: st, Stats: web.EngineStats{Engine: eng}, SessionKey: key,
		LogPoll: 50 * time.Millisecond,
		Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "api: "+r.URL.Path, http.StatusTeapot)
		})}
	for _, m := range mutate {
		m(&cfg)
	}
	dash, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dash)
	b := &testBundle{st: st, eng: eng, dash: dash, srv: srv, dir: dir}
	t.Cleanup(func() {
		dash.Close()
		srv.Close()
		eng.Stop()
		st.Close()
	})
	if _, err := eng.Apply(ctx, "admin", "shop.yaml", []byte(testPipeline)); err != nil {
		t.Fatal(err)
	}
	return b
}

// token stores a token and returns its plaintext.
func (b *testBundle) token(t *testing.T, user string, role auth.Role, scope string) string {
	t.Helper()
	pt, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := auth.ParseScope(scope)
	if err != nil {
		t.Fatal(err)
	}
	tok := &auth.Token{ID: auth.TokenID(pt), User: user, Grants: []auth.Grant{{Role: role, Scope: sc}},
		Hash: auth.HashToken(pt), CreatedAt: time.Now()}
	if err := b.st.Update(context.Background(), func(tx store.Tx) error { return tx.InsertToken(context.Background(), tok) }); err != nil {
		t.Fatal(err)
	}
	return pt
}

func (b *testBundle) release(t *testing.T, version string, labels map[string]string) {
	t.Helper()
	_, _, err := b.eng.CreateRelease(context.Background(), "ci", release.Release{Pipeline: "shop", Version: version,
		Artifacts: []release.Artifact{{Name: "api", URI: "registry.example/api", Digest: "sha256:" + strings.Repeat("a", 63) + version[:1]}},
		Labels:    labels})
	if err != nil {
		t.Fatal(err)
	}
}

func (b *testBundle) wait(t *testing.T, id string) *view.Promotion {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var v int64
	for {
		p, err := b.eng.WaitPromotion(ctx, id, v)
		if err != nil {
			t.Fatal(err)
		}
		if p.State.Terminal() || p.State == promotion.AwaitingApproval {
			return p
		}
		if ctx.Err() != nil {
			t.Fatalf("promotion %s still %s", id, p.State)
		}
		v = p.Version
	}
}

// browser is a plain HTTP client with a cookie jar, as a browser would be.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *testBundle) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: b.srv.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (br *browser) get(path string) (int, string, http.Header) {
	br.t.Helper()
	resp, err := br.c.Get(br.base + path)
	if err != nil {
		br.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRe.FindStringSubmatch(string(body)); m != nil {
		br.csrf = m[1]
	}
	return resp.StatusCode, string(body), resp.Header
}

// post submits a form with the CSRF token last seen, unless form sets one.
func (br *browser) post(path string, form url.Values, header map[string]string) (int, string, http.Header) {
	br.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", br.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, br.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := br.c.Do(req)
	if err != nil {
		br.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (br *browser) signIn(token string) {
	br.t.Helper()
	br.get("/signin")
	code, body, h := br.post("/signin", url.Values{"token": {token}, "next": {"/"}}, nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/" {
		br.t.Fatalf("sign in: %d %s\n%s", code, h.Get("Location"), body)
	}
	br.get("/")
}

func TestSignInRefusesBadTokensAndSendsVisitorsThere(t *testing.T) {
	b := setup(t)
	br := b.browser(t)
	code, _, h := br.get("/inbox")
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/signin?next=%2Finbox") {
		t.Fatalf("signed-out GET /inbox: %d %s", code, h.Get("Location"))
	}
	br.get("/signin")
	unknown, _ := auth.NewToken()
	for _, tc := range []struct{ token, want string }{
		{"", "paste an API token"},
		{"hunter2", "not an API token"},
		{unknown, "token " + auth.TokenID(unknown) + " is not known"},
	} {
		code, body, _ := br.post("/signin", url.Values{"token": {tc.token}}, nil)
		if code != http.StatusUnauthorized || !strings.Contains(body, tc.want) {
			t.Fatalf("sign in with %q: %d, want 401 saying %q:\n%s", tc.token, code, tc.want, body)
		}
		if tc.token != "" && strings.Contains(body, tc.token) {
			t.Fatalf("the sign-in page repeats the token %q", tc.token)
		}
	}
	// Off-site next is ignored.
	admin := b.token(t, "admin", auth.RoleAdmin, "*")
	code, _, h = br.post("/signin", url.Values{"token": {admin}, "next": {"//evil.example/x"}}, nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/" {
		t.Fatalf("sign in with an off-site next: %d %q", code, h.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range br.c.Jar.Cookies(mustURL(b.srv.URL)) {
		if c.Name == "ferry_session" {
			session = c
		}
	}
	if session == nil || strings.Contains(session.Value, admin) || strings.Contains(session.Value, auth.HashToken(admin)) {
		t.Fatalf("session cookie %v carries the token or its hash in the clear", session)
	}
	if code, body, _ := br.get("/"); code != http.StatusOK || !strings.Contains(body, `data-pipeline="shop"`) {
		t.Fatalf("overview after sign-in: %d\n%s", code, body)
	}
}

func TestRevokedTokenEndsSession(t *testing.T) {
	b := setup(t)
	tok := b.token(t, "carol", auth.RoleViewer, "*")
	br := b.browser(t)
	br.signIn(tok)
	if err := b.st.Update(context.Background(), func(tx store.Tx) error {
		return tx.RevokeToken(context.Background(), auth.TokenID(tok), time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	code, _, h := br.get("/")
	loc, _ := url.Parse(h.Get("Location"))
	if code != http.StatusSeeOther || loc.Path != "/signin" || !strings.Contains(loc.Query().Get("why"), "no longer valid") {
		t.Fatalf("after revocation: %d %s", code, h.Get("Location"))
	}
}

func TestActionsNeedTheRoleAndTheCSRFToken(t *testing.T) {
	b := setup(t)
	b.release(t, "1.0.0", nil)
	viewer := b.token(t, "vera", auth.RoleViewer, "*")
	promoter := b.token(t, "pat", auth.RolePromoter, "shop/dev")

	vb := b.browser(t)
	vb.signIn(viewer)
	_, page, _ := vb.get("/")
	if strings.Contains(page, "/promote\"") || strings.Contains(page, "Roll back") {
		t.Fatal("the viewer is offered actions")
	}
	code, body, _ := vb.post("/pipelines/shop/environments/dev/promote", url.Values{"release": {"1.0.0"}}, nil)
	if code != http.StatusForbidden || !strings.Contains(body, `role &#34;promoter&#34; on &#34;shop/dev&#34;`) {
		t.Fatalf("viewer's promote: %d\n%s", code, body)
	}

	pb := b.browser(t)
	pb.signIn(promoter)
	_, page, _ = pb.get("/")
	if !strings.Contains(page, `action="/pipelines/shop/environments/dev/promote"`) || strings.Contains(page, `action="/pipelines/shop/environments/prod/promote"`) {
		t.Fatal("a promoter on shop/dev must be offered promote on dev only")
	}
	refused := []struct {
		name   string
		form   url.Values
		header map[string]string
		code   int
	}{
		{"no CSRF token", url.Values{"release": {"1.0.0"}, "csrf": {""}}, nil, http.StatusForbidden},
		{"another session's CSRF token", url.Values{"release": {"1.0.0"}, "csrf": {vb.csrf}}, nil, http.StatusForbidden},
		{"another origin", url.Values{"release": {"1.0.0"}}, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"cross-site fetch", url.Values{"release": {"1.0.0"}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
	}
	for _, tc := range refused {
		if code, body, _ := pb.post("/pipelines/shop/environments/dev/promote", tc.form, tc.header); code != tc.code {
			t.Fatalf("%s: %d, want %d\n%s", tc.name, code, tc.code, body)
		}
	}
	if code, _, _ := pb.post("/pipelines/shop/environments/prod/promote", url.Values{"release": {"1.0.0"}}, nil); code != http.StatusForbidden {
		t.Fatalf("promoter on dev promoting prod: %d", code)
	}
	ps, _ := b.eng.Promotions(context.Background(), store.PromotionFilter{Pipeline: "shop"})
	if len(ps) != 0 {
		t.Fatalf("refused forms made %d promotions", len(ps))
	}

	code, body, h := pb.post("/pipelines/shop/environments/dev/promote", url.Values{"release": {"1.0.0"}, "reason": {"from the page"}},
		map[string]string{"Origin": b.srv.URL, "Sec-Fetch-Site": "same-origin"})
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/promotions/") {
		t.Fatalf("promoter's promote: %d %s\n%s", code, h.Get("Location"), body)
	}
	id := strings.TrimPrefix(h.Get("Location"), "/promotions/")
	p := b.wait(t, id)
	if p.State != promotion.Succeeded || p.Actor != "pat" || p.Reason != "from the page" {
		t.Fatalf("promotion from the page: %s by %s (%q)", p.State, p.Actor, p.Reason)
	}
	// An engine refusal is shown with its status: a rollback needs a reason.
	if code, body, _ := pb.post("/pipelines/shop/environments/dev/rollback", url.Values{}, nil); code != http.StatusBadRequest || !strings.Contains(body, "needs a reason") {
		t.Fatalf("rollback without a reason: %d\n%s", code, body)
	}
}

func TestApproveFromInboxShowsWhatIsApproved(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.release(t, "1.0.0", map[string]string{"note": `<img src=x onerror=alert(1)>`})
	p := b.wait(t, mustPromote(t, b, "1.0.0", "dev").ID)
	if p.State != promotion.Succeeded {
		t.Fatalf("dev: %s", p.State)
	}
	prod := b.wait(t, mustPromote(t, b, "1.0.0", "prod").ID)
	if prod.State != promotion.AwaitingApproval {
		t.Fatalf("prod: %s", prod.State)
	}
	alice := b.token(t, "alice", auth.RoleApprover, "shop/prod")
	br := b.browser(t)
	br.signIn(alice)
	_, inbox, _ := br.get("/inbox")
	for _, want := range []string{prod.ID, "1.0.0", "registry.example/api", "added", `note=&lt;img src=x onerror=alert(1)&gt;`} {
		if !strings.Contains(inbox, want) {
			t.Fatalf("inbox lacks %q:\n%s", want, inbox)
		}
	}
	if strings.Contains(inbox, "<img src=x") {
		t.Fatal("the label is rendered as markup")
	}
	code, _, h := br.post("/promotions/"+prod.ID+"/reject", url.Values{"comment": {""}}, nil)
	if code != http.StatusBadRequest {
		t.Fatalf("reject without a comment: %d", code)
	}
	code, _, h = br.post("/promotions/"+prod.ID+"/approve", url.Values{"comment": {"ok"}}, nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/promotions/"+prod.ID {
		t.Fatalf("approve: %d %s", code, h.Get("Location"))
	}
	done := b.wait(t, prod.ID)
	if done.State != promotion.Succeeded || len(done.Approvals) != 1 || done.Approvals[0].User != "alice" {
		t.Fatalf("after approval: %s %+v", done.State, done.Approvals)
	}
	_, inbox, _ = br.get("/inbox")
	if strings.Contains(inbox, prod.ID) {
		t.Fatal("the approved promotion is still in the inbox")
	}
	_, page, _ := br.get("/promotions/" + prod.ID)
	if !strings.Contains(page, "approved by alice") || !strings.Contains(page, traceid.String(prod.ID)) {
		t.Fatalf("promotion page lacks the approval or the trace ID:\n%s", page)
	}
	// alice has no promoter role: the page offers no abort, and the
	// server refuses one.
	if code, _, _ := br.post("/promotions/"+prod.ID+"/abort", url.Values{"reason": {"x"}}, nil); code != http.StatusForbidden {
		t.Fatalf("approver's abort: %d", code)
	}
	_ = ctx
}

func mustPromote(t *testing.T, b *testBundle, version, env string) *view.Promotion {
	t.Helper()
	p, err := b.eng.Promote(context.Background(), "admin", engine.PromoteRequest{Pipeline: "shop", Release: version, Environment: env})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// sse reads server-sent events.
type sse struct {
	resp *http.Response
	r    *bufio.Reader
}

func (b *testBundle) events(t *testing.T, br *browser, query string) *sse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/events"+query, nil)
	resp, err := br.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events%s: %d %s", query, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sse{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event's name and data.
func (s *sse) next(t *testing.T) (string, string) {
	t.Helper()
	var name, data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		}
	}
}

func TestEventsReportChangesAndStreamOutput(t *testing.T) {
	b := setup(t)
	b.release(t, "1.0.0", nil)
	br := b.browser(t)
	if code, _, _ := br.get("/events"); code != http.StatusUnauthorized {
		t.Fatalf("events signed out: %d", code)
	}
	br.signIn(b.token(t, "vera", auth.RoleViewer, "*"))
	changes := b.events(t, br, "")
	p := mustPromote(t, b, "1.0.0", "dev")
	deadline := time.AfterFunc(20*time.Second, func() { changes.resp.Body.Close() })
	defer deadline.Stop()
	for {
		name, data := changes.next(t)
		if name == "change" && strings.Contains(data, p.ID) {
			break
		}
	}

	q := mustPromote(t, b, "1.0.0", "dev")
	follow := b.events(t, br, "?follow="+q.ID+"&from=0")
	deadline2 := time.AfterFunc(20*time.Second, func() { follow.resp.Body.Close() })
	defer deadline2.Stop()
	var out strings.Builder
	for !strings.Contains(out.String(), "deploying 1.0.0") {
		name, data := follow.next(t)
		if name == "log" {
			out.WriteString(data)
		}
	}
	if !strings.Contains(out.String(), `"step":"log-deploy-0"`) || !strings.Contains(out.String(), "attempt 1") {
		t.Fatalf("log events: %s", out.String())
	}

	// Close ends open streams, so that a server can shut down.
	b.dash.Close()
	ended := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, changes.resp.Body)
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream is still open after Close")
	}
}

func TestPromotionPageShowsRollbackTimeline(t *testing.T) {
	b := setup(t)
	b.release(t, "1.0.0", nil)
	b.release(t, "2.0.0-bad", map[string]string{"title": `</title><script>alert(1)</script>`})
	b.wait(t, mustPromote(t, b, "1.0.0", "dev").ID)
	bad := b.wait(t, mustPromote(t, b, "2.0.0-bad", "dev").ID)
	if bad.State != promotion.RolledBack {
		t.Fatalf("bad release: %s", bad.State)
	}
	br := b.browser(t)
	br.signIn(b.token(t, "vera", auth.RoleViewer, "*"))
	code, page, h := br.get("/promotions/" + bad.ID)
	if code != http.StatusOK {
		t.Fatalf("promotion page: %d", code)
	}
	for _, want := range []string{"verifying → rolling back", "rolling back → rolled back", "check smoke failed", "rollback deploy", "broken", "rolled back to 1.0.0"} {
		if !strings.Contains(page, want) {
			t.Fatalf("rolled-back page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") || !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("a release label is not escaped on the promotion page")
	}
	if strings.Contains(page, "Audit events") {
		t.Fatal("a viewer sees the audit trail, which needs admin")
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("Content-Security-Policy = %q", csp)
	}
	// The partial is the page's main content only.
	_, part, _ := br.get("/promotions/" + bad.ID + "?partial=1")
	if strings.Contains(part, "<html") || !strings.Contains(part, "rolling back → rolled back") {
		t.Fatalf("partial:\n%s", part)
	}
	// Unknown promotions are 404; other paths go to the API.
	if code, _, _ := br.get("/promotions/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown promotion: %d", code)
	}
	if code, body, _ := br.get("/api/v1/pipelines"); code != http.StatusTeapot || !strings.Contains(body, "api: /api/v1/pipelines") {
		t.Fatalf("API path: %d %s", code, body)
	}
}

func TestAuthOffNeedsNoSignInButStillCSRF(t *testing.T) {
	b := setup(t, func(c *web.Config) { c.DisableAuth = true; c.Store = nil })
	b.release(t, "1.0.0", nil)
	br := b.browser(t)
	code, page, _ := br.get("/")
	if code != http.StatusOK || !strings.Contains(page, "anonymous") {
		t.Fatalf("overview with auth off: %d", code)
	}
	if code, _, _ := br.post("/pipelines/shop/environments/dev/promote", url.Values{"release": {"1.0.0"}, "csrf": {"x"}}, nil); code != http.StatusForbidden {
		t.Fatalf("promote without the CSRF token, auth off: %d", code)
	}
	if code, _, _ := br.post("/pipelines/shop/environments/dev/promote", url.Values{"release": {"1.0.0"}}, nil); code != http.StatusSeeOther {
		t.Fatalf("promote with auth off: %d", code)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  web.Config
		want string
	}{
		{web.Config{}, "Service is required"},
		{web.Config{Service: (*engine.Engine)(nil), Stats: web.EngineStats{}, SessionKey: make([]byte, 32)}, "Store is required"},
		{web.Config{Service: (*engine.Engine)(nil), DisableAuth: true, SessionKey: make([]byte, 32)}, "Stats is required"},
		{web.Config{Service: (*engine.Engine)(nil), DisableAuth: true, Stats: web.EngineStats{}, SessionKey: make([]byte, 16)}, "SessionKey has 16 bytes"},
	} {
		if _, err := web.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func transitionAt(t *testing.T, p *view.Promotion, to promotion.State) time.Time {
	t.Helper()
	for _, tr := range p.Transitions {
		if tr.To == to {
			return tr.At
		}
	}
	t.Fatalf("promotion %s never went to %s", p.ID, to)
	return time.Time{}
}

func TestEngineStatsFromPromotions(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	alice := auth.Principal{User: "alice", Grants: []auth.Grant{{Role: auth.RoleApprover}}}
	for _, v := range []string{"1.0.0", "2.0.0-bad", "3.1.0"} {
		b.release(t, v, nil)
	}
	b.wait(t, mustPromote(t, b, "1.0.0", "dev").ID)
	prod := b.wait(t, mustPromote(t, b, "1.0.0", "prod").ID)
	if _, err := b.eng.Approve(ctx, alice, prod.ID, "ok"); err != nil {
		t.Fatal(err)
	}
	prod = b.wait(t, prod.ID)
	b.wait(t, mustPromote(t, b, "2.0.0-bad", "dev").ID)
	b.wait(t, mustPromote(t, b, "3.1.0", "dev").ID)
	rejected := b.wait(t, mustPromote(t, b, "3.1.0", "prod").ID)
	if _, err := b.eng.Reject(ctx, alice, rejected.ID, "not now"); err != nil {
		t.Fatal(err)
	}
	b.wait(t, rejected.ID)

	now := time.Now().UTC()
	until := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
	since := until.Add(-7 * 24 * time.Hour)
	rep, err := web.EngineStats{Engine: b.eng}.Stats(ctx, web.StatsQuery{Pipeline: "shop", Since: since, Until: until})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Production) != 1 || rep.Production[0] != "shop/prod" || len(rep.Series) != 7 {
		t.Fatalf("production %v, %d days", rep.Production, len(rep.Series))
	}
	tot := rep.Figures
	// Ended: dev 1.0.0, prod 1.0.0, dev 2.0.0-bad (rolled back), dev
	// 3.1.0, prod 3.1.0 (rejected). Rates count attempts (docs/stats.md): a
	// rejected promotion deployed nothing, so four attempts, three succeeded.
	if tot.Promotions != 5 || *tot.SuccessRate != 3.0/4 || *tot.RollbackRate != 1.0/4 {
		t.Fatalf("promotions %d, success rate %v, rollback rate %v", tot.Promotions, *tot.SuccessRate, *tot.RollbackRate)
	}
	// Approval latency is the mean time spent in awaiting_approval by the
	// promotions that waited: the approved and the rejected one.
	waited := func(p *view.Promotion) time.Duration {
		var left time.Time
		for _, tr := range p.Transitions {
			if tr.From == promotion.AwaitingApproval {
				left = tr.At
			}
		}
		return left.Sub(transitionAt(t, p, promotion.AwaitingApproval))
	}
	wantLatency := (waited(prod) + waited(b.wait(t, rejected.ID))) / 2
	if !nearly(tot.ApprovalLatencySeconds, wantLatency) {
		t.Fatalf("approval latency %v s, want %v", tot.ApprovalLatencySeconds, wantLatency)
	}
	// The only production deployment succeeded; a rejection deployed nothing.
	if *tot.ChangeFailureRate != 0 || *tot.DeploymentFrequencyPerDay != 1.0/7 || tot.TimeToRestoreSeconds != nil {
		t.Fatalf("CFR %v, frequency %v, restore %v", *tot.ChangeFailureRate, *tot.DeploymentFrequencyPerDay, tot.TimeToRestoreSeconds)
	}
	// Lead time runs from the release's commit time, which these releases lack.
	if tot.LeadTimeForChangesSeconds != nil {
		t.Fatalf("lead time %v s without commit times, want none", *tot.LeadTimeForChangesSeconds)
	}
	today := rep.Series[len(rep.Series)-1]
	if !today.From.Equal(now.Truncate(24*time.Hour)) || today.Promotions != 5 || *today.DeploymentFrequencyPerDay != 1 {
		t.Fatalf("today = %+v", today)
	}
	if rep.Series[0].Promotions != 0 || rep.Series[0].SuccessRate != nil || rep.Series[0].DeploymentFrequencyPerDay != nil {
		t.Fatalf("a day without promotions = %+v", rep.Series[0])
	}
	if _, err := (web.EngineStats{Engine: b.eng}).Stats(ctx, web.StatsQuery{Pipeline: "shop", Since: until, Until: since}); err == nil {
		t.Fatal("a period that ends before it starts was accepted")
	}
}

func TestEngineStatsTimeToRestore(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	if _, err := b.eng.Apply(ctx, "admin", "svc.yaml", []byte(`name: svc
environments:
  - name: live
    steps: [{name: deploy, exec: {run: 'true'}}]
    verify:
      - name: smoke
        exec: {run: 'case "$FERRY_RELEASE" in *-bad) exit 1;; esac'}
`)); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "2.0.0-bad"} {
		if _, _, err := b.eng.CreateRelease(ctx, "ci", release.Release{Pipeline: "svc", Version: v,
			Artifacts: []release.Artifact{{Name: "app", URI: "r/app", Digest: "sha256:" + strings.Repeat("b", 63) + v[:1]}}}); err != nil {
			t.Fatal(err)
		}
	}
	promote := func(v string) *view.Promotion {
		p, err := b.eng.Promote(ctx, "admin", engine.PromoteRequest{Pipeline: "svc", Release: v, Environment: "live"})
		if err != nil {
			t.Fatal(err)
		}
		return b.wait(t, p.ID)
	}
	promote("1.0.0")
	bad := promote("2.0.0-bad")
	if bad.State != promotion.RolledBack {
		t.Fatalf("bad: %s", bad.State)
	}
	until := time.Now().UTC().Add(time.Hour)
	rep, err := web.EngineStats{Engine: b.eng}.Stats(ctx, web.StatsQuery{Pipeline: "svc", Since: until.Add(-24 * time.Hour), Until: until})
	if err != nil {
		t.Fatal(err)
	}
	want := bad.FinishedAt.Sub(transitionAt(t, bad, promotion.RollingBack))
	if got := rep.TimeToRestoreSeconds; !nearly(got, want) || *rep.ChangeFailureRate != 0.5 {
		t.Fatalf("time to restore %v s (want %v), CFR %v", got, want, *rep.ChangeFailureRate)
	}
}

// nearly reports whether a figure in seconds is d, to the microsecond.
func nearly(seconds *float64, d time.Duration) bool {
	return seconds != nil && math.Abs(*seconds-d.Seconds()) < 1e-6
}

func TestExecutiveAndOnCallPages(t *testing.T) {
	b := setup(t)
	b.release(t, "1.0.0", nil)
	b.release(t, "2.0.0-bad", nil)
	b.wait(t, mustPromote(t, b, "1.0.0", "dev").ID)
	b.wait(t, mustPromote(t, b, "2.0.0-bad", "dev").ID)
	waiting := b.wait(t, mustPromote(t, b, "1.0.0", "prod").ID)
	br := b.browser(t)
	br.signIn(b.token(t, "vera", auth.RoleViewer, "*"))
	code, page, _ := br.get("/executive?pipeline=shop&days=7")
	if code != http.StatusOK || strings.Count(page, `<svg class="chart"`) != 8 || !strings.Contains(page, ">50%<") {
		t.Fatalf("executive: %d, %d charts, want 8 and a success rate of 50%% (1 of the 2 that ended)", code, strings.Count(page, `<svg class="chart"`))
	}
	if code, body, _ := br.get("/executive?pipeline=shop&days=5"); code != http.StatusBadRequest || !strings.Contains(body, "choose one of 7, 30 or 90") {
		t.Fatalf("days=5: %d", code)
	}
	if code, _, _ := br.get("/executive?pipeline=nope"); code != http.StatusForbidden && code != http.StatusNotFound {
		t.Fatalf("unknown pipeline: %d", code)
	}
	code, page, _ = br.get("/oncall")
	if code != http.StatusOK || !strings.Contains(page, waiting.ID) || !strings.Contains(page, "2.0.0-bad") || !strings.Contains(page, "approvals") {
		t.Fatalf("on call: %d\n%s", code, page)
	}
}

func TestOnCallListsOpenWatchWindows(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	if _, err := b.eng.Apply(ctx, "admin", "svc.yaml", []byte(`name: svc
environments:
  - name: live
    steps: [{name: deploy, exec: {run: 'true'}}]
    watch: {for: 1h, checks: [{name: up, exec: {run: 'true'}}]}
`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.eng.CreateRelease(ctx, "ci", release.Release{Pipeline: "svc", Version: "1.0.0",
		Artifacts: []release.Artifact{{Name: "app", URI: "r/app", Digest: "sha256:" + strings.Repeat("c", 64)}}}); err != nil {
		t.Fatal(err)
	}
	p, err := b.eng.Promote(ctx, "admin", engine.PromoteRequest{Pipeline: "svc", Release: "1.0.0", Environment: "live"})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, err := b.eng.Promotion(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == promotion.Watching {
			break
		}
		if got.State.Terminal() || time.Now().After(deadline) {
			t.Fatalf("promotion is %s (%s), want watching", got.State, got.Message)
		}
	}
	br := b.browser(t)
	br.signIn(b.token(t, "vera", auth.RoleViewer, "*"))
	code, page, _ := br.get("/oncall")
	i := strings.Index(page, "Watch windows open")
	if code != http.StatusOK || i < 0 {
		t.Fatalf("on call: %d\n%s", code, page)
	}
	section := page[i:]
	if end := strings.Index(section, "<h2"); end > 0 {
		section = section[:end]
	}
	if !strings.Contains(section, `<span class="count">1</span>`) || !strings.Contains(section, p.ID) {
		t.Fatalf("the open watch window is not listed:\n%s", section)
	}
}
