// Package store defines the durable store the engine and API work against.
// Implementations (store/sqlite, later store/postgres) must pass the
// conformance suite in store/storetest.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
)

// Errors every implementation returns (wrapped) for the same conditions.
var (
	// ErrNotFound: the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique key already exists, or an optimistic update lost.
	ErrConflict = errors.New("conflict")
)

// Store is a durable, transactional store.
type Store interface {
	// Update runs fn in a read-write transaction, committed when fn returns nil
	// and rolled back otherwise. Transactions are atomic; concurrent ones are
	// serialized by LockEnvironment, PutRevision (per pipeline), UpdatePromotion's
	// version check and unique keys (SQLite runs them one at a time anyway). fn
	// may run more than once (a store retries serialization failures), so it
	// must have no effect outside the transaction.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// BenchCommit durably commits one minimal write; benchmarks use it to measure
	// the raw commit rate of the store.
	BenchCommit(ctx context.Context) error
	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// Tx is one transaction. Methods that return a list return it empty, not nil-error-with-ErrNotFound.
type Tx interface {
	// PutRevision stores rev as the pipeline's next revision, unless the latest
	// revision has the same Digest, in which case it returns that one and false.
	// It assigns Number.
	PutRevision(ctx context.Context, rev *pipeline.Revision) (created bool, err error)
	// Revision returns revision number of a pipeline; number 0 means the latest.
	Revision(ctx context.Context, pipeline string, number int) (*pipeline.Revision, error)
	// Pipelines returns the latest revision of every pipeline, by name.
	Pipelines(ctx context.Context) ([]pipeline.Revision, error)

	// InsertRelease stores r; ErrConflict if its pipeline already has that version.
	InsertRelease(ctx context.Context, r *release.Release) error
	// Release returns a pipeline's release by version.
	Release(ctx context.Context, pipeline, version string) (*release.Release, error)
	// ReleaseByID returns a release by ID.
	ReleaseByID(ctx context.Context, id string) (*release.Release, error)
	// Releases returns a pipeline's releases, newest first, at most limit (0: all).
	Releases(ctx context.Context, pipeline string, limit int) ([]release.Release, error)

	// LockEnvironment serializes changes to one environment's promotions until
	// the transaction ends.
	LockEnvironment(ctx context.Context, pipeline, env string) error
	// InsertPromotion stores a new promotion, assigning Seq (increasing) and Version 1.
	InsertPromotion(ctx context.Context, p *promotion.Promotion) error
	// UpdatePromotion stores p if the stored Version equals p.Version, and
	// increments p.Version; ErrConflict otherwise.
	UpdatePromotion(ctx context.Context, p *promotion.Promotion) error
	// Promotion returns a promotion by ID.
	Promotion(ctx context.Context, id string) (*promotion.Promotion, error)
	// Promotions returns the promotions matching f.
	Promotions(ctx context.Context, f PromotionFilter) ([]promotion.Promotion, error)

	// InsertDeployment records that a release now runs in an environment.
	InsertDeployment(ctx context.Context, d *Deployment) error
	// Deployments returns an environment's deployments, newest first, at most limit (0: all).
	Deployments(ctx context.Context, pipeline, env string, limit int) ([]Deployment, error)

	// InsertStepRun stores a new step attempt; ErrConflict if that attempt exists.
	InsertStepRun(ctx context.Context, s *promotion.StepRun) error
	// UpdateStepRun stores a step attempt, found by promotion, phase, index and attempt.
	UpdateStepRun(ctx context.Context, s *promotion.StepRun) error
	// StepRuns returns a promotion's step attempts in the order they started.
	StepRuns(ctx context.Context, promotionID string) ([]promotion.StepRun, error)
	// RunningStepRuns returns every step attempt still marked running.
	RunningStepRuns(ctx context.Context) ([]promotion.StepRun, error)
	// AppendStepLog appends output to a step attempt's log.
	AppendStepLog(ctx context.Context, c *LogChunk) error
	// StepLogs returns a promotion's log chunks in order.
	StepLogs(ctx context.Context, promotionID string) ([]LogChunk, error)

	// AppendAudit validates e and appends it to the hash chain: by the time
	// the transaction commits, e.Seq is assigned (gapless, in commit order),
	// e.PrevHash is the hash of the event before, e.Hash its own (see
	// audit.Link), and the chain's head has moved to e. When the store
	// signs checkpoints (see Checkpoints), the transaction also stores the
	// checkpoint of each event whose Seq is a multiple of Every.
	AppendAudit(ctx context.Context, e *audit.Event) error
	// AuditEvents returns the events matching f in Seq order.
	AuditEvents(ctx context.Context, f AuditFilter) ([]audit.Event, error)
	// AuditHead returns the head of the chain as the last append left it
	// (audit.Genesis() for an empty log), this transaction's appends
	// included.
	AuditHead(ctx context.Context) (audit.Head, error)
	// PutAuditCheckpoint stores a signed checkpoint; ErrConflict if one of
	// its Seq exists.
	PutAuditCheckpoint(ctx context.Context, c *audit.Checkpoint) error
	// AuditCheckpoints returns the stored checkpoints with Seq in [from, to]
	// (to 0: no upper bound), in Seq order.
	AuditCheckpoints(ctx context.Context, from, to int64) ([]audit.Checkpoint, error)

	// Notify publishes msg to every replica sharing the store once the
	// transaction commits. Stores used by a single process may ignore it.
	// It is a write: call it in Update.
	Notify(ctx context.Context, msg string) error
	// PutReplica records that a replica is alive (insert or update by ID).
	PutReplica(ctx context.Context, r *Replica) error
	// Replicas returns the replicas seen at or after since, by ID.
	Replicas(ctx context.Context, since time.Time) ([]Replica, error)
	// RenewLeases sets lease_until to until on every unfinished promotion
	// owned by owner, and returns how many it renewed.
	RenewLeases(ctx context.Context, owner string, until time.Time) (int, error)
	// ClaimExpired makes owner the driver of up to limit promotions in a
	// state that has work in flight (deploying, verifying, rolling_back)
	// whose lease ended before now, with a lease until until, and returns
	// them. Rows another transaction holds are skipped, so two replicas never
	// claim the same promotion.
	ClaimExpired(ctx context.Context, owner string, now, until time.Time, limit int) ([]promotion.Promotion, error)

	// PutApproval records a person's decision on a promotion; a later decision
	// by the same user on the same promotion replaces the earlier one.
	PutApproval(ctx context.Context, a *promotion.Approval) error
	// Approvals returns a promotion's decisions, oldest first.
	Approvals(ctx context.Context, promotionID string) ([]promotion.Approval, error)

	// InsertToken stores t, of which only the hash of the plaintext is
	// kept; ErrConflict if a token with its ID or its hash exists.
	InsertToken(ctx context.Context, t *auth.Token) error
	// TokenByHash returns the token whose Hash is hash, revoked or expired
	// ones included: the caller decides with Token.Valid.
	TokenByHash(ctx context.Context, hash string) (*auth.Token, error)
	// Tokens returns every token, revoked and expired ones included, oldest
	// first.
	Tokens(ctx context.Context) ([]auth.Token, error)
	// RevokeToken marks a token revoked at at. Revoking a revoked token
	// keeps its first revocation time. ErrNotFound if no token has that ID.
	RevokeToken(ctx context.Context, id string, at time.Time) error

	// EnqueueNotification adds n to the thread of its promotion and
	// endpoint name, pending, due when the thread is (at once, unless it
	// waits to retry), and assigns Seq and ThreadSeq. If the thread holds a
	// notification with n.Key it changes nothing and returns false.
	EnqueueNotification(ctx context.Context, n *Notification) (bool, error)
	// ClaimNotifications makes owner, until until, the deliverer of up to
	// limit threads that have pending notifications, are due at now and are
	// not claimed past now, and returns the pending notifications of those
	// threads in Seq order. Rows another transaction holds are skipped, so
	// two deliverers never claim the same thread.
	ClaimNotifications(ctx context.Context, owner string, now, until time.Time, limit int) ([]Notification, error)
	// RecordDelivery records the outcome of an attempt on a thread's
	// notifications that are still pending, and, if d.Owner still holds the
	// thread's claim, ends it and makes the thread due again at d.RetryAt
	// (when some notifications are to be retried) or at once.
	RecordDelivery(ctx context.Context, d *Delivery) error
	// Notifications returns a promotion's notifications in Seq order.
	Notifications(ctx context.Context, promotionID string) ([]Notification, error)

	// Idempotency returns the stored response for an idempotency key.
	Idempotency(ctx context.Context, key string) (*IdempotencyRecord, error)
	// PutIdempotency stores a response for an idempotency key; ErrConflict if the key exists.
	PutIdempotency(ctx context.Context, r *IdempotencyRecord) error
}

// PromotionFilter selects promotions. Zero fields match everything.
type PromotionFilter struct {
	Pipeline    string
	Environment string
	ReleaseID   string
	Kind        promotion.Kind
	States      []promotion.State
	// Active selects only non-terminal promotions.
	Active bool
	// Unreviewed selects expedited or break-glass promotions nobody has reviewed.
	Unreviewed bool
	// FinishedSince and FinishedBefore, when set, select promotions that
	// ended at or after FinishedSince and before FinishedBefore; either
	// being set leaves out promotions that have not ended.
	FinishedSince, FinishedBefore time.Time
	// Ascending orders by Seq ascending; the default is newest first.
	Ascending bool
	Limit     int
}

// Deployment records that a release started running in an environment.
type Deployment struct {
	Seq            int64     `json:"seq"`
	Pipeline       string    `json:"pipeline"`
	Environment    string    `json:"environment"`
	ReleaseID      string    `json:"releaseId"`
	ReleaseVersion string    `json:"releaseVersion"`
	PromotionID    string    `json:"promotionId"`
	At             time.Time `json:"at"`
}

// LogChunk is a piece of a step attempt's output.
type LogChunk struct {
	Seq         int64           `json:"seq"`
	PromotionID string          `json:"promotionId"`
	Phase       promotion.Phase `json:"phase"`
	Index       int             `json:"index"`
	Attempt     int             `json:"attempt"`
	Data        []byte          `json:"data"`
	At          time.Time       `json:"at"`
}

// AuditFilter selects audit events. Zero fields match everything.
type AuditFilter struct {
	PromotionID string
	Actor       string
	Action      string
	// Since and Until select events with Since <= Time < Until.
	Since    time.Time
	Until    time.Time
	AfterSeq int64
	Limit    int
}

// DefaultCheckpointEvery is the default number of audit events between two
// checkpoints a store signs.
const DefaultCheckpointEvery = 1000

// Checkpoints configures the checkpoints of the audit chain a store signs as
// it appends events.
type Checkpoints struct {
	// Signer signs them; nil means the store signs none.
	Signer *audit.Signer
	// Every is the number of events between two checkpoints: the
	// transaction that appends an event whose Seq is a multiple of Every
	// stores the checkpoint of that event. Defaults to
	// DefaultCheckpointEvery.
	Every int64
}

// Due reports whether the event seq gets a checkpoint.
func (c *Checkpoints) Due(seq int64) bool {
	if c == nil || c.Signer == nil {
		return false
	}
	every := c.Every
	if every <= 0 {
		every = DefaultCheckpointEvery
	}
	return seq%every == 0
}

// AuditSource returns the audit log as tx reads it, for audit.Verify and
// audit.Export: the events f selects (its AfterSeq and Limit are ignored),
// every checkpoint, and the head.
func AuditSource(tx Tx, f AuditFilter) audit.Source { return auditSource{tx, f} }

type auditSource struct {
	tx Tx
	f  AuditFilter
}

func (s auditSource) Events(ctx context.Context, after int64, limit int) ([]audit.Event, error) {
	f := s.f
	f.AfterSeq, f.Limit = after, limit
	return s.tx.AuditEvents(ctx, f)
}

func (s auditSource) Checkpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	return s.tx.AuditCheckpoints(ctx, 0, 0)
}

func (s auditSource) Head(ctx context.Context) (audit.Head, error) { return s.tx.AuditHead(ctx) }

// Replica is one Ferry server process sharing the store.
type Replica struct {
	ID        string    `json:"id"`
	Host      string    `json:"host"`
	Addr      string    `json:"addr"`
	StartedAt time.Time `json:"startedAt"`
	SeenAt    time.Time `json:"seenAt"`
}

// IdempotencyRecord is the stored response to a POST made with an Idempotency-Key.
type IdempotencyRecord struct {
	Key string
	// RequestHash identifies the request (method, path, body) the key was first used with.
	RequestHash string
	Status      int
	ContentType string
	Body        []byte
	CreatedAt   time.Time
}
