// Package e2e holds Ferry's end-to-end tests: they build the ferry binary,
// start real servers on real SQLite files, and drive them through the CLI
// and the HTTP API.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/pgtest"
	"github.com/ferry-dev/ferry/internal/view"
)

// ferryBin is the binary under test, built once by TestMain with the race
// detector on.
var ferryBin string

// adminToken is the admin token every server starts with
// (FERRY_ADMIN_TOKEN) and every CLI call sends (FERRY_TOKEN), made once by
// TestMain.
var adminToken string

// raceEnv stops race-enabled binaries from sleeping a second at exit.
const raceEnv = "GORACE=atexit_sleep_ms=0 halt_on_error=1"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if adminToken, err = auth.NewToken(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ferryBin = filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-race", "-o", ferryBin, "github.com/ferry-dev/ferry/cmd/ferry")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ferry:", err)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// backend is the store a server runs on.
type backend string

const (
	sqliteStore   backend = "sqlite"
	postgresStore backend = "postgres"
)

// eachStore runs a test once on each store.
func eachStore(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range []backend{sqliteStore, postgresStore} {
		t.Run(string(b), func(t *testing.T) { test(t, b) })
	}
}

// server is a ferry server process.
type server struct {
	t      *testing.T
	db     string // PostgreSQL DSN; empty for SQLite
	data   string
	work   string
	addr   string
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{}
	args   []string
	// token is the API token CLI calls and API requests send; empty means
	// adminToken.
	token string
}

// apiToken returns the token s's clients send.
func (s *server) apiToken() string {
	if s.token != "" {
		return s.token
	}
	return adminToken
}

// as returns a view of s whose CLI calls and API requests send token.
func (s *server) as(token string) *server {
	c := *s
	c.token = token
	return &c
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer starts `ferry server` on a new data directory, or a new
// PostgreSQL database.
func startServer(t *testing.T, b backend, extraArgs ...string) *server {
	t.Helper()
	s := &server{t: t, data: filepath.Join(t.TempDir(), "data"), work: t.TempDir(), args: extraArgs}
	if b == postgresStore {
		s.db = pgtest.Shared(t).CreateDatabase(t, "e2e")
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start (re)starts the server process on its data directory.
func (s *server) start() {
	s.t.Helper()
	s.addr = freePort(s.t)
	args := append([]string{"server", "--data", s.data, "--listen", s.addr, "--log-level", "debug"}, s.args...)
	if s.db != "" {
		args = append(args, "--db", s.db)
	}
	s.cmd = exec.Command(ferryBin, args...)
	s.cmd.Env = append(os.Environ(), "WORK="+s.work, "DEPLOY_TOKEN=tok-3f9a1c", "FERRY_ADMIN_TOKEN="+adminToken, raceEnv)
	s.logs = &syncBuffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-s.exited:
			s.t.Fatalf("server exited at start:\n%s", s.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("server not healthy after 20s:\n%s", s.logs.String())
		}
	}
}

// kill9 kills the server process with SIGKILL, as a crash would.
func (s *server) kill9() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// term sends SIGTERM and waits for a graceful exit.
func (s *server) term() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		s.t.Fatalf("server did not stop within 60s of SIGTERM:\n%s", s.logs.String())
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Fatalf("server exited %d after SIGTERM:\n%s", code, s.logs.String())
	}
}

func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	if s.t.Failed() {
		s.t.Logf("server log:\n%s", s.logs.String())
	}
}

// result is the outcome of one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// ferry runs the CLI against the server.
func (s *server) ferry(args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, args...)
	cmd.Env = append(os.Environ(), "FERRY_SERVER=http://"+s.addr, "FERRY_ACTOR=e2e-user", "FERRY_TOKEN="+s.apiToken(), raceEnv)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			s.t.Fatalf("ferry %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// must runs the CLI and fails the test unless it exits 0.
func (s *server) must(args ...string) string {
	s.t.Helper()
	r := s.ferry(args...)
	if r.code != 0 {
		s.t.Fatalf("ferry %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// writeFile writes a file into the server's work directory and returns its path.
func (s *server) writeFile(name, content string) string {
	s.t.Helper()
	p := filepath.Join(s.work, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// promotion returns a promotion as `ferry promotion show -o json` prints it.
func (s *server) promotion(id string) view.Promotion {
	s.t.Helper()
	var p view.Promotion
	out := s.must("promotion", "show", id, "-o", "json")
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		s.t.Fatalf("decode promotion: %v\n%s", err, out)
	}
	return p
}

// promotions lists promotions as JSON.
func (s *server) promotions(args ...string) []view.Promotion {
	s.t.Helper()
	var ps []view.Promotion
	out := s.must(append([]string{"promotions", "-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		s.t.Fatalf("decode promotions: %v\n%s", err, out)
	}
	return ps
}

// waitEnded waits until a promotion has ended and returns it.
func (s *server) waitEnded(id string) view.Promotion {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p := s.promotion(id)
		if p.State.Terminal() {
			return p
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("promotion %s still %s after 60s: %s", id, p.State, p.Message)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFile waits for a file in the work directory to exist.
func (s *server) waitFile(name string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(s.work, name)); err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s never appeared; server log:\n%s", name, s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) readWork(name string) string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.work, name))
	if err != nil && !os.IsNotExist(err) {
		s.t.Fatal(err)
	}
	return string(b)
}

// post sends a JSON POST to the API.
func (s *server) post(path string, body any, header map[string]string) (int, []byte) {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+path, r)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.apiToken())
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// digest returns a well-formed sha256 digest derived from s.
func digest(s string) string {
	h := fmt.Sprintf("%x", []byte(s))
	for len(h) < 64 {
		h += "0"
	}
	return "sha256:" + h[:64]
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
