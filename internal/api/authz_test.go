package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/step"
	"github.com/ferry-dev/ferry/internal/store"
)

// matrixPipeline is the pipeline the authorization matrix acts on: shop,
// whose dev environment the environment-level routes target.
const matrixPipeline = `name: shop
environments:
  - name: dev
    steps:
      - name: deploy
        exec: {run: "true"}
  - name: prod
    after: [dev]
    steps:
      - name: deploy
        exec: {run: "true"}
`

// The scopes of the matrix, in the order of the columns of expectations.
var matrixScopes = []string{"*", "shop", "web", "shop/dev", "shop/prod"}

// need is what a route needs, as its row of expectations says it.
type need string

// expectations says, for each need, each role and each scope of
// matrixScopes (global, the pipeline, another pipeline, the environment,
// another environment), whether a token with that single grant may call
// the route: Y yes, . no. It is written out by hand, from the roles and
// scopes as docs/api.md describes them, not computed with package auth.
var expectations = map[need]map[auth.Role]string{
	// Reads of the whole of Ferry: any role, global scope only.
	"view-global": {
		auth.RoleViewer: "Y....", auth.RoleReleaser: "Y....", auth.RolePromoter: "Y....",
		auth.RoleApprover: "Y....", auth.RoleAdmin: "Y....",
	},
	// Reads of a pipeline: any role on it or globally; not on one environment.
	"view-pipeline": {
		auth.RoleViewer: "YY...", auth.RoleReleaser: "YY...", auth.RolePromoter: "YY...",
		auth.RoleApprover: "YY...", auth.RoleAdmin: "YY...",
	},
	// Reads of an environment: any role on it, its pipeline, or globally.
	"view-env": {
		auth.RoleViewer: "YY.Y.", auth.RoleReleaser: "YY.Y.", auth.RolePromoter: "YY.Y.",
		auth.RoleApprover: "YY.Y.", auth.RoleAdmin: "YY.Y.",
	},
	"create-release": {
		auth.RoleViewer: ".....", auth.RoleReleaser: "YY...", auth.RolePromoter: ".....",
		auth.RoleApprover: ".....", auth.RoleAdmin: "YY...",
	},
	"apply-pipeline": {
		auth.RoleViewer: ".....", auth.RoleReleaser: ".....", auth.RolePromoter: ".....",
		auth.RoleApprover: ".....", auth.RoleAdmin: "YY...",
	},
	// Promote, abort and roll back in an environment.
	"promote-env": {
		auth.RoleViewer: ".....", auth.RoleReleaser: ".....", auth.RolePromoter: "YY.Y.",
		auth.RoleApprover: ".....", auth.RoleAdmin: "YY.Y.",
	},
	// Approve and reject in an environment.
	"approve-env": {
		auth.RoleViewer: ".....", auth.RoleReleaser: ".....", auth.RolePromoter: ".....",
		auth.RoleApprover: "YY.Y.", auth.RoleAdmin: "YY.Y.",
	},
	// The audit trail of a promotion in an environment.
	"review-env": {
		auth.RoleViewer: ".....", auth.RoleReleaser: ".....", auth.RolePromoter: ".....",
		auth.RoleApprover: ".....", auth.RoleAdmin: "YY.Y.",
	},
	// Roll back anywhere: the Alertmanager receiver, whose alerts may concern any environment.
	"promote-global": {
		auth.RoleViewer: ".....", auth.RoleReleaser: ".....", auth.RolePromoter: "Y....",
		auth.RoleApprover: ".....", auth.RoleAdmin: "Y....",
	},
	// The whole audit trail and token management.
	"admin-global": {
		auth.RoleViewer: ".....", auth.RoleReleaser: ".....", auth.RolePromoter: ".....",
		auth.RoleApprover: ".....", auth.RoleAdmin: "Y....",
	},
	// The OpenAPI document: any valid token.
	"any-token": {
		auth.RoleViewer: "YYYYY", auth.RoleReleaser: "YYYYY", auth.RolePromoter: "YYYYY",
		auth.RoleApprover: "YYYYY", auth.RoleAdmin: "YYYYY",
	},
}

// missingRole is the role a refusal of each need names.
var missingRole = map[need]auth.Role{
	"view-global": auth.RoleViewer, "view-pipeline": auth.RoleViewer, "view-env": auth.RoleViewer,
	"create-release": auth.RoleReleaser, "apply-pipeline": auth.RoleAdmin, "promote-env": auth.RolePromoter,
	"promote-global": auth.RolePromoter,
	"review-env":     auth.RoleAdmin, "admin-global": auth.RoleAdmin, "approve-env": auth.RoleApprover,
}

// matrixCase is one request of the matrix. Its route is "METHOD pattern".
type matrixCase struct {
	route  string
	target string
	body   string
	need   need
}

func matrixCases(promotionID string) []matrixCase {
	promote := `{"pipeline":"shop","release":"1.0.0","environment":"dev","reason":"matrix"}`
	apply, _ := json.Marshal(applyRequest{Filename: "shop.yaml", Source: matrixPipeline})
	return []matrixCase{
		{"GET /api/v1/openapi.json", "/api/v1/openapi.json", "", "any-token"},
		{"POST /api/v1/pipelines", "/api/v1/pipelines", string(apply), "apply-pipeline"},
		{"GET /api/v1/pipelines", "/api/v1/pipelines", "", "view-global"},
		{"GET /api/v1/pipelines/{name}", "/api/v1/pipelines/shop", "", "view-pipeline"},
		{"GET /api/v1/pipelines/{name}/status", "/api/v1/pipelines/shop/status", "", "view-pipeline"},
		{"GET /api/v1/pipelines/{name}/history", "/api/v1/pipelines/shop/history", "", "view-pipeline"},
		{"GET /api/v1/pipelines/{name}/history", "/api/v1/pipelines/shop/history?environment=dev", "", "view-env"},
		{"POST /api/v1/pipelines/{name}/releases", "/api/v1/pipelines/shop/releases",
			`{"version":"2.0.0","artifacts":[{"name":"api","uri":"reg/api","digest":"sha256:` + strings.Repeat("b", 64) + `"}]}`,
			"create-release"},
		{"GET /api/v1/pipelines/{name}/releases", "/api/v1/pipelines/shop/releases", "", "view-pipeline"},
		{"GET /api/v1/pipelines/{name}/releases/{version}", "/api/v1/pipelines/shop/releases/1.0.0", "", "view-pipeline"},
		{"POST /api/v1/promotions", "/api/v1/promotions", promote, "promote-env"},
		{"GET /api/v1/promotions", "/api/v1/promotions", "", "view-global"},
		{"GET /api/v1/promotions", "/api/v1/promotions?pipeline=shop", "", "view-pipeline"},
		{"GET /api/v1/promotions", "/api/v1/promotions?pipeline=shop&environment=dev", "", "view-env"},
		{"GET /api/v1/promotions/{id}", "/api/v1/promotions/" + promotionID, "", "view-env"},
		{"GET /api/v1/promotions/{id}/logs", "/api/v1/promotions/" + promotionID + "/logs", "", "view-env"},
		{"POST /api/v1/promotions/{id}/abort", "/api/v1/promotions/" + promotionID + "/abort", `{"reason":"matrix"}`, "promote-env"},
		{"POST /api/v1/promotions/{id}/resume", "/api/v1/promotions/" + promotionID + "/resume", `{"reason":"matrix"}`, "promote-env"},
		{"POST /api/v1/promotions/{id}/approve", "/api/v1/promotions/" + promotionID + "/approve", `{"comment":"matrix"}`, "approve-env"},
		{"POST /api/v1/promotions/{id}/reject", "/api/v1/promotions/" + promotionID + "/reject", `{"comment":"matrix"}`, "approve-env"},
		{"POST /api/v1/promotions/{id}/review", "/api/v1/promotions/" + promotionID + "/review", `{"comment":"matrix"}`, "review-env"},
		{"GET /api/v1/approvals", "/api/v1/approvals", "", "any-token"},
		{"GET /api/v1/reviews", "/api/v1/reviews", "", "admin-global"},
		{"GET /api/v1/plan", "/api/v1/plan?pipeline=shop&release=1.0.0&environment=dev", "", "view-env"},
		{"POST /api/v1/rollbacks", "/api/v1/rollbacks", `{"pipeline":"shop","environment":"dev","reason":"matrix"}`, "promote-env"},
		{"POST /api/v1/alerts/alertmanager", "/api/v1/alerts/alertmanager",
			`{"version":"4","groupKey":"{}:{alertname=\"X\"}","status":"firing","receiver":"ferry","alerts":[]}`, "promote-global"},
		{"GET /api/v1/audit", "/api/v1/audit", "", "admin-global"},
		{"GET /api/v1/audit", "/api/v1/audit?promotion=" + promotionID, "", "review-env"},
		{"GET /api/v1/audit/verify", "/api/v1/audit/verify", "", "admin-global"},
		{"GET /api/v1/audit/export", "/api/v1/audit/export", "", "admin-global"},
		{"GET /api/v1/audit/export", "/api/v1/audit/export?promotion=" + promotionID, "", "review-env"},
		{"GET /api/v1/audit/pubkey", "/api/v1/audit/pubkey", "", "any-token"},
		{"POST /api/v1/audit/checkpoints", "/api/v1/audit/checkpoints", "", "admin-global"},
		{"GET /api/v1/cluster", "/api/v1/cluster", "", "view-global"},
		{"GET /api/v1/stats", "/api/v1/stats", "", "view-global"},
		{"GET /api/v1/stats", "/api/v1/stats?pipeline=shop", "", "view-pipeline"},
		{"GET /api/v1/stats", "/api/v1/stats?pipeline=shop&environment=dev&window=7d&bucket=1d", "", "view-env"},
		{"GET /metrics", "/metrics", "", "view-global"},
		{"POST /api/v1/tokens", "/api/v1/tokens", `{"user":"x","grants":[{"role":"viewer","scope":"shop"}]}`, "admin-global"},
		{"GET /api/v1/tokens", "/api/v1/tokens", "", "admin-global"},
		{"POST /api/v1/tokens/{id}/revoke", "/api/v1/tokens/ZZZZZZZZ/revoke", "", "admin-global"},
	}
}

// matrixBundle is the API over a real engine on a real SQLite store.
type matrixBundle struct {
	h      http.Handler
	st     store.Store
	tokens map[string]string // by "role scope"
	admin  string
}

func setupMatrix(t *testing.T) (*matrixBundle, string) {
	t.Helper()
	st := openStore(t)
	eng, err := engine.New(engine.Config{
		Store:         st,
		Drivers:       map[string]step.Driver{"exec": step.Nop{}, "http": step.Nop{}},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		ShutdownGrace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	b := &matrixBundle{st: st, tokens: map[string]string{},
		h: New(Config{Service: eng, Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AuditSigner: must(audit.GenerateSigner())})}
	ctx := context.Background()
	admin, created, err := BootstrapAdmin(ctx, st, "", time.Now())
	if err != nil || !created {
		t.Fatalf("bootstrap admin: %v, %v", created, err)
	}
	b.admin = admin
	for _, role := range auth.Roles() {
		for _, sc := range matrixScopes {
			scope, err := auth.ParseScope(sc)
			if err != nil {
				t.Fatal(err)
			}
			tok := auth.Token{User: string(role) + "@" + sc, Grants: []auth.Grant{{Role: role, Scope: scope}}, CreatedAt: time.Now()}
			plaintext, err := insertNewToken(ctx, st, "test", &tok)
			if err != nil {
				t.Fatal(err)
			}
			b.tokens[string(role)+" "+sc] = plaintext
		}
	}
	// The pipeline, a release and a promotion into dev, by the admin.
	for _, c := range []struct{ target, body string }{
		{"/api/v1/pipelines", string(must(json.Marshal(applyRequest{Filename: "shop.yaml", Source: matrixPipeline})))},
		{"/api/v1/pipelines/shop/releases", `{"version":"1.0.0","artifacts":[{"name":"api","uri":"reg/api","digest":"sha256:` + strings.Repeat("a", 64) + `"}]}`},
	} {
		if rec := b.do(t, admin, http.MethodPost, c.target, c.body); rec.Code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", c.target, rec.Code, rec.Body)
		}
	}
	rec := b.do(t, admin, http.MethodPost, "/api/v1/promotions", `{"pipeline":"shop","release":"1.0.0","environment":"dev","reason":"setup"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("promote: %d %s", rec.Code, rec.Body)
	}
	var p struct{ ID string }
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	return b, p.ID
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (b *matrixBundle) do(t *testing.T, token, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequestWithContext(t.Context(), method, target, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// Ignored with authentication on: the actor is the token's user.
	req.Header.Set(HeaderActor, "mallory")
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	return rec
}

// changes counts what a mutating request leaves behind: audit events by a
// person (every change writes one; the engine, as "system", goes on driving
// the promotions allowed calls started) and tokens.
func (b *matrixBundle) changes(t *testing.T) int {
	t.Helper()
	n := 0
	err := b.st.View(t.Context(), func(tx store.Tx) error {
		events, err := tx.AuditEvents(t.Context(), store.AuditFilter{})
		if err != nil {
			return err
		}
		for _, e := range events {
			if e.Actor != "system" {
				n++
			}
		}
		toks, err := tx.Tokens(t.Context())
		n += len(toks)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAuthorizationMatrix calls every route with a token of every role on
// every scope, and checks the outcome against the expectations: allowed
// calls are neither 401 nor 403; refused ones are 403 with a detail naming
// the missing role, and change nothing. Every route also answers 401
// without a token.
func TestAuthorizationMatrix(t *testing.T) {
	b, promotionID := setupMatrix(t)
	cases := matrixCases(promotionID)

	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.route] = true
	}
	for _, rt := range newServer(Config{Service: &fakeService{}, DisableAuth: true}).routes() {
		key := rt.method + " " + rt.path
		if rt.authz == nil {
			continue
		}
		if !covered[key] {
			t.Errorf("route %s is not in the authorization matrix; add it with its expectations", key)
		}
	}

	for _, c := range cases {
		method, _, _ := strings.Cut(c.route, " ")
		t.Run(method+" "+c.target, func(t *testing.T) {
			rec := b.do(t, "", method, c.target, c.body)
			p := readProblem(t, rec, http.StatusUnauthorized, codeUnauthenticated)
			if !strings.Contains(p["detail"].(string), "Authorization: Bearer") {
				t.Errorf("401 detail %q does not say how to authenticate", p["detail"])
			}
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			for _, role := range auth.Roles() {
				row := expectations[c.need][role]
				if len(row) != len(matrixScopes) {
					t.Fatalf("expectations of %s for %s: %q", c.need, role, row)
				}
				for i, sc := range matrixScopes {
					allowed := row[i] == 'Y'
					before := b.changes(t)
					rec := b.do(t, b.tokens[string(role)+" "+sc], method, c.target, c.body)
					denied := rec.Code == http.StatusForbidden
					switch {
					case rec.Code == http.StatusUnauthorized:
						t.Errorf("%s on %s: 401 %s", role, sc, rec.Body)
					case allowed && denied:
						t.Errorf("%s on %s: refused, want allowed: %s", role, sc, rec.Body)
					case !allowed && !denied:
						t.Errorf("%s on %s: %d, want 403: %s", role, sc, rec.Code, rec.Body)
					case !allowed:
						p := readProblem(t, rec, http.StatusForbidden, codeForbidden)
						want := `role "` + string(missingRole[c.need]) + `"`
						if detail, _ := p["detail"].(string); !strings.Contains(detail, want) ||
							!strings.Contains(detail, string(role)+" on "+sc) {
							t.Errorf("%s on %s: 403 detail %q names neither %s nor the grant held", role, sc, detail, want)
						}
						if after := b.changes(t); after != before {
							t.Errorf("%s on %s: refused request changed the store (%d → %d records)", role, sc, before, after)
						}
					}
				}
			}
		})
	}
}

// TestActorIsTheTokensUser checks that what a token does is recorded as its
// user's, whatever X-Ferry-Actor says, and that the principal reaches the
// handlers.
func TestActorIsTheTokensUser(t *testing.T) {
	b, promotionID := setupMatrix(t)
	rec := b.do(t, b.admin, http.MethodGet, "/api/v1/audit?promotion="+promotionID, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("audit: %d %s", rec.Code, rec.Body)
	}
	var events []struct{ Actor, Action string }
	if err := json.Unmarshal(rec.Body.Bytes(), &events); err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 || events[0].Action != "promotion.create" || events[0].Actor != AdminUser {
		t.Fatalf("events = %+v, want promotion.create by %s first", events, AdminUser)
	}
	for _, e := range events {
		if e.Actor == "mallory" {
			t.Errorf("X-Ferry-Actor recorded as the actor of %s", e.Action)
		}
	}
}

// TestUnauthenticatedSaysWhy checks the 401 of each kind of bad token.
func TestUnauthenticatedSaysWhy(t *testing.T) {
	b, _ := setupMatrix(t)
	ctx := context.Background()
	expired := auth.Token{User: "old", Grants: []auth.Grant{{Role: auth.RoleViewer}},
		CreatedAt: time.Now().Add(-2 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour)}
	expiredText, err := insertNewToken(ctx, b.st, "test", &expired)
	if err != nil {
		t.Fatal(err)
	}
	revoked := b.tokens["viewer *"]
	if err := b.st.Update(ctx, func(tx store.Tx) error {
		return tx.RevokeToken(ctx, auth.TokenID(revoked), time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	unknown, _ := auth.NewToken()
	tests := []struct {
		name, header, want string
	}{
		{"missing", "", "needs an API token"},
		{"not bearer", "Basic dXNlcjpwYXNz", `must be "Bearer <token>"`},
		{"malformed", "Bearer ferry_short", "malformed token"},
		{"unknown", "Bearer " + unknown, "not known to this server"},
		{"expired", "Bearer " + expiredText, "token expired at"},
		{"revoked", "Bearer " + revoked, "token revoked at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/api/v1/pipelines", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			b.h.ServeHTTP(rec, req)
			p := readProblem(t, rec, http.StatusUnauthorized, codeUnauthenticated)
			if detail := p["detail"].(string); !strings.Contains(detail, tt.want) {
				t.Errorf("detail %q does not contain %q", detail, tt.want)
			}
			if strings.Contains(rec.Body.String(), unknown) || strings.Contains(rec.Body.String(), expiredText) {
				t.Errorf("the 401 repeats the token: %s", rec.Body)
			}
		})
	}
	// Health checks need no token.
	for _, path := range []string{"/healthz", "/readyz"} {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
		rec := httptest.NewRecorder()
		b.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s without a token: %d", path, rec.Code)
		}
	}
}

// TestTokenRoutes creates, lists and revokes a token through the API, and
// checks that neither the list nor the audit trail holds a secret.
func TestTokenRoutes(t *testing.T) {
	b, _ := setupMatrix(t)
	rec := b.do(t, b.admin, http.MethodPost, "/api/v1/tokens",
		`{"user":"ci","grants":[{"role":"releaser","scope":"shop"}],"expires":"30d"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var created createdToken
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	if auth.CheckTokenFormat(created.Secret) != nil || created.Token.ID != auth.TokenID(created.Secret) ||
		created.Token.User != "ci" || created.Token.CreatedBy != AdminUser || created.Token.ExpiresAt == nil ||
		created.Token.ExpiresAt.Sub(created.Token.CreatedAt) != 30*24*time.Hour {
		t.Fatalf("created = %+v", created)
	}
	// The new token works, within its grant.
	if rec := b.do(t, created.Secret, http.MethodGet, "/api/v1/pipelines/shop/releases", ""); rec.Code != http.StatusOK {
		t.Errorf("list releases with the new token: %d %s", rec.Code, rec.Body)
	}
	for _, bad := range []string{
		`{"user":"","grants":[{"role":"viewer"}]}`,
		`{"user":"x","grants":[]}`,
		`{"user":"x","grants":[{"role":"boss"}]}`,
		`{"user":"x","grants":[{"role":"viewer","scope":"Shop"}]}`,
		`{"user":"x","grants":[{"role":"viewer"}],"expires":"-1d"}`,
		`{"user":"x","grants":[{"role":"viewer"}],"hash":"abc"}`,
	} {
		if rec := b.do(t, b.admin, http.MethodPost, "/api/v1/tokens", bad); rec.Code != http.StatusBadRequest {
			t.Errorf("create %s: %d, want 400: %s", bad, rec.Code, rec.Body)
		}
	}

	rec = b.do(t, b.admin, http.MethodGet, "/api/v1/tokens", "")
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), created.Secret) ||
		strings.Contains(rec.Body.String(), auth.HashToken(created.Secret)) || !strings.Contains(rec.Body.String(), created.Token.ID) {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}

	rec = b.do(t, b.admin, http.MethodPost, "/api/v1/tokens/"+created.Token.ID+"/revoke", "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"revokedAt"`) {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	if rec := b.do(t, created.Secret, http.MethodGet, "/api/v1/pipelines/shop/releases", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", rec.Code)
	}
	readProblem(t, b.do(t, b.admin, http.MethodPost, "/api/v1/tokens/nope/revoke", ""), http.StatusNotFound, codeNotFound)

	rec = b.do(t, b.admin, http.MethodGet, "/api/v1/audit?action=token.create", "")
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), created.Secret) ||
		strings.Contains(rec.Body.String(), auth.HashToken(created.Secret)) || !strings.Contains(rec.Body.String(), "token/"+created.Token.ID) {
		t.Fatalf("token.create events: %d %s", rec.Code, rec.Body)
	}
}
