package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/view"
)

// shopPipeline deploys by writing the release into $WORK/<env>.current; its
// check fails for versions ending in -bad.
const shopPipeline = `name: shop
environments:
  - name: dev
    steps:
      - name: deploy
        secretEnv: [DEPLOY_TOKEN]
        exec:
          run: |
            echo "deploying $FERRY_RELEASE to $FERRY_ENVIRONMENT rollback=$FERRY_ROLLBACK token=$DEPLOY_TOKEN"
            echo "$FERRY_RELEASE" > "$WORK/$FERRY_ENVIRONMENT.current"
    verify:
      - name: smoke
        exec:
          run: 'case "$(cat "$WORK/$FERRY_ENVIRONMENT.current")" in *-bad) echo "smoke failed"; exit 4;; esac'
  - name: staging
    after: [dev]
    autoPromote: true
    steps:
      - name: deploy
        exec: {run: 'echo "$FERRY_RELEASE" > "$WORK/$FERRY_ENVIRONMENT.current"'}
  - name: prod
    after: [staging]
    steps:
      - name: deploy
        exec: {run: 'echo "$FERRY_RELEASE" > "$WORK/$FERRY_ENVIRONMENT.current"'}
`

func createRelease(s *server, version string) {
	s.t.Helper()
	s.must("release", "create", "--pipeline", "shop", "--version", version,
		"--artifact", "api=registry.example/shop/api@"+digest("api"+version),
		"--artifact", "web=registry.example/shop/web@"+digest("web"+version),
		"--commit", "0123456789abcdef", "--label", "team=payments")
}

func TestPromoteThroughPipelineRollbackAndHistory(t *testing.T) {
	eachStore(t, testPromoteThroughPipelineRollbackAndHistory)
}

func testPromoteThroughPipelineRollbackAndHistory(t *testing.T, b backend) {
	s := startServer(t, b)
	file := s.writeFile("shop.yaml", shopPipeline)
	if out := s.must("apply", "-f", file); !strings.Contains(out, "created") {
		t.Fatalf("first apply: %q, want it to say a revision was created", out)
	}
	if out := s.must("apply", "-f", file); !strings.Contains(out, "unchanged") {
		t.Fatalf("second apply of the same file: %q, want unchanged", out)
	}

	createRelease(s, "1.0.0")
	createRelease(s, "1.0.0") // identical again: idempotent
	r := s.ferry("release", "create", "--pipeline", "shop", "--version", "1.0.0",
		"--artifact", "api=registry.example/shop/api@"+digest("other"),
		"--artifact", "web=registry.example/shop/web@"+digest("web1.0.0"),
		"--commit", "0123456789abcdef", "--label", "team=payments")
	if r.code != 1 || !strings.Contains(r.stderr, `"api"`) {
		t.Fatalf("same version, other digest: exit %d stderr %q; want exit 1 naming artifact \"api\"", r.code, r.stderr)
	}

	r = s.ferry("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "prod")
	if r.code != 1 || !strings.Contains(r.stderr, "has not succeeded in staging") {
		t.Fatalf("promote to prod first: exit %d stderr %q; want exit 1 naming staging", r.code, r.stderr)
	}

	r = s.ferry("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "dev", "--reason", "first", "--wait")
	if r.code != 0 || !strings.Contains(r.stdout, "succeeded") {
		t.Fatalf("promote --wait: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	staging := s.promotions("--pipeline", "shop", "--env", "staging")
	if len(staging) != 1 || staging[0].Actor != "system" {
		t.Fatalf("staging promotions = %+v, want one automatic promotion", staging)
	}
	if p := s.waitEnded(staging[0].ID); p.State != promotion.Succeeded {
		t.Fatalf("staging ended %s: %s", p.State, p.Message)
	}
	s.must("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "prod", "--wait")

	// A bad release fails its check in dev and is rolled back to 1.0.0.
	createRelease(s, "2.0.0-bad")
	r = s.ferry("promote", "--pipeline", "shop", "--release", "2.0.0-bad", "--to", "dev", "--wait", "-o", "json")
	if r.code != 3 {
		t.Fatalf("promote of a bad release --wait: exit %d, want 3\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	bad := s.promotions("--pipeline", "shop", "--env", "dev", "--limit", "1")[0]
	p := s.promotion(bad.ID)
	if p.State != promotion.RolledBack || p.RollbackTo == nil || p.RollbackTo.Version != "1.0.0" {
		t.Fatalf("bad release: state %s rollbackTo %+v", p.State, p.RollbackTo)
	}
	want := map[string]string{"deploy/deploy": "succeeded", "verify/smoke": "failed", "rollback/deploy": "succeeded", "rollback/smoke": "succeeded"}
	for _, st := range p.Steps {
		if w := want[string(st.Phase)+"/"+st.Name]; w != st.State {
			t.Errorf("step %s/%s is %s, want %s", st.Phase, st.Name, st.State, w)
		}
		if st.Phase == promotion.PhaseVerify && (st.ExitCode == nil || *st.ExitCode != 4) {
			t.Errorf("failed smoke check exit code = %v, want 4", st.ExitCode)
		}
	}
	if got := strings.TrimSpace(s.readWork("dev.current")); got != "1.0.0" {
		t.Fatalf("dev runs %q after the rollback, want 1.0.0", got)
	}
	logs := s.must("logs", bad.ID)
	for _, w := range []string{"deploying 2.0.0-bad to dev rollback=0", "smoke failed", "deploying 1.0.0 to dev rollback=1", "token=***"} {
		if !strings.Contains(logs, w) {
			t.Errorf("logs lack %q:\n%s", w, logs)
		}
	}
	if strings.Contains(logs, "tok-3f9a1c") {
		t.Errorf("logs show the secret value:\n%s", logs)
	}
	if strings.Contains(s.must("promotion", "show", bad.ID, "-o", "json"), "tok-3f9a1c") {
		t.Errorf("the API shows the secret value")
	}

	// Manual rollback: ship 1.1.0, then roll dev back to the release before it.
	createRelease(s, "1.1.0")
	s.must("promote", "--pipeline", "shop", "--release", "1.1.0", "--to", "dev", "--wait")
	r = s.ferry("rollback", "--pipeline", "shop", "--env", "dev", "--wait")
	if r.code != 2 {
		t.Fatalf("rollback without --reason: exit %d, want 2 (usage)", r.code)
	}
	s.must("rollback", "--pipeline", "shop", "--env", "dev", "--reason", "1.1.0 is slow", "--wait")
	if got := strings.TrimSpace(s.readWork("dev.current")); got != "1.0.0" {
		t.Fatalf("dev runs %q after manual rollback, want 1.0.0", got)
	}

	var st view.Status
	if err := json.Unmarshal([]byte(s.must("status", "--pipeline", "shop", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	current := map[string]string{}
	for _, e := range st.Environments {
		if e.Current != nil {
			current[e.Name] = e.Current.Version
		}
	}
	if current["dev"] != "1.0.0" || current["staging"] != "1.1.0" || current["prod"] != "1.0.0" {
		t.Fatalf("status current releases = %v", current)
	}

	hist := s.promotions("--pipeline", "shop", "--env", "dev")
	kinds := []string{}
	for _, h := range hist {
		kinds = append(kinds, string(h.Kind)+":"+h.Release.Version+":"+string(h.State))
	}
	wantHist := "rollback:1.0.0:succeeded promote:1.1.0:succeeded promote:2.0.0-bad:rolled_back promote:1.0.0:succeeded"
	if strings.Join(kinds, " ") != wantHist {
		t.Fatalf("dev history = %v\nwant %s", kinds, wantHist)
	}
	if out := s.must("history", "--pipeline", "shop", "--env", "dev"); !strings.Contains(out, "rolled_back") || !strings.Contains(out, "rollback") {
		t.Fatalf("history output lacks the rollback:\n%s", out)
	}
}

func TestStepEnvironment(t *testing.T) { eachStore(t, testStepEnvironment) }

func testStepEnvironment(t *testing.T, b backend) {
	s := startServer(t, b)
	s.must("apply", "-f", s.writeFile("p.yaml", `name: envs
environments:
  - name: dev
    steps:
      - name: show-env
        exec:
          command: [sh, -c, 'env | grep -E "^(FERRY_|REGION=)" | sort']
          env: {REGION: eu}
`))
	s.must("release", "create", "--pipeline", "envs", "--version", "3.1.4",
		"--artifact", "api-server.v2=registry.example/api@"+digest("a"))
	out := s.must("promote", "--pipeline", "envs", "--release", "3.1.4", "--to", "dev", "-o", "json")
	var p view.Promotion
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("promote -o json: %v\n%s", err, out)
	}
	if done := s.waitEnded(p.ID); done.State != promotion.Succeeded {
		t.Fatalf("ended %s: %s", done.State, done.Message)
	}
	logs := s.must("logs", p.ID)
	for _, w := range []string{
		"FERRY_PROMOTION_ID=" + p.ID, "FERRY_PIPELINE=envs", "FERRY_ENVIRONMENT=dev", "FERRY_RELEASE=3.1.4",
		"FERRY_ROLLBACK=0", "FERRY_STEP=show-env", "FERRY_ATTEMPT=1", "FERRY_IDEMPOTENCY_KEY=",
		"FERRY_ARTIFACT_API_SERVER_V2_URI=registry.example/api", "FERRY_ARTIFACT_API_SERVER_V2_DIGEST=" + digest("a"),
		`FERRY_ARTIFACTS=[{"name":"api-server.v2","uri":"registry.example/api","digest":"` + digest("a") + `"}]`,
		"REGION=eu",
	} {
		if !strings.Contains(logs, w) {
			t.Errorf("step environment lacks %q:\n%s", w, logs)
		}
	}
	if p.Steps[0].Name != "show-env" || p.Release.Version != "3.1.4" || p.Kind != promotion.KindPromote || p.Pipeline != "envs" {
		t.Errorf("promotion JSON = %+v", p)
	}
}

func TestAbortTerminatesRunningStep(t *testing.T) { eachStore(t, testAbortTerminatesRunningStep) }

func testAbortTerminatesRunningStep(t *testing.T, b backend) {
	s := startServer(t, b)
	s.must("apply", "-f", s.writeFile("p.yaml", `name: slow
environments:
  - name: dev
    steps:
      - name: deploy
        exec: {run: 'touch "$WORK/started"; sleep 300; touch "$WORK/finished"'}
`))
	s.must("release", "create", "--pipeline", "slow", "--version", "1", "--artifact", "a=x/a@"+digest("1"))
	var p view.Promotion
	_ = json.Unmarshal([]byte(s.must("promote", "--pipeline", "slow", "--release", "1", "--to", "dev", "-o", "json")), &p)
	s.waitFile("started")
	if r := s.ferry("abort", p.ID); r.code != 2 {
		t.Fatalf("abort without --reason: exit %d, want 2", r.code)
	}
	s.must("abort", p.ID, "--reason", "wrong release")
	done := s.waitEnded(p.ID)
	if done.State != promotion.Aborted || !strings.Contains(done.Message, "wrong release") {
		t.Fatalf("after abort: %s %q", done.State, done.Message)
	}
	audit := s.must("audit", "--promotion", p.ID, "-o", "json")
	// The actor is the token's user; FERRY_ACTOR (X-Ferry-Actor) is ignored.
	if !strings.Contains(audit, `"actor": "admin"`) || strings.Contains(audit, "e2e-user") {
		t.Fatalf("audit lacks the aborting actor (the token's user):\n%s", audit)
	}
	if s.readWork("finished") != "" {
		t.Fatal("the aborted step ran to its end")
	}
}
