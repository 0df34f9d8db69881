package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/store"
)

// principalKey is the context key of the request's principal.
type principalKey struct{}

// WithPrincipal returns ctx carrying p, as the API's authentication does
// for every request it lets through.
func WithPrincipal(ctx context.Context, p auth.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns who the request of ctx acts as: the user and grants
// of the token it presented, or, when authentication is off, the user named
// by X-Ferry-Actor with global admin. ok is false outside a request that
// passed authentication.
func PrincipalFrom(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(auth.Principal)
	return p, ok
}

// target is what a request asks to do: an action on the resource at
// pipeline and environment.
type target struct {
	action   auth.Action
	pipeline string
	env      string
	// authenticated marks a route any valid token may call, whatever its grants.
	authenticated bool
	// globalAdmin, when set, says what the request does that only an admin
	// on the global scope may do; action is then not checked.
	globalAdmin string
}

// authorizer reads from a request what it asks to do. It may read the body,
// which it leaves for the handler to read again. An error it returns (a
// malformed body, an unknown promotion) is answered as such.
type authorizer func(r *http.Request) (target, error)

// public marks a route that needs no token.
var public authorizer

// anyToken lets any authenticated request through.
func anyToken(*http.Request) (target, error) { return target{authenticated: true}, nil }

// global asks for action on the whole of Ferry.
func global(action auth.Action) authorizer {
	return func(*http.Request) (target, error) { return target{action: action}, nil }
}

// onPipeline asks for action on the pipeline named in the path, or on one
// of its environments when query parameter envParam names one.
func onPipeline(action auth.Action, envParam string) authorizer {
	return func(r *http.Request) (target, error) {
		t := target{action: action, pipeline: r.PathValue("name")}
		if envParam != "" {
			t.env = r.URL.Query().Get(envParam)
		}
		return t, nil
	}
}

// onPromotion asks for action on the environment of the promotion whose ID
// is in the path.
func (s *server) onPromotion(action auth.Action) authorizer {
	return func(r *http.Request) (target, error) {
		return s.promotionTarget(r, action, r.PathValue("id"))
	}
}

func (s *server) promotionTarget(r *http.Request, action auth.Action, id string) (target, error) {
	p, err := s.svc.Promotion(r.Context(), id)
	if err != nil {
		return target{}, err
	}
	return target{action: action, pipeline: p.Pipeline, env: p.Environment}, nil
}

// inBody asks for action on the environment a JSON body names in its
// pipeline and environment fields; v is the body's type, decoded strictly.
func inBody[T any](action auth.Action, where func(*T) (pipeline, env string)) authorizer {
	return func(r *http.Request) (target, error) {
		var v T
		if err := peekJSON(r, &v); err != nil {
			return target{}, err
		}
		p, e := where(&v)
		return target{action: action, pipeline: p, env: e}, nil
	}
}

// listPromotionsTarget asks for view on the pipeline (and environment) the
// query filters on, or on everything.
func listPromotionsTarget(r *http.Request) (target, error) {
	q := r.URL.Query()
	t := target{action: auth.ActionView, pipeline: q.Get("pipeline")}
	if t.pipeline != "" {
		t.env = q.Get("environment")
	}
	return t, nil
}

// auditTarget asks to review the audit trail of the promotion the query
// names, or the whole trail.
func (s *server) auditTarget(r *http.Request) (target, error) {
	if id := r.URL.Query().Get("promotion"); id != "" {
		return s.promotionTarget(r, auth.ActionReview, id)
	}
	return target{action: auth.ActionReview}, nil
}

// applyTarget asks for admin on the pipeline the applied YAML names. When
// the name cannot be read, the engine's validation explains why, but only to
// a global admin: anyone else is refused first.
func applyTarget(r *http.Request) (target, error) {
	var req applyRequest
	if err := peekJSON(r, &req); err != nil {
		return target{}, err
	}
	var head struct {
		Name string `yaml:"name"`
	}
	err := yaml.Unmarshal([]byte(req.Source), &head)
	if err != nil || head.Name == "" || (auth.Scope{Pipeline: head.Name}).Validate() != nil {
		return target{globalAdmin: "apply a pipeline whose name cannot be read"}, nil
	}
	return target{action: auth.ActionApplyPipeline, pipeline: head.Name}, nil
}

// peekJSON decodes r's body strictly into v and puts the body back for the
// handler.
func peekJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(mbe.Limit)
		}
		return invalidf("read request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	clone := r.Clone(r.Context())
	clone.Body = io.NopCloser(bytes.NewReader(body))
	return decodeJSON(clone, v)
}

// guard wraps a route's handler: it authenticates the request, decides with
// az whether its principal may do what it asks, and puts the principal in
// the request's context. With authentication off, the principal is the
// X-Ferry-Actor with global admin.
func (s *server) guard(az authorizer, next handlerFunc) handlerFunc {
	if az == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.authenticate(r)
		if err != nil {
			if pr, ok := err.(*problem); ok && pr.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
			}
			return err
		}
		r = r.WithContext(WithPrincipal(r.Context(), p))
		if s.authOff {
			// Global admin may do anything: nothing to decide.
			return next(w, r)
		}
		t, err := az(r)
		if err != nil {
			return err
		}
		if err := decide(p, t); err != nil {
			return err
		}
		return next(w, r)
	}
}

// decide returns nil if p may do t, a 403 problem whose detail says which
// role on which scope is missing, or a 400 problem when the request does not
// name the resource the action needs.
func decide(p auth.Principal, t target) error {
	if t.authenticated {
		return nil
	}
	var d auth.Decision
	if t.globalAdmin != "" {
		d = globalAdminDecision(p, t.globalAdmin)
	} else {
		d = p.Can(t.action, t.pipeline, t.env)
	}
	if d.Allowed {
		return nil
	}
	if d.Need == (auth.Grant{}) {
		return invalidf("%s", d.Reason)
	}
	return &problem{Status: http.StatusForbidden, Code: codeForbidden, Detail: d.Reason,
		Details: map[string]any{"user": p.User, "need": d.Need}}
}

// globalAdminDecision decides whether p is an admin on the global scope,
// which doing what needs.
func globalAdminDecision(p auth.Principal, what string) auth.Decision {
	need := auth.Grant{Role: auth.RoleAdmin}
	for _, g := range p.Grants {
		if g.Validate() == nil && g.Role.Includes(auth.RoleAdmin) && g.Scope.IsGlobal() {
			return auth.Decision{Allowed: true, Reason: "allowed to " + what + " by " + g.String(), Need: need}
		}
	}
	has := "no grants"
	if len(p.Grants) > 0 {
		parts := make([]string, len(p.Grants))
		for i, g := range p.Grants {
			parts[i] = g.String()
		}
		has = strings.Join(parts, ", ")
	}
	return auth.Decision{
		Reason: fmt.Sprintf("role %q on %q (global) is required to %s; the token has: %s", auth.RoleAdmin, auth.GlobalScope, what, has),
		Need:   need,
	}
}

// authenticate returns the principal of r's bearer token, or a 401 problem
// that says what is wrong with it.
func (s *server) authenticate(r *http.Request) (auth.Principal, error) {
	if s.authOff {
		a, err := headerActor(r)
		if err != nil {
			return auth.Principal{}, err
		}
		return auth.Principal{User: a, Grants: []auth.Grant{{Role: auth.RoleAdmin}}}, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return auth.Principal{}, unauthorized("this request needs an API token: send the header \"Authorization: Bearer <token>\" (the CLI sends --token or FERRY_TOKEN)")
	}
	scheme, plaintext, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return auth.Principal{}, unauthorized("the Authorization header must be \"Bearer <token>\"")
	}
	plaintext = strings.TrimSpace(plaintext)
	if err := auth.CheckTokenFormat(plaintext); err != nil {
		return auth.Principal{}, unauthorized("invalid token: %v", err)
	}
	id := auth.TokenID(plaintext)
	var tok *auth.Token
	err := s.store.View(r.Context(), func(tx store.Tx) error {
		var err error
		tok, err = tx.TokenByHash(r.Context(), auth.HashToken(plaintext))
		return err
	})
	if errors.Is(err, store.ErrNotFound) || err == nil && !tok.Matches(plaintext) {
		return auth.Principal{}, unauthorized("invalid token: token %s is not known to this server", id)
	}
	if err != nil {
		return auth.Principal{}, fmt.Errorf("look up token %s: %w", id, err)
	}
	if err := tok.Valid(s.now()); err != nil {
		return auth.Principal{}, unauthorized("token %s of %s is no longer valid: %v", tok.ID, tok.User, err)
	}
	return tok.Principal(), nil
}

// unauthorized returns a 401 problem.
func unauthorized(format string, args ...any) *problem {
	return problemf(http.StatusUnauthorized, codeUnauthenticated, format, args...)
}
