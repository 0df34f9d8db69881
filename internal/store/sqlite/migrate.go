package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/store"
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

// goSteps are the parts of migrations written in Go, by version: each runs
// right after the SQL of its version, in the same transaction.
var goSteps = map[int]func(ctx context.Context, t *tx) error{
	5: sealAuditEvents,
}

// sealPage is how many events sealAuditEvents reads at a time.
const sealPage = 1000

// sealAuditEvents chains the audit events stored before the log became a
// hash chain, in seq order from the genesis, each keeping its seq, and moves
// the head to the last.
func sealAuditEvents(ctx context.Context, t *tx) error {
	head := audit.Genesis()
	for {
		events, err := t.AuditEvents(ctx, store.AuditFilter{AfterSeq: head.Seq, Limit: sealPage})
		if err != nil {
			return fmt.Errorf("seal audit events: %w", err)
		}
		for i := range events {
			e := &events[i]
			e.PrevHash = head.Hash
			if e.Hash, err = audit.ComputeHash(e); err != nil {
				return fmt.Errorf("seal audit event %d: %w", e.Seq, err)
			}
			if _, err := t.exec(ctx, `UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?`, e.PrevHash, e.Hash, e.Seq); err != nil {
				return fmt.Errorf("seal audit event %d: %w", e.Seq, err)
			}
			head = audit.Head{Seq: e.Seq, Hash: e.Hash}
		}
		if len(events) < sealPage {
			break
		}
	}
	if _, err := t.exec(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, head.Seq, head.Hash); err != nil {
		return fmt.Errorf("seal audit events: move head: %w", err)
	}
	return nil
}

// Migrate applies, in one transaction, the migrations the database lacks,
// recording each in the schema_migrations table. It is idempotent, and
// refuses a database migrated by a newer Ferry.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return s.update(ctx, func(t *sql.Tx) error {
		if _, err := t.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TEXT NOT NULL
		) STRICT`); err != nil {
			return fmt.Errorf("migrate: create schema_migrations: %w", err)
		}
		var current int
		if err := t.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
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
			if m.version <= current || s.upTo > 0 && m.version > s.upTo {
				continue
			}
			if _, err := t.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migrate: apply %s: %w", m.name, err)
			}
			if step := goSteps[m.version]; step != nil {
				if err := step(ctx, &tx{tx: t, stmts: s.ws, now: s.now}); err != nil {
					return fmt.Errorf("migrate: apply %s: %w", m.name, err)
				}
			}
			if _, err := t.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, encTime(s.now())); err != nil {
				return fmt.Errorf("migrate: record %s: %w", m.name, err)
			}
		}
		return nil
	})
}
