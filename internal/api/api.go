// Package api serves Ferry's HTTP API: JSON under /api/v1, errors as RFC 9457
// problem details, Idempotency-Key on every POST, request size limits, and an
// OpenAPI document that describes exactly the routes served.
package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/internal/alert"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/view"
)

// Service does the work the API exposes. The engine implements it.
type Service interface {
	Apply(ctx context.Context, actor, filename string, source []byte) (view.ApplyResult, error)
	Pipelines(ctx context.Context) ([]view.Pipeline, error)
	Pipeline(ctx context.Context, name string, revision int) (*pipeline.Revision, error)
	CreateRelease(ctx context.Context, actor string, r release.Release) (*release.Release, bool, error)
	Releases(ctx context.Context, pipeline string, limit int) ([]release.Release, error)
	Release(ctx context.Context, pipeline, version string) (*release.Release, error)
	Promote(ctx context.Context, actor string, req engine.PromoteRequest) (*view.Promotion, error)
	Rollback(ctx context.Context, actor string, req engine.RollbackRequest) (*view.Promotion, error)
	Abort(ctx context.Context, actor, id, reason string) (*view.Promotion, error)
	// Resume continues a promotion paused by an inconclusive check.
	Resume(ctx context.Context, actor, id, reason string) (*view.Promotion, error)
	Promotion(ctx context.Context, id string) (*view.Promotion, error)
	Promotions(ctx context.Context, f store.PromotionFilter) ([]view.Promotion, error)
	// WaitPromotion returns the promotion once its version exceeds afterVersion,
	// or an error when ctx ends first.
	WaitPromotion(ctx context.Context, id string, afterVersion int64) (*view.Promotion, error)
	Logs(ctx context.Context, id string) ([]view.LogChunk, error)
	Status(ctx context.Context, pipeline string) (*view.Status, error)
	History(ctx context.Context, pipeline, env string, limit int) ([]view.Promotion, error)
	Audit(ctx context.Context, f store.AuditFilter) ([]audit.Event, error)
	// ReceiveAlerts records an Alertmanager notification's firing alerts on
	// the promotions they concern, rolling back where environments say so.
	ReceiveAlerts(ctx context.Context, actor string, m *alert.Message) (*view.AlertReport, error)
	// Cluster lists the live replicas sharing the store, each with the
	// promotions it drives.
	Cluster(ctx context.Context) ([]view.Replica, error)
	Gates
	Stats
}

// Limits and defaults of the API.
const (
	// DefaultMaxBodyBytes is the default limit on the size of a request body.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultWaitTimeout is how long GET /api/v1/promotions/{id}?waitVersion=N
	// waits when the request gives no timeout.
	DefaultWaitTimeout = 30 * time.Second
	// MaxWaitTimeout caps the timeout of a long-poll. An http.Server serving the
	// API needs a WriteTimeout longer than this (or none).
	MaxWaitTimeout = 60 * time.Second
	// DefaultLimit is the number of items a list returns when the request gives no limit.
	DefaultLimit = 100
	// MaxLimit is the largest limit a list accepts.
	MaxLimit = 1000
	// MaxIdempotencyKeyLength is the longest Idempotency-Key accepted.
	MaxIdempotencyKeyLength = 255
	// MaxActorLength is the longest X-Ferry-Actor accepted.
	MaxActorLength = 128
)

// Headers the API reads or writes.
const (
	// HeaderActor names who makes a request when authentication is off
	// (Config.DisableAuth). With authentication on it is ignored: the actor
	// is the user of the request's token.
	HeaderActor = "X-Ferry-Actor"
	// HeaderIdempotencyKey makes a POST safe to retry.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderReplayed is "true" on a response replayed for a repeated Idempotency-Key.
	HeaderReplayed = "Idempotency-Replayed"
)

// DefaultActor is the actor of a request without an X-Ferry-Actor header
// when authentication is off.
const DefaultActor = "anonymous"

// Config configures the API handler.
type Config struct {
	// Service does the work behind the routes. Required.
	Service Service
	// Store keeps API tokens and the responses to POST requests made with an
	// Idempotency-Key. Required unless DisableAuth is set; then, when nil,
	// the header is ignored and a repeated POST is executed again. Servers
	// always set it.
	Store store.Store
	// DisableAuth turns authentication off: every request acts as the user
	// its X-Ferry-Actor header names, with global admin. Only for a server
	// that listens on a loopback address (ferry server --auth=off). Defaults
	// to false: every route but /healthz and /readyz needs a bearer token.
	DisableAuth bool
	// Now returns the current time, which decides whether a token has
	// expired. Defaults to time.Now.
	Now func() time.Time
	// Logger receives one line per request (method, path, status, duration) and
	// the causes of internal errors. Defaults to discarding.
	Logger *slog.Logger
	// MaxBodyBytes limits the size of a request body; larger bodies get 413.
	// Defaults to DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// Ready reports whether the server can serve; GET /readyz answers 503 while
	// it returns an error. Defaults to always ready.
	Ready func(context.Context) error
	// Version is the server's version, shown in the OpenAPI document. Defaults to "dev".
	Version string
	// Metrics is what GET /metrics serves, in the Prometheus text format:
	// the server's own registry. Defaults to an empty registry.
	Metrics prometheus.Gatherer
	// AuditSigner signs checkpoints of the audit chain on request, and its
	// public key verifies the stored ones. Nil means the server has no audit
	// key: checkpoint and public key requests get 404, and verification does
	// not check signatures.
	AuditSigner *audit.Signer
}

// New returns the API's HTTP handler. It panics when cfg.Service is nil, or
// cfg.Store is nil while authentication is on.
func New(cfg Config) http.Handler {
	return newServer(cfg).handler()
}

// server holds what the handlers share.
type server struct {
	svc     Service
	store   store.Store
	log     *slog.Logger
	maxBody int64
	ready   func(context.Context) error
	authOff bool
	now     func() time.Time
	signer  *audit.Signer

	metricsHandler http.Handler

	openapi []byte
	// paths matches request paths against the routes' path patterns only, to
	// tell a wrong method (405) from an unknown route (404).
	paths   *http.ServeMux
	allowed map[string][]string

	// inflight holds a channel per idempotency key being served, closed when
	// its response is stored, so that a concurrent duplicate waits for it.
	mu       sync.Mutex
	inflight map[string]chan struct{}
}

func newServer(cfg Config) *server {
	if cfg.Service == nil {
		panic("api: Config.Service is nil")
	}
	if cfg.Store == nil && !cfg.DisableAuth {
		panic("api: Config.Store is nil: authentication looks tokens up in it (or set DisableAuth)")
	}
	s := &server{
		svc:      cfg.Service,
		store:    cfg.Store,
		log:      cfg.Logger,
		maxBody:  cfg.MaxBodyBytes,
		ready:    cfg.Ready,
		authOff:  cfg.DisableAuth,
		now:      cfg.Now,
		signer:   cfg.AuditSigner,
		paths:    http.NewServeMux(),
		allowed:  map[string][]string{},
		inflight: map[string]chan struct{}{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ready == nil {
		s.ready = func(context.Context) error { return nil }
	}
	s.metricsHandler = newMetricsHandler(cfg.Metrics, s.log)
	version := cfg.Version
	if version == "" {
		version = "dev"
	}
	doc, err := json.Marshal(openAPIDocument(version))
	if err != nil {
		panic(fmt.Sprintf("api: marshal OpenAPI document: %v", err))
	}
	s.openapi = doc
	return s
}

// handlerFunc serves a request; an error it returns becomes a problem response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one entry of the route table.
type route struct {
	method string
	// path is a net/http ServeMux path pattern, which is also the OpenAPI path.
	path   string
	handle handlerFunc
	// authz says what a request asks to do, for authorization; nil marks a
	// route anyone may call without a token.
	authz authorizer
}

// routes is the route table: every route the API serves. The OpenAPI document
// describes exactly these (see openapi_test.go).
func (s *server) routes() []route {
	view := auth.ActionView
	promote := inBody(auth.ActionPromote, func(r *engine.PromoteRequest) (string, string) { return r.Pipeline, r.Environment })
	rollback := inBody(auth.ActionRollback, func(r *engine.RollbackRequest) (string, string) { return r.Pipeline, r.Environment })
	return []route{
		{http.MethodGet, "/healthz", s.healthz, public},
		{http.MethodGet, "/readyz", s.readyz, public},
		{http.MethodGet, "/metrics", s.metrics, global(view)},
		{http.MethodGet, "/api/v1/openapi.json", s.openAPI, anyToken},

		{http.MethodPost, "/api/v1/pipelines", s.applyPipeline, applyTarget},
		{http.MethodGet, "/api/v1/pipelines", s.listPipelines, global(view)},
		{http.MethodGet, "/api/v1/pipelines/{name}", s.getPipeline, onPipeline(view, "")},
		{http.MethodGet, "/api/v1/pipelines/{name}/status", s.getStatus, onPipeline(view, "")},
		{http.MethodGet, "/api/v1/pipelines/{name}/history", s.getHistory, onPipeline(view, "environment")},

		{http.MethodPost, "/api/v1/pipelines/{name}/releases", s.createRelease, onPipeline(auth.ActionCreateRelease, "")},
		{http.MethodGet, "/api/v1/pipelines/{name}/releases", s.listReleases, onPipeline(view, "")},
		{http.MethodGet, "/api/v1/pipelines/{name}/releases/{version}", s.getRelease, onPipeline(view, "")},

		{http.MethodPost, "/api/v1/promotions", s.promote, promote},
		{http.MethodGet, "/api/v1/promotions", s.listPromotions, listPromotionsTarget},
		{http.MethodGet, "/api/v1/promotions/{id}", s.getPromotion, s.onPromotion(view)},
		{http.MethodGet, "/api/v1/promotions/{id}/logs", s.getLogs, s.onPromotion(view)},
		{http.MethodPost, "/api/v1/promotions/{id}/abort", s.abort, s.onPromotion(auth.ActionAbort)},
		{http.MethodPost, "/api/v1/promotions/{id}/resume", s.resume, s.onPromotion(auth.ActionPromote)},

		{http.MethodPost, "/api/v1/promotions/{id}/approve", s.decide(s.svc.Approve), s.onPromotion(auth.ActionApprove)},
		{http.MethodPost, "/api/v1/promotions/{id}/reject", s.decide(s.svc.Reject), s.onPromotion(auth.ActionApprove)},
		{http.MethodPost, "/api/v1/promotions/{id}/review", s.decide(s.svc.Review), s.onPromotion(auth.ActionReview)},
		{http.MethodGet, "/api/v1/approvals", s.listApprovals, anyToken},
		{http.MethodGet, "/api/v1/reviews", s.listReviews, global(auth.ActionReview)},
		{http.MethodGet, "/api/v1/plan", s.getPlan, planTarget},

		{http.MethodPost, "/api/v1/rollbacks", s.rollback, rollback},
		{http.MethodPost, "/api/v1/alerts/alertmanager", s.receiveAlertmanager, global(auth.ActionReceiveAlerts)},

		{http.MethodGet, "/api/v1/audit", s.listAudit, s.auditTarget},
		{http.MethodGet, "/api/v1/audit/verify", s.verifyAudit, global(auth.ActionReview)},
		{http.MethodGet, "/api/v1/audit/export", s.exportAudit, s.auditTarget},
		{http.MethodGet, "/api/v1/audit/pubkey", s.auditPublicKey, anyToken},
		{http.MethodPost, "/api/v1/audit/checkpoints", s.createCheckpoint, global(auth.ActionReview)},

		{http.MethodGet, "/api/v1/cluster", s.getCluster, global(view)},

		{http.MethodGet, "/api/v1/stats", s.getStats, listPromotionsTarget},

		{http.MethodPost, "/api/v1/tokens", s.createToken, global(auth.ActionManageTokens)},
		{http.MethodGet, "/api/v1/tokens", s.listTokens, global(auth.ActionManageTokens)},
		{http.MethodPost, "/api/v1/tokens/{id}/revoke", s.revokeToken, global(auth.ActionManageTokens)},
	}
}

// handler builds the mux from the route table and wraps it in the middleware
// every request passes through.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		h := rt.handle
		if rt.method == http.MethodPost {
			h = s.idempotent(h)
		}
		h = s.guard(rt.authz, h)
		mux.Handle(rt.method+" "+rt.path, s.serve(h))
		if _, ok := s.allowed[rt.path]; !ok {
			s.paths.HandleFunc(rt.path, func(http.ResponseWriter, *http.Request) {})
		}
		s.allowed[rt.path] = append(s.allowed[rt.path], rt.method)
	}
	for _, methods := range s.allowed {
		slices.Sort(methods)
	}
	mux.Handle("/", s.serve(s.noRoute))
	return s.logRequests(s.recoverPanics(s.limitBody(mux)))
}

// serve adapts h to http.Handler, writing the problem for an error it returns.
func (s *server) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// noRoute answers a request no route matched: 405 when the path exists with
// other methods, 404 otherwise.
func (s *server) noRoute(w http.ResponseWriter, r *http.Request) error {
	if _, pattern := s.paths.Handler(r); pattern != "" {
		methods := s.allowed[pattern]
		w.Header().Set("Allow", joinMethods(methods))
		return problemf(http.StatusMethodNotAllowed, codeMethodNotAllowed,
			"method %s is not allowed on %s; use %s", r.Method, r.URL.Path, joinMethods(methods))
	}
	return problemf(http.StatusNotFound, codeNoRoute, "no route matches %s %s", r.Method, r.URL.Path)
}

func joinMethods(methods []string) string { return strings.Join(methods, ", ") }
