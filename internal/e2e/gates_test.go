package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/view"
)

// governedPipeline has a prod that needs two approvals from role:approver,
// a 10-minute soak in staging and a policy on a release label, and an eu
// environment frozen right now.
func governedPipeline(freezeFrom, freezeTo time.Time) string {
	return fmt.Sprintf(`name: shop
environments:
  - name: staging
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" > "$WORK/staging"'}}]
  - name: prod
    after: [staging]
    gates:
      soak: 10m
      policies:
        - {name: not-high-risk, expr: 'release.labels["risk"] != "high"', message: "high-risk releases need a change ticket"}
      approvals: {required: 2, from: ["role:approver"], timeout: 8h}
      expediteRoles: [admin]
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" > "$WORK/prod"'}}]
  - name: eu
    after: [staging]
    gates:
      windows:
        freeze: [{from: %s, to: %s, reason: end-of-year freeze}]
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" > "$WORK/eu"'}}]
`, freezeFrom.UTC().Format(time.RFC3339), freezeTo.UTC().Format(time.RFC3339))
}

func plan(t *testing.T, s *server, args ...string) (view.Plan, int) {
	t.Helper()
	r := s.ferry(append([]string{"plan", "--pipeline", "shop", "-o", "json"}, args...)...)
	var p view.Plan
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("plan %v: exit %d, %v\n%s%s", args, r.code, err, r.stdout, r.stderr)
	}
	return p, r.code
}

func gateOf(p view.Plan, kind string) promotion.GateEvaluation {
	for _, g := range p.Gates {
		if g.Kind == kind {
			return g
		}
	}
	return promotion.GateEvaluation{}
}

func TestGovernedPipelineThroughCLI(t *testing.T) { eachStore(t, testGovernedPipelineThroughCLI) }

func testGovernedPipelineThroughCLI(t *testing.T, b backend) {
	s := startServer(t, b)
	now := time.Now()
	s.must("apply", "-f", s.writeFile("shop.yaml", governedPipeline(now.Add(-time.Hour), now.Add(24*time.Hour))))
	carol := s.as(createToken(s, "carol", "promoter", "shop"))
	carolRel := s.as(createToken(s, "carol", "releaser", "shop"))
	alice := s.as(createToken(s, "alice", "approver", "shop/prod"))
	bob := s.as(createToken(s, "bob", "approver", "shop"))
	victor := s.as(createToken(s, "victor", "viewer", "shop"))

	carolRel.must("release", "create", "--pipeline", "shop", "--version", "1.0.0", "--artifact", "api=x/api@"+digest("g1"), "--label", "risk=low")
	carolRel.must("release", "create", "--pipeline", "shop", "--version", "2.0.0", "--artifact", "api=x/api@"+digest("g2"), "--label", "risk=high")
	for _, v := range []string{"1.0.0", "2.0.0"} {
		carol.must("promote", "--pipeline", "shop", "--release", v, "--to", "staging", "--wait")
	}

	// The plan explains every blocked case, and exits 3.
	p, code := plan(t, carol, "--release", "1.0.0", "--to", "prod")
	if code != 3 || p.Proceed {
		t.Fatalf("plan for prod: exit %d proceed %v", code, p.Proceed)
	}
	if g := gateOf(p, "soak"); g.Result != promotion.GatePending || !strings.Contains(g.Reason, "left") || g.Until == nil {
		t.Errorf("plan soak: %+v", g)
	}
	if g := gateOf(p, "approvals"); g.Result != promotion.GatePending || !strings.Contains(g.Reason, "0 of 2 approvals from role:approver") {
		t.Errorf("plan approvals: %+v", g)
	}
	if len(p.Approvers) != 1 || p.Approvers[0] != "role:approver" {
		t.Errorf("plan approvers: %v", p.Approvers)
	}
	if g := gateOf(p, "policy"); g.Result != promotion.GatePass {
		t.Errorf("plan policy for a low-risk release: %+v", g)
	}
	p, code = plan(t, carol, "--release", "2.0.0", "--to", "prod")
	if g := gateOf(p, "policy"); code != 3 || g.Result != promotion.GateFail || !strings.Contains(g.Reason, "high-risk releases need a change ticket") {
		t.Errorf("plan policy for a high-risk release: exit %d %+v", code, g)
	}
	p, code = plan(t, carol, "--release", "1.0.0", "--to", "eu")
	if g := gateOf(p, "windows"); code != 3 || g.Result != promotion.GatePending || !strings.Contains(g.Reason, "end-of-year freeze") || g.Until == nil {
		t.Errorf("plan in the freeze: exit %d %+v", code, g)
	}
	if out := carol.ferry("plan", "--pipeline", "shop", "--release", "1.0.0", "--to", "staging"); out.code != 0 {
		t.Errorf("plan for staging (no gates): exit %d\n%s", out.code, out.stdout)
	}

	// Promoting into prod waits in gating for the soak, with the reason.
	var held view.Promotion
	if err := json.Unmarshal([]byte(carol.must("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "prod", "-o", "json")), &held); err != nil {
		t.Fatal(err)
	}
	held = s.promotion(held.ID)
	if held.State != promotion.Gating || !strings.Contains(held.Message, "soak") || held.WakeAt == nil {
		t.Fatalf("prod during the soak: %s %q wake %v", held.State, held.Message, held.WakeAt)
	}
	if out := s.must("promotion", "show", held.ID); !strings.Contains(out, "soak") || !strings.Contains(out, "pending") {
		t.Errorf("promotion show does not list the pending soak:\n%s", out)
	}
	// Only an admin may expedite; carol may not.
	if r := carol.ferry("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "prod", "--expedite", "--reason", "hotfix"); r.code != 1 || !strings.Contains(r.stderr, "admin") {
		t.Fatalf("expedite by a promoter: exit %d %q", r.code, r.stderr)
	}
	// The admin expedites (skipping soak): it supersedes the held one and waits for approvals.
	var fast view.Promotion
	if err := json.Unmarshal([]byte(s.must("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "prod", "--expedite", "--reason", "hotfix for outage", "-o", "json")), &fast); err != nil {
		t.Fatal(err)
	}
	fast = s.promotion(fast.ID)
	if fast.State != promotion.Queued {
		// The held promotion occupies prod while it soaks; abort it to make room.
		t.Logf("expedited promotion is %s", fast.State)
	}
	s.must("abort", held.ID, "--reason", "replaced by the expedited promotion")
	fast = s.waitState(fast.ID, promotion.AwaitingApproval)
	if fast.State != promotion.AwaitingApproval {
		t.Fatalf("expedited promotion: %s %q", fast.State, fast.Message)
	}

	// Approvals: a viewer and the requester are refused; alice and bob approve.
	if r := victor.ferry("approve", fast.ID); r.code != 1 || !strings.Contains(r.stderr, `role "approver"`) {
		t.Fatalf("approve by a viewer: exit %d %q", r.code, r.stderr)
	}
	admin := s
	if r := admin.ferry("approve", fast.ID); r.code != 1 || !strings.Contains(r.stderr, "requested the promotion") {
		t.Fatalf("self-approval by the requester: exit %d %q", r.code, r.stderr)
	}
	if out := alice.must("approvals"); !strings.Contains(out, fast.ID) {
		t.Fatalf("alice's inbox lacks the promotion:\n%s", out)
	}
	alice.must("approve", fast.ID, "--comment", "checked the diff")
	if p := s.promotion(fast.ID); p.State != promotion.AwaitingApproval || !strings.Contains(p.Message, "1 of 2") {
		t.Fatalf("after one approval: %s %q", p.State, p.Message)
	}
	bob.must("approve", fast.ID)
	done := s.waitEnded(fast.ID)
	if done.State != promotion.Succeeded || len(done.Approvals) != 2 {
		t.Fatalf("after two approvals: %s %q approvals %d", done.State, done.Message, len(done.Approvals))
	}
	if got := strings.TrimSpace(s.readWork("prod")); got != "1.0.0" {
		t.Fatalf("prod runs %q", got)
	}

	// The freeze holds eu; break-glass by an admin goes through and awaits review.
	var frozen view.Promotion
	_ = json.Unmarshal([]byte(carol.must("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "eu", "-o", "json")), &frozen)
	frozen = s.promotion(frozen.ID)
	if frozen.State != promotion.Gating || !strings.Contains(frozen.Message, "end-of-year freeze") {
		t.Fatalf("eu in the freeze: %s %q", frozen.State, frozen.Message)
	}
	if r := carol.ferry("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "eu", "--override-window", "--reason", "x"); r.code != 1 {
		t.Fatalf("break-glass by a promoter: exit %d", r.code)
	}
	s.must("abort", frozen.ID, "--reason", "break-glass instead")
	var glass view.Promotion
	_ = json.Unmarshal([]byte(s.must("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "eu", "--override-window", "--reason", "security fix", "-o", "json")), &glass)
	if p := s.waitEnded(glass.ID); p.State != promotion.Succeeded {
		t.Fatalf("break-glass promotion: %s %q", p.State, p.Message)
	}
	reviews := s.must("reviews")
	if !strings.Contains(reviews, glass.ID) || !strings.Contains(reviews, fast.ID) {
		t.Fatalf("reviews lack the break-glass or expedited promotion:\n%s", reviews)
	}

	// The high-risk release is rejected by the policy.
	var risky view.Promotion
	_ = json.Unmarshal([]byte(s.must("promote", "--pipeline", "shop", "--release", "2.0.0", "--to", "prod", "--expedite", "--reason", "try", "-o", "json")), &risky)
	if p := s.waitEnded(risky.ID); p.State != promotion.Rejected || !strings.Contains(p.Message, "high-risk releases need a change ticket") {
		t.Fatalf("high-risk release: %s %q", p.State, p.Message)
	}
}

// waitState waits until a promotion is in state st or has ended.
func (s *server) waitState(id string, st promotion.State) view.Promotion {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p := s.promotion(id)
		if p.State == st || p.State.Terminal() {
			return p
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("promotion %s is %s after 60s, want %s: %s", id, p.State, st, p.Message)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
