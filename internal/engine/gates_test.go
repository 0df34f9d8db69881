package engine_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/view"
)

// clock is a settable clock for the engine.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func principal(user string, role auth.Role) auth.Principal {
	return auth.Principal{User: user, Grants: []auth.Grant{{Role: role}}}
}

const governedPipeline = `name: shop
environments:
  - name: staging
    steps: [{name: d, exec: {run: 'true'}}]
  - name: prod
    after: [staging]
    gates:
      soak: 10m
      policies:
        - {name: not-high-risk, expr: 'release.labels["risk"] != "high"', message: "high-risk releases are not allowed"}
      windows:
        freeze: [{from: 2026-12-20T00:00:00Z, to: 2027-01-04T00:00:00Z, reason: holidays}]
      approvals: {required: 2, from: ["role:approver"], timeout: 8h}
    steps: [{name: d, exec: {run: 'echo "$FERRY_RELEASE" >> "$WORK/prod"'}}]
`

func governed(t *testing.T, start time.Time) (*testBundle, *clock) {
	t.Helper()
	c := &clock{t: start}
	b := &testBundle{dir: t.TempDir()}
	b.dbPath = b.dir + "/ferry.db"
	b.start(t, engine.Config{Now: c.Now})
	b.apply(t, governedPipeline)
	return b, c
}

func (b *testBundle) releaseWithRisk(t *testing.T, version, risk string) {
	t.Helper()
	_, _, err := b.eng.CreateRelease(context.Background(), "ci", release.Release{Pipeline: "shop", Version: version,
		Labels:    map[string]string{"risk": risk},
		Artifacts: []release.Artifact{{Name: "api", URI: "x/api", Digest: digest(version)}}})
	if err != nil {
		t.Fatal(err)
	}
}

// waitState waits until promotion id is in state s (or has ended).
func (b *testBundle) waitState(t *testing.T, id string, s promotion.State) *view.Promotion {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var v int64
	for {
		p, err := b.eng.WaitPromotion(ctx, id, v)
		if err != nil {
			t.Fatal(err)
		}
		if p.State == s || p.State.Terminal() {
			return p
		}
		if ctx.Err() != nil {
			t.Fatalf("promotion %s is %s (%s), want %s", id, p.State, p.Message, s)
		}
		v = p.Version
	}
}

func gateResult(p *view.Promotion, kind string) promotion.GateEvaluation {
	for _, g := range p.Gates {
		if g.Kind == kind {
			return g
		}
	}
	return promotion.GateEvaluation{}
}

func TestGovernedPromotion(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	b, clk := governed(t, start)
	ctx := context.Background()
	alice := principal("alice", auth.RoleAdmin) // requests the promotion; also an admin
	b.releaseWithRisk(t, "1.0.0", "low")
	if p := b.wait(t, b.promote(t, "shop", "1.0.0", "staging").ID); p.State != promotion.Succeeded {
		t.Fatalf("staging: %s", p.State)
	}

	plan, err := b.eng.Plan(ctx, alice, engine.PlanRequest{Pipeline: "shop", Release: "1.0.0", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Proceed || !strings.Contains(plan.Reason, "soak") || !strings.Contains(plan.Reason, "10m0s left") {
		t.Fatalf("plan before the soak: %+v", plan)
	}

	p := b.promote(t, "shop", "1.0.0", "prod")
	p = b.waitState(t, p.ID, promotion.Gating)
	if p.State != promotion.Gating || p.WakeAt == nil || !p.WakeAt.Equal(start.Add(10*time.Minute)) {
		t.Fatalf("during the soak: state %s wake %v", p.State, p.WakeAt)
	}
	if g := gateResult(p, "soak"); g.Result != promotion.GatePending {
		t.Fatalf("soak gate: %+v", g)
	}

	// The soak ends: the timer fires and the promotion waits for approvals.
	clk.Set(start.Add(10 * time.Minute))
	b.eng.Rearm()
	p = b.waitState(t, p.ID, promotion.AwaitingApproval)
	if p.State != promotion.AwaitingApproval || !strings.Contains(p.Message, "0 of 2 approvals from role:approver") {
		t.Fatalf("after the soak: %s %q", p.State, p.Message)
	}

	// The requester may not approve; a viewer may not either.
	if _, err := b.eng.Approve(ctx, alice, p.ID, "lgtm"); engine.CodeOf(err) != engine.CodeForbidden || !strings.Contains(err.Error(), "requested the promotion") {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := b.eng.Approve(ctx, principal("vic", auth.RoleViewer), p.ID, ""); engine.CodeOf(err) != engine.CodeForbidden {
		t.Fatalf("viewer approval: %v", err)
	}
	pending, err := b.eng.PendingApprovals(ctx, principal("bob", auth.RoleApprover))
	if err != nil || len(pending) != 1 || pending[0].ID != p.ID {
		t.Fatalf("bob's inbox: %v %+v", err, pending)
	}
	if p, err = b.eng.Approve(ctx, principal("bob", auth.RoleApprover), p.ID, "looks fine"); err != nil || p.State != promotion.AwaitingApproval {
		t.Fatalf("first approval: %v %+v", err, p)
	}
	if _, err := b.eng.Approve(ctx, principal("carol", auth.RoleApprover), p.ID, ""); err != nil {
		t.Fatal(err)
	}
	done := b.wait(t, p.ID)
	if done.State != promotion.Succeeded || !strings.Contains(gateResult(done, "approvals").Reason, "approved by bob, carol (2 of 2)") {
		t.Fatalf("after two approvals: %s %+v", done.State, done.Gates)
	}
	if len(done.Approvals) != 2 {
		t.Fatalf("approvals on the promotion: %+v", done.Approvals)
	}

	// A high-risk release is refused by the policy at once.
	b.releaseWithRisk(t, "1.1.0", "high")
	b.wait(t, b.promote(t, "shop", "1.1.0", "staging").ID)
	risky := b.wait(t, b.promote(t, "shop", "1.1.0", "prod").ID)
	if risky.State != promotion.Rejected || !strings.Contains(risky.Message, "not-high-risk: high-risk releases are not allowed") {
		t.Fatalf("high risk: %s %q", risky.State, risky.Message)
	}
}

func TestFreezeHoldsUntilItEnds(t *testing.T) {
	start := time.Date(2026, 12, 21, 9, 0, 0, 0, time.UTC)
	b, clk := governed(t, start)
	b.releaseWithRisk(t, "2.0.0", "low")
	b.wait(t, b.promote(t, "shop", "2.0.0", "staging").ID)
	clk.Set(start.Add(time.Hour)) // soaked
	p := b.waitState(t, b.promote(t, "shop", "2.0.0", "prod").ID, promotion.Gating)
	end := time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)
	if p.WakeAt == nil || !p.WakeAt.Equal(end) || !strings.Contains(p.Message, "holidays") {
		t.Fatalf("in the freeze: wake %v message %q", p.WakeAt, p.Message)
	}
	plan, err := b.eng.Plan(context.Background(), principal("alice", auth.RoleAdmin), engine.PlanRequest{Pipeline: "shop", Release: "2.0.0", Environment: "prod"})
	if err != nil || plan.Proceed || plan.WakeAt == nil || !plan.WakeAt.Equal(end) {
		t.Fatalf("plan in the freeze: %v %+v", err, plan)
	}
	clk.Set(end)
	b.eng.Rearm()
	if p = b.waitState(t, p.ID, promotion.AwaitingApproval); p.State != promotion.AwaitingApproval {
		t.Fatalf("after the freeze: %s %q", p.State, p.Message)
	}
}

func TestApprovalVoidedWhenPipelineChanges(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	b, clk := governed(t, start)
	ctx := context.Background()
	b.releaseWithRisk(t, "1.0.0", "low")
	b.wait(t, b.promote(t, "shop", "1.0.0", "staging").ID)
	clk.Set(start.Add(time.Hour))
	p := b.waitState(t, b.promote(t, "shop", "1.0.0", "prod").ID, promotion.AwaitingApproval)
	if _, err := b.eng.Approve(ctx, principal("bob", auth.RoleApprover), p.ID, ""); err != nil {
		t.Fatal(err)
	}
	b.apply(t, strings.Replace(governedPipeline, "timeout: 8h", "timeout: 9h", 1)) // revision 2
	p, err := b.eng.Approve(ctx, principal("carol", auth.RoleApprover), p.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	p = b.waitState(t, p.ID, promotion.AwaitingApproval)
	if p.State != promotion.AwaitingApproval || p.Revision != 2 || !strings.Contains(p.Message, "voided: bob") {
		t.Fatalf("after the pipeline changed: state %s revision %d %q", p.State, p.Revision, p.Message)
	}
	// Bob approves again, on revision 2: enough.
	if _, err := b.eng.Approve(ctx, principal("bob", auth.RoleApprover), p.ID, "again"); err != nil {
		t.Fatal(err)
	}
	if done := b.wait(t, p.ID); done.State != promotion.Succeeded {
		t.Fatalf("after re-approval: %s %q", done.State, done.Message)
	}
}

func TestApprovalTimeoutRejectsOrEscalates(t *testing.T) {
	hooks := make(chan map[string]any, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		hooks <- body
	}))
	defer srv.Close()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c := &clock{t: start}
	b := &testBundle{dir: t.TempDir()}
	b.dbPath = b.dir + "/ferry.db"
	b.start(t, engine.Config{Now: c.Now})
	b.apply(t, `name: shop
environments:
  - name: strict
    gates: {approvals: {required: 1, timeout: 1h}}
    steps: [{name: d, exec: {run: 'true'}}]
  - name: loud
    gates: {approvals: {required: 1, timeout: 1h, onTimeout: escalate, escalate: {after: 30m, webhook: "`+srv.URL+`"}}}
    steps: [{name: d, exec: {run: 'true'}}]
`)
	b.releaseWithRisk(t, "1.0.0", "low")
	strict := b.waitState(t, b.promote(t, "shop", "1.0.0", "strict").ID, promotion.AwaitingApproval)
	loud := b.waitState(t, b.promote(t, "shop", "1.0.0", "loud").ID, promotion.AwaitingApproval)
	if strict.WakeAt == nil || !strict.WakeAt.Equal(start.Add(time.Hour)) || loud.WakeAt == nil || !loud.WakeAt.Equal(start.Add(30*time.Minute)) {
		t.Fatalf("deadlines: strict %v loud %v", strict.WakeAt, loud.WakeAt)
	}
	c.Set(start.Add(30 * time.Minute))
	b.eng.Rearm()
	select {
	case body := <-hooks:
		if body["promotion"] != loud.ID || body["event"] != "approvals.escalated" {
			t.Fatalf("webhook body: %v", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the escalation webhook was not called")
	}
	c.Set(start.Add(time.Hour))
	b.eng.Rearm()
	if p := b.wait(t, strict.ID); p.State != promotion.Rejected || !strings.Contains(p.Message, "no decision within 1h0m0s") {
		t.Fatalf("strict after the timeout: %s %q", p.State, p.Message)
	}
	p := b.waitState(t, loud.ID, promotion.AwaitingApproval)
	if p.State != promotion.AwaitingApproval {
		t.Fatalf("loud after the timeout: %s (escalated promotions keep waiting)", p.State)
	}
	select {
	case body := <-hooks:
		t.Fatalf("escalated twice: %v", body)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestPreflightRunsBeforeStepsAndKeepsItsOutput(t *testing.T) {
	b := setup(t)
	b.apply(t, `name: shop
environments:
  - name: prod
    gates:
      preflight:
        - name: quota
          exec: {run: 'echo "quota check for $FERRY_RELEASE"; test "$FERRY_RELEASE" != 2.0.0'}
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" >> "$WORK/deployed"'}}]
`)
	b.release(t, "shop", "1.0.0")
	b.release(t, "shop", "2.0.0")
	if p := b.wait(t, b.promote(t, "shop", "1.0.0", "prod").ID); p.State != promotion.Succeeded || p.Steps[0].Phase != promotion.PhasePreflight || p.Steps[0].State != "succeeded" {
		t.Fatalf("1.0.0: %s %+v", p.State, p.Steps)
	}
	p := b.wait(t, b.promote(t, "shop", "2.0.0", "prod").ID)
	if p.State != promotion.Failed || !strings.Contains(p.Message, "preflight check quota failed") || !strings.Contains(p.Message, "nothing was deployed") {
		t.Fatalf("2.0.0: %s %q", p.State, p.Message)
	}
	if got := readFile(t, b.dir+"/deployed"); got != "1.0.0\n" {
		t.Fatalf("deployed = %q: a failed preflight must deploy nothing and roll nothing back", got)
	}
	logs, err := b.eng.Logs(context.Background(), p.ID)
	if err != nil || len(logs) == 0 || logs[0].Phase != promotion.PhasePreflight || !strings.Contains(logs[0].Text, "quota check for 2.0.0") {
		t.Fatalf("preflight output: %v %+v", err, logs)
	}
}

func TestRollbacksSkipSoakAndWindows(t *testing.T) {
	start := time.Date(2026, 12, 21, 9, 0, 0, 0, time.UTC) // inside the freeze of governedPipeline
	b, _ := governed(t, start)
	ctx := context.Background()
	// Put two releases into prod before the freeze by going through the engine with break-glass.
	for _, v := range []string{"1.0.0", "1.1.0"} {
		b.releaseWithRisk(t, v, "low")
		b.wait(t, b.promote(t, "shop", v, "staging").ID)
		p, err := b.eng.Promote(ctx, "root", engine.PromoteRequest{Pipeline: "shop", Release: v, Environment: "prod",
			Expedite: true, OverrideWindow: true, Reason: "seed"})
		if err != nil {
			t.Fatal(err)
		}
		p = b.waitState(t, p.ID, promotion.AwaitingApproval)
		for _, who := range []string{"bob", "carol"} {
			if _, err := b.eng.Approve(ctx, principal(who, auth.RoleApprover), p.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
		if done := b.wait(t, p.ID); done.State != promotion.Succeeded {
			t.Fatalf("seed %s: %s %q", v, done.State, done.Message)
		}
	}
	// A rollback during the freeze passes soak and windows, but still needs its approvals.
	rb, err := b.eng.Rollback(ctx, "oncall", engine.RollbackRequest{Pipeline: "shop", Environment: "prod", Reason: "1.1.0 is broken"})
	if err != nil {
		t.Fatal(err)
	}
	rb = b.waitState(t, rb.ID, promotion.AwaitingApproval)
	for _, kind := range []string{"soak", "windows"} {
		if g := gateResult(rb, kind); g.Result != promotion.GatePass || !strings.Contains(g.Reason, "rollback") {
			t.Errorf("rollback %s gate: %+v", kind, g)
		}
	}
	if rb.State != promotion.AwaitingApproval {
		t.Fatalf("rollback: %s %q", rb.State, rb.Message)
	}
}
