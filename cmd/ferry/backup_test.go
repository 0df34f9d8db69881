package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
	"github.com/ferry-dev/ferry/internal/view"
)

const backupTestPipeline = `name: shop
environments:
  - name: dev
    steps:
      - name: deploy
        exec:
          run: "true"
`

// runServer runs `ferry server` on dataDir, listening on a free loopback
// port, and points the CLI at it. The returned function stops it and waits
// for it to exit; it is also called when the test ends.
func runServer(t *testing.T, dataDir string) (stop func()) {
	t.Helper()
	t.Setenv("FERRY_DB", "")
	token, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_ADMIN_TOKEN", token)
	t.Setenv("FERRY_TOKEN", token)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() {
		done <- run(ctx, []string{"server", "--data", dataDir, "--listen", "127.0.0.1:0", "--log-level", "warn"},
			strings.NewReader(""), pw, &stderr)
		pw.Close()
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("ferry server exited with %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("ferry server did not stop within 30s")
		}
	}
	t.Cleanup(stop)
	select {
	case line := <-lines:
		_, rest, ok := strings.Cut(line, "listening on ")
		u, _, _ := strings.Cut(rest, " ")
		if !ok || u == "" {
			t.Fatalf("server printed %q", line)
		}
		t.Setenv("FERRY_SERVER", u)
	case code := <-done:
		t.Fatalf("ferry server exited with %d: %s", code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("ferry server did not start within 30s")
	}
	return stop
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mustRun runs the command line and fails the test unless it exits with 0.
func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLI(t, stdin, args...)
	if code != 0 {
		t.Fatalf("ferry %s: exit code %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// openTestStore opens the SQLite store at path, closed when the test ends.
func openTestStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// newStoreDir returns a data directory holding a new, empty store.
func newStoreDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// expectFailure runs the command line, which must exit with code and print
// each of wants on standard error.
func expectFailure(t *testing.T, code int, wants []string, args ...string) {
	t.Helper()
	got, _, stderr := runCLI(t, "", args...)
	if got != code {
		t.Errorf("ferry %s: exit code = %d, want %d; stderr: %s", strings.Join(args, " "), got, code, stderr)
	}
	for _, w := range wants {
		if !strings.Contains(stderr, w) {
			t.Errorf("ferry %s: stderr %q does not contain %q", strings.Join(args, " "), stderr, w)
		}
	}
}

// TestBackupOfARunningServerRestores backs up the store of a running server
// holding a pipeline, a release and a finished promotion, restores the
// backup into a new data directory, and finds the same data there.
func TestBackupOfARunningServerRestores(t *testing.T) {
	dataDir := t.TempDir()
	stop := runServer(t, dataDir)
	mustRun(t, backupTestPipeline, "apply", "-f", "-")
	mustRun(t, "", "release", "create", "--pipeline", "shop", "--version", "1.0.0",
		"--artifact", "api=registry.example/shop/api@sha256:"+strings.Repeat("4f", 32), "--label", "team=payments")
	mustRun(t, "", "promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "dev", "--reason", "first", "--wait")
	var before []view.Promotion
	if err := json.Unmarshal([]byte(mustRun(t, "", "promotions", "-o", "json")), &before); err != nil {
		t.Fatal(err)
	}
	var events []audit.Event
	if err := json.Unmarshal([]byte(mustRun(t, "", "audit", "-o", "json", "--limit", "1000")), &events); err != nil {
		t.Fatal(err)
	}
	if len(before) != 1 || before[0].State != promotion.Succeeded || len(events) == 0 {
		t.Fatalf("promotions %+v, %d audit events", before, len(events))
	}

	backupFile := filepath.Join(t.TempDir(), "ferry-backup.db")
	out := mustRun(t, "", "backup", "--data", dataDir, "--to", backupFile)
	if !strings.HasPrefix(out, "backed up "+filepath.Join(dataDir, dbFile)+" to "+backupFile+" (") {
		t.Errorf("backup printed %q", out)
	}
	fi, err := os.Stat(backupFile)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("backup file: %v", err)
	}

	// While the server runs, the data directory is not to be restored or migrated.
	expectFailure(t, 1, []string{"in use by another ferry server", filepath.Join(dataDir, "ferry.lock")},
		"restore", "--from", backupFile, "--data", dataDir, "--force")
	expectFailure(t, 1, []string{"in use by another ferry server", filepath.Join(dataDir, "ferry.lock")},
		"migrate", "--data", dataDir)
	// The server still works.
	mustRun(t, "", "status", "--pipeline", "shop")
	stop()

	restored := filepath.Join(t.TempDir(), "restored")
	out = mustRun(t, "", "restore", "--from", backupFile, "--data", restored)
	if !strings.HasPrefix(out, "restored "+filepath.Join(restored, dbFile)+" from "+backupFile) {
		t.Errorf("restore printed %q", out)
	}

	st := openTestStore(t, filepath.Join(restored, dbFile))
	err = st.View(t.Context(), func(tx store.Tx) error {
		revs, err := tx.Pipelines(t.Context())
		if err != nil {
			return err
		}
		if len(revs) != 1 || revs[0].Pipeline != "shop" || revs[0].Number != 1 || string(revs[0].Source) != backupTestPipeline {
			t.Errorf("pipelines = %+v", revs)
		}
		r, err := tx.Release(t.Context(), "shop", "1.0.0")
		if err != nil {
			return err
		}
		if len(r.Artifacts) != 1 || r.Artifacts[0].Digest != "sha256:"+strings.Repeat("4f", 32) || r.Labels["team"] != "payments" {
			t.Errorf("release = %+v", r)
		}
		ps, err := tx.Promotions(t.Context(), store.PromotionFilter{Pipeline: "shop"})
		if err != nil {
			return err
		}
		if len(ps) != 1 || ps[0].ID != before[0].ID || ps[0].State != promotion.Succeeded || ps[0].Reason != "first" {
			t.Errorf("promotions = %+v, want %s succeeded", ps, before[0].ID)
		}
		got, err := tx.AuditEvents(t.Context(), store.AuditFilter{})
		if err != nil {
			return err
		}
		if len(got) != len(events) || got[len(got)-1].Hash != events[len(events)-1].Hash {
			t.Errorf("%d audit events, want %d with the same last hash", len(got), len(events))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBackupRefusesAnExistingTarget(t *testing.T) {
	dataDir := newStoreDir(t)
	target := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(target, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	expectFailure(t, 1, []string{target, "already exists"}, "backup", "--data", dataDir, "--to", target)
	if b, _ := os.ReadFile(target); string(b) != "keep me" {
		t.Errorf("the existing file was changed: %q", b)
	}
}

func TestBackupRefusesADataDirectoryWithoutStore(t *testing.T) {
	dataDir := t.TempDir()
	target := filepath.Join(t.TempDir(), "backup.db")
	expectFailure(t, 1, []string{"no Ferry store at " + filepath.Join(dataDir, dbFile)}, "backup", "--data", dataDir, "--to", target)
	for _, p := range []string{filepath.Join(dataDir, dbFile), target} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was created", p)
		}
	}
}

func TestBackupDoesNotMigrateAnOlderStore(t *testing.T) {
	dataDir := newStoreDir(t)
	path := filepath.Join(dataDir, dbFile)
	execSQL(t, path, "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
	have, err := schemaVersion(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	expectFailure(t, 1, []string{"older than this ferry's", "would migrate it"},
		"backup", "--data", dataDir, "--to", filepath.Join(t.TempDir(), "backup.db"))
	if after, _ := schemaVersion(t.Context(), path); after != have {
		t.Errorf("schema version changed from %d to %d", have, after)
	}
}

// execSQL runs statements on the SQLite database at path, creating it if needed.
func execSQL(t *testing.T, path string, statements ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range statements {
		if _, err := db.ExecContext(t.Context(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestRestoreRefusedWhileTheLockIsHeld(t *testing.T) {
	backupFile := filepath.Join(newStoreDir(t), dbFile)
	dataDir := t.TempDir()
	lock, err := lockDataDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	expectFailure(t, 1, []string{"in use by another ferry server", filepath.Join(dataDir, "ferry.lock")},
		"restore", "--from", backupFile, "--data", dataDir)
	if _, err := os.Stat(filepath.Join(dataDir, dbFile)); err == nil {
		t.Errorf("ferry.db was written while the lock was held")
	}
	unlockDataDir(lock)
	mustRun(t, "", "restore", "--from", backupFile, "--data", dataDir)
}

func TestRestoreRefusesWhatIsNotAFerryStore(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("this is not a database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.db")
	execSQL(t, other, "CREATE TABLE customers (id INTEGER PRIMARY KEY)")
	dataDir := filepath.Join(t.TempDir(), "data")
	expectFailure(t, 1, []string{text, "is not a SQLite database"}, "restore", "--from", text, "--data", dataDir)
	expectFailure(t, 1, []string{empty, "is not a SQLite database"}, "restore", "--from", empty, "--data", dataDir)
	expectFailure(t, 1, []string{other, "not a Ferry store"}, "restore", "--from", other, "--data", dataDir)
	expectFailure(t, 1, []string{"no such file"}, "restore", "--from", filepath.Join(dir, "missing.db"), "--data", dataDir)
	if _, err := os.Stat(dataDir); err == nil {
		t.Errorf("the data directory was created for a file that is not a Ferry store")
	}
	// The file checked was a copy: the other database is as it was.
	if v, err := schemaVersion(t.Context(), other); err != nil || v != 0 {
		t.Errorf("the other database was changed: schema version %d, %v", v, err)
	}
}

func TestRestoreReplacesOnlyWithForce(t *testing.T) {
	// The backup holds a pipeline; the data directory's store does not.
	src := newStoreDir(t)
	execSQL(t, filepath.Join(src, dbFile), "CREATE TABLE marker (x INTEGER)")
	backupFile := filepath.Join(t.TempDir(), "backup.db")
	mustRun(t, "", "backup", "--data", src, "--to", backupFile)

	dataDir := newStoreDir(t)
	dst := filepath.Join(dataDir, dbFile)
	expectFailure(t, 1, []string{dst + " exists", "--force"}, "restore", "--from", backupFile, "--data", dataDir)
	for _, stale := range []string{dst + "-wal", dst + "-shm"} {
		if err := os.WriteFile(stale, []byte("stale"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := mustRun(t, "", "restore", "--from", backupFile, "--data", dataDir, "--force")
	for _, want := range []string{"replaced the previous ferry.db", "removed the previous store's ferry.db-wal, ferry.db-shm"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore printed %q, want %q", out, want)
		}
	}
	entries, _ := os.ReadDir(dataDir)
	for _, e := range entries {
		if e.Name() != dbFile && e.Name() != lockFile {
			t.Errorf("left in the data directory: %s", e.Name())
		}
	}
	execSQL(t, dst, "SELECT count(*) FROM marker")
	openTestStore(t, dst)
}

func TestRestoreJSON(t *testing.T) {
	backupFile := filepath.Join(newStoreDir(t), dbFile)
	dataDir := t.TempDir()
	var res restoreResult
	if err := json.Unmarshal([]byte(mustRun(t, "", "restore", "--from", backupFile, "--data", dataDir, "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Store != filepath.Join(dataDir, dbFile) || res.SchemaVersion < 1 || res.Bytes == 0 || res.Replaced {
		t.Errorf("result = %+v", res)
	}
}

func TestMigrate(t *testing.T) {
	t.Setenv("FERRY_DB", "")
	dataDir := filepath.Join(t.TempDir(), "data")
	out := mustRun(t, "", "migrate", "--data", dataDir)
	if !strings.HasPrefix(out, "created "+filepath.Join(dataDir, dbFile)+" at schema version ") ||
		!strings.Contains(out, "0001_init.sql") {
		t.Errorf("first migrate printed:\n%s", out)
	}
	var res migrateResult
	if err := json.Unmarshal([]byte(mustRun(t, "", "migrate", "--data", dataDir, "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Created || res.Version < 1 || res.PreviousVersion != res.Version || len(res.Migrations) == 0 ||
		res.Migrations[len(res.Migrations)-1].Version != res.Version || res.Migrations[0].AppliedAt.IsZero() {
		t.Errorf("second migrate: %+v", res)
	}
	if out := mustRun(t, "", "migrate", "--data", dataDir); !strings.Contains(out, "is up to date at schema version") {
		t.Errorf("third migrate printed:\n%s", out)
	}

	// A store at schema version 1 is brought up to date.
	older := filepath.Join(t.TempDir(), "older")
	if err := os.Mkdir(older, 0o700); err != nil {
		t.Fatal(err)
	}
	initSQL, err := os.ReadFile("../../internal/store/sqlite/migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(older, dbFile)
	execSQL(t, path, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`,
		string(initSQL), `INSERT INTO schema_migrations VALUES (1, '0001_init.sql', '2025-01-31T09:00:00.000000000Z')`)
	latest, err := latestSchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "", "migrate", "--data", older)
	if want := fmt.Sprintf("migrated %s from schema version 1 to %d\n", path, latest); !strings.HasPrefix(out, want) {
		t.Errorf("migrate of an older store printed:\n%s\nwant it to start with %q", out, want)
	}
	if !strings.Contains(out, "2025-01-31T09:00:00Z") {
		t.Errorf("migrate did not print when 0001 was applied:\n%s", out)
	}
}

func TestReadSchemaDoesNotCreateTheStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), dbFile)
	if _, err := readSchema(t.Context(), path); err == nil {
		t.Errorf("readSchema of a missing file: no error")
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("readSchema created %s", path)
	}
}

func TestMigrateDBNamesAnUnreachableDatabase(t *testing.T) {
	// A closed port on loopback: the command must fail with the connection error, not hang.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dsn := "postgres://ferry@" + addr + "/ferry?connect_timeout=2"
	t.Setenv("FERRY_DB", "")
	expectFailure(t, 1, []string{"migrate", addr}, "migrate", "--db", dsn)
	t.Setenv("FERRY_DB", dsn)
	expectFailure(t, 1, []string{"migrate", addr}, "migrate")
}

func TestStoreCommandUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"backup"},
		{"restore"},
		{"backup", "--to", "x.db", "extra"},
		{"cluster", "extra"},
		{"migrate", "--bogus"},
	} {
		code, _, stderr := runCLI(t, "", args...)
		if code != 2 || !strings.Contains(stderr, "--help' for usage") {
			t.Errorf("ferry %s: exit code = %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
	}
}
