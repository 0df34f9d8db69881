package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/pgtest"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/postgres"
	"github.com/ferry-dev/ferry/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// open opens a store on dsn and closes it when t ends.
func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn)
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

// newDatabase returns the DSN of a new, empty database on the shared server.
// Deadlocks are detected after 50ms rather than a second.
func newDatabase(t testing.TB) string {
	t.Helper()
	return pgtest.Shared(t).CreateDatabase(t, t.Name()) + "&deadlock_timeout=50ms"
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, newDatabase(t))
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

func testPromotion(id, env string) *promotion.Promotion {
	return &promotion.Promotion{
		ID: id, Pipeline: "shop", Environment: env, Kind: promotion.KindPromote, ReleaseID: "rel-1",
		ReleaseVersion: "1.0.0", Revision: 1, State: promotion.Queued, Actor: "alice", CreatedAt: when, UpdatedAt: when,
	}
}

// update runs fn in an Update and fails the test on an error.
func update(t testing.TB, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// count returns the number of rows of table.
func count(t testing.TB, s *postgres.Store, table string) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func TestMigrateConcurrentOpens(t *testing.T) {
	dsn := newDatabase(t)
	const n = 3
	var (
		wg     sync.WaitGroup
		stores [n]*postgres.Store
		errs   [n]error
		start  = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = postgres.Open(t.Context(), dsn)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("open %d: %v", i, errs[i])
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	s := stores[0]
	// Every migration was applied and recorded once.
	checkMigrations := func(when string) {
		t.Helper()
		// Version numbers may have gaps: count the distinct ones.
		var n, versions int
		err := s.Pool().QueryRow(t.Context(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&n, &versions)
		if err != nil {
			t.Fatal(err)
		}
		if n < 1 || n != versions {
			t.Errorf("%s: %d migrations recorded, of %d versions; want one of each", when, n, versions)
		}
	}
	checkMigrations("after concurrent opens")
	// Migrating again, or opening again, changes nothing.
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate again: %v", err)
	}
	open(t, dsn)
	checkMigrations("after migrating again")
	// The stores work.
	update(t, stores[1], func(ctx context.Context, tx store.Tx) error { return tx.AppendAudit(ctx, testEvent("a")) })
	update(t, stores[2], func(ctx context.Context, tx store.Tx) error { return tx.AppendAudit(ctx, testEvent("b")) })
	if got := count(t, s, "audit_events"); got != 2 {
		t.Errorf("%d audit events, want 2", got)
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	dsn := newDatabase(t)
	s := open(t, dsn)
	if _, err := s.Pool().Exec(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 'now')`); err != nil {
		t.Fatal(err)
	}
	other, err := postgres.Open(t.Context(), dsn)
	if err == nil {
		other.Close()
		t.Fatal("opened a database migrated by a newer binary")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q should say the schema is newer", err)
	}
}

func TestAuditAppendOnly(t *testing.T) {
	s := open(t, newDatabase(t))
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.AppendAudit(ctx, testEvent("a")) })
	for _, q := range []string{
		`UPDATE audit_events SET actor = 'mallory'`,
		`DELETE FROM audit_events`,
		`TRUNCATE audit_events`,
	} {
		_, err := s.Pool().Exec(t.Context(), q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: error %v, want a refusal", q, err)
		}
	}
	var actor string
	if err := s.Pool().QueryRow(t.Context(), `SELECT actor FROM audit_events`).Scan(&actor); err != nil || actor != "alice" {
		t.Errorf("audit event after refused changes: actor %q (%v), want alice", actor, err)
	}
}

func TestTimesRoundTrip(t *testing.T) {
	s := open(t, newDatabase(t))
	times := []time.Time{
		{}, // the zero time, which a promotion's LeaseUntil often is
		time.Unix(0, 1),
		time.Unix(-1, 999_999_999),
		time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC-7", -7*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Now(), // with a monotonic clock reading, in the local zone
	}
	for i, tm := range times {
		p := testPromotion(fmt.Sprintf("p%d", i), "prod")
		p.CreatedAt, p.UpdatedAt, p.LeaseUntil, p.WakeAt = tm, tm, tm, &tm
		e := testEvent("a")
		e.Time = tm
		if tm.IsZero() {
			e.Time = time.Unix(0, 0) // an event needs a time
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := tx.InsertPromotion(ctx, p); err != nil {
				return err
			}
			return tx.AppendAudit(ctx, e)
		})
		err := s.View(t.Context(), func(tx store.Tx) error {
			got, err := tx.Promotion(t.Context(), p.ID)
			if err != nil {
				return err
			}
			want := tm.Round(0).UTC()
			for _, g := range []time.Time{got.CreatedAt, got.UpdatedAt, got.LeaseUntil, *got.WakeAt} {
				if g != want {
					t.Errorf("time %v came back as %v", want, g)
				}
			}
			events, err := tx.AuditEvents(t.Context(), store.AuditFilter{AfterSeq: e.Seq - 1})
			if err != nil {
				return err
			}
			if want := e.Time.Round(0).UTC(); len(events) != 1 || events[0].Time != want {
				t.Errorf("audit time %v came back as %v", want, events)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// listen runs s.Listen until the test ends, and returns the messages it
// delivers. It returns once the listener listens.
func listen(t *testing.T, s *postgres.Store) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan string, 100)
	done := make(chan error, 1)
	go func() { done <- s.Listen(ctx, func(msg string) { got <- msg }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("listen: %v", err)
		}
	})
	waitListening(t, s)
	return got
}

// waitListening waits until a connection listens on the database of s.
func waitListening(t *testing.T, s *postgres.Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&n)
		if err == nil && n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobody listens (%v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receive returns the next message of got.
func receive(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case msg := <-got:
		return msg
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
		return ""
	}
}

func notify(t *testing.T, s store.Store, msg string) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Notify(ctx, msg) })
}

func TestListen(t *testing.T) {
	dsn := newDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	got := listen(t, a)
	notify(t, a, "from a, which a does not hear")
	errStop := errors.New("stop")
	err := b.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.Notify(t.Context(), "rolled back"); err != nil {
			return err
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("update: %v", err)
	}
	notify(t, b, "from b")
	notify(t, b, "again from b")
	for _, want := range []string{"from b", "again from b"} {
		if msg := receive(t, got); msg != want {
			t.Errorf("message %q, want %q", msg, want)
		}
	}
	err = a.View(t.Context(), func(tx store.Tx) error { return tx.Notify(t.Context(), "from a view") })
	if err == nil {
		t.Errorf("a View notified")
	}
}

func TestOutage(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.CreateDatabase(t, t.Name())
	s := open(t, dsn)
	ctx := t.Context()
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertRelease(ctx, testRelease("r1", "1")) })
	got := listen(t, s)

	srv.Stop(t)
	if err := s.Ping(ctx); err == nil {
		t.Errorf("ping succeeded while the database was down")
	}
	err := s.Update(ctx, func(tx store.Tx) error { return tx.InsertRelease(ctx, testRelease("r2", "2")) })
	if err == nil {
		t.Errorf("update succeeded while the database was down")
	}

	srv.Start(t)
	// The pool reconnects by itself; the first ping may still meet a
	// connection broken by the outage.
	deadline := time.Now().Add(10 * time.Second)
	for err := s.Ping(ctx); err != nil; err = s.Ping(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("ping after the database came back: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertRelease(ctx, testRelease("r2", "2")) })
	err = s.View(ctx, func(tx store.Tx) error {
		rs, err := tx.Releases(ctx, "shop", 0)
		if err != nil {
			return err
		}
		if len(rs) != 2 {
			t.Errorf("%d releases after the outage, want 2", len(rs))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The listener connected again.
	waitListening(t, s)
	notify(t, open(t, dsn), "after the outage")
	if msg := receive(t, got); msg != "after the outage" {
		t.Errorf("message %q, want the one sent after the outage", msg)
	}
}

// TestUpdateRetriesDeadlock makes two Updates deadlock on environment locks
// taken in opposite orders: the database aborts one, which Update runs
// again, restoring what the failed run's Tx methods had changed.
func TestUpdateRetriesDeadlock(t *testing.T) {
	s := open(t, newDatabase(t))
	ctx := t.Context()
	p := testPromotion("p1", "a")
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertPromotion(ctx, p) })

	var (
		attempts     atomic.Int32
		locked       sync.WaitGroup // both hold their first lock
		wg           sync.WaitGroup
		errs         [2]error
		envs         = [2][2]string{{"a", "b"}, {"b", "a"}}
		promotions   = [2]*promotion.Promotion{p, nil}
		firstAttempt [2]atomic.Bool
	)
	locked.Add(2)
	for i := range 2 {
		firstAttempt[i].Store(true)
		wg.Go(func() {
			errs[i] = s.Update(ctx, func(tx store.Tx) error {
				attempts.Add(1)
				if p := promotions[i]; p != nil {
					// A retry must see the version it started with.
					if err := tx.UpdatePromotion(ctx, p); err != nil {
						return err
					}
				}
				if err := tx.LockEnvironment(ctx, "shop", envs[i][0]); err != nil {
					return err
				}
				if firstAttempt[i].Swap(false) {
					locked.Done()
					locked.Wait()
				}
				return tx.LockEnvironment(ctx, "shop", envs[i][1])
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("update %d: %v", i, err)
		}
	}
	if got := attempts.Load(); got != 3 {
		t.Errorf("%d attempts, want 3: one of the two deadlocked updates runs again", got)
	}
	if p.Version != 2 {
		t.Errorf("promotion version %d after one committed update, want 2", p.Version)
	}
}

// TestLockEnvironmentWaits checks that a second transaction locking an
// environment waits for the first to end, and one locking another does not.
func TestLockEnvironmentWaits(t *testing.T) {
	s := open(t, newDatabase(t))
	ctx := t.Context()
	holding, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.Update(ctx, func(tx store.Tx) error {
			if err := tx.LockEnvironment(ctx, "shop", "prod"); err != nil {
				return err
			}
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.LockEnvironment(ctx, "shop", "dev") })
	second := make(chan error, 1)
	go func() {
		second <- s.Update(ctx, func(tx store.Tx) error { return tx.LockEnvironment(ctx, "shop", "prod") })
	}()
	// Wait until the second transaction waits for the advisory lock.
	for {
		var waiting int
		err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting == 1 {
			break
		}
		select {
		case err := <-second:
			t.Fatalf("a second lock of one environment did not wait (error %v)", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first update: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second update: %v", err)
	}
}

// TestPutRevisionConcurrent stores revisions of one pipeline from several
// goroutines at once: each gets its own number.
func TestPutRevisionConcurrent(t *testing.T) {
	s := open(t, newDatabase(t))
	const n = 6
	var wg sync.WaitGroup
	numbers := make([]int, n)
	for i := range n {
		wg.Go(func() {
			rev := &pipeline.Revision{Pipeline: "shop", Digest: fmt.Sprintf("sha256:%d", i), CreatedAt: when}
			err := s.Update(t.Context(), func(tx store.Tx) error {
				_, err := tx.PutRevision(t.Context(), rev)
				return err
			})
			if err != nil {
				t.Errorf("put revision %d: %v", i, err)
			}
			numbers[i] = rev.Number
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, num := range numbers {
		if num < 1 || num > n || seen[num] {
			t.Fatalf("revision numbers %v, want 1 to %d once each", numbers, n)
		}
		seen[num] = true
	}
}

// TestConflictKeepsTransaction checks that a refused insert does not abort
// the transaction, as it would if the database raised the error.
func TestConflictKeepsTransaction(t *testing.T) {
	s := open(t, newDatabase(t))
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertRelease(ctx, testRelease("r1", "1")) })
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.InsertRelease(ctx, testRelease("r1", "1")); !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("duplicate release: got %v, want %v", err, store.ErrConflict)
		}
		if err := tx.InsertStepRun(ctx, &promotion.StepRun{PromotionID: "p9", Phase: promotion.PhaseDeploy, Attempt: 1, StartedAt: when}); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("step run of an unknown promotion: got %v, want %v", err, store.ErrNotFound)
		}
		if err := tx.AppendStepLog(ctx, &store.LogChunk{PromotionID: "p9", Phase: promotion.PhaseDeploy, At: when}); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("log of an unknown promotion: got %v, want %v", err, store.ErrNotFound)
		}
		if err := tx.PutApproval(ctx, &promotion.Approval{PromotionID: "p9", User: "alice", Decision: promotion.Approve, At: when}); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("approval of an unknown promotion: got %v, want %v", err, store.ErrNotFound)
		}
		return tx.InsertRelease(ctx, testRelease("r2", "2"))
	})
	if got := count(t, s, "releases"); got != 2 {
		t.Errorf("%d releases, want 2", got)
	}
}

// TestFailedStatementFailsCommit checks that a transaction whose function
// ignores a failed statement and returns nil is not reported as committed.
func TestFailedStatementFailsCommit(t *testing.T) {
	s := open(t, newDatabase(t))
	if _, err := s.Pool().Exec(t.Context(), `ALTER TABLE deployments ADD CONSTRAINT no_bad CHECK (pipeline <> 'bad')`); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	err := s.Update(ctx, func(tx store.Tx) error {
		_ = tx.InsertDeployment(ctx, &store.Deployment{Pipeline: "bad", Environment: "prod", At: when})
		return tx.AppendAudit(ctx, testEvent("a"))
	})
	if err == nil || !strings.Contains(err.Error(), "no_bad") {
		t.Errorf("update after an ignored failure: error %v, want one naming the failed statement", err)
	}
	if got := count(t, s, "audit_events"); got != 0 {
		t.Errorf("%d audit events stored by a failed transaction", got)
	}
}

func BenchmarkBenchCommit(b *testing.B) {
	s := open(b, newDatabase(b))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.BenchCommit(b.Context()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkUpdateAudited measures transactions that insert a promotion and
// append an audit event, as the engine's do, from parallel goroutines.
func BenchmarkUpdateAudited(b *testing.B) {
	s := open(b, newDatabase(b))
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("p%d", n.Add(1))
			err := s.Update(b.Context(), func(tx store.Tx) error {
				if err := tx.InsertPromotion(b.Context(), testPromotion(id, "prod")); err != nil {
					return err
				}
				return tx.AppendAudit(b.Context(), testEvent("promotion.create"))
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
