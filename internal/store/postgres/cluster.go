package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

// NotifyChannel is the LISTEN/NOTIFY channel of Tx.Notify: a replica that
// listens on it (through Pool) receives every message once the transaction
// that sent it commits.
const NotifyChannel = "ferry"

// maxNotifyPayload is the longest message PostgreSQL's NOTIFY accepts, in bytes.
const maxNotifyPayload = 7999

// Notify queues msg on NotifyChannel; PostgreSQL delivers it to the
// listeners when the transaction commits, and drops it if it rolls back.
// Identical messages of one transaction are delivered once. A View cannot
// notify, since it never commits.
func (t *tx) Notify(ctx context.Context, msg string) error {
	if err := t.writable("notify"); err != nil {
		return err
	}
	if len(msg) > maxNotifyPayload {
		return fmt.Errorf("notify: message of %d bytes, at most %d fit", len(msg), maxNotifyPayload)
	}
	if _, err := t.exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, msg); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

func (t *tx) PutReplica(ctx context.Context, r *store.Replica) error {
	if err := t.writable("put replica"); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO replicas (id, host, addr, started_at, seen_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET host = excluded.host, addr = excluded.addr, seen_at = excluded.seen_at`,
		r.ID, r.Host, r.Addr, encTime(r.StartedAt), encTime(r.SeenAt))
	if err != nil {
		return fmt.Errorf("put replica %s: %w", r.ID, err)
	}
	return nil
}

func scanReplica(sc scanner) (*store.Replica, error) {
	var (
		r             store.Replica
		started, seen string
	)
	if err := sc.Scan(&r.ID, &r.Host, &r.Addr, &started, &seen); err != nil {
		return nil, err
	}
	var err error
	if r.StartedAt, err = decTime(started); err != nil {
		return nil, err
	}
	if r.SeenAt, err = decTime(seen); err != nil {
		return nil, err
	}
	return &r, nil
}

func (t *tx) Replicas(ctx context.Context, since time.Time) ([]store.Replica, error) {
	rows, err := t.query(ctx, `SELECT id, host, addr, started_at, seen_at FROM replicas
		WHERE seen_at >= $1 ORDER BY id`, encTime(since))
	out, err := collect(t, rows, err, scanReplica)
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	return out, nil
}

// RenewLeases does not change the versions of the promotions it renews.
func (t *tx) RenewLeases(ctx context.Context, owner string, until time.Time) (int, error) {
	if err := t.writable("renew leases"); err != nil {
		return 0, err
	}
	tag, err := t.exec(ctx, `UPDATE promotions SET lease_until = $1 WHERE owner = $2 AND state <> ALL($3)`,
		encTime(until), owner, terminalStates())
	if err != nil {
		return 0, fmt.Errorf("renew leases of %s: %w", owner, err)
	}
	return int(tag.RowsAffected()), nil
}

// inFlight lists the states whose promotions have work in flight, which a
// replica holding their lease drives.
func inFlight() []string {
	return []string{string(promotion.Deploying), string(promotion.Verifying), string(promotion.RollingBack)}
}

// ClaimExpired locks the promotions it claims with FOR UPDATE SKIP LOCKED:
// a promotion another transaction is changing or claiming is left to it.
// The claimed promotions are returned in Seq order.
func (t *tx) ClaimExpired(ctx context.Context, owner string, now, until time.Time, limit int) ([]promotion.Promotion, error) {
	if err := t.writable("claim expired promotions"); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []promotion.Promotion{}, nil
	}
	rows, err := t.query(ctx, `UPDATE promotions SET owner = $1, lease_until = $2, version = version + 1
		WHERE seq IN (
			SELECT seq FROM promotions WHERE state = ANY($3) AND lease_until < $4
			ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED)
		RETURNING `+promotionColumns,
		owner, encTime(until), inFlight(), encTime(now), limit)
	out, err := collect(t, rows, err, scanPromotion)
	if err != nil {
		return nil, fmt.Errorf("claim expired promotions for %s: %w", owner, err)
	}
	slices.SortFunc(out, func(a, b promotion.Promotion) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}
