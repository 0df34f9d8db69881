// Package engine drives promotions durably. It loads a promotion from the
// store, asks the pure transition function in package promotion what an event
// means, commits the new state together with the work it implies (step
// attempts, audit events, follow-up promotions) in one transaction, and only
// then acts: starts a step, arms a timer, or stops a running step. Wake-ups
// are events (a step finished, a timer fired, a request arrived), never a
// poll over all promotions. After a crash, Run resumes every promotion from
// the store.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferry-dev/ferry/internal/expr"
	"github.com/ferry-dev/ferry/internal/gate"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/step"
	"github.com/ferry-dev/ferry/internal/store"
)

// Defaults for Config.
const (
	DefaultShutdownGrace = 10 * time.Second
	DefaultMaxLogBytes   = 1 << 20
	DefaultLogInterval   = 250 * time.Millisecond
	DefaultReapGrace     = 5 * time.Second
	DefaultLeaseTTL      = 7 * time.Second
	DefaultSweepInterval = time.Second
)

// SystemActor is the actor of changes the engine makes on its own.
const SystemActor = "system"

// Reaper stops what is left of a step attempt's process group after a crash
// and returns once it is gone.
type Reaper func(ctx context.Context, pgid int, start uint64, grace time.Duration) error

// Config configures an Engine.
type Config struct {
	// Store holds all state. Required.
	Store store.Store
	// Drivers run steps, by kind ("exec", "http"). Required.
	Drivers map[string]step.Driver
	// Reaper stops orphaned step processes found running after a crash. Defaults to none
	// (attempts are then only marked interrupted).
	Reaper Reaper
	// Logger receives the engine's logs. Defaults to slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
	// InstanceID names this engine in promotion leases and step attempts. Defaults to host:pid.
	InstanceID string
	// Shared is true when other replicas use the same store (PostgreSQL).
	// Start then resumes only promotions whose driver's lease expired;
	// otherwise it resumes every unfinished promotion at once.
	Shared bool
	// Listen, when set, delivers messages other replicas publish with
	// Tx.Notify until ctx ends; it reconnects on its own.
	Listen func(ctx context.Context, handle func(msg string)) error
	// Addr is the address this replica serves its API on, shown by `ferry cluster`.
	Addr string
	// LeaseTTL is how long a replica's claim on the promotions it drives lasts
	// without renewal; it renews every quarter of it. A replica that cannot
	// renew for half of it stops its running steps (the exec driver's kill
	// grace must fit in the other half), so that no step runs twice when
	// another replica takes over. Defaults to 7 seconds.
	LeaseTTL time.Duration
	// SweepInterval is how often a replica looks for promotions whose driver's
	// lease expired. Defaults to 1 second.
	SweepInterval time.Duration
	// ShutdownGrace is how long running steps may go on after shutdown begins
	// before they are stopped and recorded as interrupted. Defaults to 10 seconds.
	ShutdownGrace time.Duration
	// ReapGrace is how long an orphaned step process gets between SIGTERM and SIGKILL. Defaults to 5 seconds.
	ReapGrace time.Duration
	// MaxLogBytes caps the stored output of one step attempt. Defaults to 1 MiB.
	MaxLogBytes int
	// LogInterval is how often running steps' output is persisted. Defaults to 250 milliseconds.
	LogInterval time.Duration
	// BaseEnv is the environment exec steps inherit. Defaults to os.Environ().
	BaseEnv []string
	// StepStarted, when set, is called as each step attempt is handed to its
	// driver, with the promotion as committed. Benchmarks use it.
	StepStarted func(p promotion.Promotion, at time.Time)
	// Transitioned, when set, is called after each committed transition with
	// the promotion as committed. Benchmarks and metrics use it.
	Transitioned func(p promotion.Promotion, tr promotion.Transition)
	// Tracer, when set, makes each promotion's trace: a span per gate
	// evaluation, per step attempt and check, one for a rollback, and the
	// promotion's root span when it ends. Its provider must take its
	// IDs from traceid.Generator, so that root spans get the IDs derived from
	// promotion IDs. Defaults to none: no spans are made, and steps get a
	// TRACEPARENT of the promotion's trace marked not sampled.
	Tracer trace.Tracer
	// Notified, when set, is called after a transaction that enqueued
	// notifications commits; the server wakes its notification worker with it.
	Notified func()
	// GatesEvaluated, when set, is called after each committed evaluation of
	// a promotion's gates, with the promotion as committed (p.Gates is the
	// new evaluation) and the evaluation before it. Metrics use it.
	GatesEvaluated func(p promotion.Promotion, previous []promotion.GateEvaluation)
	// StepFinished, when set, is called when a step attempt's driver has
	// returned, once its outcome is recorded (or recording it gave up).
	// Metrics use it.
	StepFinished func(p promotion.Promotion, s StepOutcome)
}

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return errors.New("engine: Store is required")
	}
	if len(c.Drivers) == 0 {
		return errors.New("engine: Drivers are required")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.InstanceID == "" {
		c.InstanceID = defaultInstanceID()
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.ReapGrace == 0 {
		c.ReapGrace = DefaultReapGrace
	}
	if c.MaxLogBytes == 0 {
		c.MaxLogBytes = DefaultMaxLogBytes
	}
	if c.LogInterval == 0 {
		c.LogInterval = DefaultLogInterval
	}
	if c.BaseEnv == nil {
		c.BaseEnv = os.Environ()
	}
	return nil
}

// Engine drives promotions.
type Engine struct {
	cfg   Config
	store store.Store
	log   *slog.Logger

	revMu     sync.Mutex
	revisions map[string]*pipeline.Revision // "pipeline@number"; revisions are immutable
	compiled  map[string]*gate.Programs     // "pipeline@number/env"
	budgets   map[string]*budgetEntry       // guarded by mu
	cel       *expr.Env
	relMu     sync.Mutex
	releases  map[string]*release.Release // by ID; releases are immutable

	mu       sync.Mutex
	stopping bool
	started  bool
	running  map[string]*runningStep // promotion ID → its running step
	timers   map[string]timer
	watchers map[string]chan struct{} // promotion ID → closed on change
	anyWatch chan struct{}            // closed on any change
	subs     map[int]func(ids []string)
	nextSub  int

	startedAt time.Time
	lastRenew time.Time // last successful lease renewal
	fenced    bool      // leases lapsed: running steps were stopped

	steps      sync.WaitGroup
	stepCtx    context.Context
	stopSteps  context.CancelFunc
	background sync.WaitGroup
	loops      sync.WaitGroup
	stopLoops  context.CancelFunc
}

// New returns an engine. Call Run to resume stored work and start driving.
func New(cfg Config) (*Engine, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	stepCtx, stop := context.WithCancel(context.Background())
	return &Engine{
		cfg:       cfg,
		store:     cfg.Store,
		log:       cfg.Logger,
		revisions: map[string]*pipeline.Revision{},
		compiled:  map[string]*gate.Programs{},
		budgets:   map[string]*budgetEntry{},
		releases:  map[string]*release.Release{},
		running:   map[string]*runningStep{},
		timers:    map[string]timer{},
		watchers:  map[string]chan struct{}{},
		anyWatch:  make(chan struct{}),
		subs:      map[int]func([]string){},
		stepCtx:   stepCtx,
		stopSteps: stop,
	}, nil
}

// errAborted is the cause given to a step stopped because its promotion was aborted.
var errAborted = errors.New("promotion aborted")

// Start resumes every unfinished promotion from the store: orphaned step
// processes of a previous run are stopped first, then each promotion
// continues where it stopped. From then on the engine drives promotions as
// events arrive, until Stop.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("engine: Start called twice")
	}
	e.started = true
	e.startedAt = e.cfg.Now().UTC()
	e.lastRenew = e.startedAt
	e.mu.Unlock()
	e.renew(ctx)
	if err := e.recover(ctx); err != nil {
		e.shutdown()
		return fmt.Errorf("recover: %w", err)
	}
	e.startLoops()
	return nil
}

// Stop gives running steps ShutdownGrace to finish, stops the rest and
// records them as interrupted (resumed by the next Start), and returns once
// every goroutine of the engine has ended.
func (e *Engine) Stop() { e.shutdown() }

// Run is Start, then Stop once ctx is cancelled.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	e.Stop()
	return nil
}

func (e *Engine) shutdown() {
	e.mu.Lock()
	if e.stopLoops != nil {
		e.stopLoops()
	}
	e.stopping = true
	for id, t := range e.timers {
		t.t.Stop()
		delete(e.timers, id)
	}
	e.mu.Unlock()

	done := make(chan struct{})
	go func() { e.steps.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(e.cfg.ShutdownGrace):
		e.log.Warn("shutdown grace elapsed; interrupting running steps", "grace", e.cfg.ShutdownGrace)
		e.stopSteps()
		<-done
	}
	e.stopSteps()
	e.background.Wait()
	e.loops.Wait()
}

func (e *Engine) isStopping() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stopping
}

// notify wakes everyone waiting on the given promotions.
func (e *Engine) notify(ids map[string]bool) {
	if len(ids) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for id := range ids {
		if ch, ok := e.watchers[id]; ok {
			close(ch)
			delete(e.watchers, id)
		}
	}
	close(e.anyWatch)
	e.anyWatch = make(chan struct{})
	if len(e.subs) > 0 {
		list := make([]string, 0, len(ids))
		for id := range ids {
			list = append(list, id)
		}
		for _, fn := range e.subs {
			fn(list)
		}
	}
}

// Subscribe calls fn with the IDs of the promotions that changed, whether
// this replica changed them or another one sharing the store did, until
// the returned function is called. fn runs with the engine's lock held: it
// must return at once and must not call the engine.
func (e *Engine) Subscribe(fn func(ids []string)) (cancel func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := e.nextSub
	e.nextSub++
	e.subs[id] = fn
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(e.subs, id)
	}
}

// watch returns a channel closed at the next change of promotion id.
func (e *Engine) watch(id string) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch, ok := e.watchers[id]
	if !ok {
		ch = make(chan struct{})
		e.watchers[id] = ch
	}
	return ch
}

// Changes returns a channel closed at the next change of any promotion.
func (e *Engine) Changes() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.anyWatch
}

// revision returns a pipeline revision, cached: revisions never change.
func (e *Engine) revision(ctx context.Context, tx store.Tx, name string, number int) (*pipeline.Revision, error) {
	key := fmt.Sprintf("%s@%d", name, number)
	e.revMu.Lock()
	rev, ok := e.revisions[key]
	e.revMu.Unlock()
	if ok {
		return rev, nil
	}
	rev, err := tx.Revision(ctx, name, number)
	if err != nil {
		return nil, fmt.Errorf("load pipeline %s revision %d: %w", name, number, err)
	}
	if number != 0 {
		e.revMu.Lock()
		e.revisions[key] = rev
		e.revMu.Unlock()
	}
	return rev, nil
}

// releaseByID returns a release, cached: releases never change.
func (e *Engine) releaseByID(ctx context.Context, tx store.Tx, id string) (*release.Release, error) {
	e.relMu.Lock()
	r, ok := e.releases[id]
	e.relMu.Unlock()
	if ok {
		return r, nil
	}
	r, err := tx.ReleaseByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load release %s: %w", id, err)
	}
	e.relMu.Lock()
	e.releases[id] = r
	e.relMu.Unlock()
	return r, nil
}

// planFor returns the transition function's view of the environment a promotion targets.
func planFor(env pipeline.Environment) promotion.Plan {
	conv := func(steps []pipeline.Step) []promotion.StepPlan {
		out := make([]promotion.StepPlan, len(steps))
		for i, s := range steps {
			out[i] = promotion.StepPlan{Name: s.Name, Retries: s.Retries, Backoff: s.Backoff.D()}
		}
		return out
	}
	pl := promotion.Plan{Preflight: conv(preflight(env)), Deploy: conv(env.Steps), Verify: conv(env.Verify), AutoRollback: env.AutoRollback()}
	for _, it := range canaryItems(env) {
		sp := promotion.StepPlan{Name: it.Name, Pause: it.Pause, Manual: it.Manual}
		if it.Step != nil {
			sp.Retries, sp.Backoff = it.Step.Retries, it.Step.Backoff.D()
		}
		pl.Canary = append(pl.Canary, sp)
	}
	for _, it := range rollbackFirst(env) {
		pl.RollbackFirst = append(pl.RollbackFirst, promotion.StepPlan{Name: it.Name, Retries: it.Step.Retries, Backoff: it.Step.Backoff.D()})
	}
	if env.Watch != nil {
		pl.Watch = []promotion.StepPlan{{Name: watchStepName}}
	}
	return pl
}

// watchStepName names the item of a promotion's watch window.
const watchStepName = "watch"

// canaryItems returns an environment's canary strategy, flattened.
func canaryItems(env pipeline.Environment) []pipeline.CanaryItem {
	if env.Strategy == nil || env.Strategy.Canary == nil {
		return nil
	}
	return env.Strategy.Canary.CanaryItems()
}

// rollbackFirst returns what a rollback runs first: with a canary strategy,
// its set-weight steps at weight 0, taking the traffic back from the release.
func rollbackFirst(env pipeline.Environment) []pipeline.CanaryItem {
	if env.Strategy == nil || env.Strategy.Canary == nil {
		return nil
	}
	var out []pipeline.CanaryItem
	for i := range env.Strategy.Canary.SetWeight {
		s := env.Strategy.Canary.SetWeight[i]
		out = append(out, pipeline.CanaryItem{Weight: 0, Step: &s, Name: "weight 0: " + s.Name})
	}
	return out
}

// preflight returns an environment's preflight checks.
func preflight(env pipeline.Environment) []pipeline.Step {
	if env.Gates == nil {
		return nil
	}
	return env.Gates.Preflight
}

// stepSpec returns the step a cursor points at.
func stepSpec(env pipeline.Environment, c promotion.Cursor) (pipeline.Step, bool) {
	s, _, ok := stepAt(env, c)
	return s, ok
}

// stepAt returns the step a cursor points at and, for a canary's steps, the
// traffic weight it sets (FERRY_CANARY_WEIGHT); a canary pause is no step.
func stepAt(env pipeline.Environment, c promotion.Cursor) (pipeline.Step, *int, bool) {
	if c.Phase == promotion.PhaseWatch {
		// The watch window is one item running all the watch's checks.
		return pipeline.Step{Name: watchStepName}, nil, env.Watch != nil && c.Index == 0
	}
	var items []pipeline.CanaryItem
	switch c.Phase {
	case promotion.PhasePreflight:
		items = plain(preflight(env))
	case promotion.PhaseDeploy:
		items = plain(env.Steps)
	case promotion.PhaseCanary:
		items = canaryItems(env)
	case promotion.PhaseVerify:
		items = plain(env.Verify)
	case promotion.PhaseRollback:
		items = append(append(rollbackFirst(env), plain(env.Steps)...), plain(env.Verify)...)
	}
	if c.Index < 0 || c.Index >= len(items) || items[c.Index].Step == nil {
		return pipeline.Step{}, nil, false
	}
	it := items[c.Index]
	var weight *int
	if c.Phase == promotion.PhaseCanary || (c.Phase == promotion.PhaseRollback && c.Index < len(rollbackFirst(env))) {
		w := it.Weight
		weight = &w
	}
	return *it.Step, weight, true
}

// plain wraps steps as canary items without weights.
func plain(steps []pipeline.Step) []pipeline.CanaryItem {
	out := make([]pipeline.CanaryItem, len(steps))
	for i := range steps {
		out[i] = pipeline.CanaryItem{Step: &steps[i], Name: steps[i].Name}
	}
	return out
}
