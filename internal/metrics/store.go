package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
)

// Store wraps st so that every transaction's duration is recorded in
// ferry_store_transaction_duration_seconds. The engine and the API use the
// wrapper; it changes nothing else.
func (m *Metrics) Store(st store.Store) store.Store {
	return &timedStore{Store: st, m: m}
}

// timedStore times the transactions of the store it wraps.
type timedStore struct {
	store.Store
	m *Metrics
}

var _ store.Store = (*timedStore)(nil)

func (s *timedStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	start := time.Now()
	err := s.Store.Update(ctx, fn)
	s.m.observeStore("update", time.Since(start), err)
	return err
}

func (s *timedStore) View(ctx context.Context, fn func(store.Tx) error) error {
	start := time.Now()
	err := s.Store.View(ctx, fn)
	s.m.observeStore("view", time.Since(start), err)
	return err
}

// observeStore records a transaction's duration under its result: ok,
// not_found (it ended on something missing, such as an unknown token),
// conflict (a unique key or an optimistic update lost: the engine retries),
// or error (the store failed, or the change was refused).
func (m *Metrics) observeStore(op string, d time.Duration, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		result = "not_found"
	case errors.Is(err, store.ErrConflict):
		result = "conflict"
	default:
		result = "error"
	}
	m.storeDuration.WithLabelValues(op, result).Observe(d.Seconds())
}
