// Package exec runs steps as local processes: a shell script (exec.run, with
// /bin/sh -c) or an argv (exec.command). Each attempt runs in its own process
// group, which Ferry stops as a whole: on timeout, on cancellation, and when
// the step's main process exits while processes it started in the background
// still run. Alive and Reap let the engine find and stop the group of an
// attempt that was running when Ferry stopped. The package works on Linux only.
package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/step"
)

const (
	// DefaultKillGrace is how long a stopped step's processes have between
	// SIGTERM and SIGKILL unless Driver.KillGrace says otherwise: 10 seconds.
	DefaultKillGrace = 10 * time.Second
	// DrainTimeout is how long Run keeps reading output once every process
	// of the step's group is gone. Only a process that left the group (a
	// daemon that called setsid) can hold the output open that long; what it
	// writes later is lost.
	DrainTimeout = time.Second
)

// Driver runs exec steps. The zero value is ready to use.
type Driver struct {
	// Environ is the environment steps start from, and where the values of
	// their secretEnv variables come from. Defaults to os.Environ(), read at
	// each Run.
	Environ []string
	// KillGrace is how long the processes of a step that is stopped have
	// between SIGTERM and SIGKILL. Defaults to 10 seconds.
	KillGrace time.Duration
}

var _ step.Driver = Driver{}

// Run runs one attempt of an exec step and returns once every process of
// its group has exited. The step's stdout and stderr both go to req.Output,
// in the order they were written. req.Started, if set, is called with the
// process group ID and start time as soon as the process runs; if it returns
// an error, Run kills the group and fails with that error's message.
//
// A step that exceeds exec.timeout, or whose ctx ends, gets SIGTERM on its
// whole group, then SIGKILL after KillGrace; it fails with "timed out after
// 2m0s", or returns Interrupted. Processes the step left running in the
// background when its main process exited are stopped the same way; the
// step's result is then its main process's.
func (d Driver) Run(ctx context.Context, req step.Request) step.Result {
	x := req.Step.Exec
	if x == nil {
		return failed("step %q has no exec", req.Step.Name)
	}
	base := d.Environ
	if base == nil {
		base = os.Environ()
	}
	env, err := step.Environ(req, base)
	if err != nil {
		return failed("%v", err)
	}
	cmd, err := command(x, env)
	if err != nil {
		return failed("%v", err)
	}
	if ctx.Err() != nil {
		return step.Result{Interrupted: true, Message: "interrupted before start"}
	}
	grace := d.KillGrace
	if grace <= 0 {
		grace = DefaultKillGrace
	}

	// With a Started callback, the step's process waits at a gate until the
	// callback has returned: the caller records the process group before the
	// step does anything, so a crash at any moment leaves it findable.
	var gate *os.File
	if req.Started != nil {
		if cmd, gate, err = gated(cmd); err != nil {
			return failed("start: %v", err)
		}
	}
	p, err := start(cmd, req.Output)
	if gate != nil {
		cmd.ExtraFiles[0].Close() // the child holds its own copy
	}
	if err != nil {
		if gate != nil {
			gate.Close()
		}
		return failed("start: %v", err)
	}
	r := run{p: p, grace: grace}
	switch {
	case p.startErr != nil:
		r.kill(fmt.Sprintf("read start time of process %d: %v", p.pgid, p.startErr))
	case req.Started != nil:
		if err := req.Started(p.pgid, p.start); err != nil {
			r.kill(err.Error())
		}
	}
	if gate != nil {
		if r.message == "" {
			_, _ = gate.WriteString("go\n")
		}
		gate.Close() // without "go", the gate exits 125 and runs nothing
	}

	timeout := x.Timeout.D()
	if r.message == "" {
		var expired <-chan time.Time
		if timeout > 0 {
			t := time.NewTimer(timeout)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-p.exited:
		case <-ctx.Done():
			r.interrupted = true
			r.terminate()
		case <-expired:
			r.message = fmt.Sprintf("timed out after %v", timeout)
			r.terminate()
		}
	}
	r.stopGroup()
	werr := cmd.Wait() // reaps the leader, which waited as a zombie until now
	p.drain()

	res := step.Result{Interrupted: r.interrupted, Message: r.message}
	ps := cmd.ProcessState
	if ps != nil && ps.Exited() {
		code := ps.ExitCode()
		res.ExitCode = &code
	}
	switch {
	case r.interrupted:
		res.Message = "interrupted"
	case res.Message != "":
	case ps == nil:
		res.Message = fmt.Sprintf("wait: %v", werr)
	case ps.Success():
		res.OK = true
	default:
		res.Message = ps.String() // "exit status 3", "signal: killed"
	}
	return res
}

func failed(format string, args ...any) step.Result {
	return step.Result{Message: fmt.Sprintf(format, args...)}
}

// command builds the process of x. A command's executable is looked up in
// the PATH of the step's environment, not the server's.
func command(x *pipeline.Exec, env []string) (*exec.Cmd, error) {
	var cmd *exec.Cmd
	switch {
	case x.Run != "" && len(x.Command) > 0:
		return nil, errors.New("exec has both run and command")
	case x.Run != "":
		cmd = &exec.Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", x.Run}}
	case len(x.Command) > 0:
		path, err := lookPath(x.Command[0], envValue(env, "PATH"))
		if err != nil {
			return nil, err
		}
		cmd = &exec.Cmd{Path: path, Args: slices.Clone(x.Command)}
	default:
		return nil, errors.New("exec has neither run nor command")
	}
	cmd.Env = env
	cmd.Dir = x.Workdir
	return cmd, nil
}

// gateScript holds a step's process until its parent writes "go" on fd 3,
// then execs the step in its place (same process, same process group).
const gateScript = `IFS= read -r go <&3 && [ "$go" = go ] || exit 125; exec 3<&-; exec "$@"`

// gated returns cmd wrapped in the gate, and the writing end of the gate's pipe.
func gated(cmd *exec.Cmd) (*exec.Cmd, *os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("gate pipe: %w", err)
	}
	g := &exec.Cmd{
		Path: "/bin/sh",
		Args: append([]string{"sh", "-c", gateScript, "ferry-step", cmd.Path}, cmd.Args[1:]...),
		Env:  cmd.Env, Dir: cmd.Dir, ExtraFiles: []*os.File{r},
	}
	return g, w, nil
}

// lookPath finds name in the directories of path. A name with a slash is
// used as it is (relative to the step's workdir). Relative directories in
// path are skipped, as os/exec refuses them.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q: executable file not found in the step's PATH", name)
}

func envValue(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// process is a started step process and the copy of its output.
type process struct {
	pgid     int
	start    uint64
	startErr error         // reading the start time failed; the process runs
	exited   chan struct{} // closed when the leader has exited; it stays a zombie until cmd.Wait
	out      *os.File      // read end of the output pipe, or nil
	copied   chan struct{} // closed when the output copy ends
}

// start starts cmd in a new process group with its output going to w.
func start(cmd *exec.Cmd, w io.Writer) (*process, error) {
	p := &process{exited: make(chan struct{}), copied: make(chan struct{})}
	var pw *os.File
	if w != nil {
		pr, pw2, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("output pipe: %w", err)
		}
		p.out, pw = pr, pw2
		// One pipe for both streams keeps their order.
		cmd.Stdout, cmd.Stderr = pw, pw
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	started := make(chan error, 1)
	go func() {
		// The kernel sends Pdeathsig when the thread that started the child
		// ends, not the process. Holding this goroutine on its thread until
		// the child exits keeps the Go runtime from retiring that thread (it
		// does so when a locked goroutine exits) while the step runs.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pgid = cmd.Process.Pid
		p.start, p.startErr = StartTime(p.pgid)
		started <- nil
		waitExited(p.pgid)
		close(p.exited)
	}()
	err := <-started
	if pw != nil {
		pw.Close() // the child holds its own copy
	}
	if err != nil {
		if p.out != nil {
			p.out.Close()
		}
		return nil, err
	}
	if p.out == nil {
		close(p.copied)
	} else {
		go func() {
			defer close(p.copied)
			if _, err := io.Copy(w, p.out); err != nil {
				// Keep the pipe empty so the step never blocks on it.
				_, _ = io.Copy(io.Discard, p.out)
			}
		}()
	}
	return p, nil
}

// drain waits for the output copy to end, at most DrainTimeout, and closes
// the pipe. It is called once no process of the group is left.
func (p *process) drain() {
	if p.out == nil {
		return
	}
	_ = p.out.SetReadDeadline(time.Now().Add(DrainTimeout))
	<-p.copied
	p.out.Close()
}

// waitExited blocks until process pid has exited, without reaping it: as a
// zombie it keeps its PID, and with it the process group ID, from being
// reused while Ferry still signals the group.
func waitExited(pid int) {
	const pPID = 1     // P_PID
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		switch errno {
		case 0:
			return
		case syscall.EINTR:
			continue
		}
		// waitid is unavailable: watch /proc instead.
		_, _ = waitUntil(context.Background(), time.Time{}, func() bool {
			st, err := readStat(pid)
			return err != nil || st.dead()
		})
		return
	}
}

// run is the stopping logic of one attempt.
type run struct {
	p           *process
	grace       time.Duration
	signalled   bool      // SIGTERM or SIGKILL was sent to the group
	deadline    time.Time // when SIGTERM turns into SIGKILL
	interrupted bool
	message     string
}

// kill sends SIGKILL to the group at once and waits for the leader.
func (r *run) kill(message string) {
	r.message = message
	r.signalled = true
	r.deadline = time.Now()
	_ = syscall.Kill(-r.p.pgid, syscall.SIGKILL)
	<-r.p.exited
}

// terminate sends SIGTERM to the group and waits for the leader, sending
// SIGKILL to the group once the grace period ends.
func (r *run) terminate() {
	r.signalled = true
	r.deadline = time.Now().Add(r.grace)
	_ = syscall.Kill(-r.p.pgid, syscall.SIGTERM)
	t := time.NewTimer(r.grace)
	defer t.Stop()
	select {
	case <-r.p.exited:
	case <-t.C:
		_ = syscall.Kill(-r.p.pgid, syscall.SIGKILL)
		<-r.p.exited
	}
}

// stopGroup stops what is left of the group once the leader has exited:
// SIGTERM unless already sent, SIGKILL at the deadline, then waits until no
// process of the group is left.
func (r *run) stopGroup() {
	pgid := r.p.pgid
	gone := func() bool { return !groupLive(pgid) }
	if gone() {
		return
	}
	if !r.signalled {
		r.signalled = true
		r.deadline = time.Now().Add(r.grace)
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
	}
	if ok, _ := waitUntil(context.Background(), r.deadline, gone); ok {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	_, _ = waitUntil(context.Background(), time.Time{}, gone)
}
