package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
)

// tx implements store.Tx on one SQLite transaction.
type tx struct {
	tx       *sql.Tx
	stmts    *stmtCache
	now      func() time.Time
	readOnly bool
	// checkpoints configures the checkpoints AppendAudit signs.
	checkpoints *store.Checkpoints
	// head is the audit chain's head once read or moved in this transaction.
	head *audit.Head
}

// stmt returns query prepared on t's connection, from the cache of its
// database once it has been seen: parsing SQL is a large share of the cost
// of the engine's small transactions.
func (t *tx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s := t.stmts.get(query); s != nil {
		return t.tx.StmtContext(ctx, s), nil
	}
	return t.tx.PrepareContext(ctx, query)
}

func (t *tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (t *tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// queryRow is QueryRowContext through the statement cache; a preparation
// error surfaces from Scan.
func (t *tx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return t.tx.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

var _ store.Tx = (*tx)(nil)

// writable returns an error naming op when t is a View transaction.
func (t *tx) writable(op string) error {
	if t.readOnly {
		return fmt.Errorf("%s: %w", op, errReadOnly)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// timeLayout writes times in UTC with a fixed number of fractional digits, so
// that stored times compare correctly as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func encTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func encTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return encTime(*t)
}

func decTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func decTimePtr(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := decTime(s.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// nullBytes stores an empty slice as NULL.
func nullBytes(b []byte) any {
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
	latest, err := t.Revision(ctx, rev.Pipeline, 0)
	switch {
	case errors.Is(err, store.ErrNotFound):
		latest = nil
	case err != nil:
		return false, fmt.Errorf("put revision: %w", err)
	}
	if latest != nil && latest.Digest == rev.Digest {
		*rev = *latest
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
	_, err = t.exec(ctx, `INSERT INTO revisions (`+revisionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		rev.Pipeline, number, rev.Digest, string(spec), rev.Source, encTime(createdAt), rev.CreatedBy)
	if isUnique(err) {
		return false, fmt.Errorf("put revision %d of pipeline %s: %w", number, rev.Pipeline, store.ErrConflict)
	}
	if err != nil {
		return false, fmt.Errorf("put revision %d of pipeline %s: %w", number, rev.Pipeline, err)
	}
	rev.Number = number
	rev.CreatedAt = createdAt
	return true, nil
}

func (t *tx) Revision(ctx context.Context, name string, number int) (*pipeline.Revision, error) {
	var row *sql.Row
	if number == 0 {
		row = t.queryRow(ctx, `SELECT `+revisionColumns+` FROM revisions
			WHERE pipeline = ? ORDER BY number DESC LIMIT 1`, name)
	} else {
		row = t.queryRow(ctx, `SELECT `+revisionColumns+` FROM revisions
			WHERE pipeline = ? AND number = ?`, name, number)
	}
	r, err := scanRevision(row)
	if errors.Is(err, sql.ErrNoRows) {
		if number == 0 {
			return nil, fmt.Errorf("pipeline %s: %w", name, store.ErrNotFound)
		}
		return nil, fmt.Errorf("revision %d of pipeline %s: %w", number, name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load revision %d of pipeline %s: %w", number, name, err)
	}
	return r, nil
}

func (t *tx) Pipelines(ctx context.Context) ([]pipeline.Revision, error) {
	rows, err := t.query(ctx, `SELECT `+revisionColumns+` FROM revisions AS r
		WHERE number = (SELECT MAX(number) FROM revisions WHERE pipeline = r.pipeline)
		ORDER BY pipeline`)
	if err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	defer rows.Close()
	out := []pipeline.Revision{}
	for rows.Next() {
		r, err := scanRevision(rows)
		if err != nil {
			return nil, fmt.Errorf("list pipelines: %w", err)
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
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
		labels     sql.NullString
		createdAt  string
		commitTime sql.NullString
	)
	if err := sc.Scan(&r.ID, &r.Pipeline, &r.Version, &artifacts, &r.Commit, &r.Source, &r.BuildURL,
		&labels, &createdAt, &r.CreatedBy, &commitTime); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(artifacts), &r.Artifacts); err != nil {
		return nil, fmt.Errorf("release %s: decode artifacts: %w", r.ID, err)
	}
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &r.Labels); err != nil {
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
	var labels any
	if r.Labels != nil {
		b, err := json.Marshal(r.Labels)
		if err != nil {
			return fmt.Errorf("insert release %s: encode labels: %w", r.ID, err)
		}
		labels = string(b)
	}
	_, err = t.exec(ctx, `INSERT INTO releases (`+releaseColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Pipeline, r.Version, string(artifacts), r.Commit, r.Source, r.BuildURL, labels,
		encTime(r.CreatedAt), r.CreatedBy, encTimePtr(r.CommitTime))
	if isUnique(err) {
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
		WHERE pipeline = ? AND version = ?`, pipelineName, version))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("release %s of pipeline %s: %w", version, pipelineName, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load release %s of pipeline %s: %w", version, pipelineName, err)
	}
	return r, nil
}

func (t *tx) ReleaseByID(ctx context.Context, id string) (*release.Release, error) {
	r, err := scanRelease(t.queryRow(ctx, `SELECT `+releaseColumns+` FROM releases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("release %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load release %s: %w", id, err)
	}
	return r, nil
}

func (t *tx) Releases(ctx context.Context, pipelineName string, limit int) ([]release.Release, error) {
	q := `SELECT ` + releaseColumns + ` FROM releases WHERE pipeline = ? ORDER BY created_at DESC, seq DESC`
	args := []any{pipelineName}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list releases of pipeline %s: %w", pipelineName, err)
	}
	defer rows.Close()
	out := []release.Release{}
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, fmt.Errorf("list releases of pipeline %s: %w", pipelineName, err)
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list releases of pipeline %s: %w", pipelineName, err)
	}
	return out, nil
}

// ---- promotions ----

// LockEnvironment does nothing beyond checking its arguments: Update
// transactions already run one at a time.
func (t *tx) LockEnvironment(ctx context.Context, pipelineName, env string) error {
	if pipelineName == "" || env == "" {
		return fmt.Errorf("lock environment %q of pipeline %q: pipeline and environment are required", env, pipelineName)
	}
	return nil
}

const promotionColumns = `id, seq, pipeline, environment, kind, release_id, release_version, revision, state,
	reason, actor, forced, rollback_id, rollback_version, cursor_phase, cursor_index, cursor_attempt,
	cursor_failures, wake_at, message, created_at, updated_at, started_at, finished_at, owner, lease_until,
	expedited, override_window, gates, reviewed_by, reviewed_at, review_comment, version`

// encGates encodes gate evaluations as JSON text with their times in UTC,
// or NULL when there are none.
func encGates(gates []promotion.GateEvaluation) (any, error) {
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
	return string(b), nil
}

// decGates decodes what encGates stored.
func decGates(s sql.NullString) ([]promotion.GateEvaluation, error) {
	if !s.Valid {
		return nil, nil
	}
	var gates []promotion.GateEvaluation
	if err := json.Unmarshal([]byte(s.String), &gates); err != nil {
		return nil, err
	}
	if len(gates) == 0 {
		return nil, nil
	}
	return gates, nil
}

// encStrings encodes a list of strings as JSON text, or NULL when it is empty.
func encStrings(list []string) (any, error) {
	if len(list) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// decStrings decodes what encStrings stored.
func decStrings(s sql.NullString) ([]string, error) {
	if !s.Valid {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(s.String), &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func scanPromotion(sc scanner) (*promotion.Promotion, error) {
	var (
		p                                 promotion.Promotion
		wakeAt, startedAt, finishedAt     sql.NullString
		createdAt, updatedAt, leaseUntil  string
		kind, state, phase                string
		forced, expedited, overrideWindow int
		gates                             sql.NullString
		reviewedBy, reviewedAt, comment   sql.NullString
		err                               error
	)
	if err := sc.Scan(&p.ID, &p.Seq, &p.Pipeline, &p.Environment, &kind, &p.ReleaseID, &p.ReleaseVersion,
		&p.Revision, &state, &p.Reason, &p.Actor, &forced, &p.RollbackID, &p.RollbackVersion,
		&phase, &p.Cursor.Index, &p.Cursor.Attempt, &p.Cursor.Failures, &wakeAt, &p.Message,
		&createdAt, &updatedAt, &startedAt, &finishedAt, &p.Owner, &leaseUntil,
		&expedited, &overrideWindow, &gates, &reviewedBy, &reviewedAt, &comment, &p.Version); err != nil {
		return nil, err
	}
	p.Kind = promotion.Kind(kind)
	p.State = promotion.State(state)
	p.Cursor.Phase = promotion.Phase(phase)
	p.Forced = forced != 0
	p.Expedited = expedited != 0
	p.OverrideWindow = overrideWindow != 0
	if p.Gates, err = decGates(gates); err != nil {
		return nil, fmt.Errorf("promotion %s: decode gates: %w", p.ID, err)
	}
	if reviewedAt.Valid {
		p.Review = &promotion.Review{By: reviewedBy.String, Comment: comment.String}
		if p.Review.At, err = decTime(reviewedAt.String); err != nil {
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

// promotionValues returns the stored columns of p after id, seq, in the order
// of promotionColumns, without version.
func promotionValues(p *promotion.Promotion) ([]any, error) {
	gates, err := encGates(p.Gates)
	if err != nil {
		return nil, fmt.Errorf("encode gates: %w", err)
	}
	var reviewedBy, reviewedAt, comment any
	if r := p.Review; r != nil {
		reviewedBy, reviewedAt, comment = r.By, encTime(r.At), r.Comment
	}
	return []any{p.Pipeline, p.Environment, string(p.Kind), p.ReleaseID, p.ReleaseVersion, p.Revision,
		string(p.State), p.Reason, p.Actor, boolInt(p.Forced), p.RollbackID, p.RollbackVersion,
		string(p.Cursor.Phase), p.Cursor.Index, p.Cursor.Attempt, p.Cursor.Failures, encTimePtr(p.WakeAt),
		p.Message, encTime(p.CreatedAt), encTime(p.UpdatedAt), encTimePtr(p.StartedAt),
		encTimePtr(p.FinishedAt), p.Owner, encTime(p.LeaseUntil),
		boolInt(p.Expedited), boolInt(p.OverrideWindow), gates, reviewedBy, reviewedAt, comment}, nil
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
	args = append(args, 1)
	var seq int64
	err = t.queryRow(ctx, `INSERT INTO promotions (id, pipeline, environment, kind, release_id,
		release_version, revision, state, reason, actor, forced, rollback_id, rollback_version, cursor_phase,
		cursor_index, cursor_attempt, cursor_failures, wake_at, message, created_at, updated_at, started_at,
		finished_at, owner, lease_until, expedited, override_window, gates, reviewed_by, reviewed_at,
		review_comment, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING seq`, args...).Scan(&seq)
	if isUnique(err) {
		return fmt.Errorf("insert promotion %s: already exists: %w", p.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert promotion %s: %w", p.ID, err)
	}
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
	res, err := t.exec(ctx, `UPDATE promotions SET pipeline = ?, environment = ?, kind = ?,
		release_id = ?, release_version = ?, revision = ?, state = ?, reason = ?, actor = ?, forced = ?,
		rollback_id = ?, rollback_version = ?, cursor_phase = ?, cursor_index = ?, cursor_attempt = ?,
		cursor_failures = ?, wake_at = ?, message = ?, created_at = ?, updated_at = ?, started_at = ?,
		finished_at = ?, owner = ?, lease_until = ?, expedited = ?, override_window = ?, gates = ?,
		reviewed_by = ?, reviewed_at = ?, review_comment = ?, version = version + 1
		WHERE id = ? AND version = ?`, args...)
	if err != nil {
		return fmt.Errorf("update promotion %s: %w", p.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update promotion %s: %w", p.ID, err)
	}
	if n == 0 {
		var stored int64
		err := t.queryRow(ctx, `SELECT version FROM promotions WHERE id = ?`, p.ID).Scan(&stored)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("update promotion %s: %w", p.ID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("update promotion %s: %w", p.ID, err)
		}
		return fmt.Errorf("update promotion %s: version %d is stale, stored version is %d: %w",
			p.ID, p.Version, stored, store.ErrConflict)
	}
	p.Version++
	return nil
}

func (t *tx) Promotion(ctx context.Context, id string) (*promotion.Promotion, error) {
	p, err := scanPromotion(t.queryRow(ctx, `SELECT `+promotionColumns+` FROM promotions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("promotion %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load promotion %s: %w", id, err)
	}
	return p, nil
}

// terminalStates lists the terminal states as SQL string literals.
func terminalStates() string {
	var b strings.Builder
	for _, s := range promotion.States {
		if s.Terminal() {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString("'" + strings.ReplaceAll(string(s), "'", "''") + "'")
		}
	}
	return b.String()
}

func (t *tx) Promotions(ctx context.Context, f store.PromotionFilter) ([]promotion.Promotion, error) {
	var (
		where []string
		args  []any
	)
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	eq("pipeline", f.Pipeline)
	eq("environment", f.Environment)
	eq("release_id", f.ReleaseID)
	eq("kind", string(f.Kind))
	if len(f.States) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(f.States)), ", ")
		where = append(where, "state IN ("+marks+")")
		for _, s := range f.States {
			args = append(args, string(s))
		}
	}
	if f.Active {
		where = append(where, "state NOT IN ("+terminalStates()+")")
	}
	if f.Unreviewed {
		where = append(where, "(expedited <> 0 OR override_window <> 0) AND reviewed_at IS NULL")
	}
	if !f.FinishedSince.IsZero() {
		where = append(where, "finished_at >= ?")
		args = append(args, encTime(f.FinishedSince))
	}
	if !f.FinishedBefore.IsZero() {
		where = append(where, "finished_at < ?")
		args = append(args, encTime(f.FinishedBefore))
	}
	q := `SELECT ` + promotionColumns + ` FROM promotions`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	if f.Ascending {
		q += ` ORDER BY seq ASC`
	} else {
		q += ` ORDER BY seq DESC`
	}
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list promotions: %w", err)
	}
	defer rows.Close()
	out := []promotion.Promotion{}
	for rows.Next() {
		p, err := scanPromotion(rows)
		if err != nil {
			return nil, fmt.Errorf("list promotions: %w", err)
		}
		out = append(out, *p)
	}
	if err := rows.Err(); err != nil {
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
		release_version, promotion_id, at) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq`,
		d.Pipeline, d.Environment, d.ReleaseID, d.ReleaseVersion, d.PromotionID, encTime(d.At)).Scan(&seq)
	if err != nil {
		return fmt.Errorf("insert deployment of %s into %s/%s: %w", d.ReleaseVersion, d.Pipeline, d.Environment, err)
	}
	d.Seq = seq
	return nil
}

func (t *tx) Deployments(ctx context.Context, pipelineName, env string, limit int) ([]store.Deployment, error) {
	q := `SELECT seq, pipeline, environment, release_id, release_version, promotion_id, at FROM deployments
		WHERE pipeline = ? AND environment = ? ORDER BY seq DESC`
	args := []any{pipelineName, env}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list deployments of %s/%s: %w", pipelineName, env, err)
	}
	defer rows.Close()
	out := []store.Deployment{}
	for rows.Next() {
		var (
			d  store.Deployment
			at string
		)
		if err := rows.Scan(&d.Seq, &d.Pipeline, &d.Environment, &d.ReleaseID, &d.ReleaseVersion, &d.PromotionID, &at); err != nil {
			return nil, fmt.Errorf("list deployments of %s/%s: %w", pipelineName, env, err)
		}
		if d.At, err = decTime(at); err != nil {
			return nil, fmt.Errorf("list deployments of %s/%s: %w", pipelineName, env, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
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
		exitCode     sql.NullInt64
		pidStart     int64
		startedAt    string
		finishedAt   sql.NullString
		err          error
	)
	if err := sc.Scan(&s.PromotionID, &phase, &s.Index, &s.Attempt, &s.Name, &state, &exitCode, &s.Error,
		&s.PID, &pidStart, &s.Owner, &s.IdempotencyKey, &startedAt, &finishedAt); err != nil {
		return nil, err
	}
	s.Phase = promotion.Phase(phase)
	s.State = promotion.StepState(state)
	if exitCode.Valid {
		c := int(exitCode.Int64)
		s.ExitCode = &c
	}
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

func exitCodeValue(c *int) any {
	if c == nil {
		return nil
	}
	return int64(*c)
}

func (t *tx) InsertStepRun(ctx context.Context, s *promotion.StepRun) error {
	if err := t.writable("insert step run"); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO step_runs (`+stepRunColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.PromotionID, string(s.Phase), s.Index, s.Attempt, s.Name, string(s.State), exitCodeValue(s.ExitCode),
		s.Error, s.PID, int64(s.PIDStart), s.Owner, s.IdempotencyKey, encTime(s.StartedAt), encTimePtr(s.FinishedAt))
	switch {
	case isUnique(err):
		return fmt.Errorf("insert %s: already exists: %w", stepRunName(s), store.ErrConflict)
	case isForeignKey(err):
		return fmt.Errorf("insert %s: promotion %s: %w", stepRunName(s), s.PromotionID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("insert %s: %w", stepRunName(s), err)
	}
	return nil
}

func (t *tx) UpdateStepRun(ctx context.Context, s *promotion.StepRun) error {
	if err := t.writable("update step run"); err != nil {
		return err
	}
	res, err := t.exec(ctx, `UPDATE step_runs SET name = ?, state = ?, exit_code = ?, error = ?,
		pid = ?, pid_start = ?, owner = ?, idempotency_key = ?, started_at = ?, finished_at = ?
		WHERE promotion_id = ? AND phase = ? AND idx = ? AND attempt = ?`,
		s.Name, string(s.State), exitCodeValue(s.ExitCode), s.Error, s.PID, int64(s.PIDStart), s.Owner,
		s.IdempotencyKey, encTime(s.StartedAt), encTimePtr(s.FinishedAt),
		s.PromotionID, string(s.Phase), s.Index, s.Attempt)
	if err != nil {
		return fmt.Errorf("update %s: %w", stepRunName(s), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update %s: %w", stepRunName(s), err)
	}
	if n == 0 {
		return fmt.Errorf("update %s: %w", stepRunName(s), store.ErrNotFound)
	}
	return nil
}

func (t *tx) stepRuns(ctx context.Context, what, where string, args ...any) ([]promotion.StepRun, error) {
	rows, err := t.query(ctx, `SELECT `+stepRunColumns+` FROM step_runs WHERE `+where+`
		ORDER BY started_at, seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	defer rows.Close()
	out := []promotion.StepRun{}
	for rows.Next() {
		s, err := scanStepRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		out = append(out, *s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

func (t *tx) StepRuns(ctx context.Context, promotionID string) ([]promotion.StepRun, error) {
	return t.stepRuns(ctx, "step runs of promotion "+promotionID, "promotion_id = ?", promotionID)
}

func (t *tx) RunningStepRuns(ctx context.Context) ([]promotion.StepRun, error) {
	return t.stepRuns(ctx, "running step runs", "state = ?", string(promotion.StepRunning))
}

func (t *tx) AppendStepLog(ctx context.Context, c *store.LogChunk) error {
	if err := t.writable("append step log"); err != nil {
		return err
	}
	var seq int64
	err := t.queryRow(ctx, `INSERT INTO step_logs (promotion_id, phase, idx, attempt, data, at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING seq`,
		c.PromotionID, string(c.Phase), c.Index, c.Attempt, nullBytes(c.Data), encTime(c.At)).Scan(&seq)
	if isForeignKey(err) {
		return fmt.Errorf("append step log of promotion %s: %w", c.PromotionID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("append step log of promotion %s: %w", c.PromotionID, err)
	}
	c.Seq = seq
	return nil
}

func (t *tx) StepLogs(ctx context.Context, promotionID string) ([]store.LogChunk, error) {
	rows, err := t.query(ctx, `SELECT seq, promotion_id, phase, idx, attempt, data, at FROM step_logs
		WHERE promotion_id = ? ORDER BY seq`, promotionID)
	if err != nil {
		return nil, fmt.Errorf("list step logs of promotion %s: %w", promotionID, err)
	}
	defer rows.Close()
	out := []store.LogChunk{}
	for rows.Next() {
		var (
			c         store.LogChunk
			phase, at string
		)
		if err := rows.Scan(&c.Seq, &c.PromotionID, &phase, &c.Index, &c.Attempt, &c.Data, &at); err != nil {
			return nil, fmt.Errorf("list step logs of promotion %s: %w", promotionID, err)
		}
		c.Phase = promotion.Phase(phase)
		if c.At, err = decTime(at); err != nil {
			return nil, fmt.Errorf("list step logs of promotion %s: %w", promotionID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list step logs of promotion %s: %w", promotionID, err)
	}
	return out, nil
}

// ---- audit ----

// AppendAudit links e to the chain's head, which this transaction holds
// since Update transactions run one at a time, inserts it, and moves the head
// to it.
func (t *tx) AppendAudit(ctx context.Context, e *audit.Event) error {
	if err := t.writable("append audit event"); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	head, err := t.AuditHead(ctx)
	if err != nil {
		return fmt.Errorf("append audit event %s on %s: %w", e.Action, e.Subject, err)
	}
	next, err := audit.Link(head, e)
	if err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	var details any
	if len(e.Details) > 0 {
		details = string(e.Details)
	}
	if _, err := t.exec(ctx, `INSERT INTO audit_events (seq, time, actor, action, subject, promotion_id,
		reason, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, encTime(e.Time), e.Actor, e.Action, e.Subject, e.PromotionID, e.Reason, details, e.PrevHash, e.Hash); err != nil {
		return fmt.Errorf("append audit event %s on %s: %w", e.Action, e.Subject, err)
	}
	if _, err := t.exec(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, next.Seq, next.Hash); err != nil {
		return fmt.Errorf("append audit event %s on %s: move head: %w", e.Action, e.Subject, err)
	}
	t.head = &next
	if t.checkpoints.Due(next.Seq) {
		c := t.checkpoints.Signer.Sign(next, t.now())
		if err := t.PutAuditCheckpoint(ctx, &c); err != nil {
			return fmt.Errorf("append audit event %s on %s: %w", e.Action, e.Subject, err)
		}
	}
	return nil
}

func (t *tx) AuditHead(ctx context.Context) (audit.Head, error) {
	if t.head != nil {
		return *t.head, nil
	}
	var h audit.Head
	if err := t.queryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&h.Seq, &h.Hash); err != nil {
		return audit.Head{}, fmt.Errorf("read audit head: %w", err)
	}
	if !t.readOnly {
		t.head = &h
	}
	return h, nil
}

func (t *tx) PutAuditCheckpoint(ctx context.Context, c *audit.Checkpoint) error {
	if err := t.writable("put audit checkpoint"); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)`,
		c.Seq, c.Hash, encTime(c.Time), c.KeyID, c.Signature)
	switch {
	case isUnique(err):
		return fmt.Errorf("put audit checkpoint of seq %d: one exists: %w", c.Seq, store.ErrConflict)
	case err != nil:
		return fmt.Errorf("put audit checkpoint of seq %d: %w", c.Seq, err)
	}
	return nil
}

func (t *tx) AuditCheckpoints(ctx context.Context, from, to int64) ([]audit.Checkpoint, error) {
	if to <= 0 {
		to = math.MaxInt64
	}
	rows, err := t.query(ctx, `SELECT seq, hash, time, key_id, signature FROM audit_checkpoints
		WHERE seq >= ? AND seq <= ? ORDER BY seq`, from, to)
	if err != nil {
		return nil, fmt.Errorf("list audit checkpoints: %w", err)
	}
	defer rows.Close()
	out := []audit.Checkpoint{}
	for rows.Next() {
		var (
			c  audit.Checkpoint
			at string
		)
		if err := rows.Scan(&c.Seq, &c.Hash, &at, &c.KeyID, &c.Signature); err != nil {
			return nil, fmt.Errorf("list audit checkpoints: %w", err)
		}
		if c.Time, err = decTime(at); err != nil {
			return nil, fmt.Errorf("list audit checkpoints: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit checkpoints: %w", err)
	}
	return out, nil
}

func (t *tx) AuditEvents(ctx context.Context, f store.AuditFilter) ([]audit.Event, error) {
	var (
		where []string
		args  []any
	)
	if f.PromotionID != "" {
		where = append(where, "promotion_id = ?")
		args = append(args, f.PromotionID)
	}
	if f.Actor != "" {
		where = append(where, "actor = ?")
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		where = append(where, "action = ?")
		args = append(args, f.Action)
	}
	if !f.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, encTime(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "time < ?")
		args = append(args, encTime(f.Until))
	}
	if f.AfterSeq > 0 {
		where = append(where, "seq > ?")
		args = append(args, f.AfterSeq)
	}
	q := `SELECT seq, time, actor, action, subject, promotion_id, reason, details, prev_hash, hash FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY seq`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	out := []audit.Event{}
	for rows.Next() {
		var (
			e       audit.Event
			at      string
			details sql.NullString
		)
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Subject, &e.PromotionID, &e.Reason,
			&details, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		if e.Time, err = decTime(at); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		if details.Valid {
			e.Details = json.RawMessage(details.String)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
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
		FROM idempotency WHERE key = ?`, key).Scan(&r.Key, &r.RequestHash, &r.Status, &r.ContentType, &r.Body, &createdAt)
	if errors.Is(err, sql.ErrNoRows) {
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
	_, err := t.exec(ctx, `INSERT INTO idempotency (key, request_hash, status, content_type, body, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, r.Key, r.RequestHash, r.Status, r.ContentType, nullBytes(r.Body), encTime(r.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("put idempotency key %q: already used: %w", r.Key, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put idempotency key %q: %w", r.Key, err)
	}
	return nil
}

// ---- approvals ----

// PutApproval replaces the user's earlier decision on the promotion, if any:
// the new decision takes a new seq, so it sorts as inserted now.
func (t *tx) PutApproval(ctx context.Context, a *promotion.Approval) error {
	if err := t.writable("put approval"); err != nil {
		return err
	}
	roles, err := encStrings(a.Roles)
	if err != nil {
		return fmt.Errorf("put approval of %s on promotion %s: encode roles: %w", a.User, a.PromotionID, err)
	}
	if _, err := t.exec(ctx, `DELETE FROM approvals WHERE promotion_id = ? AND user_name = ?`,
		a.PromotionID, a.User); err != nil {
		return fmt.Errorf("put approval of %s on promotion %s: %w", a.User, a.PromotionID, err)
	}
	_, err = t.exec(ctx, `INSERT INTO approvals (promotion_id, user_name, decision, comment, roles,
		release_digest, revision, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		a.PromotionID, a.User, string(a.Decision), a.Comment, roles, a.ReleaseDigest, a.Revision, encTime(a.At))
	if isForeignKey(err) {
		return fmt.Errorf("put approval of %s: promotion %s: %w", a.User, a.PromotionID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("put approval of %s on promotion %s: %w", a.User, a.PromotionID, err)
	}
	return nil
}

func (t *tx) Approvals(ctx context.Context, promotionID string) ([]promotion.Approval, error) {
	rows, err := t.query(ctx, `SELECT promotion_id, user_name, decision, comment, roles, release_digest,
		revision, at FROM approvals WHERE promotion_id = ? ORDER BY at, seq`, promotionID)
	if err != nil {
		return nil, fmt.Errorf("list approvals of promotion %s: %w", promotionID, err)
	}
	defer rows.Close()
	out := []promotion.Approval{}
	for rows.Next() {
		var (
			a            promotion.Approval
			decision, at string
			roles        sql.NullString
		)
		if err := rows.Scan(&a.PromotionID, &a.User, &decision, &a.Comment, &roles, &a.ReleaseDigest,
			&a.Revision, &at); err != nil {
			return nil, fmt.Errorf("list approvals of promotion %s: %w", promotionID, err)
		}
		a.Decision = promotion.Decision(decision)
		if a.Roles, err = decStrings(roles); err != nil {
			return nil, fmt.Errorf("list approvals of promotion %s: decode roles of %s: %w", promotionID, a.User, err)
		}
		if a.At, err = decTime(at); err != nil {
			return nil, fmt.Errorf("list approvals of promotion %s: %w", promotionID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list approvals of promotion %s: %w", promotionID, err)
	}
	return out, nil
}
