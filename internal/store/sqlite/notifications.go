package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
)

const notificationColumns = `seq, promotion_id, thread_seq, dedup_key, event, endpoint, payload, state, attempts,
	last_error, created_at, last_attempt_at, finished_at`

func scanNotification(sc scanner) (*store.Notification, error) {
	var (
		n                   store.Notification
		endpoint, payload   string
		state, created      string
		lastAttempt, finish sql.NullString
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
	_, err = t.exec(ctx, `INSERT INTO notification_threads (promotion_id, name, last_seq, pending, next_attempt_at)
		VALUES (?, ?, 0, 0, ?) ON CONFLICT DO NOTHING`, n.PromotionID, name, encTime(n.CreatedAt))
	switch {
	case isForeignKey(err):
		return false, fmt.Errorf("%s: promotion %s: %w", what, n.PromotionID, store.ErrNotFound)
	case err != nil:
		return false, fmt.Errorf("%s: %w", what, err)
	}
	var dup int
	err = t.queryRow(ctx, `SELECT 1 FROM notifications WHERE promotion_id = ? AND name = ? AND dedup_key = ?`,
		n.PromotionID, name, n.Key).Scan(&dup)
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("%s: %w", what, err)
	}
	var threadSeq int
	if err := t.queryRow(ctx, `UPDATE notification_threads SET last_seq = last_seq + 1, pending = pending + 1
		WHERE promotion_id = ? AND name = ? RETURNING last_seq`, n.PromotionID, name).Scan(&threadSeq); err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	var seq int64
	err = t.queryRow(ctx, `INSERT INTO notifications (promotion_id, name, thread_seq, dedup_key, event, endpoint, payload,
		state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
		n.PromotionID, name, threadSeq, n.Key, n.Event, string(endpoint), string(n.Payload),
		string(store.NotificationPending), encTime(n.CreatedAt)).Scan(&seq)
	switch {
	case isUnique(err):
		return false, fmt.Errorf("%s: %w", what, store.ErrConflict)
	case err != nil:
		return false, fmt.Errorf("%s: %w", what, err)
	}
	n.Seq, n.ThreadSeq, n.State = seq, threadSeq, store.NotificationPending
	return true, nil
}

// ClaimNotifications needs no row locks: Update transactions run one at a
// time on SQLite.
func (t *tx) ClaimNotifications(ctx context.Context, owner string, now, until time.Time, limit int) ([]store.Notification, error) {
	if err := t.writable("claim notifications"); err != nil {
		return nil, err
	}
	out := []store.Notification{}
	if limit <= 0 {
		return out, nil
	}
	rows, err := t.query(ctx, `SELECT promotion_id, name FROM notification_threads
		WHERE pending > 0 AND next_attempt_at <= ? AND claim_until < ?
		ORDER BY next_attempt_at LIMIT ?`, encTime(now), encTime(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claim notifications for %s: %w", owner, err)
	}
	var threads [][2]string
	for rows.Next() {
		var th [2]string
		if err := rows.Scan(&th[0], &th[1]); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim notifications for %s: %w", owner, err)
		}
		threads = append(threads, th)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim notifications for %s: %w", owner, err)
	}
	for _, th := range threads {
		if _, err := t.exec(ctx, `UPDATE notification_threads SET claimed_by = ?, claim_until = ? WHERE promotion_id = ? AND name = ?`,
			owner, encTime(until), th[0], th[1]); err != nil {
			return nil, fmt.Errorf("claim notifications for %s: %w", owner, err)
		}
		ns, err := t.notifications(ctx, `promotion_id = ? AND name = ? AND state = 'pending'`, th[0], th[1])
		if err != nil {
			return nil, fmt.Errorf("claim notifications for %s: %w", owner, err)
		}
		out = append(out, ns...)
	}
	slices.SortFunc(out, func(a, b store.Notification) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// seqList encodes seqs for json_each.
func seqList(seqs []int64) string {
	if seqs == nil {
		seqs = []int64{}
	}
	b, _ := json.Marshal(seqs)
	return string(b)
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
		finished any
	}{
		{d.Delivered, store.NotificationDelivered, "", at},
		{d.Retry, store.NotificationPending, d.Error, nil},
		{d.Failed, store.NotificationFailed, d.Error, at},
	} {
		if len(u.seqs) == 0 {
			continue
		}
		if _, err := t.exec(ctx, `UPDATE notifications SET state = ?, attempts = attempts + 1, last_attempt_at = ?,
			last_error = CASE WHEN ? = '' THEN last_error ELSE ? END, finished_at = ?
			WHERE promotion_id = ? AND name = ? AND state = 'pending' AND seq IN (SELECT value FROM json_each(?))`,
			string(u.state), at, u.err, u.err, u.finished, d.PromotionID, d.Name, seqList(u.seqs)); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	next := at
	if len(d.Retry) > 0 {
		next = encTime(d.RetryAt)
	}
	if _, err := t.exec(ctx, `UPDATE notification_threads SET
			pending = (SELECT count(*) FROM notifications n WHERE n.promotion_id = notification_threads.promotion_id
				AND n.name = notification_threads.name AND n.state = 'pending'),
			next_attempt_at = CASE WHEN claimed_by = ? THEN ? ELSE next_attempt_at END,
			claim_until = CASE WHEN claimed_by = ? THEN '' ELSE claim_until END,
			claimed_by = CASE WHEN claimed_by = ? THEN '' ELSE claimed_by END
		WHERE promotion_id = ? AND name = ?`,
		d.Owner, next, d.Owner, d.Owner, d.PromotionID, d.Name); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (t *tx) Notifications(ctx context.Context, promotionID string) ([]store.Notification, error) {
	out, err := t.notifications(ctx, `promotion_id = ?`, promotionID)
	if err != nil {
		return nil, fmt.Errorf("list notifications of %s: %w", promotionID, err)
	}
	return out, nil
}

// notifications returns the notifications matching where, in Seq order.
func (t *tx) notifications(ctx context.Context, where string, args ...any) ([]store.Notification, error) {
	rows, err := t.query(ctx, `SELECT `+notificationColumns+` FROM notifications WHERE `+where+` ORDER BY seq`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Notification{}
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *n)
	}
	return out, rows.Err()
}
