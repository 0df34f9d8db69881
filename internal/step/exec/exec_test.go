package exec_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/step"
	"github.com/ferry-dev/ferry/internal/step/exec"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// output is a step's output that signals when a text appears in it.
type output struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func newOutput(want string) *output { return &output{want: want, seen: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if o.want != "" && strings.Contains(o.buf.String(), o.want) {
		o.want = ""
		close(o.seen)
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func (o *output) wait(t *testing.T) {
	t.Helper()
	select {
	case <-o.seen:
	case <-time.After(10 * time.Second):
		t.Fatalf("output %q never showed the expected text", o.String())
	}
}

func request(x pipeline.Exec, out *output) step.Request {
	req := step.Request{
		PromotionID:    "prm_1",
		Pipeline:       "shop",
		Environment:    "prod",
		Phase:          promotion.PhaseDeploy,
		Step:           pipeline.Step{Name: "deploy", Exec: &x},
		Attempt:        2,
		IdempotencyKey: "k1",
	}
	if out != nil {
		req.Output = out
	}
	return req
}

// groupGone fails the test if a process of group pgid still runs. Zombies
// are tolerated: they have exited, and an init that does not reap orphans
// (as in some containers) leaves them in the table.
func groupGone(t *testing.T, pgid int) {
	t.Helper()
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			t.Errorf("process %s of group %d is still running (state %s)", e.Name(), pgid, f[0])
		}
	}
}

func TestRunSuccess(t *testing.T) {
	out := newOutput("")
	res := exec.Driver{}.Run(t.Context(), request(pipeline.Exec{
		Run: `echo "out $FERRY_STEP $FERRY_ATTEMPT"; echo err >&2; echo "$REGION"`,
		Env: map[string]string{"REGION": "eu"},
	}, out))
	if !res.OK || res.ExitCode == nil || *res.ExitCode != 0 || res.Message != "" {
		t.Fatalf("result %+v, want success with exit code 0", res)
	}
	if got := out.String(); got != "out deploy 2\nerr\neu\n" {
		t.Errorf("output %q", got)
	}
}

func TestRunExitCode(t *testing.T) {
	res := exec.Driver{}.Run(t.Context(), request(pipeline.Exec{Run: "echo failing; exit 3"}, newOutput("")))
	if res.OK || res.ExitCode == nil || *res.ExitCode != 3 || res.Message != "exit status 3" || res.Interrupted {
		t.Fatalf("result %+v, want exit status 3", res)
	}
}

func TestRunKilledBySignal(t *testing.T) {
	res := exec.Driver{}.Run(t.Context(), request(pipeline.Exec{Run: "kill -KILL $$"}, newOutput("")))
	if res.OK || res.ExitCode != nil || res.Message != "signal: killed" {
		t.Fatalf("result %+v, want signal: killed without exit code", res)
	}
}

func TestRunCommandArgv(t *testing.T) {
	out := newOutput("")
	res := exec.Driver{}.Run(t.Context(), request(pipeline.Exec{
		Command: []string{"printf", "%s|", "two words", "$HOME", "*"},
	}, out))
	if !res.OK {
		t.Fatalf("result %+v", res)
	}
	if got := out.String(); got != "two words|$HOME|*|" {
		t.Errorf("output %q, want the arguments untouched by a shell", got)
	}
}

func TestRunCommandUsesStepPath(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "ferry-test-tool")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho tool ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := newOutput("")
	d := exec.Driver{Environ: []string{"PATH=/usr/bin:/bin"}}
	res := d.Run(t.Context(), request(pipeline.Exec{
		Command: []string{"ferry-test-tool"},
		Env:     map[string]string{"PATH": dir + ":/usr/bin:/bin"},
	}, out))
	if !res.OK || out.String() != "tool ran\n" {
		t.Fatalf("result %+v, output %q", res, out.String())
	}

	res = d.Run(t.Context(), request(pipeline.Exec{Command: []string{"ferry-no-such-tool"}}, newOutput("")))
	if res.OK || !strings.Contains(res.Message, `"ferry-no-such-tool"`) || !strings.Contains(res.Message, "not found") {
		t.Fatalf("result %+v, want not found", res)
	}
}

func TestRunWorkdir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "deploy.sh"), []byte("#!/bin/sh\necho script in \"$(pwd)\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := newOutput("")
	res := exec.Driver{}.Run(t.Context(), request(pipeline.Exec{Run: "pwd", Workdir: dir}, out))
	if !res.OK || out.String() != dir+"\n" {
		t.Fatalf("result %+v, output %q, want %q", res, out.String(), dir)
	}
	out = newOutput("")
	res = exec.Driver{}.Run(t.Context(), request(pipeline.Exec{Command: []string{"./deploy.sh"}, Workdir: dir}, out))
	if !res.OK || out.String() != "script in "+dir+"\n" {
		t.Fatalf("result %+v, output %q", res, out.String())
	}
	res = exec.Driver{}.Run(t.Context(), request(pipeline.Exec{Run: "true", Workdir: filepath.Join(dir, "missing")}, nil))
	if res.OK || !strings.HasPrefix(res.Message, "start: ") {
		t.Fatalf("result %+v, want a start failure", res)
	}
}

func TestRunSecretEnv(t *testing.T) {
	out := newOutput("")
	req := request(pipeline.Exec{Run: `echo "token=$DEPLOY_TOKEN"`}, out)
	req.Step.SecretEnv = []string{"DEPLOY_TOKEN"}
	d := exec.Driver{Environ: []string{"PATH=/usr/bin:/bin", "DEPLOY_TOKEN=t0k3n"}}
	if res := d.Run(t.Context(), req); !res.OK || out.String() != "token=t0k3n\n" {
		t.Fatalf("result %+v, output %q", res, out.String())
	}

	d.Environ = []string{"PATH=/usr/bin:/bin"}
	res := d.Run(t.Context(), req)
	if res.OK || !strings.Contains(res.Message, "DEPLOY_TOKEN") {
		t.Fatalf("result %+v, want the missing secret named", res)
	}
}

func TestRunTimeout(t *testing.T) {
	var pgid int
	req := request(pipeline.Exec{Run: "sleep 60", Timeout: pipeline.Duration(200 * time.Millisecond)}, newOutput(""))
	req.Started = func(pid int, _ uint64) error { pgid = pid; return nil }
	began := time.Now()
	res := exec.Driver{}.Run(t.Context(), req)
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Run took %v", took)
	}
	if res.OK || res.Interrupted || res.Message != "timed out after 200ms" {
		t.Fatalf("result %+v, want timed out after 200ms", res)
	}
	groupGone(t, pgid)
}

func TestRunCancelStopsGroup(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := newOutput("ready")
	// The background sleep is a grandchild that also holds the output open.
	req := request(pipeline.Exec{Run: "sleep 60 & echo ready; wait"}, out)
	var pgid int
	req.Started = func(pid int, start uint64) error {
		if !exec.Alive(pid, start) {
			t.Errorf("process %d (start %d) not alive in Started", pid, start)
		}
		if got, err := exec.StartTime(pid); err != nil || got != start {
			t.Errorf("StartTime(%d) = %d, %v; Started got %d", pid, got, err, start)
		}
		if err := syscall.Kill(-pid, 0); err != nil {
			t.Errorf("process group %d: %v", pid, err)
		}
		pgid = pid
		return nil
	}
	done := make(chan step.Result)
	go func() { done <- exec.Driver{}.Run(ctx, req) }()
	out.wait(t)
	began := time.Now()
	cancel()
	res := <-done
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Run returned %v after cancellation", took)
	}
	if !res.Interrupted || res.OK {
		t.Fatalf("result %+v, want Interrupted", res)
	}
	if pgid == 0 {
		t.Fatal("Started was not called")
	}
	groupGone(t, pgid)
}

func TestRunKillGrace(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := newOutput("ready")
	// Ignoring SIGTERM is inherited by the sleep: only SIGKILL stops them.
	req := request(pipeline.Exec{Run: "trap '' TERM; echo ready; sleep 60"}, out)
	var pgid int
	req.Started = func(pid int, _ uint64) error { pgid = pid; return nil }
	const grace = 300 * time.Millisecond
	done := make(chan step.Result)
	go func() { done <- exec.Driver{KillGrace: grace}.Run(ctx, req) }()
	out.wait(t)
	began := time.Now()
	cancel()
	res := <-done
	took := time.Since(began)
	if took < grace || took > 5*time.Second {
		t.Errorf("Run returned %v after cancellation, want after the %v grace", took, grace)
	}
	if !res.Interrupted {
		t.Fatalf("result %+v, want Interrupted", res)
	}
	groupGone(t, pgid)
}

func TestRunStopsBackgroundProcesses(t *testing.T) {
	out := newOutput("")
	var pgid int
	req := request(pipeline.Exec{Run: "sleep 60 & echo done"}, out)
	req.Started = func(pid int, _ uint64) error { pgid = pid; return nil }
	began := time.Now()
	res := exec.Driver{}.Run(t.Context(), req)
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Run took %v with a background process holding the output", took)
	}
	if !res.OK || out.String() != "done\n" {
		t.Fatalf("result %+v, output %q", res, out.String())
	}
	groupGone(t, pgid)
}

func TestRunStartedError(t *testing.T) {
	out := newOutput("")
	var pgid int
	req := request(pipeline.Exec{Run: "sleep 60; echo finished"}, out)
	req.Started = func(pid int, _ uint64) error {
		pgid = pid
		return errors.New("record step process: database is locked")
	}
	began := time.Now()
	res := exec.Driver{}.Run(t.Context(), req)
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Run took %v", took)
	}
	if res.OK || res.Interrupted || res.Message != "record step process: database is locked" {
		t.Fatalf("result %+v, want the Started error", res)
	}
	if strings.Contains(out.String(), "finished") {
		t.Error("the step ran to its end")
	}
	groupGone(t, pgid)
}

func TestRunCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := request(pipeline.Exec{Run: "echo ran"}, newOutput(""))
	req.Started = func(int, uint64) error { t.Error("a process started"); return nil }
	if res := (exec.Driver{}).Run(ctx, req); !res.Interrupted {
		t.Fatalf("result %+v, want Interrupted", res)
	}
}

func TestRunWithoutOutput(t *testing.T) {
	req := request(pipeline.Exec{Run: "echo ignored; exit 0"}, nil)
	if res := (exec.Driver{}).Run(t.Context(), req); !res.OK {
		t.Fatalf("result %+v", res)
	}
}

func TestRunInvalidExec(t *testing.T) {
	for name, x := range map[string]*pipeline.Exec{
		"none":    nil,
		"empty":   {},
		"both":    {Run: "true", Command: []string{"true"}},
		"command": {Command: []string{""}},
	} {
		req := request(pipeline.Exec{}, nil)
		req.Step.Exec = x
		if res := (exec.Driver{}).Run(t.Context(), req); res.OK || res.Message == "" {
			t.Errorf("%s: result %+v, want a failure with a message", name, res)
		}
	}
}

// orphanGroup starts a process group whose leader exits and leaves a
// sleeping child behind, as a step does when Ferry dies under it. It returns
// the group ID, the leader's start time and the orphan's PID.
func orphanGroup(t *testing.T) (pgid int, start uint64, orphan int) {
	t.Helper()
	cmd := osexec.Command("/bin/sh", "-c", "sleep 60 & echo $!; read x || :")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	orphan, err = strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	pgid = cmd.Process.Pid
	start, err = exec.StartTime(pgid)
	if err != nil {
		t.Fatal(err)
	}
	stdin.Close() // the leader exits
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pgid, start, orphan
}

func TestReapOrphanGroup(t *testing.T) {
	pgid, start, orphan := orphanGroup(t)
	if !exec.Alive(pgid, start) {
		t.Fatal("Alive is false while the orphan runs")
	}
	began := time.Now()
	if err := exec.Reap(t.Context(), pgid, start, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Reap took %v for a process that dies on SIGTERM", took)
	}
	if exec.Alive(pgid, start) {
		t.Error("Alive after Reap")
	}
	groupGone(t, pgid)
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(orphan) + "/stat"); err == nil && !bytes.Contains(b, []byte(") Z ")) {
		t.Errorf("orphan %d still runs: %s", orphan, b)
	}
	// Reaping a group that is gone is a no-op.
	if err := exec.Reap(t.Context(), pgid, start, time.Second); err != nil {
		t.Fatal(err)
	}
}

// ignoringTerm starts a process group that ignores SIGTERM.
func ignoringTerm(t *testing.T) (*osexec.Cmd, uint64) {
	t.Helper()
	cmd := osexec.Command("/bin/sh", "-c", "trap '' TERM; echo ready; sleep 60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	start, err := exec.StartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, start
}

func TestReapEscalatesToKill(t *testing.T) {
	cmd, start := ignoringTerm(t)
	pgid := cmd.Process.Pid
	const grace = 200 * time.Millisecond
	began := time.Now()
	if err := exec.Reap(t.Context(), pgid, start, grace); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < grace || took > 5*time.Second {
		t.Errorf("Reap took %v, want a little over the %v grace", took, grace)
	}
	// The leader is this test's child: a zombie until waited for, which Alive ignores.
	if exec.Alive(pgid, start) {
		t.Error("Alive after Reap")
	}
	groupGone(t, pgid)
}

func TestReapContext(t *testing.T) {
	cmd, start := ignoringTerm(t)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := exec.Reap(ctx, cmd.Process.Pid, start, time.Minute)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reap = %v, want the context's error", err)
	}
}

func TestAliveGuardsPIDReuse(t *testing.T) {
	cmd, start := ignoringTerm(t)
	pid := cmd.Process.Pid
	if !exec.Alive(pid, start) {
		t.Fatal("Alive is false for a running group")
	}
	// Another start time means the PID now names another process, and the
	// group recorded under it is gone.
	if exec.Alive(pid, start+1) {
		t.Error("Alive is true for a different start time")
	}
	if err := exec.Reap(t.Context(), pid, start+1, 0); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("Reap with another start time signalled the process: %v", err)
	}
	if got, _ := exec.StartTime(pid); got != start {
		t.Fatalf("process %d was replaced", pid)
	}
}

func TestReapRefusesUnsafeGroups(t *testing.T) {
	for _, pgid := range []int{-1, 0, 1, syscall.Getpgrp()} {
		if err := exec.Reap(t.Context(), pgid, 0, 0); err == nil {
			t.Errorf("Reap(%d) succeeded", pgid)
		}
	}
	if exec.Alive(0, 0) || exec.Alive(1, 0) {
		t.Error("Alive is true for group 0 or 1")
	}
}
