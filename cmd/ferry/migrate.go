package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to read a store's schema state

	"github.com/jackc/pgx/v5"

	"github.com/ferry-dev/ferry/internal/store/postgres"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
)

// schemaMigration is one migration recorded in a store.
type schemaMigration struct {
	Version   int       `json:"version"`
	Name      string    `json:"name"`
	AppliedAt time.Time `json:"appliedAt"`
}

// migrateResult is what ferry migrate prints.
type migrateResult struct {
	Store string `json:"store"`
	// Created is true when the store did not exist before.
	Created         bool              `json:"created"`
	PreviousVersion int               `json:"previousVersion"`
	Version         int               `json:"version"`
	Migrations      []schemaMigration `json:"migrations"`
}

func newMigrateCommand(g *globals, getenv func(string) string) *cobra.Command {
	var dataDir, db string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the store's schema migrations without starting a server",
		Long: `Apply the schema migrations the store lacks, then print its schema state:
each migration with the time it was applied. A server migrates its store when
it starts; run this to make the upgrade a step of its own, before starting a
new version. A store migrated by a newer Ferry is refused rather than misread.

On SQLite (--data) it creates the store if there is none, and refuses while a
server runs on the data directory. With --db (env FERRY_DB) it migrates the
PostgreSQL store at that URL instead, and --data is not used.`,
		Example: `  ferry migrate --data /var/lib/ferry`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db != "" {
				return migratePostgres(cmd.Context(), g, db)
			}
			res, err := migrateSQLite(cmd.Context(), dataDir)
			if err != nil {
				return err
			}
			return g.print(res, func(w io.Writer) error { return migrateTable(w, res) })
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir, "data directory holding the SQLite store (ferry.db)")
	cmd.Flags().StringVar(&db, "db", getenv("FERRY_DB"), "PostgreSQL URL of the store to migrate (env FERRY_DB); default: SQLite in --data")
	return cmd
}

// migratePostgres migrates the PostgreSQL store at dsn and prints its schema
// state. Replicas running on the database at the same time are safe: the
// store migrates under an advisory lock.
func migratePostgres(ctx context.Context, g *globals, dsn string) error {
	res := &migrateResult{Store: "postgres " + redactDSN(dsn)}
	read := func(st *postgres.Store) ([]schemaMigration, error) {
		rows, err := st.Pool().Query(ctx, `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
		if err != nil {
			return nil, fmt.Errorf("migrate: read schema: %w", err)
		}
		defer rows.Close()
		var out []schemaMigration
		for rows.Next() {
			var m schemaMigration
			var at string
			if err := rows.Scan(&m.Version, &m.Name, &at); err != nil {
				return nil, fmt.Errorf("migrate: read schema: %w", err)
			}
			m.AppliedAt, _ = time.Parse(time.RFC3339Nano, at)
			out = append(out, m)
		}
		return out, rows.Err()
	}
	before, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("migrate: connect to %s: %w", redactDSN(dsn), err)
	}
	var exists bool
	err = before.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists)
	if err == nil && exists {
		err = before.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&res.PreviousVersion)
	}
	before.Close(ctx)
	if err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	res.Created = !exists
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer st.Close()
	if res.Migrations, err = read(st); err != nil {
		return err
	}
	res.Version = lastVersion(res.Migrations)
	return g.print(res, func(w io.Writer) error { return migrateTable(w, res) })
}

// migrateSQLite applies the migrations the SQLite store of dataDir lacks,
// creating the store if needed, while holding the data directory's lock.
func migrateSQLite(ctx context.Context, dataDir string) (*migrateResult, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("migrate: create data directory: %w", err)
	}
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w: stop it first (it holds %s; a running server has applied its own migrations)",
			err, filepath.Join(dataDir, lockFile))
	}
	defer unlockDataDir(lock)

	path := filepath.Join(dataDir, dbFile)
	res := &migrateResult{Store: path}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		res.Created = true
	} else if res.PreviousVersion, err = schemaVersion(ctx, path); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if err := st.Close(); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if res.Migrations, err = readSchema(ctx, path); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	res.Version = lastVersion(res.Migrations)
	return res, nil
}

// migrateTable prints what ferry migrate did and the store's migrations.
func migrateTable(w io.Writer, res *migrateResult) error {
	switch {
	case res.Created:
		fmt.Fprintf(w, "created %s at schema version %d\n", res.Store, res.Version)
	case res.Version != res.PreviousVersion:
		fmt.Fprintf(w, "migrated %s from schema version %d to %d\n", res.Store, res.PreviousVersion, res.Version)
	default:
		fmt.Fprintf(w, "%s is up to date at schema version %d\n", res.Store, res.Version)
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	row(tw, "VERSION", "MIGRATION", "APPLIED")
	for _, m := range res.Migrations {
		row(tw, m.Version, m.Name, formatTime(m.AppliedAt))
	}
	return tw.Flush()
}

// readSchema returns the migrations recorded in the SQLite store at path, in
// version order, without changing the store; none when it has no
// schema_migrations table. It reads on a query-only connection of its own,
// which a server running on the store does not hinder.
func readSchema(ctx context.Context, path string) ([]schemaMigration, error) {
	q := url.Values{}
	q.Set("mode", "rw") // never create it
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("read schema of %s: %w", path, err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("read schema of %s: %w", path, err)
	}
	if n == 0 {
		return nil, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("read schema of %s: %w", path, err)
	}
	defer rows.Close()
	var out []schemaMigration
	for rows.Next() {
		var m schemaMigration
		var at string
		if err := rows.Scan(&m.Version, &m.Name, &at); err != nil {
			return nil, fmt.Errorf("read schema of %s: %w", path, err)
		}
		m.AppliedAt, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema of %s: %w", path, err)
	}
	return out, nil
}

// schemaVersion returns the schema version of the SQLite store at path: 0
// when no migration was ever applied to it.
func schemaVersion(ctx context.Context, path string) (int, error) {
	ms, err := readSchema(ctx, path)
	return lastVersion(ms), err
}

// latestSchemaVersion returns the schema version this binary migrates stores
// to, read from a scratch store.
func latestSchemaVersion(ctx context.Context) (int, error) {
	dir, err := os.MkdirTemp("", "ferry-schema-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, dbFile)
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return 0, err
	}
	if err := st.Close(); err != nil {
		return 0, err
	}
	return schemaVersion(ctx, path)
}

func lastVersion(ms []schemaMigration) int {
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// unlockDataDir releases a lock taken with lockDataDir.
func unlockDataDir(f *os.File) {
	// Closing the file releases its flock.
	_ = f.Close()
}
