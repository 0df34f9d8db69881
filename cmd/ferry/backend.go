package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/postgres"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
)

// backend is an opened store and what the engine needs to know of it.
type backend struct {
	store store.Store
	// shared is true when several servers may use the store at once.
	shared bool
	// listen delivers other replicas' messages (PostgreSQL only).
	listen func(ctx context.Context, handle func(msg string)) error
	// describe names the store for people.
	describe string
	close    func() error
}

// openBackend opens the PostgreSQL store at dsn, or, when dsn is empty, the
// SQLite store in dataDir; the store signs the audit checkpoints cp asks for.
func openBackend(ctx context.Context, dataDir, dsn string, cp store.Checkpoints) (*backend, error) {
	if dsn != "" {
		if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
			return nil, usageErrorf("--db %q: want a PostgreSQL URL such as postgres://ferry@db.example/ferry", redactDSN(dsn))
		}
		st, err := postgres.Open(ctx, dsn, postgres.WithCheckpoints(cp))
		if err != nil {
			return nil, err
		}
		return &backend{store: st, shared: true, listen: st.Listen, describe: "postgres " + redactDSN(dsn), close: st.Close}, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dataDir, "ferry.db")
	st, err := sqlite.Open(ctx, path, sqlite.WithCheckpoints(cp))
	if err != nil {
		return nil, err
	}
	return &backend{store: st, describe: "sqlite " + path, close: st.Close}, nil
}

// redactDSN hides a password in a database URL.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	cred := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(cred, ":"); ok {
		return dsn[:scheme+3] + user + ":***" + dsn[at:]
	}
	return dsn
}

// defaultHostPID names this process as "host:pid", the form engine instance IDs take.
func defaultHostPID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}
