package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/traceid"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// observed records what the engine reports through its hooks.
type observed struct {
	mu    sync.Mutex
	gates []gateCall
	steps []engine.StepOutcome
}

type gateCall struct {
	p        promotion.Promotion
	previous []promotion.GateEvaluation
}

const observedPipeline = `name: shop
environments:
  - name: prod
    gates:
      approvals: {required: 1, from: ["role:approver"]}
    steps:
      - name: deploy
        secretEnv: [DEPLOY_TOKEN]
        exec: {run: 'echo "deploying with $DEPLOY_TOKEN"; echo "$FERRY_RELEASE" > "$WORK/deployed"'}
    verify:
      - name: smoke
        secretEnv: [DEPLOY_TOKEN]
        exec: {run: 'test "$(cat "$WORK/deployed")" != 2.0.0 || { echo "smoke failed, token $DEPLOY_TOKEN" >&2; exit 3; }'}
`

// TestPromotionLogsAndHooks runs a good release and a bad one that is rolled
// back, with JSON logs captured: every line about a promotion carries its
// ID, its trace ID, its pipeline and its environment; the secret the steps
// print never reaches the log; and the hooks report each gate evaluation
// and each step attempt as it happened.
func TestPromotionLogsAndHooks(t *testing.T) {
	var logs lockedBuffer
	var obs observed
	b := &testBundle{dir: t.TempDir()}
	b.dbPath = b.dir + "/ferry.db"
	b.start(t, engine.Config{
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		GatesEvaluated: func(p promotion.Promotion, previous []promotion.GateEvaluation) {
			obs.mu.Lock()
			defer obs.mu.Unlock()
			obs.gates = append(obs.gates, gateCall{p, previous})
		},
		StepFinished: func(p promotion.Promotion, s engine.StepOutcome) {
			obs.mu.Lock()
			defer obs.mu.Unlock()
			obs.steps = append(obs.steps, s)
		},
	})
	b.apply(t, observedPipeline)
	ctx := context.Background()
	var ids []string
	for _, v := range []string{"1.0.0", "2.0.0"} {
		b.release(t, "shop", v)
		p := b.waitState(t, b.promote(t, "shop", v, "prod").ID, promotion.AwaitingApproval)
		if p.State != promotion.AwaitingApproval {
			t.Fatalf("%s: %s, want awaiting_approval", v, p.State)
		}
		if _, err := b.eng.Approve(ctx, principal("carol", auth.RoleApprover), p.ID, "ok"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	if p := b.wait(t, ids[0]); p.State != promotion.Succeeded {
		t.Fatalf("1.0.0: %s %s", p.State, p.Message)
	}
	bad := b.wait(t, ids[1])
	if bad.State != promotion.RolledBack {
		t.Fatalf("2.0.0: %s %s", bad.State, bad.Message)
	}
	chunks, err := b.eng.Logs(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	var output strings.Builder
	for _, c := range chunks {
		output.WriteString(c.Text)
	}
	if !strings.Contains(output.String(), "token ***") {
		t.Fatalf("the failing check did not print the (redacted) secret; its output:\n%s", output.String())
	}
	b.stop()

	text := logs.String()
	if strings.Contains(text, "s3cr3t-value") {
		t.Fatalf("the secret is in the log:\n%s", text)
	}
	perPromotion := map[string]map[string]int{} // promotion ID → message → lines
	for i, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %d is not JSON: %v\n%s", i+1, err, line)
		}
		id, _ := rec["promotion_id"].(string)
		if id == "" {
			for _, known := range ids {
				if strings.Contains(line, known) {
					t.Errorf("line %d names promotion %s without a promotion_id attribute: %s", i+1, known, line)
				}
			}
			continue
		}
		if rec["trace_id"] != traceid.String(id) || rec["pipeline"] != "shop" || rec["environment"] != "prod" {
			t.Errorf("line %d about promotion %s lacks its trace ID, pipeline or environment: %s", i+1, id, line)
		}
		if perPromotion[id] == nil {
			perPromotion[id] = map[string]int{}
		}
		perPromotion[id][rec["msg"].(string)]++
	}
	for _, id := range ids {
		if perPromotion[id]["promotion transition"] == 0 || perPromotion[id]["step finished"] == 0 {
			t.Errorf("promotion %s: log lines by message %v, want transitions and finished steps", id, perPromotion[id])
		}
	}
	// The bad release: gating, awaiting_approval, gating, deploying,
	// verifying, rolling_back, rolled_back.
	if n := perPromotion[ids[1]]["promotion transition"]; n != 7 {
		t.Errorf("promotion %s: %d transition lines, want 7", ids[1], n)
	}

	obs.mu.Lock()
	defer obs.mu.Unlock()
	// Each promotion: its gates pending approval, then passing once approved.
	if len(obs.gates) != 4 {
		t.Fatalf("%d gate evaluations reported, want 4: %+v", len(obs.gates), obs.gates)
	}
	for i, g := range obs.gates {
		approvals := g.p.Gates[len(g.p.Gates)-1]
		wantNow, wantBefore := promotion.GatePending, promotion.GateResult("")
		if i%2 == 1 {
			wantNow, wantBefore = promotion.GatePass, promotion.GatePending
		}
		var before promotion.GateResult
		if len(g.previous) > 0 {
			before = g.previous[len(g.previous)-1].Result
		}
		if approvals.Kind != "approvals" || approvals.Result != wantNow || before != wantBefore || g.p.ID != ids[i/2] {
			t.Errorf("gate evaluation %d of %s: approvals %s (before: %q), want %s (before: %q)", i, g.p.ID, approvals.Result, before, wantNow, wantBefore)
		}
	}
	type step struct {
		phase promotion.Phase
		name  string
		check bool
		state promotion.StepState
	}
	want := []step{
		{promotion.PhaseDeploy, "deploy", false, promotion.StepSucceeded},
		{promotion.PhaseVerify, "smoke", true, promotion.StepSucceeded},
		{promotion.PhaseDeploy, "deploy", false, promotion.StepSucceeded},
		{promotion.PhaseVerify, "smoke", true, promotion.StepFailed},
		{promotion.PhaseRollback, "deploy", false, promotion.StepSucceeded},
		{promotion.PhaseRollback, "smoke", true, promotion.StepSucceeded},
	}
	if len(obs.steps) != len(want) {
		t.Fatalf("%d step outcomes reported, want %d: %+v", len(obs.steps), len(want), obs.steps)
	}
	for i, s := range obs.steps {
		got := step{s.Phase, s.Name, s.Check, s.State}
		if got != want[i] || s.Kind != "exec" || s.Attempt != 1 || s.Duration <= 0 {
			t.Errorf("step outcome %d = %+v, want %+v of kind exec, attempt 1, with a duration", i, s, want[i])
		}
	}
}
