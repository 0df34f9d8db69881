package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// listenRetryMin and listenRetryMax bound the pause before Listen
	// connects again after losing its connection.
	listenRetryMin = 50 * time.Millisecond
	listenRetryMax = 2 * time.Second
)

// Listen calls handle with each message that other stores on the database
// (other replicas) send with Tx.Notify, one at a time, in the order their
// transactions committed, until ctx ends; it then returns nil. It listens on
// a connection of its own, outside the pool, and connects again by itself
// when the connection is lost. Messages sent while it is not connected are
// lost: after an outage, a caller should act as if anything may have changed.
// Close does not stop Listen: end ctx first.
func (s *Store) Listen(ctx context.Context, handle func(msg string)) error {
	pause := listenRetryMin
	for {
		listening, _ := s.listen(ctx, handle)
		if ctx.Err() != nil {
			return nil
		}
		if listening {
			pause = listenRetryMin
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, listenRetryMax)
	}
}

// listen connects, listens and delivers messages until the connection fails
// or ctx ends. It reports whether it got as far as listening.
func (s *Store) listen(ctx context.Context, handle func(msg string)) (listening bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{NotifyChannel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, fmt.Errorf("listen: %w", err)
		}
		if _, own := s.pids.Load(n.PID); own {
			continue
		}
		handle(n.Payload)
	}
}
