package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
	"github.com/ferry-dev/ferry/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// open opens a store at path and closes it when t ends.
func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "ferry.db"))
	})
}

var when = time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)

func testRelease(id, version string) *release.Release {
	return &release.Release{
		ID: id, Pipeline: "shop", Version: version, CreatedAt: when,
		Artifacts: []release.Artifact{{Name: "api", URI: "registry.example.com/api", Digest: "sha256:" + strings.Repeat("a", 64)}},
	}
}

func testEvent(action string) *audit.Event {
	return &audit.Event{Time: when, Actor: "alice", Action: action, Subject: "pipeline/shop"}
}

// fill writes a release and an audit event.
func fill(t *testing.T, s store.Store, id string) {
	t.Helper()
	ctx := t.Context()
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertRelease(ctx, testRelease(id, "v-"+id)); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, testEvent("release.create"))
	})
	if err != nil {
		t.Fatalf("fill: %v", err)
	}
}

// check verifies that s holds the releases with the given IDs and one audit
// event for each.
func check(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	ctx := t.Context()
	err := s.View(ctx, func(tx store.Tx) error {
		for _, id := range ids {
			r, err := tx.ReleaseByID(ctx, id)
			if err != nil {
				return err
			}
			if !r.CreatedAt.Equal(when) || r.Version != "v-"+id {
				t.Errorf("release %s: %+v", id, r)
			}
		}
		events, err := tx.AuditEvents(ctx, store.AuditFilter{})
		if err != nil {
			return err
		}
		if len(events) != len(ids) {
			t.Errorf("%d audit events, want %d", len(events), len(ids))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ferry.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, "r1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening applies no migration twice and keeps the data.
	s = open(t, path)
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate again: %v", err)
	}
	check(t, s, "r1")
	fill(t, s, "r2")
	check(t, s, "r1", "r2")

	db := rawDB(t, path)
	var n, applied int
	if err := db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&n, &applied); err != nil {
		t.Fatal(err)
	}
	if n == 0 || n != applied {
		t.Errorf("schema_migrations has %d rows for %d versions", n, applied)
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal mode %q, want wal", mode)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	open(t, path)
	db := rawDB(t, path)
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', '')`); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(t.Context(), path)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("opening a database from a newer version: error %v, want one saying it is newer", err)
	}
}

// rawDB opens path directly, bypassing the store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestAuditIsAppendOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	s := open(t, path)
	fill(t, s, "r1")
	db := rawDB(t, path)
	for _, q := range []string{
		`UPDATE audit_events SET actor = 'mallory'`,
		`DELETE FROM audit_events`,
	} {
		_, err := db.Exec(q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: error %v, want the append-only trigger to refuse", q, err)
		}
	}
	check(t, s, "r1")
}

func TestStepRunNeedsPromotion(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "ferry.db"))
	ctx := t.Context()
	err := s.Update(ctx, func(tx store.Tx) error {
		return tx.InsertStepRun(ctx, &promotion.StepRun{PromotionID: "nope", Phase: promotion.PhaseDeploy, Attempt: 1, StartedAt: when})
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("step run of an unknown promotion: error %v, want %v", err, store.ErrNotFound)
	}
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "ferry.db"))
	fill(t, s, "r1")
	fill(t, s, "r2")
	ctx := t.Context()

	// A write in progress is not in the backup, and does not block it.
	inUpdate := make(chan struct{})
	proceed := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, func(tx store.Tx) error {
			if err := tx.InsertRelease(ctx, testRelease("r3", "v-r3")); err != nil {
				return err
			}
			close(inUpdate)
			<-proceed
			return nil
		})
	}()
	<-inUpdate
	dst := filepath.Join(dir, "backup", "ferry-backup.db")
	if err := os.Mkdir(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	err := s.Backup(ctx, dst)
	close(proceed)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Backup(ctx, dst); err == nil {
		t.Errorf("a backup over an existing file succeeded")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*")); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	b := open(t, dst)
	check(t, b, "r1", "r2")
	err = b.View(ctx, func(tx store.Tx) error {
		_, err := tx.ReleaseByID(ctx, "r3")
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("release committed after the backup started: error %v, want %v", err, store.ErrNotFound)
	}
	// The backup is a working store.
	fill(t, b, "r4")
}

func TestOpenRefusesMemory(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file::memory:?cache=shared"} {
		if s, err := sqlite.Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func TestPathWithSpecialCharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?#%", "ferry db.sqlite")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s := open(t, path)
	fill(t, s, "r1")
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at its path: %v", err)
	}
}

func BenchmarkCommit(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "ferry.db"))
	ctx := context.Background()
	for b.Loop() {
		if err := s.BenchCommit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}
