package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

// Notify does nothing: one process owns a SQLite store, and the engine wakes
// its own waiters.
func (t *tx) Notify(context.Context, string) error { return nil }

func (t *tx) PutReplica(ctx context.Context, r *store.Replica) error {
	if err := t.writable("put replica"); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO replicas (id, host, addr, started_at, seen_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET host = excluded.host, addr = excluded.addr, seen_at = excluded.seen_at`,
		r.ID, r.Host, r.Addr, encTime(r.StartedAt), encTime(r.SeenAt))
	if err != nil {
		return fmt.Errorf("put replica %s: %w", r.ID, err)
	}
	return nil
}

func (t *tx) Replicas(ctx context.Context, since time.Time) ([]store.Replica, error) {
	rows, err := t.query(ctx, `SELECT id, host, addr, started_at, seen_at FROM replicas WHERE seen_at >= ? ORDER BY id`, encTime(since))
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	defer rows.Close()
	out := []store.Replica{}
	for rows.Next() {
		var r store.Replica
		var started, seen string
		if err := rows.Scan(&r.ID, &r.Host, &r.Addr, &started, &seen); err != nil {
			return nil, fmt.Errorf("list replicas: %w", err)
		}
		if r.StartedAt, err = decTime(started); err != nil {
			return nil, err
		}
		if r.SeenAt, err = decTime(seen); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (t *tx) RenewLeases(ctx context.Context, owner string, until time.Time) (int, error) {
	if err := t.writable("renew leases"); err != nil {
		return 0, err
	}
	res, err := t.exec(ctx, `UPDATE promotions SET lease_until = ? WHERE owner = ? AND state NOT IN (`+terminalStates()+`)`,
		encTime(until), owner)
	if err != nil {
		return 0, fmt.Errorf("renew leases of %s: %w", owner, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *tx) ClaimExpired(ctx context.Context, owner string, now, until time.Time, limit int) ([]promotion.Promotion, error) {
	if err := t.writable("claim expired promotions"); err != nil {
		return nil, err
	}
	// Update transactions run one at a time on SQLite: no row can be held by another.
	rows, err := t.query(ctx, `SELECT id FROM promotions
		WHERE state IN ('deploying', 'verifying', 'rolling_back') AND lease_until < ?
		ORDER BY seq LIMIT ?`, encTime(now), limit)
	if err != nil {
		return nil, fmt.Errorf("find expired leases: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find expired leases: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := []promotion.Promotion{}
	for _, id := range ids {
		if _, err := t.exec(ctx, `UPDATE promotions SET owner = ?, lease_until = ?, version = version + 1 WHERE id = ?`,
			owner, encTime(until), id); err != nil {
			return nil, fmt.Errorf("claim promotion %s: %w", id, err)
		}
		p, err := t.Promotion(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, nil
}
