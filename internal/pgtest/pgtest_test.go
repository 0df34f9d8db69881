package pgtest_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-dev/ferry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// query returns the single text value that sql yields on database dsn.
func query(t *testing.T, dsn, sql string) string {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestShared(t *testing.T) {
	srv := pgtest.Shared(t)
	if again := pgtest.Shared(t); again != srv {
		t.Fatalf("Shared started a second server")
	}
	a := srv.CreateDatabase(t, "TestShared/one")
	b := srv.CreateDatabase(t, "TestShared/one")
	if a == b {
		t.Fatalf("two databases with one DSN %s", a)
	}
	for _, dsn := range []string{a, b} {
		name := query(t, dsn, "SELECT current_database()")
		if want := "t_testshared_one_"; len(name) <= len(want) || name[:len(want)] != want {
			t.Errorf("database name %q, want %s and a number", name, want)
		}
		if got := query(t, dsn, "SHOW fsync"); got != "on" {
			t.Errorf("fsync = %s, want on", got)
		}
		if got := query(t, dsn, "SELECT count(*)::text FROM pg_tables WHERE schemaname = 'public'"); got != "0" {
			t.Errorf("new database has %s tables", got)
		}
	}
}

func TestStopStart(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.CreateDatabase(t, t.Name())
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	if err := conn.Ping(ctx); err == nil {
		t.Fatalf("ping of a stopped server succeeded")
	}
	if _, err := pgx.Connect(ctx, dsn); err == nil {
		t.Fatalf("connected to a stopped server")
	}
	srv.Start(t)
	if got := query(t, dsn, "SELECT v::text FROM kept"); got != "42" {
		t.Errorf("after a restart: %s, want 42", got)
	}
}
