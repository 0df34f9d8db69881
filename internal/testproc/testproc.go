// Package testproc runs the real server programs tests depend on
// (Prometheus, Alertmanager, PostgreSQL): it finds their binaries, picks
// free ports, starts them with their output in a log file, waits until they
// are ready and stops them. A test whose program is not installed is
// skipped, or fails when the environment variable CI is true.
package testproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ErrNotInstalled marks a machine without a program a test needs.
var ErrNotInstalled = errors.New("not installed")

// ErrAddrInUse marks a server that exited because its port was taken
// between FreePort and its start; the caller tries another port.
var ErrAddrInUse = errors.New("address already in use")

// pollEvery is how often WaitReady asks again.
const pollEvery = 50 * time.Millisecond

// Find returns the path of the first of names found in PATH, then in
// /usr/bin. Its error wraps ErrNotInstalled and names the Debian package
// pkg that provides the program.
func Find(pkg string, names ...string) (string, error) {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		p := "/usr/bin/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is %w: %s is in neither PATH nor /usr/bin; install the Debian package %s (apt-get install %s)",
		names[0], ErrNotInstalled, strings.Join(names, " or "), pkg, pkg)
}

// Unavailable skips tb because of err, or fails it when CI is true or err
// is not about a missing installation. prefix names the helper package.
func Unavailable(tb testing.TB, prefix string, err error) {
	tb.Helper()
	if !errors.Is(err, ErrNotInstalled) {
		tb.Fatalf("%s: %v", prefix, err)
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		tb.Fatalf("%s: %v (CI is set, so this fails instead of skipping)", prefix, err)
	}
	tb.Skipf("%s: %v", prefix, err)
}

// FreePort returns a TCP port of 127.0.0.1 that nothing listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Process is a server program started by a test.
type Process struct {
	name    string // the program, for messages
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	err     error         // cmd.Wait's result, set before done is closed
}

// Start starts bin with args in dir, its output appended to logPath. If
// the test binary dies without stopping it, the program gets SIGTERM
// rather than outliving it.
func Start(bin string, args []string, dir, logPath string) (*Process, error) {
	name := bin[strings.LastIndex(bin, "/")+1:]
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logFile.Close() // the program has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// WaitReady calls ready until it returns nil. It fails when the program
// exits first (with ErrAddrInUse when its log says its port was taken) or
// is not ready within timeout (then it is killed); either error carries the
// end of the program's log.
func (p *Process) WaitReady(timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			log := p.Log()
			if strings.Contains(log, "address already in use") {
				err = ErrAddrInUse
			}
			return fmt.Errorf("start %s: it exited (%v, %w); its log:\n%s", p.name, p.err, err, log)
		case <-ctx.Done():
			p.Kill()
			return fmt.Errorf("start %s: not ready after %v (%v); its log:\n%s", p.name, timeout, err, p.Log())
		case <-time.After(pollEvery):
		}
	}
}

// HTTPReady returns a readiness check that wants 200 from a GET of url.
func HTTPReady(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
		}
		return nil
	}
}

// Log returns the end of the program's log.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// Kill ends the program without letting it shut down, and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM and waits up to timeout for the program to exit,
// then kills it.
func (p *Process) Stop(timeout time.Duration) error {
	var err error
	if serr := p.cmd.Process.Signal(syscall.SIGTERM); serr != nil && !errors.Is(serr, os.ErrProcessDone) {
		err = fmt.Errorf("stop %s: %w", p.name, serr)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
		err = errors.Join(err, fmt.Errorf("stop %s: still running %v after SIGTERM; killed", p.name, timeout))
	}
	return err
}
