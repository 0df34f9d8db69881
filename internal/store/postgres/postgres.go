// Package postgres implements store.Store on a PostgreSQL database, using
// pgx, so that several Ferry replicas can share one database.
//
// Update transactions run at READ COMMITTED, with explicit concurrency
// control where the store interface promises it:
//
//   - LockEnvironment takes a transaction-scoped advisory lock on the
//     pipeline and environment, so transactions that lock one environment
//     run one after the other; a statement after the lock sees what the
//     previous holder committed.
//   - PutRevision takes an advisory lock on the pipeline before it compares
//     with the latest revision, so revision numbers are assigned in turn.
//   - UpdatePromotion is optimistic: it fails with store.ErrConflict when the
//     stored version moved on.
//   - Unique keys are checked by the database: a duplicate is
//     store.ErrConflict, and leaves the transaction usable.
//   - Audit events get gapless sequence numbers in commit order, and are
//     chained, from a one-row head (seq and hash of the last event) that the
//     appending transaction locks until it ends: two replicas never chain
//     onto the same event. To keep the time a transaction holds that row
//     short, AppendAudit validates an event at once but links and writes
//     it, and sets its Seq and hashes, just before the transaction commits
//     (or when the same transaction next reads the audit log), in one round
//     trip: the statement that locks the head computes the hash.
//
// Reads that are not protected by one of these see the latest committed data
// at each statement; two Update transactions that read and then write the
// same thing without a lock or a version check are not serialized, as they
// are on SQLite. Update runs fn again, with a new transaction, when the
// database reports a serialization failure or a deadlock.
//
// View transactions are READ ONLY and REPEATABLE READ: fn sees one snapshot.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-dev/ferry/internal/store"
)

var _ store.Store = (*Store)(nil)

const (
	// maxAttempts is how many times Update and View run fn when the
	// database keeps reporting serialization failures or deadlocks.
	maxAttempts = 5
	// retryBackoff is the mean wait before the second attempt; it doubles
	// with each further attempt, and each wait is drawn at random from
	// zero to twice the mean so that the transactions that collided do not
	// collide again.
	retryBackoff = 5 * time.Millisecond
	// rollbackTimeout bounds a rollback, which runs even when the context of
	// the transaction is done.
	rollbackTimeout = 5 * time.Second
)

// errReadOnly is returned by the write methods of a View transaction.
var errReadOnly = errors.New("write in a read-only transaction")

// Store is a store.Store on a PostgreSQL database. It is safe for concurrent
// use, also by several processes on one database. Update and View must not
// be called from inside another Update's or View's function: the inner call
// needs a second connection, and a pool whose connections are all held by
// outer calls would wait forever.
type Store struct {
	pool *pgxpool.Pool
	// now returns the current time; it stamps revisions stored without one.
	now func() time.Time
	// pids holds the server process IDs of the pool's connections, so that
	// Listen can skip the messages this store sent.
	pids sync.Map // uint32 → struct{}
	// upTo, when above 0, is the last migration Migrate applies (for tests
	// of upgrades).
	upTo int
	// checkpoints configures the checkpoints appends sign.
	checkpoints store.Checkpoints
}

// Option configures a Store.
type Option func(*Store)

// WithCheckpoints makes the store sign checkpoints of the audit chain as it
// appends events (see store.Checkpoints). By default it signs none. Replicas
// sharing a database should sign with the same key.
func WithCheckpoints(c store.Checkpoints) Option {
	return func(s *Store) { s.checkpoints = c }
}

// Open connects to the PostgreSQL database named by dsn (a URL or a
// keyword/value string, as pgx parses them; pool_max_conns and the other
// pgxpool settings apply) and applies the migrations it lacks.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "ferry"
	}
	s := &Store{now: time.Now}
	for _, o := range opts {
		o(s)
	}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		s.pids.Store(c.PgConn().PID(), struct{}{})
		return nil
	}
	cfg.BeforeClose = func(c *pgx.Conn) { s.pids.Delete(c.PgConn().PID()) }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s.pool = pool
	if err := s.Migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store %s: %w", describe(cfg), err)
	}
	return s, nil
}

// describe names the database of cfg in errors, without its password.
func describe(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// Pool returns the store's connection pool, for what the store interface
// does not cover. Closing the store closes it.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Update runs fn in a READ COMMITTED transaction, committing when fn returns
// nil and rolling back otherwise (also when fn panics; the panic then
// continues). fn's error is returned as is. When the database reports a
// serialization failure or a deadlock, the transaction is rolled back and fn
// runs again in a new one, a few times: fn must not have effects outside the
// transaction that a second run would repeat. Before a new run, the fields
// the previous run's Tx methods set (Seq, Version, Number, CreatedAt) are
// restored to what they were.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.run(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, false, fn)
}

// View runs fn in a READ ONLY, REPEATABLE READ transaction: fn reads one
// snapshot of the database and does not see uncommitted writes. The write
// methods of its Tx fail. Like Update, it runs fn again on a serialization
// failure (which a hot standby may report).
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	return s.run(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, true, fn)
}

// run runs fn in a transaction with opts, retrying on transient failures.
func (s *Store) run(ctx context.Context, opts pgx.TxOptions, readOnly bool, fn func(store.Tx) error) error {
	for attempt := 1; ; attempt++ {
		t := &tx{now: s.now, readOnly: readOnly, checkpoints: &s.checkpoints}
		err := s.attempt(ctx, opts, t, fn)
		if err == nil || attempt == maxAttempts || !(transient(err) || transient(t.failed)) {
			return err
		}
		t.undo()
		wait := time.Duration(rand.Int64N(int64(retryBackoff) << attempt))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// attempt runs fn once in a new transaction t.
func (s *Store) attempt(ctx context.Context, opts pgx.TxOptions, t *tx, fn func(store.Tx) error) error {
	ptx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	t.tx = ptx
	done := false
	defer func() {
		if !done {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			_ = ptx.Rollback(rctx)
			cancel()
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	if t.failed != nil {
		// fn went on after a statement failed, and returned nil.
		return fmt.Errorf("commit: rolled back, since a statement of the transaction failed: %w", t.failed)
	}
	if err := t.flushAudit(ctx); err != nil {
		return err
	}
	if t.readOnly {
		return nil // the deferred rollback ends it
	}
	done = true
	if err := ptx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// transient reports whether err is a failure that running the transaction
// again may not meet: a serialization failure or a deadlock.
func transient(err error) bool {
	switch pgCode(err) {
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return true
	}
	return false
}

// BenchCommit durably commits one minimal write, in a transaction of its
// own: it rewrites the single row of the bench_commits table, so that the
// table does not grow.
func (s *Store) BenchCommit(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO bench_commits (id, count, at) VALUES (1, 1, $1)
		ON CONFLICT (id) DO UPDATE SET count = bench_commits.count + 1, at = excluded.at`, encTime(s.now()))
	if err != nil {
		return fmt.Errorf("bench commit: %w", err)
	}
	return nil
}

// Ping checks that the database answers. After the database was away, the
// pool replaces its broken connections by itself: a Store needs no reopening.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres store: %w", err)
	}
	return nil
}

// Close closes the connection pool, waiting for connections in use to be
// returned to it.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// pgCode returns the SQLSTATE of a PostgreSQL error, or "".
func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// isUnique reports whether err is a violation of a unique or primary key.
func isUnique(err error) bool { return pgCode(err) == "23505" }

// isForeignKey reports whether err is a violation of a foreign key.
func isForeignKey(err error) bool { return pgCode(err) == "23503" }

// lockKey returns the key of the advisory lock on parts: a 64-bit FNV-1a
// hash of "ferry" and the parts, each preceded by its length so that no two
// lists of parts run together. Every replica, of any version, computes the
// same key. Two different lists may rarely share a key; they then wait for
// each other needlessly, which is slow but correct.
func lockKey(parts ...string) int64 {
	h := fnv.New64a()
	for _, p := range append([]string{"ferry"}, parts...) {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return int64(h.Sum64())
}
