// Package pgtest runs real PostgreSQL servers for tests.
//
// A test binary usually shares one server between its tests, each test
// working in a database of its own:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.Shared(t).CreateDatabase(t, "something")
//		...
//	}
//
// A test that stops its server (to see how code copes with an outage) starts
// one of its own with Start.
//
// The server binaries (initdb, postgres) are looked up in the newest
// /usr/lib/postgresql/*/bin, then in PATH. When they are missing a test is
// skipped, or fails when the environment variable CI is true, naming the
// Debian package that provides them. PostgreSQL refuses to run as root: when
// tests run as root, the server runs as the postgres user.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-dev/ferry/internal/testproc"
)

// Package is the Debian package that provides the server binaries.
const Package = "postgresql-15"

// User is the database superuser of every server.
const User = "postgres"

const (
	// startTimeout bounds how long a server may take to accept connections.
	startTimeout = 60 * time.Second
	// stopTimeout bounds how long a server may take to exit after an
	// immediate shutdown before it is killed.
	stopTimeout = 10 * time.Second
	// maxConnections is the server's max_connections: room for many tests
	// each with a connection pool.
	maxConnections = 200
)

// Server is one running PostgreSQL server listening on 127.0.0.1, with its
// data in a temporary directory. Its methods are safe for concurrent use.
type Server struct {
	bin  string // directory of the server binaries
	dir  string // temporary directory: data/, the socket, the log
	port int
	cred *syscall.Credential // nil unless the server runs as another user
	dbs  atomic.Int64        // databases created, to make names unique

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of the postgres server program.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // cmd.Wait's result, set before done is closed
}

// Start starts a new server for tb and stops it, removing its data, when tb
// ends. It skips tb (fails it under CI) when PostgreSQL is not installed.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start()
	if err != nil {
		testproc.Unavailable(tb, "pgtest", err)
	}
	tb.Cleanup(func() {
		if err := s.close(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// errNotInstalled marks a machine without the server binaries, or without
// the user to run them as.
var errNotInstalled = fmt.Errorf("PostgreSQL is %w", testproc.ErrNotInstalled)

// start initializes a data directory and starts a server on it.
func start() (_ *Server, err error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("start postgres: %w", err)
		}
	}
	s := &Server{bin: bin, dir: dir, cred: cred}

	// The data directory is created without syncing it to disk: it is thrown
	// away with the test, and the server itself runs with fsync on.
	var out bytes.Buffer
	initdb := s.command("initdb", "-D", s.dataDir(), "-A", "trust", "-U", User,
		"-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	initdb.Stdout, initdb.Stderr = &out, &out
	if err := initdb.Run(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out.Bytes())
	}
	// Another process may take the free port before the server binds it:
	// then the server exits, and another port is tried.
	for try := 1; ; try++ {
		if s.port, err = testproc.FreePort(); err != nil {
			return nil, fmt.Errorf("start postgres: %w", err)
		}
		err = s.start()
		switch {
		case err == nil:
			return s, nil
		case !errors.Is(err, errAddrInUse) || try == 3:
			return nil, err
		}
		os.Remove(s.logPath())
	}
}

// errAddrInUse marks a server that exited because its port was taken.
var errAddrInUse = errors.New("address already in use")

// findBin returns the directory holding the newest PostgreSQL server
// binaries: the highest /usr/lib/postgresql/N/bin, or else the one in PATH.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		return -cmpFloat(version(a), version(b))
	})
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(initdb)
		if isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: initdb and postgres are in neither /usr/lib/postgresql/*/bin nor PATH; install the Debian package %s (apt-get install %s)",
		errNotInstalled, Package, Package)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// credential returns the credential of the user the server runs as: the
// postgres user when running as root, since the server refuses root; nil
// (the current user) otherwise.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(User)
	if err != nil {
		return nil, fmt.Errorf("%w: running as root, the server must run as the %s user, which does not exist (%v); the Debian package %s creates it",
			errNotInstalled, User, err, Package)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", User, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", User, u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *Server) logPath() string { return filepath.Join(s.dir, "postgres.log") }

// command returns a command running the named server binary as the server's user.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: s.cred,
		// If the test binary dies without stopping the server, the server
		// shuts down at once rather than outliving it.
		Pdeathsig: syscall.SIGQUIT,
	}
	return cmd
}

// start runs the server program and waits until it accepts connections.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("start postgres: already running")
	}
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	defer logFile.Close() // the server has its own descriptor
	cmd := s.command("postgres", "-D", s.dataDir(),
		"-p", strconv.Itoa(s.port),
		"-k", s.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=on",
		"-c", "max_connections="+strconv.Itoa(maxConnections),
		"-c", "timezone=UTC",
		"-c", "log_timezone=UTC",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			conn.Close(ctx)
			s.proc = p
			return nil
		}
		select {
		case <-p.done:
			log := s.logTail()
			if strings.Contains(log, "Address already in use") {
				err = errAddrInUse
			}
			return fmt.Errorf("start postgres: server exited (%v, %w); its log:\n%s", p.err, err, log)
		case <-ctx.Done():
			s.kill(p)
			return fmt.Errorf("start postgres: not accepting connections after %v (%v); its log:\n%s", startTimeout, err, s.logTail())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// logTail returns the end of the server's log.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return err.Error()
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// stop shuts the server down at once, as pg_ctl stop -m immediate does:
// clients are disconnected and the next start recovers from the WAL.
func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	if err := p.cmd.Process.Signal(syscall.SIGQUIT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop postgres: %w", err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
		s.kill(p)
		return fmt.Errorf("stop postgres: still running %v after an immediate shutdown; killed", stopTimeout)
	}
}

// kill ends the server without letting it shut down, and waits for it.
func (s *Server) kill(p *process) {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// close stops the server and removes its directory.
func (s *Server) close() error {
	err := s.stop()
	if rerr := os.RemoveAll(s.dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("remove %s: %w", s.dir, rerr))
	}
	return err
}

// Stop shuts the server down at once (an immediate shutdown, as after a
// crash), keeping its data, so that a test can see how code copes while the
// database is away. Start brings it back.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.stop(); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
}

// Start starts a stopped server again on the same port and data; it
// returns once the server accepts connections.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	if err := s.start(); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
}

// Port returns the TCP port the server listens on, on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// DSN returns the URL of database db on the server, as the superuser.
func (s *Server) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(User),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates a new, empty database and returns its DSN. The
// database's name is made of name (reduced to lower-case letters, digits
// and underscores; a test name will do) and a number that makes it unique
// on the server. The database is not dropped: it goes with the server.
func (s *Server) CreateDatabase(tb testing.TB, name string) string {
	tb.Helper()
	db := fmt.Sprintf("%s_%d", dbName(name), s.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		tb.Fatalf("pgtest: create database %s: %v", db, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", db, err)
	}
	return s.DSN(db)
}

// dbName turns name into a database name prefix: lower-case ASCII letters,
// digits and single underscores, starting with a letter, at most 40 bytes.
func dbName(name string) string {
	var b strings.Builder
	b.WriteString("t_")
	under := true
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			under = false
		case !under:
			b.WriteByte('_')
			under = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}

// shared is the server of the test binary, started by the first Shared call
// and stopped by Run once the tests are over.
var shared struct {
	mu      sync.Mutex
	inMain  bool // Run is running the tests
	started bool
	srv     *Server
	err     error
}

// Shared returns the test binary's server, starting it on first use. It is
// stopped, and its data removed, when the tests are over: the package must
// call Main (or Run) from its TestMain. It skips tb (fails it under CI) when
// PostgreSQL is not installed. Tests must not Stop the shared server.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		tb.Fatal("pgtest: Shared needs pgtest.Main or pgtest.Run in the package's TestMain, to stop the server when the tests end")
	}
	if !shared.started {
		shared.started = true
		shared.srv, shared.err = start()
	}
	if shared.err != nil {
		testproc.Unavailable(tb, "pgtest", shared.err)
	}
	return shared.srv
}

// Run runs the tests of m and then stops the shared server, if one was
// started; it returns m.Run's exit code, or 1 if the server could not be
// stopped cleanly. It is for a TestMain that does more than Main:
//
//	func TestMain(m *testing.M) {
//		code := pgtest.Run(m)
//		if code == 0 && goleak.Find() != nil { code = 1 }
//		os.Exit(code)
//	}
func Run(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.inMain = false
	if shared.srv != nil {
		if err := shared.srv.close(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		shared.srv = nil
	}
	return code
}

// Main runs the tests of m, stops the shared server and exits; call it from
// TestMain.
func Main(m *testing.M) {
	os.Exit(Run(m))
}
