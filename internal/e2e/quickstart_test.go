package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/pgtest"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/view"
)

// upRun is a running `ferry up`.
type upRun struct {
	cmd    *exec.Cmd
	dir    string
	addr   string
	text   string // what it printed until it was ready
	logs   *syncBuffer
	exited chan struct{}
}

// startUp runs `ferry up` in a new directory and waits until it printed
// its walkthrough.
func startUp(t *testing.T) *upRun {
	t.Helper()
	dir := t.TempDir()
	addr := freePort(t)
	up := exec.Command(ferryBin, "up", "--data", filepath.Join(dir, "data"), "--listen", addr)
	up.Dir = dir
	up.Env = append(os.Environ(), raceEnv)
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	up.Stderr = logs
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var out strings.Builder
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Press Ctrl-C") && !signalled {
				signalled = true
				ready <- out.String()
			}
		}
		_ = up.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = up.Process.Kill()
		<-exited
	})
	var text string
	select {
	case text = <-ready:
	case <-exited:
		t.Fatalf("ferry up exited:\n%s\n%s", out.String(), logs.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("ferry up not ready after 2 minutes:\n%s", logs.String())
	}
	return &upRun{cmd: up, dir: dir, addr: addr, text: text, logs: logs, exited: exited}
}

// TestQuickstartUp runs the README's main command (`ferry up`), follows the
// walkthrough it prints — promote to prod, ship a bad release that is rolled
// back — and stops it with SIGINT.
func TestQuickstartUp(t *testing.T) {
	run := startUp(t)
	up, dir, addr, exited := run.cmd, run.dir, run.addr, run.exited
	text := run.text
	for _, w := range []string{"dev      1.0.0: succeeded", "staging  1.0.0: succeeded", "ferry promote --pipeline quickstart"} {
		if !strings.Contains(text, w) {
			t.Fatalf("ferry up output lacks %q:\n%s", w, text)
		}
	}
	if body := httpGet(t, "http://127.0.0.1:18082/"); !strings.Contains(body, "release 1.0.0") {
		t.Fatalf("staging demo app says %q", body)
	}

	// The token it prints once is the one it wrote, readable by its owner only.
	_, token, ok := strings.Cut(text, "admin token (shown once): ")
	token, _, _ = strings.Cut(token, "\n")
	if !ok || auth.CheckTokenFormat(token) != nil {
		t.Fatalf("ferry up printed no admin token:\n%s", text)
	}
	tokenFile := filepath.Join(dir, "data", "admin-token")
	if b, err := os.ReadFile(tokenFile); err != nil || strings.TrimSpace(string(b)) != token {
		t.Fatalf("%s holds %q (%v), want the token printed", tokenFile, b, err)
	}
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v (%v), want 0600", tokenFile, fi.Mode().Perm(), err)
	}
	if !strings.Contains(text, "export FERRY_TOKEN=$(cat "+filepath.Join(dir, "data", "admin-token")+")") {
		t.Fatalf("ferry up does not say how to pass the token:\n%s", text)
	}
	s := &server{t: t, addr: addr, token: token}
	if r := s.as("").ferry("status", "--pipeline", "quickstart"); r.code != 1 || !strings.Contains(r.stderr, "not known to this server") {
		t.Fatalf("status with another token: exit %d\n%s", r.code, r.stderr)
	}
	// prod waits for one approval, which the quickstart lets its single user give.
	var prod view.Promotion
	mustJSON(t, s.must("promote", "--pipeline", "quickstart", "--release", "1.0.0", "--to", "prod", "--reason", "first prod release", "-o", "json"), &prod)
	s.waitState(prod.ID, promotion.AwaitingApproval)
	s.must("approve", prod.ID, "--comment", "looks good")
	if p := s.waitEnded(prod.ID); p.State != promotion.Succeeded {
		t.Fatalf("prod after approval: %s %s", p.State, p.Message)
	}
	if !strings.Contains(text, "Dashboard: http://"+addr+"/ (sign in with the admin token above)") {
		t.Fatalf("ferry up does not point to the dashboard:\n%s", text)
	}
	s.must("release", "create", "--pipeline", "quickstart", "--version", "1.2.0-bad", "--artifact", "app=example.com/quickstart/app@"+digest("bad"))
	r := s.ferry("promote", "--pipeline", "quickstart", "--release", "1.2.0-bad", "--to", "dev", "--wait")
	if r.code != 3 {
		t.Fatalf("promote of the bad release: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}
	dev := s.promotions("--pipeline", "quickstart", "--env", "dev", "--limit", "1")[0]
	if dev.State != promotion.RolledBack {
		t.Fatalf("bad release in dev: %s, want rolled_back", dev.State)
	}
	if body := httpGet(t, "http://127.0.0.1:18081/"); !strings.Contains(body, "release 1.0.0") {
		t.Fatalf("dev demo app after rollback says %q", body)
	}

	_ = up.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("ferry up did not stop on SIGINT")
	}
	if _, err := http.Get("http://127.0.0.1:18081/"); err == nil {
		t.Fatal("the dev demo app still serves after ferry up stopped")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "ferry.db")); err != nil {
		t.Fatalf("no database in the data directory: %v", err)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestBenchReportsFigures runs a small `ferry bench` and checks that its JSON
// holds coherent figures (the targets themselves are recorded in
// docs/benchmarks.md, not asserted on a noisy machine).
func TestBenchReportsFigures(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { checkBench(t) })
	t.Run("postgres-3-replicas", func(t *testing.T) {
		checkBench(t, "--db", pgtest.Shared(t).CreateDatabase(t, "bench"), "--replicas", "3")
	})
}

func checkBench(t *testing.T, args ...string) {
	cmd := exec.Command(ferryBin, append([]string{"bench", "-n", "30", "-c", "2", "-o", "json"}, args...)...)
	cmd.Env = append(os.Environ(), raceEnv)
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("ferry bench: %v\n%s", err, b)
	}
	var r struct {
		Replicas                             int
		Promotions                           int
		PromotionsPerSec, TransitionsPerSec  float64
		RawCommitsPerSec, CommitRatio        float64
		ReadyToStartP50Ms, ReadyToStartP99Ms float64
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if r.Promotions != 30 || r.PromotionsPerSec <= 0 || r.RawCommitsPerSec <= 0 || (len(args) > 0 && r.Replicas != 3) {
		t.Fatalf("bench figures: %+v", r)
	}
	// Each promotion makes 4 transitions (queued→gating→deploying→verifying→succeeded).
	if ratio := r.TransitionsPerSec / r.PromotionsPerSec; ratio < 3.9 || ratio > 4.1 {
		t.Fatalf("transitions per promotion = %.2f, want 4", ratio)
	}
	if d := r.CommitRatio - r.TransitionsPerSec/r.RawCommitsPerSec; d > 1e-9 || d < -1e-9 {
		t.Fatalf("commitRatio %.4f is not transitions/s ÷ raw commits/s", r.CommitRatio)
	}
	if r.ReadyToStartP50Ms <= 0 || r.ReadyToStartP99Ms < r.ReadyToStartP50Ms {
		t.Fatalf("latency percentiles: p50 %.3f p99 %.3f", r.ReadyToStartP50Ms, r.ReadyToStartP99Ms)
	}
}
