package metrics_test

import (
	"bytes"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/ferry-dev/ferry/internal/metrics"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/promtest"
)

// t0 is the time the fixtures are built around.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func newMetrics(t *testing.T) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// sample returns the metric of family name whose labels are exactly labels
// ("k=v" pairs), or nil.
func sample(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) *dto.Metric {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := strings.Join(labels, ",")
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(got)
			if strings.Join(got, ",") == want {
				return m
			}
		}
	}
	return nil
}

// value returns a counter's or gauge's value, 0 when the series does not exist.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	m := sample(t, reg, name, labels...)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s{%v} is neither a counter nor a gauge", name, labels)
	return 0
}

// histogram returns a histogram's count and sum.
func histogram(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) (uint64, float64) {
	t.Helper()
	m := sample(t, reg, name, labels...)
	if m == nil {
		return 0, 0
	}
	return m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum()
}

// promo returns a promotion of shop/prod created at t0.
func promo(kind promotion.Kind, state promotion.State, updated time.Time) promotion.Promotion {
	p := promotion.Promotion{ID: "p-" + string(state), Pipeline: "shop", Environment: "prod", Kind: kind,
		State: state, CreatedAt: t0, UpdatedAt: updated}
	if state.Terminal() {
		p.FinishedAt = &updated
	}
	return p
}

func TestPromotionOutcomes(t *testing.T) {
	m, reg := newMetrics(t)
	// A promotion that succeeds after 90 seconds; its intermediate
	// transitions count nowhere.
	for _, tr := range []promotion.Transition{{From: promotion.Queued, To: promotion.Gating},
		{From: promotion.Gating, To: promotion.Deploying}, {From: promotion.Deploying, To: promotion.Verifying}} {
		m.Transitioned(promo(promotion.KindPromote, tr.To, t0.Add(time.Second)), tr)
	}
	m.Transitioned(promo(promotion.KindPromote, promotion.Succeeded, t0.Add(90*time.Second)),
		promotion.Transition{From: promotion.Verifying, To: promotion.Succeeded})
	// One that fails its checks and is rolled back after 10 minutes.
	m.Transitioned(promo(promotion.KindPromote, promotion.RollingBack, t0.Add(5*time.Minute)),
		promotion.Transition{From: promotion.Verifying, To: promotion.RollingBack})
	m.Transitioned(promo(promotion.KindPromote, promotion.RolledBack, t0.Add(10*time.Minute)),
		promotion.Transition{From: promotion.RollingBack, To: promotion.RolledBack})
	// A rollback a person asked for, which starts and succeeds.
	m.Transitioned(promo(promotion.KindRollback, promotion.Gating, t0.Add(time.Second)),
		promotion.Transition{From: promotion.Queued, To: promotion.Gating})
	m.Transitioned(promo(promotion.KindRollback, promotion.Succeeded, t0.Add(30*time.Second)),
		promotion.Transition{From: promotion.Verifying, To: promotion.Succeeded})
	// A promotion superseded while queued.
	m.Transitioned(promo(promotion.KindPromote, promotion.Superseded, t0.Add(time.Minute)),
		promotion.Transition{From: promotion.Queued, To: promotion.Superseded})

	pe := []string{"environment=prod", "pipeline=shop"}
	for _, c := range []struct {
		kind, result string
		seconds      float64
	}{
		{"promote", "succeeded", 90}, {"promote", "rolled_back", 600}, {"rollback", "succeeded", 30}, {"promote", "superseded", 60},
	} {
		labels := append([]string{"kind=" + c.kind}, append(pe, "result="+c.result)...)
		sort.Strings(labels)
		if got := value(t, reg, "ferry_promotions_total", labels...); got != 1 {
			t.Errorf("ferry_promotions_total{%s} = %v, want 1", strings.Join(labels, ","), got)
		}
		if n, sum := histogram(t, reg, "ferry_promotion_duration_seconds", labels...); n != 1 || sum != c.seconds {
			t.Errorf("ferry_promotion_duration_seconds{%s}: %d observations summing to %v, want 1 of %v", strings.Join(labels, ","), n, sum, c.seconds)
		}
	}
	if got := value(t, reg, "ferry_promotions_total", "environment=prod", "kind=promote", "pipeline=shop", "result=failed"); got != 0 {
		t.Errorf("failed promotions = %v, want 0", got)
	}
	for trigger, want := range map[string]float64{metrics.TriggerAutomatic: 1, metrics.TriggerManual: 1} {
		if got := value(t, reg, "ferry_rollbacks_total", "environment=prod", "pipeline=shop", "trigger="+trigger); got != want {
			t.Errorf("ferry_rollbacks_total{trigger=%s} = %v, want %v", trigger, got, want)
		}
	}
}

// approvals returns an evaluation of the approvals gate at at.
func approvals(result promotion.GateResult, since *time.Time, at time.Time) promotion.GateEvaluation {
	return promotion.GateEvaluation{Name: "approvals", Kind: "approvals", Result: result, Since: since, At: at}
}

func TestApprovalWait(t *testing.T) {
	m, reg := newMetrics(t)
	since := t0.Add(time.Minute)
	soak := promotion.GateEvaluation{Name: "soak", Kind: "soak", Result: promotion.GatePass, At: t0}
	gated := func(gates ...promotion.GateEvaluation) promotion.Promotion {
		p := promo(promotion.KindPromote, promotion.AwaitingApproval, gates[len(gates)-1].At)
		p.Gates = gates
		return p
	}
	// Waiting on other gates: no wait for people yet.
	m.GatesEvaluated(gated(soak, approvals(promotion.GatePending, nil, t0)), nil)
	// Every other gate passed: the wait starts; one approval of two keeps it going.
	first := []promotion.GateEvaluation{soak, approvals(promotion.GatePending, &since, since)}
	m.GatesEvaluated(gated(first...), []promotion.GateEvaluation{soak, approvals(promotion.GatePending, nil, t0)})
	second := []promotion.GateEvaluation{soak, approvals(promotion.GatePending, &since, since.Add(10*time.Minute))}
	m.GatesEvaluated(gated(second...), first)
	// The second approval ends it, 25 minutes after it started.
	m.GatesEvaluated(gated(soak, approvals(promotion.GatePass, nil, since.Add(25*time.Minute))), second)

	// Another promotion: a person rejects it after 2 hours, no gate evaluated.
	rejected := promo(promotion.KindPromote, promotion.Rejected, since.Add(2*time.Hour))
	rejected.Gates = second
	m.Transitioned(rejected, promotion.Transition{From: promotion.AwaitingApproval, To: promotion.Rejected})
	// Another times out after 8 hours: its gate fails.
	m.GatesEvaluated(gated(soak, approvals(promotion.GateFail, &since, since.Add(8*time.Hour))), second)
	// Another is aborted after 1 hour.
	aborted := promo(promotion.KindPromote, promotion.Aborted, since.Add(time.Hour))
	aborted.Gates = second
	m.Transitioned(aborted, promotion.Transition{From: promotion.AwaitingApproval, To: promotion.Aborted})

	for result, want := range map[string]struct {
		n   uint64
		sum float64
	}{
		metrics.ApprovalApproved: {1, 25 * 60}, metrics.ApprovalRejected: {2, 10 * 3600}, metrics.ApprovalAborted: {1, 3600},
	} {
		n, sum := histogram(t, reg, "ferry_approval_wait_seconds", "environment=prod", "pipeline=shop", "result="+result)
		if n != want.n || sum != want.sum {
			t.Errorf("ferry_approval_wait_seconds{result=%s}: %d observations summing to %v, want %d summing to %v", result, n, sum, want.n, want.sum)
		}
	}
	// Every evaluation counts each gate once.
	for _, c := range []struct {
		gate, result string
		want         float64
	}{{"soak", "pass", 5}, {"approvals", "pending", 3}, {"approvals", "pass", 1}, {"approvals", "fail", 1}} {
		if got := value(t, reg, "ferry_gate_evaluations_total", "gate="+c.gate, "result="+c.result); got != c.want {
			t.Errorf("ferry_gate_evaluations_total{gate=%s,result=%s} = %v, want %v", c.gate, c.result, got, c.want)
		}
	}
}

func TestStepsAndChecks(t *testing.T) {
	m, reg := newMetrics(t)
	steps := []metrics.Step{
		{Kind: "exec", Phase: promotion.PhaseDeploy, State: promotion.StepSucceeded, Duration: 2 * time.Second},
		{Kind: "exec", Phase: promotion.PhaseDeploy, State: promotion.StepFailed, Duration: time.Second},
		{Kind: "http", Phase: promotion.PhaseVerify, State: promotion.StepSucceeded, Check: true, Duration: 100 * time.Millisecond},
		{Kind: "canary", Phase: promotion.PhaseCanary, State: promotion.StepFailed, Check: true, Duration: time.Minute},
		{Kind: "prometheus", Phase: promotion.PhaseVerify, State: promotion.StepInconclusive, Check: true, Duration: 30 * time.Second},
		// An interrupted check reached no verdict.
		{Kind: "http", Phase: promotion.PhaseVerify, State: promotion.StepInterrupted, Check: true, Duration: time.Second},
	}
	for _, s := range steps {
		m.StepFinished(s)
	}
	for _, c := range []struct {
		kind, result string
		want         float64
	}{{"http", "passed", 1}, {"canary", "failed", 1}, {"prometheus", "inconclusive", 1}, {"exec", "passed", 0}, {"exec", "failed", 0}} {
		if got := value(t, reg, "ferry_checks_total", "kind="+c.kind, "result="+c.result); got != c.want {
			t.Errorf("ferry_checks_total{kind=%s,result=%s} = %v, want %v", c.kind, c.result, got, c.want)
		}
	}
	for _, s := range steps {
		n, sum := histogram(t, reg, "ferry_step_duration_seconds", "kind="+s.Kind, "phase="+string(s.Phase), "result="+string(s.State))
		if n != 1 || sum != s.Duration.Seconds() {
			t.Errorf("ferry_step_duration_seconds for %+v: %d observations summing to %v", s, n, sum)
		}
	}
}

func TestBuildInfoAndRunningSteps(t *testing.T) {
	m, reg := newMetrics(t)
	if sample(t, reg, "ferry_build_info", "goversion="+goVersion(t, reg), "version=1.2.3") == nil {
		t.Fatal("ferry_build_info has no version=1.2.3 series")
	}
	if got := value(t, reg, "ferry_steps_running"); got != 0 {
		t.Fatalf("ferry_steps_running before the engine is known = %v", got)
	}
	running := 3
	m.CountRunningSteps(func() int { return running })
	if got := value(t, reg, "ferry_steps_running"); got != 3 {
		t.Fatalf("ferry_steps_running = %v, want 3", got)
	}
	running = 1
	if got := value(t, reg, "ferry_steps_running"); got != 1 {
		t.Fatalf("ferry_steps_running = %v, want 1: it is read at each scrape", got)
	}
}

func goVersion(t *testing.T, reg prometheus.Gatherer) string {
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "ferry_build_info" {
			for _, l := range f.GetMetric()[0].GetLabel() {
				if l.GetName() == "goversion" {
					return l.GetValue()
				}
			}
		}
	}
	return ""
}

func TestNewRefusesARegistryThatHasThem(t *testing.T) {
	_, reg := newMetrics(t)
	_, err := metrics.New(reg, metrics.Options{})
	var already prometheus.AlreadyRegisteredError
	if !errors.As(err, &already) {
		t.Fatalf("second New on one registry: %v, want AlreadyRegisteredError", err)
	}
}

// TestExpositionPassesLinters records one of everything and runs both the
// client library's linter and the real promtool over the scrape.
func TestExpositionPassesLinters(t *testing.T) {
	m, reg := newMetrics(t)
	exerciseAll(t, m, reg)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	promtest.CheckMetrics(t, expose(t, reg))
}

// expose returns what /metrics would serve for reg, in the text format.
func expose(t *testing.T, reg prometheus.Gatherer) []byte {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// exerciseAll records one observation in every metric of m, and registers
// the state collector on an empty store, so that every family appears in a
// scrape.
func exerciseAll(t *testing.T, m *metrics.Metrics, reg *prometheus.Registry) {
	t.Helper()
	p := promo(promotion.KindPromote, promotion.RolledBack, t0.Add(time.Minute))
	m.Transitioned(p, promotion.Transition{From: promotion.Verifying, To: promotion.RollingBack})
	m.Transitioned(p, promotion.Transition{From: promotion.RollingBack, To: promotion.RolledBack})
	since := t0
	m.GatesEvaluated(gatedAt(approvals(promotion.GatePass, nil, t0.Add(time.Hour))), []promotion.GateEvaluation{approvals(promotion.GatePending, &since, t0)})
	m.StepFinished(metrics.Step{Kind: "exec", Phase: promotion.PhaseVerify, State: promotion.StepSucceeded, Check: true, Duration: time.Second})
	st := openStore(t)
	seed(t, st, "shop", map[promotion.State]int{promotion.Deploying: 1, promotion.Queued: 1})
	if err := m.Store(st).View(t.Context(), func(tx storeTx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(metrics.NewStateCollector(st, 0))
}

func gatedAt(g promotion.GateEvaluation) promotion.Promotion {
	p := promo(promotion.KindPromote, promotion.Deploying, g.At)
	p.Gates = []promotion.GateEvaluation{g}
	return p
}
