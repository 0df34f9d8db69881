// Package metrics defines Ferry's Prometheus metrics and records them from
// what the engine reports: committed transitions, gate evaluations, step
// outcomes, store transactions. The gauges of promotions in flight and
// queued are read from the store at each scrape, so they are right after a
// restart and agree between replicas.
//
// Metrics are registered on a registry the caller owns (the server's), never
// on the global default one. No label holds an ID: labels are pipeline and
// environment names and small fixed sets of values.
package metrics

import (
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ferry-dev/ferry/internal/promotion"
)

// Namespace prefixes every metric Ferry defines.
const Namespace = "ferry"

// Label values of ferry_checks_total's result.
const (
	CheckPassed       = "passed"
	CheckFailed       = "failed"
	CheckInconclusive = "inconclusive"
)

// Label values of ferry_rollbacks_total's trigger.
const (
	// TriggerAutomatic: a promotion's step or check failed and Ferry
	// redeployed the previous release.
	TriggerAutomatic = "automatic"
	// TriggerManual: a person asked for a rollback (ferry rollback).
	TriggerManual = "manual"
)

// Label values of ferry_approval_wait_seconds's result.
const (
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
	ApprovalAborted  = "aborted"
)

// Buckets of the histograms, in seconds.
var (
	// PromotionBuckets span a promotion from seconds to days (approvals and soaks included).
	PromotionBuckets = []float64{5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, 259200}
	// ApprovalBuckets span a wait for people from a minute to a week.
	ApprovalBuckets = []float64{60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800}
	// StepBuckets span a step attempt from a tenth of a second to an hour.
	StepBuckets = []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
	// StoreBuckets span a store transaction from half a millisecond to five seconds.
	StoreBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
)

// Metrics records Ferry's metrics. Its methods are safe for concurrent use.
type Metrics struct {
	promotions        *prometheus.CounterVec
	promotionDuration *prometheus.HistogramVec
	approvalWait      *prometheus.HistogramVec
	rollbacks         *prometheus.CounterVec
	checks            *prometheus.CounterVec
	gates             *prometheus.CounterVec
	stepDuration      *prometheus.HistogramVec
	storeDuration     *prometheus.HistogramVec

	mu      sync.Mutex
	running func() int
}

// Options configures New.
type Options struct {
	// Version is Ferry's version, the version label of ferry_build_info.
	// Defaults to "dev".
	Version string
}

// New creates Ferry's metrics and registers them on reg, with
// ferry_build_info, ferry_steps_running, and the Go runtime's and the
// process's metrics (go_*, process_*). It fails when reg already holds one
// of them.
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	if opts.Version == "" {
		opts.Version = "dev"
	}
	pe := []string{"pipeline", "environment"}
	m := &Metrics{
		promotions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "promotions_total",
			Help: "Promotions that ended, by kind (promote, rollback) and result (the final state: succeeded, failed, rolled_back, rollback_failed, aborted, superseded, rejected).",
		}, append(pe, "kind", "result")),
		promotionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "promotion_duration_seconds",
			Help:    "Time from a promotion's request to its end, queue, gates and approvals included, by kind and result.",
			Buckets: PromotionBuckets,
		}, append(pe, "kind", "result")),
		approvalWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "approval_wait_seconds",
			Help:    "Time a promotion waited for approvals, from when every other gate had passed until approved, rejected (by a person or a timeout) or aborted.",
			Buckets: ApprovalBuckets,
		}, append(pe, "result")),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "rollbacks_total",
			Help: "Rollbacks started, by trigger: automatic (a step or check failed) or manual (ferry rollback).",
		}, append(pe, "trigger")),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "checks_total",
			Help: "Verdicts of checks (preflight, verify, canary analysis), by step kind and result (passed, failed, inconclusive).",
		}, []string{"kind", "result"}),
		gates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "gate_evaluations_total",
			Help: "Evaluations of gates, by gate kind (upstream, soak, policy, windows, approvals, error-budget) and result (pass, fail, pending).",
		}, []string{"gate", "result"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "step_duration_seconds",
			Help:    "Time a driver ran one step attempt, by step kind, phase and the attempt's state (succeeded, failed, inconclusive, interrupted).",
			Buckets: StepBuckets,
		}, []string{"kind", "phase", "result"}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "store_transaction_duration_seconds",
			Help:    "Time of store transactions from begin to commit or rollback, work inside included, by op (update, view) and result (ok, not_found, conflict, error).",
			Buckets: StoreBuckets,
		}, []string{"op", "result"}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "Always 1; its labels name the running Ferry version and the Go version that built it.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(opts.Version, runtime.Version()).Set(1)
	running := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "steps_running",
		Help: "Step attempts this replica is running now.",
	}, m.runningSteps)
	for _, c := range []prometheus.Collector{m.promotions, m.promotionDuration, m.approvalWait, m.rollbacks,
		m.checks, m.gates, m.stepDuration, m.storeDuration, build, running,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// CountRunningSteps sets what ferry_steps_running reports: the engine's
// count of running step attempts. Until it is called the gauge is 0.
func (m *Metrics) CountRunningSteps(fn func() int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running = fn
}

func (m *Metrics) runningSteps() float64 {
	m.mu.Lock()
	fn := m.running
	m.mu.Unlock()
	if fn == nil {
		return 0
	}
	return float64(fn())
}

// Transitioned records a committed transition of p (as committed): a
// promotion that ended, a rollback that started, a wait for approvals that
// ended without a gate evaluation (a person rejected or aborted it).
func (m *Metrics) Transitioned(p promotion.Promotion, tr promotion.Transition) {
	switch {
	case tr.To == promotion.RollingBack:
		m.rollbacks.WithLabelValues(p.Pipeline, p.Environment, TriggerAutomatic).Inc()
	case p.Kind == promotion.KindRollback && tr.From == promotion.Queued && tr.To == promotion.Gating:
		m.rollbacks.WithLabelValues(p.Pipeline, p.Environment, TriggerManual).Inc()
	}
	if tr.From == promotion.AwaitingApproval && tr.To.Terminal() {
		if since := approvalsSince(p.Gates); since != nil {
			result := ApprovalRejected
			if tr.To == promotion.Aborted {
				result = ApprovalAborted
			}
			m.approvalWait.WithLabelValues(p.Pipeline, p.Environment, result).Observe(seconds(p.UpdatedAt.Sub(*since)))
		}
	}
	if !tr.To.Terminal() {
		return
	}
	kind, result := string(p.Kind), string(tr.To)
	m.promotions.WithLabelValues(p.Pipeline, p.Environment, kind, result).Inc()
	end := p.UpdatedAt
	if p.FinishedAt != nil {
		end = *p.FinishedAt
	}
	m.promotionDuration.WithLabelValues(p.Pipeline, p.Environment, kind, result).Observe(seconds(end.Sub(p.CreatedAt)))
}

// GatesEvaluated records a committed evaluation of p's gates (p.Gates) and,
// when it ends a wait for approvals (previous had the approvals gate
// pending on people, p.Gates has it passed or failed), how long the wait was.
func (m *Metrics) GatesEvaluated(p promotion.Promotion, previous []promotion.GateEvaluation) {
	for _, g := range p.Gates {
		m.gates.WithLabelValues(g.Kind, string(g.Result)).Inc()
	}
	since := approvalsSince(previous)
	if since == nil {
		return
	}
	for _, g := range p.Gates {
		if g.Kind != approvalsKind || g.Result == promotion.GatePending {
			continue
		}
		result := ApprovalApproved
		if g.Result == promotion.GateFail {
			result = ApprovalRejected
		}
		m.approvalWait.WithLabelValues(p.Pipeline, p.Environment, result).Observe(seconds(g.At.Sub(*since)))
	}
}

// approvalsKind is the kind of the approvals gate (gate.KindApprovals).
const approvalsKind = "approvals"

// approvalsSince returns when the promotion started waiting for people, if
// the approvals gate of gates is pending on them.
func approvalsSince(gates []promotion.GateEvaluation) *time.Time {
	for _, g := range gates {
		if g.Kind == approvalsKind && g.Result == promotion.GatePending && g.Since != nil {
			return g.Since
		}
	}
	return nil
}

// Step is how one step attempt ended.
type Step struct {
	// Kind is the step's driver: exec, http, prometheus, web, canary.
	Kind string
	// Phase is preflight, deploy, canary, verify or rollback.
	Phase promotion.Phase
	// State is succeeded, failed, inconclusive or interrupted.
	State promotion.StepState
	// Check is true for a verification (see engine.StepOutcome.Check).
	Check bool
	// Duration is how long the driver ran.
	Duration time.Duration
}

// StepFinished records a step attempt's duration and, for a check that
// reached a verdict, the verdict.
func (m *Metrics) StepFinished(s Step) {
	m.stepDuration.WithLabelValues(s.Kind, string(s.Phase), string(s.State)).Observe(s.Duration.Seconds())
	if !s.Check {
		return
	}
	switch s.State {
	case promotion.StepSucceeded:
		m.checks.WithLabelValues(s.Kind, CheckPassed).Inc()
	case promotion.StepFailed:
		m.checks.WithLabelValues(s.Kind, CheckFailed).Inc()
	case promotion.StepInconclusive:
		m.checks.WithLabelValues(s.Kind, CheckInconclusive).Inc()
	}
}

// seconds returns d in seconds, never negative (clocks of replicas may differ).
func seconds(d time.Duration) float64 {
	return max(d, 0).Seconds()
}
