// Package web serves Ferry's dashboard: server-rendered pages for the
// pipelines, a promotion's timeline, the approvals inbox, the executive and
// on-call views, kept live with server-sent events. Templates, styles and a
// little JavaScript are embedded; charts are SVG drawn on the server.
//
// Every action goes through the same engine methods and the same
// authorization as the HTTP API: a page hides the buttons a user's role does
// not allow, and the server refuses the request anyway.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/view"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Service is what the dashboard reads and does; the engine implements it.
type Service interface {
	Pipelines(ctx context.Context) ([]view.Pipeline, error)
	Pipeline(ctx context.Context, name string, revision int) (*pipeline.Revision, error)
	Status(ctx context.Context, pipeline string) (*view.Status, error)
	Releases(ctx context.Context, pipeline string, limit int) ([]release.Release, error)
	Release(ctx context.Context, pipeline, version string) (*release.Release, error)
	Promotion(ctx context.Context, id string) (*view.Promotion, error)
	Promotions(ctx context.Context, f store.PromotionFilter) ([]view.Promotion, error)
	Logs(ctx context.Context, id string) ([]view.LogChunk, error)
	Audit(ctx context.Context, f store.AuditFilter) ([]audit.Event, error)
	Promote(ctx context.Context, actor string, req engine.PromoteRequest) (*view.Promotion, error)
	Rollback(ctx context.Context, actor string, req engine.RollbackRequest) (*view.Promotion, error)
	Abort(ctx context.Context, actor, id, reason string) (*view.Promotion, error)
	Resume(ctx context.Context, actor, id, reason string) (*view.Promotion, error)
	Approve(ctx context.Context, who auth.Principal, id, comment string) (*view.Promotion, error)
	Reject(ctx context.Context, who auth.Principal, id, comment string) (*view.Promotion, error)
	PendingApprovals(ctx context.Context, who auth.Principal) ([]view.Promotion, error)
	// Subscribe calls fn with the IDs of changed promotions until cancel is
	// called; fn must not block.
	Subscribe(fn func(ids []string)) (cancel func())
}

var _ Service = (*engine.Engine)(nil)

// Defaults for Config.
const (
	// DefaultSessionTTL is how long a sign-in lasts.
	DefaultSessionTTL = 12 * time.Hour
	// DefaultLogPoll is how often a page following a running promotion's
	// output is sent what the store received since.
	DefaultLogPoll = 500 * time.Millisecond
	// maxFormBytes limits the size of a submitted form.
	maxFormBytes = 64 << 10
)

// Config configures the dashboard.
type Config struct {
	// Service reads and changes promotions. Required.
	Service Service
	// Store looks up the tokens people sign in with. Required unless
	// DisableAuth is set.
	Store store.Store
	// Stats computes the executive view's figures. Required.
	Stats StatsSource
	// SessionKey seals session cookies and derives CSRF tokens; at least 32
	// bytes. Servers sharing a store behind one address need the same key.
	// Required.
	SessionKey []byte
	// DisableAuth lets everyone in as a global admin without signing in,
	// as ferry server --auth=off does for the API. Defaults to false.
	DisableAuth bool
	// Fallback serves every request the dashboard has no page for: the
	// HTTP API. Defaults to a 404.
	Fallback http.Handler
	// SessionTTL is how long a sign-in lasts (never beyond the token's
	// expiry). Defaults to DefaultSessionTTL, 12 hours.
	SessionTTL time.Duration
	// LogPoll is how often the output of a running promotion is pushed to
	// the pages that follow it. Defaults to DefaultLogPoll, 500 milliseconds.
	LogPoll time.Duration
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
	// Logger receives errors the pages could not show. Defaults to discarding.
	Logger *slog.Logger
}

// Dashboard is the dashboard's HTTP handler. Close it before shutting the
// HTTP server down: it ends the event streams, which never go idle.
type Dashboard struct {
	cfg      Config
	svc      Service
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
	hub      *hub
	static   http.Handler

	closeOnce sync.Once
	unsub     func()
}

// New returns the dashboard. It fails when a required field of cfg is missing.
func New(cfg Config) (*Dashboard, error) {
	switch {
	case cfg.Service == nil:
		return nil, errors.New("web: Config.Service is required")
	case cfg.Store == nil && !cfg.DisableAuth:
		return nil, errors.New("web: Config.Store is required to check tokens (or set DisableAuth)")
	case cfg.Stats == nil:
		return nil, errors.New("web: Config.Stats is required")
	case len(cfg.SessionKey) < 32:
		return nil, fmt.Errorf("web: Config.SessionKey has %d bytes, want at least 32", len(cfg.SessionKey))
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.LogPoll <= 0 {
		cfg.LogPoll = DefaultLogPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Fallback == nil {
		cfg.Fallback = http.NotFoundHandler()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	sess, err := newSessions(cfg.SessionKey, cfg.SessionTTL, cfg.Now)
	if err != nil {
		return nil, err
	}
	static, _ := fs.Sub(staticFS, "static")
	d := &Dashboard{
		cfg: cfg, svc: cfg.Service, log: cfg.Logger, now: cfg.Now,
		sessions: sess, pages: pages, hub: newHub(),
		static: http.StripPrefix("/static/", http.FileServerFS(static)),
	}
	d.unsub = cfg.Service.Subscribe(d.hub.publish)
	d.mux = d.routes()
	return d, nil
}

// Close ends the event streams and stops listening for changes.
func (d *Dashboard) Close() {
	d.closeOnce.Do(func() {
		d.unsub()
		d.hub.close()
	})
}

// ServeHTTP serves the dashboard's pages and hands every other request to
// Config.Fallback.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := d.mux.Handler(r); pattern == "" {
		d.cfg.Fallback.ServeHTTP(w, r)
		return
	}
	d.mux.ServeHTTP(w, r) // sets the path values Handler does not
}

// routes lists the dashboard's pages and actions. Every path not here goes
// to the fallback (the API), so the dashboard never shadows an API route.
func (d *Dashboard) routes() *http.ServeMux {
	mux := http.NewServeMux()
	page := func(pattern string, h pageFunc) { mux.Handle(pattern, d.secure(d.signedIn(h))) }
	action := func(pattern string, h actionFunc) { mux.Handle(pattern, d.secure(d.post(h))) }

	mux.Handle("GET /static/", d.secure(d.staticFiles()))
	mux.Handle("GET /signin", d.secure(http.HandlerFunc(d.signInPage)))
	mux.Handle("POST /signin", d.secure(http.HandlerFunc(d.signIn)))
	mux.Handle("POST /signout", d.secure(http.HandlerFunc(d.signOut)))

	page("GET /{$}", d.overview)
	page("GET /promotions/{id}", d.promotionPage)
	page("GET /inbox", d.inbox)
	page("GET /executive", d.executive)
	page("GET /oncall", d.oncall)
	mux.Handle("GET /events", d.secure(d.signedIn(d.events)))

	action("POST /pipelines/{pipeline}/environments/{env}/promote", d.promote)
	action("POST /pipelines/{pipeline}/environments/{env}/rollback", d.rollback)
	action("POST /promotions/{id}/abort", d.abort)
	action("POST /promotions/{id}/resume", d.resume)
	action("POST /promotions/{id}/approve", d.approve)
	action("POST /promotions/{id}/reject", d.reject)
	return mux
}

// staticFiles serves the embedded CSS and JavaScript.
func (d *Dashboard) staticFiles() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		d.static.ServeHTTP(w, r)
	})
}

// secure sets the headers every dashboard response carries: a content
// security policy that allows only the dashboard's own scripts and styles,
// no framing, no MIME sniffing, no referrer to other sites.
func (d *Dashboard) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// httpError is an error a page shows with its HTTP status.
type httpError struct {
	status  int
	message string
}

func (e *httpError) Error() string { return e.message }

func errorStatus(status int, format string, args ...any) error {
	return &httpError{status: status, message: fmt.Sprintf(format, args...)}
}

// statusOf returns the HTTP status and the message to show for err, as
// the API maps engine errors.
func statusOf(err error) (int, string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.message
	}
	var ee *engine.Error
	if errors.As(err, &ee) {
		switch ee.Code {
		case engine.CodeInvalid:
			return http.StatusBadRequest, ee.Message
		case engine.CodeNotFound:
			return http.StatusNotFound, ee.Message
		case engine.CodeConflict:
			return http.StatusConflict, ee.Message
		case engine.CodePrecondition:
			return http.StatusUnprocessableEntity, ee.Message
		case engine.CodeForbidden:
			return http.StatusForbidden, ee.Message
		case engine.CodeUnavailable:
			return http.StatusServiceUnavailable, ee.Message
		}
	}
	return http.StatusInternalServerError, "the server could not complete the request; its log has the cause"
}

// forbidden turns a denied decision into a 403 that says what was missing.
func forbidden(dec auth.Decision) error {
	if dec.Allowed {
		return nil
	}
	if dec.Need == (auth.Grant{}) {
		return errorStatus(http.StatusBadRequest, "%s", dec.Reason)
	}
	return errorStatus(http.StatusForbidden, "%s", dec.Reason)
}
