package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/testproc"
	"github.com/ferry-dev/ferry/internal/view"
)

// dashboardPipeline has dev (a smoke check that fails for "-bad" releases,
// and a metric check on a JSON endpoint) → staging (automatic) → prod
// (one approval from an approver), and eu, frozen now.
func dashboardPipeline(metricsURL string, now time.Time) string {
	return fmt.Sprintf(`name: shop
environments:
  - name: dev
    steps:
      - name: deploy
        exec: {run: 'echo "deploying $FERRY_RELEASE"; echo "$FERRY_RELEASE" > "$WORK/dev"'}
    verify:
      - name: error-rate
        web: {url: '%s', jsonPath: '$.errorRate', interval: 200ms, count: 3, successCondition: 'result < 0.01', failureCondition: 'result > 0.05'}
      - name: smoke
        exec: {run: 'case "$FERRY_RELEASE" in *-bad) echo "smoke test failed"; exit 1;; esac; echo healthy'}
  - name: staging
    after: [dev]
    autoPromote: true
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" > "$WORK/staging"'}}]
  - name: prod
    after: [staging]
    gates:
      approvals: {required: 1, from: ["role:approver"]}
    steps: [{name: deploy, exec: {run: 'sleep 1; echo "$FERRY_RELEASE" > "$WORK/prod"'}}]
  - name: eu
    after: [staging]
    gates:
      windows:
        freeze: [{from: %s, to: %s, reason: end-of-year freeze}]
    steps: [{name: deploy, exec: {run: 'true'}}]
`, metricsURL, now.Add(-time.Hour).UTC().Format(time.RFC3339), now.Add(24*time.Hour).UTC().Format(time.RFC3339))
}

// xssLabel is a release label that must show as text.
const xssLabel = `<script>window.__ferryXSS=1</script>`

// TestDashboardInBrowser drives the dashboard of a real server in headless
// Chromium: sign in, see the pipeline, promote from the page, approve from
// the inbox and watch the state change live, see a rolled-back promotion's
// timeline; a viewer sees no action and is refused a forged one. It writes
// a screenshot of each page to $FERRY_TEST_ARTIFACTS (or
// $TMPDIR/ferry-screenshots).
func TestDashboardInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	shots := screenshotDir(t)
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"errorRate": 0.002}`)
	}))
	t.Cleanup(metrics.Close)

	s := startServer(t, sqliteStore)
	s.must("apply", "-f", s.writeFile("shop.yaml", dashboardPipeline(metrics.URL, time.Now())))
	s.must("release", "create", "--pipeline", "shop", "--version", "1.0.0", "--artifact", "api=registry.example/shop/api@"+digest("api-1.0.0"),
		"--artifact", "web=registry.example/shop/web@"+digest("web-1.0.0"), "--label", "note="+xssLabel, "--commit", "0a1b2c3d")
	viewer := createToken(s, "vera", "viewer", "*")
	alice := createToken(s, "alice", "approver", "shop/prod")
	bob := createToken(s, "bob", "approver", "shop/prod")
	base := "http://" + s.addr

	b := newBrowser(t, chrome)

	// Sign in with the admin token; the pipeline shows as a graph.
	b.run(chromedp.Navigate(base + "/"))
	b.waitJS(`location.pathname === "/signin"`, "redirect to the sign-in page")
	b.shot(shots, "signin")
	b.signIn(adminToken)
	b.waitJS(`location.pathname === "/" && document.querySelector("[data-pipeline=shop] svg.dag") !== null`, "the overview with the pipeline graph")
	if got := b.text(`[data-testid=user]`); got != "admin" {
		t.Fatalf("signed in as %q, want admin", got)
	}
	if n := b.count(`#env-shop-prod details.action`); n == 0 {
		t.Fatal("the admin sees no action on prod")
	}

	// Promote 1.0.0 to dev from the page; the promotion page follows it to
	// the end, and staging follows by itself.
	b.run(chromedp.Click(chromedp.CSS(`#env-shop-dev details.action summary`)))
	b.run(chromedp.SetValue(chromedp.CSS(`#env-shop-dev-release`), "1.0.0"))
	b.run(chromedp.SendKeys(chromedp.CSS(`#env-shop-dev-reason`), "first release"))
	b.run(chromedp.Click(chromedp.CSS(`#env-shop-dev form[action$="/promote"] button[type=submit]`)))
	b.waitJS(`location.pathname.startsWith("/promotions/")`, "the promotion page after promoting")
	b.markPage()
	b.waitState("succeeded", 60*time.Second)
	b.assertNotReloaded()
	b.waitJS(`document.querySelector("figure.measure svg.chart .thr-ok") !== null && document.querySelectorAll("figure.measure .pt").length >= 3`,
		"the error-rate measurements charted with their threshold")
	b.shot(shots, "promotion")
	b.assertLabelled("the promotion page")
	devID := strings.TrimPrefix(b.eval(`location.pathname`), "/promotions/")
	if !strings.Contains(b.text(`pre#log-deploy-0`), "deploying 1.0.0") {
		t.Fatalf("the deploy step's output is not shown: %q", b.text(`pre#log-deploy-0`))
	}
	staging := s.waitLatest("shop", "staging")
	if staging.State != promotion.Succeeded {
		t.Fatalf("staging: %s %s", staging.State, staging.Message)
	}

	// The label is text, not markup.
	if got := b.text(`[data-testid=label]`); got != "note="+xssLabel {
		t.Fatalf("label shows as %q, want the text %q", got, "note="+xssLabel)
	}
	if b.eval(`String(window.__ferryXSS)`) != "undefined" {
		t.Fatal("the release label ran as a script")
	}

	// A promotion to prod awaits approval; alice approves it from her inbox
	// and watches it move, live.
	var prodP view.Promotion
	mustJSON(t, s.must("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "prod", "-o", "json"), &prodP)
	s.waitState(prodP.ID, promotion.AwaitingApproval)
	b.signOut()
	b.signIn(alice)
	b.run(chromedp.Navigate(base + "/inbox"))
	b.waitJS(`document.querySelector("article.approval[data-promotion='`+prodP.ID+`']") !== null`, "the promotion in alice's inbox")
	inbox := b.text(`article.approval`)
	for _, want := range []string{"1.0.0", "api", "web", "added", "0a1b2c3d", "note=" + xssLabel} {
		if !strings.Contains(inbox, want) {
			t.Fatalf("the inbox does not show %q:\n%s", want, inbox)
		}
	}
	b.shot(shots, "inbox")
	b.assertLabelled("the inbox")
	b.run(chromedp.SendKeys(chromedp.CSS(`#comment-`+prodP.ID), "looks good"))
	b.run(chromedp.Click(chromedp.CSS(`article.approval [data-testid=approve]`)))
	b.waitJS(`location.pathname === "/promotions/`+prodP.ID+`"`, "the promotion page after approving")
	b.markPage()
	b.waitState("succeeded", 60*time.Second)
	b.assertNotReloaded()
	if tl := b.text(`[data-testid=timeline]`); !strings.Contains(tl, "approved by alice") || !strings.Contains(tl, "looks good") {
		t.Fatalf("the timeline does not show alice's approval:\n%s", tl)
	}
	if n := b.count(`form[action$="/abort"]`); n != 0 {
		t.Fatalf("alice (approver) is offered %d abort forms", n)
	}

	// An approval made elsewhere (bob, through the CLI) reaches an open
	// page without a reload.
	s.must("release", "create", "--pipeline", "shop", "--version", "1.1.0", "--artifact", "api=registry.example/shop/api@"+digest("api-1.1.0"),
		"--artifact", "web=registry.example/shop/web@"+digest("web-1.0.0"))
	s.must("promote", "--pipeline", "shop", "--release", "1.1.0", "--to", "dev", "--wait")
	if st := s.waitLatest("shop", "staging"); st.Release.Version != "1.1.0" || st.State != promotion.Succeeded {
		t.Fatalf("staging after 1.1.0: %s %s", st.Release.Version, st.State)
	}
	var next view.Promotion
	mustJSON(t, s.must("promote", "--pipeline", "shop", "--release", "1.1.0", "--to", "prod", "-o", "json"), &next)
	s.waitState(next.ID, promotion.AwaitingApproval)
	b.run(chromedp.Navigate(base + "/inbox"))
	b.waitJS(`document.querySelector("article.approval[data-promotion='`+next.ID+`']") !== null`, "1.1.0 in alice's inbox")
	if diff := b.text(`article.approval table.diff`); !strings.Contains(diff, "new digest") || !strings.Contains(diff, "unchanged") {
		t.Fatalf("the inbox does not compare 1.1.0 with 1.0.0 running in prod:\n%s", diff)
	}
	b.run(chromedp.Navigate(base + "/promotions/" + next.ID))
	b.waitState("awaiting approval", 10*time.Second)
	b.markPage()
	s.as(bob).must("approve", next.ID, "--comment", "ship it")
	b.waitState("succeeded", 60*time.Second)
	b.assertNotReloaded()

	// A bad release fails its smoke check in dev and is rolled back; its
	// timeline shows how.
	b.signOut()
	b.signIn(adminToken)
	s.must("release", "create", "--pipeline", "shop", "--version", "1.2.0-bad", "--artifact", "api=registry.example/shop/api@"+digest("api-1.2.0"))
	var bad view.Promotion
	mustJSON(t, s.must("promote", "--pipeline", "shop", "--release", "1.2.0-bad", "--to", "dev", "-o", "json"), &bad)
	b.run(chromedp.Navigate(base + "/promotions/" + bad.ID))
	b.waitState("rolled back", 60*time.Second)
	tl := b.text(`[data-testid=timeline]`)
	for _, want := range []string{"verifying → rolling back", "rolling back → rolled back", "check smoke failed", "rollback deploy succeeded"} {
		if !strings.Contains(tl, want) {
			t.Fatalf("the rolled-back timeline does not show %q:\n%s", want, tl)
		}
	}
	if !strings.Contains(b.text(`pre#log-verify-1`), "smoke test failed") {
		t.Fatalf("the failed check's output is not shown: %q", b.text(`pre#log-verify-1`))
	}
	if b.count(`section[aria-labelledby=audit-h] tbody tr`) == 0 {
		t.Fatal("the admin sees no audit events on the promotion page")
	}
	b.shot(shots, "promotion-rolled-back")

	// On call: the rollback, the freeze.
	b.run(chromedp.Navigate(base + "/oncall"))
	b.waitJS(`document.querySelector("#fail-h") !== null`, "the on-call page")
	oncall := b.text("main")
	for _, want := range []string{"1.2.0-bad", "end-of-year freeze", "shop/eu"} {
		if !strings.Contains(oncall, want) {
			t.Fatalf("the on-call page does not show %q:\n%s", want, oncall)
		}
	}
	b.shot(shots, "oncall")

	// Delivery figures from what happened: 4 promote promotions into dev and
	// prod… each chart drawn.
	b.run(chromedp.Navigate(base + "/executive?pipeline=shop&days=7"))
	b.waitJS(`document.querySelectorAll("figure.figure svg.chart").length === 8`, "eight charts on the delivery page")
	totals := b.eval(`Array.from(document.querySelectorAll("[data-testid=total]")).map(e => e.textContent).join("|")`)
	if parts := strings.Split(totals, "|"); len(parts) != 8 || parts[0] == "no data" || parts[2] == "no data" || parts[6] == "no data" {
		t.Fatalf("delivery totals = %q: want success rate, rollback rate and change failure rate computed", totals)
	}
	b.shot(shots, "executive")

	// The overview on a phone.
	b.run(chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/"))
	b.waitJS(`document.querySelector("[data-pipeline=shop]") !== null`, "the overview on a phone")
	if w := b.eval(`String(document.documentElement.scrollWidth <= window.innerWidth + 1)`); w != "true" {
		t.Fatalf("the overview scrolls sideways on a 390px screen (scrollWidth %s)", b.eval(`String(document.documentElement.scrollWidth)`))
	}
	b.shot(shots, "overview-phone")
	b.run(chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/"))
	b.waitJS(`document.querySelector("[data-pipeline=shop]") !== null`, "the overview")
	b.shot(shots, "overview")
	b.assertLabelled("the overview")

	// The keyboard reaches everything: the first Tab lands on the skip
	// link, and Tabs then reach an environment's Promote form, which Enter opens.
	b.run(chromedp.KeyEvent("\t"))
	if got := b.eval(`document.activeElement.textContent`); got != "Skip to content" {
		t.Fatalf("first Tab focuses %q, want the skip link", got)
	}
	if b.eval(`getComputedStyle(document.activeElement).outlineStyle`) == "none" {
		t.Fatal("the focused link has no visible focus style")
	}
	target := `document.activeElement === document.querySelector("#env-shop-dev details.action summary")`
	for i := 0; i < 40 && b.eval(`String(`+target+`)`) != "true"; i++ {
		b.run(chromedp.KeyEvent("\t"))
	}
	if b.eval(`String(`+target+`)`) != "true" {
		t.Fatalf("40 Tabs never reached dev's Promote form; focus is on %q", b.eval(`document.activeElement.outerHTML.slice(0, 120)`))
	}
	b.run(chromedp.KeyEvent("\r"))
	b.waitJS(`document.querySelector("#env-shop-dev details.action").open`, "Enter to open the Promote form")

	// A viewer sees the pipeline but no action, and the server refuses a
	// forged one.
	b.signOut()
	b.signIn(viewer)
	b.waitJS(`document.querySelector("[data-pipeline=shop]") !== null`, "the overview as a viewer")
	if n := b.count(`details.action, form[action*="/promote"], form[action*="/rollback"], form[action*="/abort"]`); n != 0 {
		t.Fatalf("the viewer is offered %d actions", n)
	}
	before := len(s.promotions("--pipeline", "shop"))
	vs := newSession(t, base, viewer)
	if code, body := vs.post("/pipelines/shop/environments/dev/promote", url.Values{"release": {"1.0.0"}}, true, ""); code != http.StatusForbidden || !strings.Contains(body, `promoter`) {
		t.Fatalf("viewer's forged promote: %d %s", code, body)
	}
	if code, _ := vs.post("/promotions/"+devID+"/abort", url.Values{"reason": {"x"}}, true, ""); code != http.StatusForbidden {
		t.Fatalf("viewer's forged abort: %d", code)
	}
	as := newSession(t, base, adminToken)
	if code, body := as.post("/pipelines/shop/environments/dev/promote", url.Values{"release": {"1.0.0"}}, false, ""); code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
		t.Fatalf("admin's promote without a CSRF token: %d %s", code, body)
	}
	if code, _ := as.post("/pipelines/shop/environments/dev/promote", url.Values{"release": {"1.0.0"}}, true, "http://evil.example"); code != http.StatusForbidden {
		t.Fatalf("admin's promote from another origin: %d", code)
	}
	anon := newSession(t, base, "")
	if code, _ := anon.post("/pipelines/shop/environments/dev/promote", url.Values{"release": {"1.0.0"}}, true, ""); code != http.StatusUnauthorized {
		t.Fatalf("promote without signing in: %d", code)
	}
	if after := len(s.promotions("--pipeline", "shop")); after != before {
		t.Fatalf("refused forms changed the promotions: %d before, %d after", before, after)
	}
	// The session cookie is HttpOnly and SameSite.
	if c := as.cookie; !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure {
		t.Fatalf("session cookie over plain HTTP: HttpOnly=%v SameSite=%v Secure=%v", c.HttpOnly, c.SameSite, c.Secure)
	}
}

// chromiumPath finds Chromium; CI fails without it, a developer's run skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p, err := testproc.Find("chromium", "chromium", "chromium-browser", "google-chrome")
	if err != nil {
		testproc.Unavailable(t, "browser", err)
	}
	return p
}

// screenshotDir returns where the screenshots go.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FERRY_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "ferry-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless Chromium.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, path string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("lang", "en-US"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first call starts the browser, which lives as long as its
	// context: it gets no timeout.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

// run runs actions, each call bounded to a minute.
func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// eval returns the value of a JavaScript expression.
func (b *browser) eval(js string) string {
	b.t.Helper()
	return evalAs[string](b, js)
}

func evalAs[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", js, err)
	}
	return v
}

// text returns the text of the first element matching a CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	return b.eval(`(function(){ var e = document.querySelector(` + string(q) + `); return e ? e.textContent : ""; })()`)
}

func (b *browser) count(sel string) int {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	return evalAs[int](b, `document.querySelectorAll(`+string(q)+`).length`)
}

// waitJS waits until the page has loaded and a JavaScript expression is true.
func (b *browser) waitJS(expr, what string) {
	b.t.Helper()
	b.waitJSFor(expr, what, 20*time.Second)
}

func (b *browser) waitJSFor(expr, what string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && !!(`+expr+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting for %s: not after %s (last error %v); page at %s:\n%s", what, timeout, err,
				b.eval(`location.href`), b.eval(`document.querySelector("main") ? document.querySelector("main").innerText : ""`))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitState waits until the promotion page shows a state, whose label is
// always written out in words.
func (b *browser) waitState(label string, timeout time.Duration) {
	b.t.Helper()
	q, _ := json.Marshal(label)
	b.waitJSFor(`(document.querySelector("[data-testid=promotion-state] .badge") || {textContent: ""}).textContent.trim().endsWith(`+string(q)+`)`,
		"the promotion to be "+label, timeout)
}

// markPage marks the loaded document; assertNotReloaded checks the mark
// survived, so that a change seen since came without a reload.
func (b *browser) markPage() { b.eval(`String(window.__ferryMark = "kept")`) }

func (b *browser) assertNotReloaded() {
	b.t.Helper()
	if got := b.eval(`String(window.__ferryMark)`); got != "kept" {
		b.t.Fatal("the page reloaded: the change should have arrived over server-sent events")
	}
	if b.eval(`String(document.querySelector("main").hasAttribute("data-updated"))`) != "true" {
		b.t.Fatal("the page's content was never swapped by a live update")
	}
}

func (b *browser) signIn(token string) {
	b.t.Helper()
	b.run(chromedp.Navigate(strings.TrimSuffix(b.eval(`location.origin`), "/") + "/signin"))
	b.run(chromedp.WaitVisible(chromedp.CSS(`#token`)), chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)))
	b.waitJS(`location.pathname !== "/signin" && document.querySelector("[data-testid=user]") !== null`, "signing in")
}

func (b *browser) signOut() {
	b.t.Helper()
	b.run(chromedp.Click(chromedp.CSS(`form[action="/signout"] button`)))
	b.waitJS(`location.pathname === "/signin"`, "signing out")
}

// assertLabelled checks that every form control of the page has a label.
func (b *browser) assertLabelled(page string) {
	b.t.Helper()
	unlabelled := b.eval(`Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea")).filter(e => e.labels.length === 0).map(e => e.outerHTML).join("\n")`)
	if unlabelled != "" {
		b.t.Fatalf("controls without a label on %s:\n%s", page, unlabelled)
	}
}

// shot writes a full-page PNG screenshot.
func (b *browser) shot(dir, name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// formSession is a plain HTTP client with a dashboard session, for
// requests a page would never send.
type formSession struct {
	t      *testing.T
	base   string
	client *http.Client
	csrf   string
	cookie *http.Cookie
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// newSession signs in with token through the sign-in form; an empty token
// stays signed out.
func newSession(t *testing.T, base, token string) *formSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	fs := &formSession{t: t, base: base, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	fs.csrf = fs.csrfOf("/signin")
	if token == "" {
		return fs
	}
	resp, err := fs.client.PostForm(base+"/signin", url.Values{"csrf": {fs.csrf}, "token": {token}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "ferry_session" {
			fs.cookie = c
		}
	}
	if fs.cookie == nil {
		t.Fatal("sign in set no session cookie")
	}
	fs.csrf = fs.csrfOf("/")
	return fs
}

// csrfOf reads the CSRF token from a page's forms.
func (fs *formSession) csrfOf(path string) string {
	fs.t.Helper()
	resp, err := fs.client.Get(fs.base + path)
	if err != nil {
		fs.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := csrfRe.FindSubmatch(body)
	if m == nil {
		fs.t.Fatalf("GET %s (%d) has no CSRF token:\n%s", path, resp.StatusCode, body)
	}
	return string(m[1])
}

// post submits a form, with the session's CSRF token or without, and with
// an Origin header when origin is set.
func (fs *formSession) post(path string, form url.Values, withCSRF bool, origin string) (int, string) {
	fs.t.Helper()
	if withCSRF {
		form.Set("csrf", fs.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, fs.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := fs.client.Do(req)
	if err != nil {
		fs.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitLatest waits until the latest promotion into an environment ended.
func (s *server) waitLatest(pipelineName, env string) view.Promotion {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ps := s.promotions("--pipeline", pipelineName, "--env", env, "--limit", "1")
		if len(ps) > 0 && ps[0].State.Terminal() {
			return ps[0]
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no ended promotion into %s/%s after 60s", pipelineName, env)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, s)
	}
}

// TestQuickstartDashboard is the README's first session, in a browser: run
// `ferry up`, open the dashboard it prints, sign in with the token it
// prints, promote release 1.0.0 to prod from the page, approve it from the
// inbox and watch it move until prod runs it.
func TestQuickstartDashboard(t *testing.T) {
	chrome := chromiumPath(t)
	shots := screenshotDir(t)
	run := startUp(t)
	defer func() {
		_ = run.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-run.exited:
		case <-time.After(30 * time.Second):
			t.Error("ferry up did not stop on SIGINT")
		}
	}()
	_, token, _ := strings.Cut(run.text, "admin token (shown once): ")
	token, _, _ = strings.Cut(token, "\n")
	_, dashboard, ok := strings.Cut(run.text, "Dashboard: ")
	dashboard, _, _ = strings.Cut(dashboard, " ")
	if !ok || dashboard != "http://"+run.addr+"/" {
		t.Fatalf("ferry up printed no dashboard address:\n%s", run.text)
	}

	b := newBrowser(t, chrome)
	b.run(chromedp.Navigate(dashboard))
	b.waitJS(`location.pathname === "/signin"`, "the sign-in page")
	b.signIn(token)
	b.waitJS(`document.querySelector("#env-quickstart-prod") !== null`, "the quickstart pipeline")
	if got := b.text(`#env-quickstart-staging [data-testid=current]`); !strings.Contains(got, "1.0.0") {
		t.Fatalf("staging runs %q, want 1.0.0", got)
	}
	b.run(chromedp.Click(chromedp.CSS(`#env-quickstart-prod details.action summary`)))
	b.run(chromedp.SetValue(chromedp.CSS(`#env-quickstart-prod-release`), "1.0.0"))
	b.run(chromedp.SendKeys(chromedp.CSS(`#env-quickstart-prod-reason`), "first prod release"))
	b.run(chromedp.Click(chromedp.CSS(`#env-quickstart-prod form[action$="/promote"] button[type=submit]`)))
	b.waitJS(`location.pathname.startsWith("/promotions/")`, "the promotion page")
	b.waitState("awaiting approval", 30*time.Second)
	id := strings.TrimPrefix(b.eval(`location.pathname`), "/promotions/")

	// The promotion page offers the approval too; the inbox says what it is.
	b.run(chromedp.Navigate(dashboard + "inbox"))
	b.waitJS(`document.querySelector("article.approval[data-promotion='`+id+`']") !== null`, "the promotion in the inbox")
	b.run(chromedp.Click(chromedp.CSS(`article.approval [data-testid=approve]`)))
	b.waitJS(`location.pathname === "/promotions/`+id+`"`, "the promotion page after approving")
	b.markPage()
	b.waitState("succeeded", 60*time.Second)
	b.shot(shots, "quickstart-approved")
	if got := b.eval(`String(window.__ferryMark)`); got != "kept" {
		t.Fatal("the page reloaded while the promotion moved")
	}
	if body := httpGet(t, "http://127.0.0.1:18083/"); !strings.Contains(body, "release 1.0.0") {
		t.Fatalf("the prod demo app says %q", body)
	}
	if tl := b.text(`[data-testid=timeline]`); !strings.Contains(tl, "approved by admin") || !strings.Contains(tl, "deploying → verifying") {
		t.Fatalf("timeline:\n%s", tl)
	}
}
