package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrationFS holds the schema migrations, one file per version, named
// NNNN_title.sql and applied in the order of their numbers.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || path.Ext(name) != ".sql" {
			return nil, fmt.Errorf("migration file %s: want NNNN_title.sql", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migration files %s and %s have the same version", other, name)
		}
		seen[v] = name
		b, err := fs.ReadFile(migrationFS, "migrations/"+name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate applies, in one transaction, the migrations the database lacks,
// recording each in the schema_migrations table. It is idempotent, and
// refuses a database migrated by a newer Ferry. Replicas that start together
// may all call it: a transaction-scoped advisory lock makes them migrate one
// after the other, so the first applies the migrations and the others find
// nothing left to do.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(t pgx.Tx) error {
		// Each statement after the lock reads what the previous holder
		// committed: at READ COMMITTED every statement takes a new snapshot.
		if _, err := t.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("migrate")); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		if _, err := t.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at text NOT NULL
		)`); err != nil {
			return fmt.Errorf("migrate: create schema_migrations: %w", err)
		}
		var current int
		if err := t.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("migrate: read schema version: %w", err)
		}
		latest := 0
		if len(ms) > 0 {
			latest = ms[len(ms)-1].version
		}
		if current > latest {
			return fmt.Errorf("migrate: database schema version %d is newer than this binary's %d: use a newer Ferry", current, latest)
		}
		for _, m := range ms {
			if m.version <= current {
				continue
			}
			// The simple protocol runs a file of several statements at once.
			if _, err := t.Exec(ctx, m.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("migrate: apply %s: %w", m.name, err)
			}
			if _, err := t.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, encTime(s.now())); err != nil {
				return fmt.Errorf("migrate: record %s: %w", m.name, err)
			}
		}
		return nil
	})
}
