package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/step"
	stepexec "github.com/ferry-dev/ferry/internal/step/exec"
	stephttp "github.com/ferry-dev/ferry/internal/step/http"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
	"github.com/ferry-dev/ferry/internal/view"
)

// testBundle is an engine on a real SQLite file with the real exec and http drivers.
type testBundle struct {
	dir    string
	dbPath string
	st     *sqlite.Store
	eng    *engine.Engine
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	dir := t.TempDir()
	b := &testBundle{dir: dir, dbPath: filepath.Join(dir, "ferry.db")}
	b.start(t, engine.Config{})
	return b
}

// start opens the store and starts an engine on it; cfg fields left zero get test defaults.
func (b *testBundle) start(t *testing.T, cfg engine.Config) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	base := append(os.Environ(), "WORK="+b.dir, "DEPLOY_TOKEN=s3cr3t-value")
	cfg.Store = st
	cfg.Drivers = map[string]step.Driver{
		"exec": &stepexec.Driver{Environ: base, KillGrace: time.Second},
		"http": &stephttp.Driver{},
	}
	cfg.Reaper = stepexec.Reap
	cfg.BaseEnv = base
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 5 * time.Second
	}
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b.st, b.eng = st, eng
	t.Cleanup(func() { b.stop() })
}

func (b *testBundle) stop() {
	if b.eng != nil {
		b.eng.Stop()
		b.st.Close()
		b.eng, b.st = nil, nil
	}
}

func (b *testBundle) apply(t *testing.T, yaml string) {
	t.Helper()
	if _, err := b.eng.Apply(context.Background(), "alice", "p.yaml", []byte(yaml)); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func (b *testBundle) release(t *testing.T, pipelineName, version string) *release.Release {
	t.Helper()
	r, _, err := b.eng.CreateRelease(context.Background(), "ci", release.Release{
		Pipeline: pipelineName, Version: version,
		Artifacts: []release.Artifact{{Name: "api-server", URI: "registry.example/api", Digest: digest(version)}},
	})
	if err != nil {
		t.Fatalf("create release %s: %v", version, err)
	}
	return r
}

func digest(s string) string {
	return "sha256:" + strings.Repeat(fmt.Sprintf("%x", len(s)%16), 48) + fmt.Sprintf("%016x", []byte(s + "        ")[:8])
}

func (b *testBundle) promote(t *testing.T, pipelineName, version, env string) *view.Promotion {
	t.Helper()
	p, err := b.eng.Promote(context.Background(), "alice", engine.PromoteRequest{Pipeline: pipelineName, Release: version, Environment: env})
	if err != nil {
		t.Fatalf("promote %s to %s: %v", version, env, err)
	}
	return p
}

// wait waits until promotion id ends, and returns it.
func (b *testBundle) wait(t *testing.T, id string) *view.Promotion {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var v int64
	for {
		p, err := b.eng.WaitPromotion(ctx, id, v)
		if err != nil {
			t.Fatal(err)
		}
		if p.State.Terminal() {
			return p
		}
		if ctx.Err() != nil {
			t.Fatalf("promotion %s still %s after 30s: %s", id, p.State, p.Message)
		}
		v = p.Version
	}
}

// waitFor waits until the latest promotion into env ends in a terminal state.
func (b *testBundle) latest(t *testing.T, pipelineName, env string) *view.Promotion {
	t.Helper()
	ps, err := b.eng.Promotions(context.Background(), store.PromotionFilter{Pipeline: pipelineName, Environment: env, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) == 0 {
		t.Fatalf("no promotion into %s", env)
	}
	return b.wait(t, ps[0].ID)
}

func TestAutoPromoteThroughPipeline(t *testing.T) {
	b := setup(t)
	b.apply(t, `name: shop
environments:
  - name: dev
    steps:
      - name: deploy
        exec: {run: 'echo "$FERRY_ENVIRONMENT $FERRY_RELEASE $FERRY_ARTIFACT_API_SERVER_DIGEST" >> "$WORK/deployed"'}
  - name: staging
    after: [dev]
    autoPromote: true
    steps:
      - name: deploy
        exec: {run: 'echo "$FERRY_ENVIRONMENT $FERRY_RELEASE" >> "$WORK/deployed"'}
  - name: prod
    after: [staging]
    steps:
      - name: deploy
        exec: {run: 'true'}
`)
	r := b.release(t, "shop", "1.0.0")
	p := b.wait(t, b.promote(t, "shop", "1.0.0", "dev").ID)
	if p.State != promotion.Succeeded {
		t.Fatalf("dev promotion ended %s: %s", p.State, p.Message)
	}
	staging := b.latest(t, "shop", "staging")
	if staging.State != promotion.Succeeded || staging.Actor != engine.SystemActor {
		t.Fatalf("staging: state %s actor %s, want succeeded by system", staging.State, staging.Actor)
	}
	got, _ := os.ReadFile(filepath.Join(b.dir, "deployed"))
	want := "dev 1.0.0 " + r.Artifacts[0].Digest + "\nstaging 1.0.0\n"
	if string(got) != want {
		t.Fatalf("deployed file = %q, want %q", got, want)
	}
	// prod is not auto-promoted.
	ps, _ := b.eng.Promotions(context.Background(), store.PromotionFilter{Pipeline: "shop", Environment: "prod"})
	if len(ps) != 0 {
		t.Fatalf("prod has %d promotions, want none (no autoPromote)", len(ps))
	}
	st, err := b.eng.Status(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	if st.Environments[1].Current == nil || st.Environments[1].Current.Version != "1.0.0" || st.Environments[2].Current != nil {
		t.Fatalf("status = %+v", st.Environments)
	}
	wantTrans := []promotion.State{promotion.Gating, promotion.Deploying, promotion.Verifying, promotion.Succeeded}
	if len(p.Transitions) != len(wantTrans) {
		t.Fatalf("transitions = %+v", p.Transitions)
	}
	for i, tr := range p.Transitions {
		if tr.To != wantTrans[i] {
			t.Fatalf("transition %d to %s, want %s", i, tr.To, wantTrans[i])
		}
	}
}

func TestPromoteRefusedUntilUpstreamSucceeded(t *testing.T) {
	b := setup(t)
	b.apply(t, `name: shop
environments:
  - {name: dev, steps: [{name: d, exec: {run: "true"}}]}
  - {name: prod, after: [dev], steps: [{name: d, exec: {run: "true"}}]}
`)
	b.release(t, "shop", "1.0.0")
	_, err := b.eng.Promote(context.Background(), "alice", engine.PromoteRequest{Pipeline: "shop", Release: "1.0.0", Environment: "prod"})
	if engine.CodeOf(err) != engine.CodePrecondition || !strings.Contains(err.Error(), "has not succeeded in dev") {
		t.Fatalf("err = %v, want precondition naming dev", err)
	}
	ps, _ := b.eng.Promotions(context.Background(), store.PromotionFilter{Pipeline: "shop"})
	if len(ps) != 0 {
		t.Fatalf("a refused promotion created %d promotions", len(ps))
	}
	_, err = b.eng.Promote(context.Background(), "alice", engine.PromoteRequest{Pipeline: "shop", Release: "1.0.0", Environment: "prod", Force: true})
	if engine.CodeOf(err) != engine.CodeInvalid {
		t.Fatalf("force without reason: err = %v, want invalid", err)
	}
	p, err := b.eng.Promote(context.Background(), "alice", engine.PromoteRequest{Pipeline: "shop", Release: "1.0.0", Environment: "prod", Force: true, Reason: "hotfix"})
	if err != nil {
		t.Fatal(err)
	}
	done := b.wait(t, p.ID)
	if done.State != promotion.Succeeded || !done.Forced || !strings.Contains(done.Transitions[1].Reason, "overridden by alice") {
		t.Fatalf("forced promotion: %+v", done)
	}
}

func TestFailedCheckRollsBackToPreviousRelease(t *testing.T) {
	b := setup(t)
	b.apply(t, `name: shop
environments:
  - name: prod
    steps:
      - name: deploy
        exec: {run: 'echo "$FERRY_RELEASE rollback=$FERRY_ROLLBACK phase=$FERRY_PHASE" >> "$WORK/log"; echo "$FERRY_RELEASE" > "$WORK/current"'}
    verify:
      - name: smoke
        exec: {run: 'test "$(cat "$WORK/current")" != 2.0.0'}
`)
	b.release(t, "shop", "1.0.0")
	b.release(t, "shop", "2.0.0")
	if p := b.wait(t, b.promote(t, "shop", "1.0.0", "prod").ID); p.State != promotion.Succeeded {
		t.Fatalf("1.0.0: %s %s", p.State, p.Message)
	}
	p := b.wait(t, b.promote(t, "shop", "2.0.0", "prod").ID)
	if p.State != promotion.RolledBack {
		t.Fatalf("2.0.0 ended %s (%s), want rolled_back", p.State, p.Message)
	}
	if p.RollbackTo == nil || p.RollbackTo.Version != "1.0.0" {
		t.Fatalf("rollbackTo = %+v", p.RollbackTo)
	}
	got, _ := os.ReadFile(filepath.Join(b.dir, "log"))
	want := "1.0.0 rollback=0 phase=deploy\n2.0.0 rollback=0 phase=deploy\n1.0.0 rollback=1 phase=rollback\n"
	if string(got) != want {
		t.Fatalf("step log = %q, want %q", got, want)
	}
	phases := map[promotion.Phase]string{}
	for _, s := range p.Steps {
		phases[s.Phase] += s.Name + ":" + s.State + " "
	}
	if phases[promotion.PhaseVerify] != "smoke:failed " || phases[promotion.PhaseRollback] != "deploy:succeeded smoke:succeeded " {
		t.Fatalf("steps by phase = %v", phases)
	}
	st, _ := b.eng.Status(context.Background(), "shop")
	if st.Environments[0].Current.Version != "1.0.0" {
		t.Fatalf("current release after rollback = %s, want 1.0.0", st.Environments[0].Current.Version)
	}

	// Manual rollback of an environment that has run 1.0.0 only: nothing earlier.
	_, err := b.eng.Rollback(context.Background(), "alice", engine.RollbackRequest{Pipeline: "shop", Environment: "prod", Reason: "x"})
	if engine.CodeOf(err) != engine.CodePrecondition {
		t.Fatalf("rollback with nothing earlier: %v", err)
	}
}

func TestFirstReleaseFailureHasNothingToRollBackTo(t *testing.T) {
	b := setup(t)
	b.apply(t, `name: shop
environments:
  - name: prod
    steps:
      - name: deploy
        exec: {run: 'echo attempt $FERRY_ATTEMPT key $FERRY_IDEMPOTENCY_KEY >> "$WORK/attempts"; exit 7'}
        retries: 2
        backoff: 10ms
`)
	b.release(t, "shop", "1.0.0")
	p := b.wait(t, b.promote(t, "shop", "1.0.0", "prod").ID)
	if p.State != promotion.Failed || !strings.Contains(p.Message, "no previous release") {
		t.Fatalf("ended %s: %s", p.State, p.Message)
	}
	if s := p.Steps[0]; s.Attempts != 3 || s.ExitCode == nil || *s.ExitCode != 7 {
		t.Fatalf("step = %+v, want 3 attempts exit 7", s)
	}
	lines := strings.Split(strings.TrimSpace(readFile(t, filepath.Join(b.dir, "attempts"))), "\n")
	if len(lines) != 3 {
		t.Fatalf("attempts = %q", lines)
	}
	key := strings.Fields(lines[0])[3]
	for i, l := range lines {
		f := strings.Fields(l)
		if f[1] != fmt.Sprint(i+1) || f[3] != key {
			t.Fatalf("attempt line %d = %q: want attempt %d with key %s", i, l, i+1, key)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestQueueSupersedeAndAbort(t *testing.T) {
	b := setup(t)
	b.apply(t, `name: shop
environments:
  - name: prod
    steps:
      - name: deploy
        exec: {run: 'echo "$FERRY_RELEASE" >> "$WORK/ran"; if [ "$FERRY_RELEASE" = 1.0.0 ]; then touch "$WORK/started"; sleep 60; fi'}
`)
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		b.release(t, "shop", v)
	}
	first := b.promote(t, "shop", "1.0.0", "prod")
	waitFile(t, filepath.Join(b.dir, "started"))
	second := b.promote(t, "shop", "2.0.0", "prod")
	if second.State != promotion.Queued {
		t.Fatalf("second promotion %s, want queued while the environment is busy", second.State)
	}
	third := b.promote(t, "shop", "3.0.0", "prod")
	if p, _ := b.eng.Promotion(context.Background(), second.ID); p.State != promotion.Superseded {
		t.Fatalf("second promotion %s after a newer release was queued, want superseded", p.State)
	}
	if _, err := b.eng.Abort(context.Background(), "bob", first.ID, "taking too long"); err != nil {
		t.Fatal(err)
	}
	a := b.wait(t, first.ID)
	if a.State != promotion.Aborted {
		t.Fatalf("aborted promotion: state %s", a.State)
	}
	// The environment stays busy until the aborted step's processes are gone.
	if p := b.wait(t, third.ID); p.State != promotion.Succeeded {
		t.Fatalf("third: %s %s", p.State, p.Message)
	}
	a, _ = b.eng.Promotion(context.Background(), first.ID)
	if a.Steps[0].State != string(promotion.StepAborted) {
		t.Fatalf("aborted promotion's step is %s, want aborted", a.Steps[0].State)
	}
	p3, _ := b.eng.Promotion(context.Background(), third.ID)
	if p3.StartedAt.Before(*a.Steps[0].FinishedAt) {
		t.Fatalf("release 3.0.0 started at %v, before the aborted step ended at %v", p3.StartedAt, a.Steps[0].FinishedAt)
	}
	if got := readFile(t, filepath.Join(b.dir, "ran")); got != "1.0.0\n3.0.0\n" {
		t.Fatalf("ran = %q: 2.0.0 must never run", got)
	}
	if _, err := b.eng.Abort(context.Background(), "bob", first.ID, "again"); engine.CodeOf(err) != engine.CodeConflict {
		t.Fatalf("abort of an ended promotion: %v", err)
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestShutdownInterruptsAndRestartResumes(t *testing.T) {
	b := setup(t)
	b.apply(t, `name: shop
environments:
  - name: prod
    steps:
      - name: deploy
        secretEnv: [DEPLOY_TOKEN]
        exec: {run: 'echo "attempt=$FERRY_ATTEMPT key=$FERRY_IDEMPOTENCY_KEY token=$DEPLOY_TOKEN"; echo "$FERRY_ATTEMPT $FERRY_IDEMPOTENCY_KEY" >> "$WORK/attempts"; if [ "$FERRY_ATTEMPT" = 1 ]; then touch "$WORK/started"; sleep 60; fi'}
`)
	b.release(t, "shop", "1.0.0")
	p := b.promote(t, "shop", "1.0.0", "prod")
	waitFile(t, filepath.Join(b.dir, "started"))
	b.stop() // graceful: the grace elapses, the step is interrupted

	var runs []promotion.StepRun
	st, err := sqlite.Open(context.Background(), b.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.View(context.Background(), func(tx store.Tx) error {
		runs, err = tx.StepRuns(context.Background(), p.ID)
		return err
	})
	st.Close()
	if len(runs) != 1 || runs[0].State != promotion.StepInterrupted {
		t.Fatalf("after shutdown: runs = %+v, want one interrupted attempt", runs)
	}

	b.start(t, engine.Config{})
	done := b.wait(t, p.ID)
	if done.State != promotion.Succeeded {
		t.Fatalf("after restart: %s %s", done.State, done.Message)
	}
	lines := strings.Split(strings.TrimSpace(readFile(t, filepath.Join(b.dir, "attempts"))), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "1 ") || !strings.HasPrefix(lines[1], "2 ") ||
		strings.Fields(lines[0])[1] != strings.Fields(lines[1])[1] {
		t.Fatalf("attempts = %q: want attempt 1 then 2 with the same key", lines)
	}
	logs, err := b.eng.Logs(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, c := range logs {
		all.WriteString(c.Text)
	}
	if strings.Contains(all.String(), "s3cr3t-value") || !strings.Contains(all.String(), "token=***") {
		t.Fatalf("logs must show the secret redacted: %q", all.String())
	}
}
