// Package sqlite implements store.Store on an SQLite database file, using the
// pure-Go driver modernc.org/sqlite.
//
// The database runs in WAL mode with synchronous=FULL, so a committed Update
// survives a crash or power loss. All Update transactions run, one at a time,
// on a single write connection that begins with BEGIN IMMEDIATE: they are
// serializable by construction and never fail on a lock held by another
// writer of the same Store. View transactions run on a separate pool of
// read-only connections and read a consistent snapshot while writes proceed.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ferry-dev/ferry/internal/store"
)

// busyTimeout is how long a connection waits for a lock held by another
// process (another Ferry on the same file, a backup tool) before failing.
const busyTimeout = 10 * time.Second

// minReaders is the smallest number of read connections in the View pool.
const minReaders = 4

var _ store.Store = (*Store)(nil)

// errReadOnly is returned by the write methods of a View transaction.
var errReadOnly = errors.New("write in a read-only transaction")

// Store is a store.Store on one SQLite database file. It is safe for
// concurrent use. Update must not be called from inside another Update's
// function: there is one write connection, and the inner call would wait for
// the outer one forever.
type Store struct {
	path string
	// w is the single write connection; r is the read-only pool.
	w *sql.DB
	r *sql.DB
	// now returns the current time; it stamps revisions stored without one.
	now func() time.Time
	// ws and rs cache prepared statements of w and r.
	ws, rs *stmtCache
	// upTo, when above 0, is the last migration Migrate applies (for tests
	// of upgrades).
	upTo int
	// checkpoints configures the checkpoints AppendAudit signs.
	checkpoints store.Checkpoints
}

// Option configures a Store.
type Option func(*Store)

// WithCheckpoints makes the store sign checkpoints of the audit chain as it
// appends events (see store.Checkpoints). By default it signs none.
func WithCheckpoints(c store.Checkpoints) Option {
	return func(s *Store) { s.checkpoints = c }
}

// stmtCache holds the statements prepared on one *sql.DB, by query text.
// A statement is never prepared on the database while a transaction holds
// a connection (with one write connection that would wait forever): a query
// first seen inside a transaction is prepared on that transaction only, and
// noted; warm prepares the noted queries before the next transaction begins.
// The set of queries is fixed by the code, so the cache is bounded.
type stmtCache struct {
	db      *sql.DB
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

// get returns the cached statement for query, or nil after noting it.
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.stmts[query]
	if !ok {
		c.pending[query] = true
	}
	return s
}

// warm prepares the queries noted since the last call. Call it while holding
// no connection of the database.
func (c *stmtCache) warm(ctx context.Context) {
	c.mu.Lock()
	var queries []string
	for q := range c.pending {
		queries = append(queries, q)
		delete(c.pending, q)
	}
	c.mu.Unlock()
	for _, q := range queries {
		s, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue // the query runs unprepared and reports its own error
		}
		c.mu.Lock()
		if _, ok := c.stmts[q]; ok {
			s.Close()
		} else {
			c.stmts[q] = s
		}
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, s := range c.stmts {
		s.Close()
		delete(c.stmts, q)
	}
}

// Open opens the SQLite database at path, creating the file if needed, and
// applies the migrations it lacks. path must name a file: an in-memory
// database cannot be shared by the write connection and the read pool.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite store: path %q must be a file path", path)
	}
	w, err := sql.Open("sqlite", dsn(path, writeConn))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	s := &Store{path: path, w: w, ws: newStmtCache(w), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if err := s.checkJournalMode(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}

	// The read pool is opened after the migrations, so that its connections
	// find the file in WAL mode with the current schema.
	r, err := sql.Open("sqlite", dsn(path, readConn))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	n := max(minReaders, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(5 * time.Minute)
	s.r, s.rs = r, newStmtCache(r)
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return s, nil
}

// connKind selects the settings of a connection.
type connKind int

const (
	writeConn  connKind = iota // the write connection: BEGIN IMMEDIATE
	readConn                   // a View connection: refuses writes
	backupConn                 // a connection that runs VACUUM INTO
)

// dsn returns the modernc.org/sqlite data source name of a connection of the
// given kind to path.
func dsn(path string, kind connKind) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	switch kind {
	case writeConn:
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	case readConn:
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// checkJournalMode makes sure the database accepted WAL mode; some file
// systems (network shares) do not support it.
func (s *Store) checkJournalMode(ctx context.Context) error {
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("open sqlite store %s: %w", s.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("open sqlite store %s: journal mode is %q, want wal (is the file on a local file system?)", s.path, mode)
	}
	return nil
}

// Update runs fn in a read-write transaction on the write connection,
// committing when fn returns nil and rolling back otherwise (also when fn
// panics; the panic then continues). fn's error is returned as is.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.update(ctx, func(t *sql.Tx) error {
		return fn(&tx{tx: t, stmts: s.ws, now: s.now, checkpoints: &s.checkpoints})
	})
}

func (s *Store) update(ctx context.Context, fn func(*sql.Tx) error) error {
	s.ws.warm(ctx)
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = t.Rollback()
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	done = true
	if err := t.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// View runs fn in a read-only transaction on a snapshot of the database; it
// does not wait for Update transactions, and does not see their uncommitted
// writes. The write methods of its Tx fail.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	s.rs.warm(ctx)
	t, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read transaction: %w", err)
	}
	defer func() { _ = t.Rollback() }()
	return fn(&tx{tx: t, stmts: s.rs, now: s.now, readOnly: true})
}

// BenchCommit durably commits one minimal write: it rewrites the single row
// of the bench_commits table, so that the table does not grow.
func (s *Store) BenchCommit(ctx context.Context) error {
	return s.update(ctx, func(t *sql.Tx) error {
		_, err := t.ExecContext(ctx, `INSERT INTO bench_commits (id, count, at) VALUES (1, 1, ?)
			ON CONFLICT (id) DO UPDATE SET count = count + 1, at = excluded.at`, encTime(s.now()))
		if err != nil {
			return fmt.Errorf("bench commit: %w", err)
		}
		return nil
	})
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping sqlite store %s: %w", s.path, err)
	}
	return nil
}

// Close closes the read pool and the write connection. The last connection
// to close checkpoints the write-ahead log into the database file.
func (s *Store) Close() error {
	var errs []error
	if s.rs != nil {
		s.rs.close()
	}
	s.ws.close()
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite store %s: %w", s.path, err)
	}
	return nil
}

// Backup writes a consistent copy of the database to dst, a path that must
// not exist yet, while the store stays online: writers are not blocked. The
// copy is written with VACUUM INTO to a temporary file next to dst, synced,
// and renamed into place, so dst is either absent or complete.
func (s *Store) Backup(ctx context.Context, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("backup to %s: file exists", dst)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backup to %s: %w", dst, err)
	}
	dir := filepath.Dir(dst)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp*")
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dst, err)
	}
	tmp := f.Name()
	f.Close()
	// VACUUM INTO accepts an existing file only if it is empty, which it is.
	defer os.Remove(tmp)

	// VACUUM INTO writes to its target, which the query-only read connections
	// refuse, so the copy is made on a connection of its own. It reads the
	// database in a read transaction and does not block the writer.
	db, err := sql.Open("sqlite", dsn(s.path, backupConn))
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dst, err)
	}
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", tmp)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup to %s: vacuum into: %w", dst, err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("backup to %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("backup to %s: %w", dst, err)
	}
	if err := syncFile(dir); err != nil {
		return fmt.Errorf("backup to %s: %w", dst, err)
	}
	return nil
}

// syncFile flushes a file or directory to stable storage.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// sqliteCode returns the extended result code of an SQLite error, or 0.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// isUnique reports whether err is a violation of a unique or primary key.
func isUnique(err error) bool {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// isForeignKey reports whether err is a violation of a foreign key.
func isForeignKey(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
