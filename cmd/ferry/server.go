package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferry-dev/ferry/internal/api"
	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/metrics"
	"github.com/ferry-dev/ferry/internal/notify"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/step"
	stepexec "github.com/ferry-dev/ferry/internal/step/exec"
	stephttp "github.com/ferry-dev/ferry/internal/step/http"
	"github.com/ferry-dev/ferry/internal/step/metric"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/tracing"
	"github.com/ferry-dev/ferry/internal/web"
)

// version is Ferry's version, set at build time with -ldflags "-X main.version=...".
var version = "dev"

// serverOptions configures a Ferry server.
type serverOptions struct {
	dataDir       string
	db            string
	listen        string
	shutdownGrace time.Duration
	logLevel      string
	logFormat     string
	// auth is "on" (every API call but the health checks needs a token) or
	// "off" (loopback only).
	auth string
	// extraEnv is added to the environment steps inherit.
	extraEnv []string
	// otlpEndpoint, when set, is where promotions' traces are exported.
	otlpEndpoint string
	// notifyBackoff, notifyMaxBackoff and notifyMaxAge tune the retries of
	// notifications; zero means notify's defaults.
	notifyBackoff    time.Duration
	notifyMaxBackoff time.Duration
	notifyMaxAge     time.Duration
	// auditKey is the file of the ed25519 key that signs audit checkpoints;
	// empty means auditKeyFile in the data directory.
	auditKey string
	// checkpointEvery is the number of audit events between two checkpoints.
	checkpointEvery int64
}

// auditKeyFile is the name of the audit key in the data directory.
const auditKeyFile = "audit-key"

// auditKeyPath returns the audit key file the options name.
func (o *serverOptions) auditKeyPath() string {
	if o.auditKey != "" {
		return o.auditKey
	}
	return filepath.Join(o.dataDir, auditKeyFile)
}

func (o *serverOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.dataDir, "data", "./ferry-data", "data directory (SQLite database, lock file)")
	cmd.Flags().StringVar(&o.db, "db", os.Getenv("FERRY_DB"),
		"PostgreSQL URL (env FERRY_DB): several servers may share it; default: SQLite in --data")
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:7420", "address the HTTP API listens on")
	cmd.Flags().DurationVar(&o.shutdownGrace, "shutdown-grace", engine.DefaultShutdownGrace,
		"on SIGTERM/SIGINT, how long running steps may finish before they are interrupted (resumed on next start)")
	cmd.Flags().StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmd.Flags().StringVar(&o.logFormat, "log-format", logAuto, "log format: json, text, or auto (text on a terminal, JSON otherwise)")
	cmd.Flags().StringVar(&o.auditKey, "audit-key", os.Getenv("FERRY_AUDIT_KEY"),
		"ed25519 key (PEM) that signs audit checkpoints, created on first start (env FERRY_AUDIT_KEY); default: audit-key in --data. Replicas on one database share one key")
	cmd.Flags().Int64Var(&o.checkpointEvery, "audit-checkpoint-every", store.DefaultCheckpointEvery,
		"sign a checkpoint of the audit chain every this many events")
	cmd.Flags().StringVar(&o.auth, "auth", "on",
		"on: every API call but /healthz and /readyz needs a token; off: no tokens, X-Ferry-Actor names the actor (only with a loopback --listen)")
	cmd.Flags().StringVar(&o.otlpEndpoint, "otlp-endpoint", os.Getenv("FERRY_OTLP_ENDPOINT"),
		"URL of an OTLP/HTTP receiver to export promotions' traces to, e.g. http://localhost:4318 (env FERRY_OTLP_ENDPOINT); default: no export")
	cmd.Flags().DurationVar(&o.notifyBackoff, "notify-backoff", notify.DefaultBackoff,
		"wait before retrying a notification the endpoint did not accept; it doubles with each further attempt")
	cmd.Flags().DurationVar(&o.notifyMaxBackoff, "notify-max-backoff", notify.DefaultMaxBackoff,
		"longest wait between attempts to deliver a notification")
	cmd.Flags().DurationVar(&o.notifyMaxAge, "notify-max-age", notify.DefaultMaxAge,
		"how long a notification is retried before it is recorded as failed")
}

func newServerCommand(_ *globals) *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Ferry server: HTTP API and promotion engine on embedded SQLite",
		Long: `Run the Ferry server: the HTTP API and the promotion engine, on an embedded
SQLite database in the data directory. On start it resumes every unfinished
promotion. SIGTERM or SIGINT shut it down gracefully: running steps get
--shutdown-grace to finish, then are interrupted and resumed on the next start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			srv, err := startServer(ctx, o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if srv.adminToken != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "admin token (shown once): %s\n", srv.adminToken)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ferry server listening on http://%s (%s)\n", srv.addr, srv.store.describe)
			<-ctx.Done()
			return srv.stop()
		},
	}
	o.addFlags(cmd)
	return cmd
}

// server is a running Ferry server.
type server struct {
	addr   string
	log    *slog.Logger
	engine *engine.Engine
	http   *http.Server
	store  *backend
	lock   *os.File
	traces *sdktrace.TracerProvider // nil unless traces are exported
	served chan error
	// notifier delivers notifications until stopNotify is called; it has
	// returned once notified is closed.
	notifier   *notify.Worker
	stopNotify context.CancelFunc
	notified   chan struct{}
	// adminToken is the admin token created at this start, to show once;
	// empty when the store had tokens already or FERRY_ADMIN_TOKEN gave it.
	adminToken string
}

// startServer opens the store, resumes the engine and starts serving the API.
func startServer(ctx context.Context, o serverOptions, logOut io.Writer) (*server, error) {
	log, err := newLogger(logOut, o.logFormat, o.logLevel)
	if err != nil {
		return nil, err
	}
	if err := checkAuthFlag(o.auth, o.listen); err != nil {
		return nil, err
	}
	var otlpURL string
	if o.otlpEndpoint != "" {
		var err error
		if otlpURL, err = tracing.ParseEndpoint(o.otlpEndpoint); err != nil {
			return nil, usageErrorf("--otlp-endpoint: %v", err)
		}
	}
	if err := checkNotifyFlags(o); err != nil {
		return nil, err
	}
	if o.checkpointEvery < 1 {
		return nil, usageErrorf("--audit-checkpoint-every %d: want at least 1", o.checkpointEvery)
	}
	s := &server{log: log, served: make(chan error, 1)}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	var tracer trace.Tracer
	if otlpURL != "" {
		tp, err := tracing.New(ctx, tracing.Config{Endpoint: otlpURL, Version: version, Logger: log})
		if err != nil {
			return nil, err
		}
		s.traces, tracer = tp, tp.Tracer("github.com/ferry-dev/ferry/internal/engine")
	}
	if o.db == "" {
		if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		lock, err := lockDataDir(o.dataDir)
		if err != nil {
			return nil, err
		}
		s.lock = lock
	}
	keyPath := o.auditKeyPath()
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return nil, fmt.Errorf("create the directory of the audit key: %w", err)
	}
	signer, created, err := audit.LoadOrCreateSigner(keyPath)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created audit key", "path", keyPath, "key_id", signer.PublicKey().ID())
	}
	if s.store, err = openBackend(ctx, o.dataDir, o.db, store.Checkpoints{Signer: signer, Every: o.checkpointEvery}); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	s.addr = ln.Addr().String()
	if o.auth == "on" {
		if s.adminToken, err = bootstrapAdmin(ctx, s.store.store, o.dataDir); err != nil {
			ln.Close()
			return nil, err
		}
	}
	key, err := sessionKey(o.dataDir)
	if err != nil {
		ln.Close()
		return nil, err
	}
	// The server's own registry: GET /metrics serves it.
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Version: version})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	reg.MustRegister(metrics.NewStateCollector(s.store.store, 0))
	st := m.Store(s.store.store)
	base := append(withoutTokens(os.Environ()), o.extraEnv...)
	owner := defaultHostPID()
	s.notifier, err = notify.New(notify.Config{
		Store: s.store.store, Owner: owner, Logger: log,
		Backoff: o.notifyBackoff, MaxBackoff: o.notifyMaxBackoff, MaxAge: o.notifyMaxAge,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.engine, err = engine.New(engine.Config{
		InstanceID: owner,
		Notified:   s.notifier.Kick,
		Store:      st,
		Shared:     s.store.shared,
		Listen:     s.store.listen,
		Addr:       s.addr,
		Drivers: map[string]step.Driver{
			// The kill grace fits in half a lease: see engine.Config.LeaseTTL.
			"exec": &stepexec.Driver{Environ: base, KillGrace: 2 * time.Second},
			"http": &stephttp.Driver{},
			// Metric checks measure for interval × count; they take no exec-style timeout.
			"prometheus": &metric.Driver{},
			"web":        &metric.Driver{},
			"canary":     &metric.Driver{},
		},
		Reaper:         stepexec.Reap,
		Logger:         log,
		ShutdownGrace:  o.shutdownGrace,
		BaseEnv:        base,
		Tracer:         tracer,
		Transitioned:   m.Transitioned,
		GatesEvaluated: m.GatesEvaluated,
		StepFinished: func(_ promotion.Promotion, s engine.StepOutcome) {
			m.StepFinished(metrics.Step{Kind: s.Kind, Phase: s.Phase, State: s.State, Check: s.Check, Duration: s.Duration})
		},
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	m.CountRunningSteps(s.engine.RunningSteps)
	if err := s.engine.Start(ctx); err != nil {
		ln.Close()
		return nil, fmt.Errorf("start engine: %w", err)
	}
	apiHandler := api.New(api.Config{
		Service: s.engine, Store: st, Logger: log, Version: version,
		Ready: s.engine.Ready, DisableAuth: o.auth == "off", Metrics: reg,
		AuditSigner: signer,
	})
	// The dashboard serves its pages and hands every other path to the API.
	dash, err := web.New(web.Config{
		Service: s.engine, Store: s.store.store, Stats: web.EngineStats{Engine: s.engine},
		SessionKey: key, DisableAuth: o.auth == "off", Fallback: apiHandler, Logger: log,
	})
	if err != nil {
		ln.Close()
		s.engine.Stop()
		return nil, err
	}
	// Notifications left pending by an earlier run go out from the start.
	nctx, stopNotify := context.WithCancel(context.WithoutCancel(ctx))
	s.stopNotify, s.notified = stopNotify, make(chan struct{})
	go func() { defer close(s.notified); s.notifier.Run(nctx) }()
	s.http = &http.Server{
		Handler:           dash,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// Event streams never go idle: end them when shutdown begins.
	s.http.RegisterOnShutdown(dash.Close)
	go func() { s.served <- s.http.Serve(ln) }()
	log.Info("ferry server started", "addr", s.addr, "store", s.store.describe, "version", version, "otlp_endpoint", otlpURL,
		"audit_key_id", signer.PublicKey().ID())
	ok = true
	return s, nil
}

// checkNotifyFlags checks the flags that tune notification retries.
func checkNotifyFlags(o serverOptions) error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"--notify-backoff", o.notifyBackoff}, {"--notify-max-backoff", o.notifyMaxBackoff}, {"--notify-max-age", o.notifyMaxAge}} {
		if f.d < 0 {
			return usageErrorf("%s %s: must not be negative", f.name, f.d)
		}
	}
	if o.notifyBackoff > 0 && o.notifyMaxBackoff > 0 && o.notifyMaxBackoff < o.notifyBackoff {
		return usageErrorf("--notify-max-backoff %s is shorter than --notify-backoff %s", o.notifyMaxBackoff, o.notifyBackoff)
	}
	return nil
}

// stop stops accepting requests, lets in-flight ones finish, then stops the
// engine (running steps get the shutdown grace) and closes the store.
func (s *server) stop() error {
	s.log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	s.engine.Stop()
	s.close()
	s.log.Info("stopped")
	return err
}

func (s *server) close() {
	if s.stopNotify != nil {
		s.stopNotify()
		<-s.notified
	}
	if s.traces != nil {
		// Spans still buffered are sent now, within a bounded time.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.traces.Shutdown(ctx); err != nil {
			s.log.Error("flush traces", "err", err)
		}
		cancel()
	}
	if s.store != nil {
		if err := s.store.close(); err != nil {
			s.log.Error("close store", "err", err)
		}
	}
	if s.lock != nil {
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		s.lock.Close()
	}
}

// lockDataDir takes an exclusive lock on the data directory so that two
// servers never drive the same SQLite store.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "ferry.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another ferry server", dir)
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteString(fmt.Sprintf("%d\n", os.Getpid()))
	return f, nil
}
