package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
)

// tx implements store.Tx on one PostgreSQL transaction.
type tx struct {
	tx       pgx.Tx
	now      func() time.Time
	readOnly bool
	// checkpoints configures the checkpoints appends sign.
	checkpoints *store.Checkpoints
	// pending holds the audit events appended and not yet written.
	pending []pendingEvent
	// undos restore, in reverse order, the fields of the caller's values
	// that the methods set, before Update runs its function again.
	undos []func()
	// failed is the first error the database returned: once a statement
	// fails, PostgreSQL refuses the rest of the transaction.
	failed error
}

// pendingEvent is an appended audit event: a copy of it as it was when
// appended, and the caller's event, whose Seq, PrevHash and Hash are set
// once it is written.
type pendingEvent struct {
	e   audit.Event
	dst *audit.Event
}

var _ store.Tx = (*tx)(nil)

// note records err as the transaction's first failure if the database
// returned it (which aborts the transaction); it returns err.
func (t *tx) note(err error) error {
	if t.failed == nil && pgCode(err) != "" {
		t.failed = err
	}
	return err
}

// onRetry registers fn to run before Update runs its function again.
func (t *tx) onRetry(fn func()) { t.undos = append(t.undos, fn) }

// undo runs the functions registered with onRetry, last first.
func (t *tx) undo() {
	for i := len(t.undos) - 1; i >= 0; i-- {
		t.undos[i]()
	}
	t.undos = nil
}

func (t *tx) exec(ctx context.Context, query string, args ...any) (pgconn.CommandTag, error) {
	tag, err := t.tx.Exec(ctx, query, args...)
	return tag, t.note(err)
}

func (t *tx) query(ctx context.Context, query string, args ...any) (pgx.Rows, error) {
	rows, err := t.tx.Query(ctx, query, args...)
	return rows, t.note(err)
}

func (t *tx) queryRow(ctx context.Context, query string, args ...any) pgx.Row {
	return row{t: t, row: t.tx.QueryRow(ctx, query, args...)}
}

// row is a pgx.Row whose error is noted in its transaction.
type row struct {
	t   *tx
	row pgx.Row
}

func (r row) Scan(dest ...any) error { return r.t.note(r.row.Scan(dest...)) }

// collect scans every row of a query with scan; it returns an empty list,
// not nil, when there is none.
func collect[T any](t *tx, rows pgx.Rows, err error, scan func(scanner) (*T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, t.note(err)
		}
		out = append(out, *v)
	}
	if err := rows.Err(); err != nil {
		return nil, t.note(err)
	}
	return out, nil
}

// writable returns an error naming op when t is a View transaction.
func (t *tx) writable(op string) error {
	if t.readOnly {
		return fmt.Errorf("%s: %w", op, errReadOnly)
	}
	return nil
}

// scanner is a pgx.Row or pgx.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// timeLayout writes times in UTC with a fixed number of fractional digits, so
// that stored times compare correctly as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func encTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func encTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := encTime(*t)
	return &s
}

func decTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func decTimePtr(s *string) (*time.Time, error) {
	if s == nil {
		return nil, nil
	}
	t, err := decTime(*s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// nullBytes stores an empty slice as NULL.
func nullBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// ---- revisions ----

const revisionColumns = `pipeline, number, digest, spec, source, created_at, created_by`

func scanRevision(sc scanner) (*pipeline.Revision, error) {
	var (
		r         pipeline.Revision
		spec      string
		createdAt string
	)
	if err := sc.Scan(&r.Pipeline, &r.Number, &r.Digest, &spec, &r.Source, &createdAt, &r.CreatedBy); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(spec), &r.Spec); err != nil {
		return nil, fmt.Errorf("revision %d of pipeline %s: decode spec: %w", r.Number, r.Pipeline, err)
	}
	var err error
	if r.CreatedAt, err = decTime(createdAt); err != nil {
		return nil, err
	}
	return &r, nil
}

// PutRevision takes an advisory lock on the pipeline, held until the
// transaction ends, before it compares rev with the latest revision: two
// transactions storing revisions of one pipeline do it one after the other.
func (t *tx) PutRevision(ctx context.Context, rev *pipeline.Revision) (bool, error) {
	if err := t.writable("put revision"); err != nil {
		return false, err
	}
	if rev.Pipeline == "" {
		return false, errors.New("put revision: pipeline name is required")
	}
	if rev.Digest == "" {
		return false, fmt.Errorf("put revision of pipeline %s: digest is required", rev.Pipeline)
	}
	if _, err := t.exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("revision", rev.Pipeline)); err != nil {
		return false, fmt.Errorf("put revision of pipeline %s: lock: %w", rev.Pipeline, err)
	}
	latest, err := t.Revision(ctx, rev.Pipeline, 0)
	switch {
	case errors.Is(err, store.ErrNotFound):
		latest = nil
	case err != nil:
		return false, fmt.Errorf("put revision: %w", err)
	}
	old := *rev
	if latest != nil && latest.Digest == rev.Digest {
		*rev = *latest
		t.onRetry(func() { *rev = old })
		return false, nil
	}
	spec, err := json.Marshal(rev.Spec)
	if err != nil {
		return false, fmt.Errorf("put revision of pipeline %s: encode spec: %w", rev.Pipeline, err)
	}
	number := 1
	if latest != nil {
		number = latest.Number + 1
	}
	createdAt := rev.CreatedAt
	if createdAt.IsZero() {
		createdAt = t.now().UTC().Round(0)
	}
	tag, err := t.exec(ctx, `INSERT INTO revisions (`+revisionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT DO NOTHING`,
		rev.Pipeline, number, rev.Digest, string(spec), rev.Source, encTime(createdAt), rev.CreatedBy)
	if err == nil && tag.RowsAffected() == 0 || isUnique(err) {
		return false, fmt.Errorf("put revision %d of pipeline %s: %w", number, rev.Pipeline, store.ErrConflict)
	}
	if err != nil {
		return false, fmt.Errorf("put revision %d of pipeline %s: %w", number, rev.Pipeline, err)
	}
	rev.Number = number
	rev.CreatedAt = createdAt
	t.onRetry(func() { *rev = old })
	return true, nil
}

func (t *tx) Revision(ctx context.Context, name string, number int) (*pipeline.Revision, error) {
	var r pgx.Row
	if number == 0 {
		r = t.queryRow(ctx, `SELECT `+revisionColumns+` FROM revisions
			WHERE pipeline = $1 ORDER BY number DESC LIMIT 1`, name)
	} else {
		r = t.queryRow(ctx, `SELECT `+revisionColumns+` FROM revisions
			WHERE pipeline = $1 AND number = $2`, name, number)
	}
	rev, err := scanRevision(r)
	if errors.Is(err, pgx.ErrNoRows) {
		if number == 0 {
			return nil, fmt.Errorf("pipeline %s: %w", name, store.ErrNotFound)
		}
		return nil, fmt.Errorf("revision %d of pipeline %s: %w", number, name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load revision %d of pipeline %s: %w", number, name, err)
	}
	return rev, nil
}

func (t *tx) Pipelines(ctx context.Context) ([]pipeline.Revision, error) {
	rows, err := t.query(ctx, `SELECT DISTINCT ON (pipeline) `+revisionColumns+` FROM revisions
		ORDER BY pipeline, number DESC`)
	out, err := collect(t, rows, err, scanRevision)
	if err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	return out, nil
}

// ---- releases ----

const releaseColumns = `id, pipeline, version, artifacts, git_commit, source, build_url, labels, created_at, created_by,
	commit_time`

func scanRelease(sc scanner) (*release.Release, error) {
	var (
		r          release.Release
		artifacts  string
		labels     *string
		createdAt  string
		commitTime *string
	)
	if err := sc.Scan(&r.ID, &r.Pipeline, &r.Version, &artifacts, &r.Commit, &r.Source, &r.BuildURL,
		&labels, &createdAt, &r.CreatedBy, &commitTime); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(artifacts), &r.Artifacts); err != nil {
		return nil, fmt.Errorf("release %s: decode artifacts: %w", r.ID, err)
	}
	if labels != nil {
		if err := json.Unmarshal([]byte(*labels), &r.Labels); err != nil {
			return nil, fmt.Errorf("release %s: decode labels: %w", r.ID, err)
		}
	}
	var err error
	if r.CreatedAt, err = decTime(createdAt); err != nil {
		return nil, err
	}
	if r.CommitTime, err = decTimePtr(commitTime); err != nil {
		return nil, err
	}
	return &r, nil
}

func (t *tx) InsertRelease(ctx context.Context, r *release.Release) error {
	if err := t.writable("insert release"); err != nil {
		return err
	}
	if r.ID == "" {
		return fmt.Errorf("insert release %s of pipeline %s: ID is required", r.Version, r.Pipeline)
	}
	artifacts, err := json.Marshal(r.Artifacts)
	if err != nil {
		return fmt.Errorf("insert release %s: encode artifacts: %w", r.ID, err)
	}
	var labels *string
	if r.Labels != nil {
		b, err := json.Marshal(r.Labels)
		if err != nil {
			return fmt.Errorf("insert release %s: encode labels: %w", r.ID, err)
		}
		s := string(b)
		labels = &s
	}
	tag, err := t.exec(ctx, `INSERT INTO releases (`+releaseColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT DO NOTHING`,
		r.ID, r.Pipeline, r.Version, string(artifacts), r.Commit, r.Source, r.BuildURL, labels,
		encTime(r.CreatedAt), r.CreatedBy, encTimePtr(r.CommitTime))
	if err == nil && tag.RowsAffected() == 0 || isUnique(err) {
		return fmt.Errorf("insert release %s of pipeline %s (ID %s): version or ID already exists: %w",
			r.Version, r.Pipeline, r.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert release %s of pipeline %s: %w", r.Version, r.Pipeline, err)
	}
	return nil
}

func (t *tx) Release(ctx context.Context, pipelineName, version string) (*release.Release, error) {
	r, err := scanRelease(t.queryRow(ctx, `SELECT `+releaseColumns+` FROM releases
		WHERE pipeline = $1 AND version = $2`, pipelineName, version))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("release %s of pipeline %s: %w", version, pipelineName, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load release %s of pipeline %s: %w", version, pipelineName, err)
	}
	return r, nil
}

func (t *tx) ReleaseByID(ctx context.Context, id string) (*release.Release, error) {
	r, err := scanRelease(t.queryRow(ctx, `SELECT `+releaseColumns+` FROM releases WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("release %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load release %s: %w", id, err)
	}
	return r, nil
}

func (t *tx) Releases(ctx context.Context, pipelineName string, limit int) ([]release.Release, error) {
	q := `SELECT ` + releaseColumns + ` FROM releases WHERE pipeline = $1 ORDER BY created_at DESC, seq DESC`
	args := []any{pipelineName}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := t.query(ctx, q, args...)
	out, err := collect(t, rows, err, scanRelease)
	if err != nil {
		return nil, fmt.Errorf("list releases of pipeline %s: %w", pipelineName, err)
	}
	return out, nil
}

// ---- promotions ----

// LockEnvironment takes an advisory lock on the environment, held until the
// transaction ends. In a View it only checks its arguments: a View changes
// nothing, and reads its snapshot without waiting for anyone.
func (t *tx) LockEnvironment(ctx context.Context, pipelineName, env string) error {
	if pipelineName == "" || env == "" {
		return fmt.Errorf("lock environment %q of pipeline %q: pipeline and environment are required", env, pipelineName)
	}
	if t.readOnly {
		return nil
	}
	if _, err := t.exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("environment", pipelineName, env)); err != nil {
		return fmt.Errorf("lock environment %s of pipeline %s: %w", env, pipelineName, err)
	}
	return nil
}

const promotionColumns = `id, seq, pipeline, environment, kind, release_id, release_version, revision, state,
	reason, actor, forced, rollback_id, rollback_version, cursor_phase, cursor_index, cursor_attempt,
	cursor_failures, wake_at, message, created_at, updated_at, started_at, finished_at, owner, lease_until,
	expedited, override_window, gates, reviewed_by, reviewed_at, review_comment, version`

// encGates encodes gate evaluations as JSON text with their times in UTC,
// or NULL when there are none.
func encGates(gates []promotion.GateEvaluation) (*string, error) {
	if len(gates) == 0 {
		return nil, nil
	}
	out := make([]promotion.GateEvaluation, len(gates))
	for i, g := range gates {
		g.At = g.At.UTC()
		if g.Until != nil {
			u := g.Until.UTC()
			g.Until = &u
		}
		out[i] = g
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// decGates decodes what encGates stored.
func decGates(s *string) ([]promotion.GateEvaluation, error) {
	if s == nil {
		return nil, nil
	}
	var gates []promotion.GateEvaluation
	if err := json.Unmarshal([]byte(*s), &gates); err != nil {
		return nil, err
	}
	if len(gates) == 0 {
		return nil, nil
	}
	return gates, nil
}

// encStrings encodes a list of strings as JSON text, or NULL when it is empty.
func encStrings(list []string) (*string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// decStrings decodes what encStrings stored.
func decStrings(s *string) ([]string, error) {
	if s == nil {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(*s), &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}

func scanPromotion(sc scanner) (*promotion.Promotion, error) {
	var (
		p                                promotion.Promotion
		wakeAt, startedAt, finishedAt    *string
		createdAt, updatedAt, leaseUntil string
		kind, state, phase               string
		gates                            *string
		reviewedBy, reviewedAt, comment  *string
		err                              error
	)
	if err := sc.Scan(&p.ID, &p.Seq, &p.Pipeline, &p.Environment, &kind, &p.ReleaseID, &p.ReleaseVersion,
		&p.Revision, &state, &p.Reason, &p.Actor, &p.Forced, &p.RollbackID, &p.RollbackVersion,
		&phase, &p.Cursor.Index, &p.Cursor.Attempt, &p.Cursor.Failures, &wakeAt, &p.Message,
		&createdAt, &updatedAt, &startedAt, &finishedAt, &p.Owner, &leaseUntil,
		&p.Expedited, &p.OverrideWindow, &gates, &reviewedBy, &reviewedAt, &comment, &p.Version); err != nil {
		return nil, err
	}
	p.Kind = promotion.Kind(kind)
	p.State = promotion.State(state)
	p.Cursor.Phase = promotion.Phase(phase)
	if p.Gates, err = decGates(gates); err != nil {
		return nil, fmt.Errorf("promotion %s: decode gates: %w", p.ID, err)
	}
	if reviewedAt != nil {
		p.Review = &promotion.Review{}
		if reviewedBy != nil {
			p.Review.By = *reviewedBy
		}
		if comment != nil {
			p.Review.Comment = *comment
		}
		if p.Review.At, err = decTime(*reviewedAt); err != nil {
			return nil, err
		}
	}
	if p.WakeAt, err = decTimePtr(wakeAt); err != nil {
		return nil, err
	}
	if p.CreatedAt, err = decTime(createdAt); err != nil {
		return nil, err
	}
	if p.UpdatedAt, err = decTime(updatedAt); err != nil {
		return nil, err
	}
	if p.StartedAt, err = decTimePtr(startedAt); err != nil {
		return nil, err
	}
	if p.FinishedAt, err = decTimePtr(finishedAt); err != nil {
		return nil, err
	}
	if p.LeaseUntil, err = decTime(leaseUntil); err != nil {
		return nil, err
	}
	return &p, nil
}

// promotionValues returns the stored columns of p after id and seq, in the
// order of promotionColumns, without version.
func promotionValues(p *promotion.Promotion) ([]any, error) {
	gates, err := encGates(p.Gates)
	if err != nil {
		return nil, fmt.Errorf("encode gates: %w", err)
	}
	var reviewedBy, reviewedAt, comment *string
	if r := p.Review; r != nil {
		by, at, c := r.By, encTime(r.At), r.Comment
		reviewedBy, reviewedAt, comment = &by, &at, &c
	}
	return []any{p.Pipeline, p.Environment, string(p.Kind), p.ReleaseID, p.ReleaseVersion, p.Revision,
		string(p.State), p.Reason, p.Actor, p.Forced, p.RollbackID, p.RollbackVersion,
		string(p.Cursor.Phase), p.Cursor.Index, p.Cursor.Attempt, p.Cursor.Failures, encTimePtr(p.WakeAt),
		p.Message, encTime(p.CreatedAt), encTime(p.UpdatedAt), encTimePtr(p.StartedAt),
		encTimePtr(p.FinishedAt), p.Owner, encTime(p.LeaseUntil),
		p.Expedited, p.OverrideWindow, gates, reviewedBy, reviewedAt, comment}, nil
}

func (t *tx) InsertPromotion(ctx context.Context, p *promotion.Promotion) error {
	if err := t.writable("insert promotion"); err != nil {
		return err
	}
	if p.ID == "" {
		return fmt.Errorf("insert promotion of %s into %s/%s: ID is required", p.ReleaseVersion, p.Pipeline, p.Environment)
	}
	values, err := promotionValues(p)
	if err != nil {
		return fmt.Errorf("insert promotion %s: %w", p.ID, err)
	}
	args := append([]any{p.ID}, values...)
	var seq int64
	err = t.queryRow(ctx, `INSERT INTO promotions (id, pipeline, environment, kind, release_id,
		release_version, revision, state, reason, actor, forced, rollback_id, rollback_version, cursor_phase,
		cursor_index, cursor_attempt, cursor_failures, wake_at, message, created_at, updated_at, started_at,
		finished_at, owner, lease_until, expedited, override_window, gates, reviewed_by, reviewed_at,
		review_comment, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
			$21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, 1)
		ON CONFLICT DO NOTHING RETURNING seq`, args...).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) || isUnique(err) {
		return fmt.Errorf("insert promotion %s: already exists: %w", p.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert promotion %s: %w", p.ID, err)
	}
	oldSeq, oldVersion := p.Seq, p.Version
	t.onRetry(func() { p.Seq, p.Version = oldSeq, oldVersion })
	p.Seq = seq
	p.Version = 1
	return nil
}

func (t *tx) UpdatePromotion(ctx context.Context, p *promotion.Promotion) error {
	if err := t.writable("update promotion"); err != nil {
		return err
	}
	values, err := promotionValues(p)
	if err != nil {
		return fmt.Errorf("update promotion %s: %w", p.ID, err)
	}
	args := append(values, p.ID, p.Version)
	tag, err := t.exec(ctx, `UPDATE promotions SET pipeline = $1, environment = $2, kind = $3,
		release_id = $4, release_version = $5, revision = $6, state = $7, reason = $8, actor = $9, forced = $10,
		rollback_id = $11, rollback_version = $12, cursor_phase = $13, cursor_index = $14, cursor_attempt = $15,
		cursor_failures = $16, wake_at = $17, message = $18, created_at = $19, updated_at = $20, started_at = $21,
		finished_at = $22, owner = $23, lease_until = $24, expedited = $25, override_window = $26, gates = $27,
		reviewed_by = $28, reviewed_at = $29, review_comment = $30, version = version + 1
		WHERE id = $31 AND version = $32`, args...)
	if err != nil {
		return fmt.Errorf("update promotion %s: %w", p.ID, err)
	}
	if tag.RowsAffected() == 0 {
		var stored int64
		err := t.queryRow(ctx, `SELECT version FROM promotions WHERE id = $1`, p.ID).Scan(&stored)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("update promotion %s: %w", p.ID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("update promotion %s: %w", p.ID, err)
		}
		return fmt.Errorf("update promotion %s: version %d is stale, stored version is %d: %w",
			p.ID, p.Version, stored, store.ErrConflict)
	}
	old := p.Version
	t.onRetry(func() { p.Version = old })
	p.Version++
	return nil
}

func (t *tx) Promotion(ctx context.Context, id string) (*promotion.Promotion, error) {
	p, err := scanPromotion(t.queryRow(ctx, `SELECT `+promotionColumns+` FROM promotions WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("promotion %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load promotion %s: %w", id, err)
	}
	return p, nil
}

// terminalStates lists the terminal states.
func terminalStates() []string {
	var out []string
	for _, s := range promotion.States {
		if s.Terminal() {
			out = append(out, string(s))
		}
	}
	return out
}

// conditions builds the WHERE clause of a query from numbered parameters.
type conditions struct {
	where []string
	args  []any
}

// add appends a condition; each "?" in cond is replaced by the next
// parameter, whose value is the next of args.
func (c *conditions) add(cond string, args ...any) {
	for _, a := range args {
		c.args = append(c.args, a)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(c.args)), 1)
	}
	c.where = append(c.where, cond)
}

// eq adds col = v unless v is empty.
func (c *conditions) eq(col, v string) {
	if v != "" {
		c.add(col+" = ?", v)
	}
}

// sql returns the WHERE clause, or "" when there are no conditions.
func (c *conditions) sql() string {
	if len(c.where) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(c.where, " AND ")
}

// limit returns a LIMIT clause with a parameter for n, or "" when n is not positive.
func (c *conditions) limit(n int) string {
	if n <= 0 {
		return ""
	}
	c.args = append(c.args, n)
	return ` LIMIT $` + strconv.Itoa(len(c.args))
}

func (t *tx) Promotions(ctx context.Context, f store.PromotionFilter) ([]promotion.Promotion, error) {
	var c conditions
	c.eq("pipeline", f.Pipeline)
	c.eq("environment", f.Environment)
	c.eq("release_id", f.ReleaseID)
	c.eq("kind", string(f.Kind))
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, s := range f.States {
			states[i] = string(s)
		}
		c.add("state = ANY(?)", states)
	}
	if f.Active {
		c.add("state <> ALL(?)", terminalStates())
	}
	if f.Unreviewed {
		c.add("(expedited OR override_window) AND reviewed_at IS NULL")
	}
	if !f.FinishedSince.IsZero() {
		c.add("finished_at >= ?", encTime(f.FinishedSince))
	}
	if !f.FinishedBefore.IsZero() {
		c.add("finished_at < ?", encTime(f.FinishedBefore))
	}
	q := `SELECT ` + promotionColumns + ` FROM promotions` + c.sql()
	if f.Ascending {
		q += ` ORDER BY seq ASC`
	} else {
		q += ` ORDER BY seq DESC`
	}
	q += c.limit(f.Limit)
	rows, err := t.query(ctx, q, c.args...)
	out, err := collect(t, rows, err, scanPromotion)
	if err != nil {
		return nil, fmt.Errorf("list promotions: %w", err)
	}
	return out, nil
}

// ---- deployments ----

func (t *tx) InsertDeployment(ctx context.Context, d *store.Deployment) error {
	if err := t.writable("insert deployment"); err != nil {
		return err
	}
	var seq int64
	err := t.queryRow(ctx, `INSERT INTO deployments (pipeline, environment, release_id,
		release_version, promotion_id, at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`,
		d.Pipeline, d.Environment, d.ReleaseID, d.ReleaseVersion, d.PromotionID, encTime(d.At)).Scan(&seq)
	if err != nil {
		return fmt.Errorf("insert deployment of %s into %s/%s: %w", d.ReleaseVersion, d.Pipeline, d.Environment, err)
	}
	old := d.Seq
	t.onRetry(func() { d.Seq = old })
	d.Seq = seq
	return nil
}

func scanDeployment(sc scanner) (*store.Deployment, error) {
	var (
		d  store.Deployment
		at string
	)
	if err := sc.Scan(&d.Seq, &d.Pipeline, &d.Environment, &d.ReleaseID, &d.ReleaseVersion, &d.PromotionID, &at); err != nil {
		return nil, err
	}
	var err error
	if d.At, err = decTime(at); err != nil {
		return nil, err
	}
	return &d, nil
}

func (t *tx) Deployments(ctx context.Context, pipelineName, env string, limit int) ([]store.Deployment, error) {
	c := conditions{args: []any{pipelineName, env}}
	q := `SELECT seq, pipeline, environment, release_id, release_version, promotion_id, at FROM deployments
		WHERE pipeline = $1 AND environment = $2 ORDER BY seq DESC` + c.limit(limit)
	rows, err := t.query(ctx, q, c.args...)
	out, err := collect(t, rows, err, scanDeployment)
	if err != nil {
		return nil, fmt.Errorf("list deployments of %s/%s: %w", pipelineName, env, err)
	}
	return out, nil
}

// ---- step runs and logs ----

const stepRunColumns = `promotion_id, phase, idx, attempt, name, state, exit_code, error, pid, pid_start,
	owner, idempotency_key, started_at, finished_at`

func scanStepRun(sc scanner) (*promotion.StepRun, error) {
	var (
		s            promotion.StepRun
		phase, state string
		exitCode     *int
		pid          int64
		pidStart     int64
		startedAt    string
		finishedAt   *string
		err          error
	)
	if err := sc.Scan(&s.PromotionID, &phase, &s.Index, &s.Attempt, &s.Name, &state, &exitCode, &s.Error,
		&pid, &pidStart, &s.Owner, &s.IdempotencyKey, &startedAt, &finishedAt); err != nil {
		return nil, err
	}
	s.Phase = promotion.Phase(phase)
	s.State = promotion.StepState(state)
	s.ExitCode = exitCode
	s.PID = int(pid)
	s.PIDStart = uint64(pidStart)
	if s.StartedAt, err = decTime(startedAt); err != nil {
		return nil, err
	}
	if s.FinishedAt, err = decTimePtr(finishedAt); err != nil {
		return nil, err
	}
	return &s, nil
}

// stepRunName names a step attempt in errors.
func stepRunName(s *promotion.StepRun) string {
	return fmt.Sprintf("step %s[%d] attempt %d of promotion %s", s.Phase, s.Index, s.Attempt, s.PromotionID)
}

// promotionExists reports whether the promotion exists, for telling why an
// insert that depends on it stored nothing.
func (t *tx) promotionExists(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := t.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM promotions WHERE id = $1)`, id).Scan(&ok)
	return ok, err
}

// InsertStepRun checks in its statement that the promotion exists and that
// the attempt does not, so that refusing the insert does not abort the
// transaction.
func (t *tx) InsertStepRun(ctx context.Context, s *promotion.StepRun) error {
	if err := t.writable("insert step run"); err != nil {
		return err
	}
	tag, err := t.exec(ctx, `INSERT INTO step_runs (`+stepRunColumns+`)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
		WHERE EXISTS (SELECT 1 FROM promotions WHERE id = $1)
		ON CONFLICT DO NOTHING`,
		s.PromotionID, string(s.Phase), s.Index, s.Attempt, s.Name, string(s.State), s.ExitCode,
		s.Error, int64(s.PID), int64(s.PIDStart), s.Owner, s.IdempotencyKey, encTime(s.StartedAt), encTimePtr(s.FinishedAt))
	switch {
	case isUnique(err):
		return fmt.Errorf("insert %s: already exists: %w", stepRunName(s), store.ErrConflict)
	case isForeignKey(err):
		return fmt.Errorf("insert %s: promotion %s: %w", stepRunName(s), s.PromotionID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("insert %s: %w", stepRunName(s), err)
	case tag.RowsAffected() == 0:
		exists, err := t.promotionExists(ctx, s.PromotionID)
		switch {
		case err != nil:
			return fmt.Errorf("insert %s: %w", stepRunName(s), err)
		case !exists:
			return fmt.Errorf("insert %s: promotion %s: %w", stepRunName(s), s.PromotionID, store.ErrNotFound)
		}
		return fmt.Errorf("insert %s: already exists: %w", stepRunName(s), store.ErrConflict)
	}
	return nil
}

func (t *tx) UpdateStepRun(ctx context.Context, s *promotion.StepRun) error {
	if err := t.writable("update step run"); err != nil {
		return err
	}
	tag, err := t.exec(ctx, `UPDATE step_runs SET name = $1, state = $2, exit_code = $3, error = $4,
		pid = $5, pid_start = $6, owner = $7, idempotency_key = $8, started_at = $9, finished_at = $10
		WHERE promotion_id = $11 AND phase = $12 AND idx = $13 AND attempt = $14`,
		s.Name, string(s.State), s.ExitCode, s.Error, int64(s.PID), int64(s.PIDStart), s.Owner,
		s.IdempotencyKey, encTime(s.StartedAt), encTimePtr(s.FinishedAt),
		s.PromotionID, string(s.Phase), s.Index, s.Attempt)
	if err != nil {
		return fmt.Errorf("update %s: %w", stepRunName(s), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update %s: %w", stepRunName(s), store.ErrNotFound)
	}
	return nil
}

func (t *tx) stepRuns(ctx context.Context, what, where string, args ...any) ([]promotion.StepRun, error) {
	rows, err := t.query(ctx, `SELECT `+stepRunColumns+` FROM step_runs WHERE `+where+`
		ORDER BY started_at, seq`, args...)
	out, err := collect(t, rows, err, scanStepRun)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

func (t *tx) StepRuns(ctx context.Context, promotionID string) ([]promotion.StepRun, error) {
	return t.stepRuns(ctx, "step runs of promotion "+promotionID, "promotion_id = $1", promotionID)
}

func (t *tx) RunningStepRuns(ctx context.Context) ([]promotion.StepRun, error) {
	return t.stepRuns(ctx, "running step runs", "state = $1", string(promotion.StepRunning))
}

// AppendStepLog checks in its statement that the promotion exists, so that
// refusing the chunk does not abort the transaction.
func (t *tx) AppendStepLog(ctx context.Context, c *store.LogChunk) error {
	if err := t.writable("append step log"); err != nil {
		return err
	}
	var seq int64
	err := t.queryRow(ctx, `INSERT INTO step_logs (promotion_id, phase, idx, attempt, data, at)
		SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM promotions WHERE id = $1)
		RETURNING seq`,
		c.PromotionID, string(c.Phase), c.Index, c.Attempt, nullBytes(c.Data), encTime(c.At)).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) || isForeignKey(err) {
		return fmt.Errorf("append step log of promotion %s: %w", c.PromotionID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("append step log of promotion %s: %w", c.PromotionID, err)
	}
	old := c.Seq
	t.onRetry(func() { c.Seq = old })
	c.Seq = seq
	return nil
}

func scanLogChunk(sc scanner) (*store.LogChunk, error) {
	var (
		c         store.LogChunk
		phase, at string
	)
	if err := sc.Scan(&c.Seq, &c.PromotionID, &phase, &c.Index, &c.Attempt, &c.Data, &at); err != nil {
		return nil, err
	}
	c.Phase = promotion.Phase(phase)
	var err error
	if c.At, err = decTime(at); err != nil {
		return nil, err
	}
	return &c, nil
}

func (t *tx) StepLogs(ctx context.Context, promotionID string) ([]store.LogChunk, error) {
	rows, err := t.query(ctx, `SELECT seq, promotion_id, phase, idx, attempt, data, at FROM step_logs
		WHERE promotion_id = $1 ORDER BY seq`, promotionID)
	out, err := collect(t, rows, err, scanLogChunk)
	if err != nil {
		return nil, fmt.Errorf("list step logs of promotion %s: %w", promotionID, err)
	}
	return out, nil
}

// ---- audit ----

// AppendAudit validates e at once, but writes it, and sets e.Seq, only when
// the transaction is about to commit, or when it next reads the audit log
// (AuditEvents): numbering events locks the audit log's counter until the
// transaction ends, and this keeps that lock as short as it can be. What is
// written is e as it was when appended.
func (t *tx) AppendAudit(ctx context.Context, e *audit.Event) error {
	if err := t.writable("append audit event"); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	c := *e
	c.Details = bytes.Clone(e.Details)
	t.pending = append(t.pending, pendingEvent{e: c, dst: e})
	return nil
}

// appendEvent is the statement that appends one audit event: it takes the
// event's seq from the audit_head row, whose lock the transaction then holds
// until it ends, and computes its hash there from the head's hash, as
// audit.Parts.Hash does (the parts come from Ferry, which checks the result).
const appendEvent = `WITH head AS (
	UPDATE audit_head SET seq = seq + 1, prev_hash = hash,
		hash = encode(sha256(convert_to(hash, 'UTF8') || $1::bytea || convert_to(hash, 'UTF8') || $2::bytea
			|| convert_to((seq + 1)::text, 'UTF8') || $3::bytea), 'hex')
	WHERE id = 1 RETURNING seq, prev_hash, hash)
INSERT INTO audit_events (seq, time, actor, action, subject, promotion_id, reason, details, prev_hash, hash)
SELECT head.seq, $4, $5, $6, $7, $8, $9, $10, head.prev_hash, head.hash FROM head
RETURNING seq, prev_hash, hash`

// flushAudit writes the pending audit events in one round trip, each linked
// to the chain's head by appendEvent: the events of concurrent transactions
// are numbered and chained in commit order, and a rolled-back transaction
// leaves no gap. Ferry checks each hash the database computed against its
// own; then it stores the checkpoints due, in another round trip (once
// every Checkpoints.Every events).
func (t *tx) flushAudit(ctx context.Context) error {
	if len(t.pending) == 0 {
		return nil
	}
	parts := make([]audit.Parts, len(t.pending))
	var batch pgx.Batch
	for i := range t.pending {
		e := &t.pending[i].e
		var err error
		if parts[i], err = audit.CanonicalParts(e); err != nil {
			return fmt.Errorf("append audit event %s on %s: %w", e.Action, e.Subject, err)
		}
		var details *string
		if len(e.Details) > 0 {
			s := string(e.Details)
			details = &s
		}
		batch.Queue(appendEvent, parts[i].A, parts[i].B, parts[i].C,
			encTime(e.Time), e.Actor, e.Action, e.Subject, e.PromotionID, e.Reason, details)
	}
	res := t.tx.SendBatch(ctx, &batch)
	for i := range t.pending {
		e := &t.pending[i].e
		if err := res.QueryRow().Scan(&e.Seq, &e.PrevHash, &e.Hash); err != nil {
			res.Close()
			return fmt.Errorf("append audit event %s on %s: %w", e.Action, e.Subject, t.note(err))
		}
		if want := parts[i].Hash(e.Seq, e.PrevHash); e.Hash != want {
			res.Close()
			return fmt.Errorf("append audit event %s on %s: the database computed hash %s for seq %d, Ferry %s",
				e.Action, e.Subject, e.Hash, e.Seq, want)
		}
	}
	if err := res.Close(); err != nil {
		return fmt.Errorf("append audit events: %w", t.note(err))
	}
	for _, p := range t.pending {
		if !t.checkpoints.Due(p.e.Seq) {
			continue
		}
		c := t.checkpoints.Signer.Sign(audit.Head{Seq: p.e.Seq, Hash: p.e.Hash}, t.now())
		if err := t.PutAuditCheckpoint(ctx, &c); err != nil {
			return fmt.Errorf("append audit events: %w", err)
		}
	}
	for _, p := range t.pending {
		dst := p.dst
		old := *dst
		t.onRetry(func() { dst.Seq, dst.PrevHash, dst.Hash = old.Seq, old.PrevHash, old.Hash })
		dst.Seq, dst.PrevHash, dst.Hash = p.e.Seq, p.e.PrevHash, p.e.Hash
	}
	t.pending = nil
	return nil
}

// AuditHead first writes the events this transaction appended.
func (t *tx) AuditHead(ctx context.Context) (audit.Head, error) {
	if err := t.flushAudit(ctx); err != nil {
		return audit.Head{}, fmt.Errorf("read audit head: %w", err)
	}
	var h audit.Head
	if err := t.queryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&h.Seq, &h.Hash); err != nil {
		return audit.Head{}, fmt.Errorf("read audit head: %w", err)
	}
	return h, nil
}

// PutAuditCheckpoint checks for an existing checkpoint of the seq in its
// statement, so that refusing it does not abort the transaction.
func (t *tx) PutAuditCheckpoint(ctx context.Context, c *audit.Checkpoint) error {
	if err := t.writable("put audit checkpoint"); err != nil {
		return err
	}
	tag, err := t.exec(ctx, `INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING`,
		c.Seq, c.Hash, encTime(c.Time), c.KeyID, c.Signature)
	switch {
	case err == nil && tag.RowsAffected() == 0:
		return fmt.Errorf("put audit checkpoint of seq %d: one exists: %w", c.Seq, store.ErrConflict)
	case err != nil:
		return fmt.Errorf("put audit checkpoint of seq %d: %w", c.Seq, err)
	}
	return nil
}

func scanCheckpoint(sc scanner) (*audit.Checkpoint, error) {
	var (
		c  audit.Checkpoint
		at string
	)
	if err := sc.Scan(&c.Seq, &c.Hash, &at, &c.KeyID, &c.Signature); err != nil {
		return nil, err
	}
	var err error
	if c.Time, err = decTime(at); err != nil {
		return nil, err
	}
	return &c, nil
}

func (t *tx) AuditCheckpoints(ctx context.Context, from, to int64) ([]audit.Checkpoint, error) {
	if to <= 0 {
		to = math.MaxInt64
	}
	rows, err := t.query(ctx, `SELECT seq, hash, time, key_id, signature FROM audit_checkpoints
		WHERE seq >= $1 AND seq <= $2 ORDER BY seq`, from, to)
	out, err := collect(t, rows, err, scanCheckpoint)
	if err != nil {
		return nil, fmt.Errorf("list audit checkpoints: %w", err)
	}
	return out, nil
}

func scanEvent(sc scanner) (*audit.Event, error) {
	var (
		e       audit.Event
		at      string
		details *string
	)
	if err := sc.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Subject, &e.PromotionID, &e.Reason,
		&details, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	var err error
	if e.Time, err = decTime(at); err != nil {
		return nil, err
	}
	if details != nil {
		e.Details = json.RawMessage(*details)
	}
	return &e, nil
}

// AuditEvents first writes the events this transaction appended, so that it
// reads them.
func (t *tx) AuditEvents(ctx context.Context, f store.AuditFilter) ([]audit.Event, error) {
	if err := t.flushAudit(ctx); err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	var c conditions
	c.eq("promotion_id", f.PromotionID)
	c.eq("actor", f.Actor)
	c.eq("action", f.Action)
	if !f.Since.IsZero() {
		c.add("time >= ?", encTime(f.Since))
	}
	if !f.Until.IsZero() {
		c.add("time < ?", encTime(f.Until))
	}
	if f.AfterSeq > 0 {
		c.add("seq > ?", f.AfterSeq)
	}
	q := `SELECT seq, time, actor, action, subject, promotion_id, reason, details, prev_hash, hash FROM audit_events` +
		c.sql() + ` ORDER BY seq` + c.limit(f.Limit)
	rows, err := t.query(ctx, q, c.args...)
	out, err := collect(t, rows, err, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return out, nil
}

// ---- idempotency ----

func (t *tx) Idempotency(ctx context.Context, key string) (*store.IdempotencyRecord, error) {
	var (
		r         store.IdempotencyRecord
		createdAt string
	)
	err := t.queryRow(ctx, `SELECT key, request_hash, status, content_type, body, created_at
		FROM idempotency WHERE key = $1`, key).Scan(&r.Key, &r.RequestHash, &r.Status, &r.ContentType, &r.Body, &createdAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("idempotency key %q: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load idempotency key %q: %w", key, err)
	}
	if r.CreatedAt, err = decTime(createdAt); err != nil {
		return nil, fmt.Errorf("load idempotency key %q: %w", key, err)
	}
	return &r, nil
}

func (t *tx) PutIdempotency(ctx context.Context, r *store.IdempotencyRecord) error {
	if err := t.writable("put idempotency record"); err != nil {
		return err
	}
	tag, err := t.exec(ctx, `INSERT INTO idempotency (key, request_hash, status, content_type, body, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		r.Key, r.RequestHash, r.Status, r.ContentType, nullBytes(r.Body), encTime(r.CreatedAt))
	if err == nil && tag.RowsAffected() == 0 || isUnique(err) {
		return fmt.Errorf("put idempotency key %q: already used: %w", r.Key, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put idempotency key %q: %w", r.Key, err)
	}
	return nil
}

// ---- approvals ----

// PutApproval checks in its statement that the promotion exists, so that
// refusing the decision does not abort the transaction. A decision replacing
// the user's earlier one takes a new seq, so it sorts as inserted now.
func (t *tx) PutApproval(ctx context.Context, a *promotion.Approval) error {
	if err := t.writable("put approval"); err != nil {
		return err
	}
	roles, err := encStrings(a.Roles)
	if err != nil {
		return fmt.Errorf("put approval of %s on promotion %s: encode roles: %w", a.User, a.PromotionID, err)
	}
	tag, err := t.exec(ctx, `INSERT INTO approvals (promotion_id, user_name, decision, comment, roles,
		release_digest, revision, at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM promotions WHERE id = $1)
		ON CONFLICT (promotion_id, user_name) DO UPDATE SET seq = DEFAULT, decision = excluded.decision,
			comment = excluded.comment, roles = excluded.roles, release_digest = excluded.release_digest,
			revision = excluded.revision, at = excluded.at`,
		a.PromotionID, a.User, string(a.Decision), a.Comment, roles, a.ReleaseDigest, a.Revision, encTime(a.At))
	switch {
	case isForeignKey(err) || err == nil && tag.RowsAffected() == 0:
		return fmt.Errorf("put approval of %s: promotion %s: %w", a.User, a.PromotionID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("put approval of %s on promotion %s: %w", a.User, a.PromotionID, err)
	}
	return nil
}

func scanApproval(sc scanner) (*promotion.Approval, error) {
	var (
		a            promotion.Approval
		decision, at string
		roles        *string
		err          error
	)
	if err := sc.Scan(&a.PromotionID, &a.User, &decision, &a.Comment, &roles, &a.ReleaseDigest,
		&a.Revision, &at); err != nil {
		return nil, err
	}
	a.Decision = promotion.Decision(decision)
	if a.Roles, err = decStrings(roles); err != nil {
		return nil, fmt.Errorf("approval of %s: decode roles: %w", a.User, err)
	}
	if a.At, err = decTime(at); err != nil {
		return nil, err
	}
	return &a, nil
}

func (t *tx) Approvals(ctx context.Context, promotionID string) ([]promotion.Approval, error) {
	rows, err := t.query(ctx, `SELECT promotion_id, user_name, decision, comment, roles, release_digest,
		revision, at FROM approvals WHERE promotion_id = $1 ORDER BY at, seq`, promotionID)
	out, err := collect(t, rows, err, scanApproval)
	if err != nil {
		return nil, fmt.Errorf("list approvals of promotion %s: %w", promotionID, err)
	}
	return out, nil
}
