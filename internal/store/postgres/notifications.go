package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-dev/ferry/internal/store"
)

const notificationColumns = `seq, promotion_id, thread_seq, dedup_key, event, endpoint, payload, state, attempts,
	last_error, created_at, last_attempt_at, finished_at`

func scanNotification(sc scanner) (*store.Notification, error) {
	var (
		n                   store.Notification
		endpoint, payload   string
		state, created      string
		lastAttempt, finish *string
	)
	if err := sc.Scan(&n.Seq, &n.PromotionID, &n.ThreadSeq, &n.Key, &n.Event, &endpoint, &payload, &state, &n.Attempts,
		&n.LastError, &created, &lastAttempt, &finish); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(endpoint), &n.Endpoint); err != nil {
		return nil, fmt.Errorf("notification %d: decode endpoint: %w", n.Seq, err)
	}
	n.Payload = json.RawMessage(payload)
	n.State = store.NotificationState(state)
	var err error
	if n.CreatedAt, err = decTime(created); err != nil {
		return nil, err
	}
	if n.LastAttemptAt, err = decTimePtr(lastAttempt); err != nil {
		return nil, err
	}
	if n.FinishedAt, err = decTimePtr(finish); err != nil {
		return nil, err
	}
	return &n, nil
}

// EnqueueNotification locks the thread's row before it looks for the key,
// so that enqueues into one thread run one after the other and number the
// thread without gaps.
func (t *tx) EnqueueNotification(ctx context.Context, n *store.Notification) (bool, error) {
	if err := t.writable("enqueue notification"); err != nil {
		return false, err
	}
	name := n.Endpoint.Name
	what := fmt.Sprintf("enqueue %s notification %s of promotion %s", n.Event, name, n.PromotionID)
	if !json.Valid(n.Payload) {
		return false, fmt.Errorf("%s: the payload is not JSON", what)
	}
	endpoint, err := json.Marshal(n.Endpoint)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := t.exec(ctx, `INSERT INTO notification_threads (promotion_id, name, last_seq, pending, next_attempt_at)
		SELECT $1, $2, 0, 0, $3 WHERE EXISTS (SELECT 1 FROM promotions WHERE id = $1)
		ON CONFLICT DO NOTHING`, n.PromotionID, name, encTime(n.CreatedAt)); err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	var last int
	err = t.queryRow(ctx, `SELECT last_seq FROM notification_threads WHERE promotion_id = $1 AND name = $2 FOR UPDATE`,
		n.PromotionID, name).Scan(&last)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, fmt.Errorf("%s: promotion %s: %w", what, n.PromotionID, store.ErrNotFound)
	case err != nil:
		return false, fmt.Errorf("%s: %w", what, err)
	}
	var dup bool
	if err := t.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM notifications WHERE promotion_id = $1 AND name = $2 AND dedup_key = $3)`,
		n.PromotionID, name, n.Key).Scan(&dup); err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	if dup {
		return false, nil
	}
	if _, err := t.exec(ctx, `UPDATE notification_threads SET last_seq = $3, pending = pending + 1
		WHERE promotion_id = $1 AND name = $2`, n.PromotionID, name, last+1); err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	var seq int64
	err = t.queryRow(ctx, `INSERT INTO notifications (promotion_id, name, thread_seq, dedup_key, event, endpoint, payload,
		state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq`,
		n.PromotionID, name, last+1, n.Key, n.Event, string(endpoint), string(n.Payload),
		string(store.NotificationPending), encTime(n.CreatedAt)).Scan(&seq)
	switch {
	case isUnique(err):
		return false, fmt.Errorf("%s: %w", what, store.ErrConflict)
	case err != nil:
		return false, fmt.Errorf("%s: %w", what, err)
	}
	oldSeq, oldThreadSeq, oldState := n.Seq, n.ThreadSeq, n.State
	t.onRetry(func() { n.Seq, n.ThreadSeq, n.State = oldSeq, oldThreadSeq, oldState })
	n.Seq, n.ThreadSeq, n.State = seq, last+1, store.NotificationPending
	return true, nil
}

// ClaimNotifications locks the threads it claims with FOR UPDATE SKIP
// LOCKED: a thread another transaction is claiming or enqueueing into is
// left for the next round. A thread claimed and committed since the
// statement began is checked again once locked (its claim_until has moved),
// so it is not claimed twice.
func (t *tx) ClaimNotifications(ctx context.Context, owner string, now, until time.Time, limit int) ([]store.Notification, error) {
	if err := t.writable("claim notifications"); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []store.Notification{}, nil
	}
	rows, err := t.query(ctx, `WITH claimed AS (
			UPDATE notification_threads SET claimed_by = $1, claim_until = $2
			WHERE (promotion_id, name) IN (
				SELECT promotion_id, name FROM notification_threads
				WHERE pending > 0 AND next_attempt_at <= $3 AND claim_until < $3
				ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)
			RETURNING promotion_id, name)
		SELECT `+notificationColumns+` FROM notifications n
		WHERE n.state = 'pending' AND (n.promotion_id, n.name) IN (SELECT promotion_id, name FROM claimed)
		ORDER BY n.seq`,
		owner, encTime(until), encTime(now), limit)
	out, err := collect(t, rows, err, scanNotification)
	if err != nil {
		return nil, fmt.Errorf("claim notifications for %s: %w", owner, err)
	}
	return out, nil
}

func (t *tx) RecordDelivery(ctx context.Context, d *store.Delivery) error {
	if err := t.writable("record delivery"); err != nil {
		return err
	}
	what := fmt.Sprintf("record delivery of notifications %s of promotion %s", d.Name, d.PromotionID)
	at := encTime(d.At)
	for _, u := range []struct {
		seqs     []int64
		state    store.NotificationState
		err      string
		finished *string
	}{
		{d.Delivered, store.NotificationDelivered, "", &at},
		{d.Retry, store.NotificationPending, d.Error, nil},
		{d.Failed, store.NotificationFailed, d.Error, &at},
	} {
		if len(u.seqs) == 0 {
			continue
		}
		if _, err := t.exec(ctx, `UPDATE notifications SET state = $1, attempts = attempts + 1, last_attempt_at = $2,
			last_error = CASE WHEN $3 = '' THEN last_error ELSE $3 END, finished_at = $4
			WHERE promotion_id = $5 AND name = $6 AND state = 'pending' AND seq = ANY($7)`,
			string(u.state), at, u.err, u.finished, d.PromotionID, d.Name, u.seqs); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	next := at
	if len(d.Retry) > 0 {
		next = encTime(d.RetryAt)
	}
	if _, err := t.exec(ctx, `UPDATE notification_threads SET
			pending = (SELECT count(*) FROM notifications n WHERE n.promotion_id = $3 AND n.name = $4 AND n.state = 'pending'),
			next_attempt_at = CASE WHEN claimed_by = $1 THEN $2 ELSE next_attempt_at END,
			claim_until = CASE WHEN claimed_by = $1 THEN '' ELSE claim_until END,
			claimed_by = CASE WHEN claimed_by = $1 THEN '' ELSE claimed_by END
		WHERE promotion_id = $3 AND name = $4`,
		d.Owner, next, d.PromotionID, d.Name); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (t *tx) Notifications(ctx context.Context, promotionID string) ([]store.Notification, error) {
	rows, err := t.query(ctx, `SELECT `+notificationColumns+` FROM notifications WHERE promotion_id = $1 ORDER BY seq`, promotionID)
	out, err := collect(t, rows, err, scanNotification)
	if err != nil {
		return nil, fmt.Errorf("list notifications of %s: %w", promotionID, err)
	}
	return out, nil
}
