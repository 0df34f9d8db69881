package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/store/sqlite"
)

// Files of a data directory, and its default (that of ferry server --data).
const (
	defaultDataDir = "./ferry-data"
	dbFile         = "ferry.db"
	lockFile       = "ferry.lock"
)

// backupResult is what ferry backup -o json prints.
type backupResult struct {
	Store         string `json:"store"`
	File          string `json:"file"`
	Bytes         int64  `json:"bytes"`
	SchemaVersion int    `json:"schemaVersion"`
}

func newBackupCommand(g *globals) *cobra.Command {
	var dataDir, to string
	cmd := &cobra.Command{
		Use:   "backup --to FILE",
		Short: "Write a consistent copy of the SQLite store, also while a server runs on it",
		Long: `Write a consistent copy of the SQLite store in the data directory to FILE.
It works while a server runs on the data directory: the copy is one snapshot
of the store (SQLite VACUUM INTO), and the server goes on writing meanwhile.
FILE must not exist; it appears complete or not at all. Put it back with
ferry restore.

A store whose schema is older than this ferry's is refused: opening it would
migrate it, and a backup taken before an upgrade must still open with the
version that wrote it. Back it up with that version.

This command backs up SQLite stores only. A PostgreSQL store (ferry server
--db) is backed up with pg_dump --format=custom and restored with pg_restore;
see docs/operations.md.`,
		Example: `  ferry backup --to ferry-$(date +%F).db
  ferry backup --data /var/lib/ferry --to /backups/ferry-$(date +%F).db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := backup(cmd.Context(), dataDir, to)
			if err != nil {
				return err
			}
			return g.print(res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "backed up %s to %s (%s, schema version %d)\n",
					res.Store, res.File, formatBytes(res.Bytes), res.SchemaVersion)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir, "data directory holding the store (ferry.db)")
	cmd.Flags().StringVar(&to, "to", "", "file to write; must not exist (required)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// backup copies the store of dataDir to the new file to.
func backup(ctx context.Context, dataDir, to string) (*backupResult, error) {
	src := filepath.Join(dataDir, dbFile)
	if err := requireStoreFile(src); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Lstat(to); err == nil {
		return nil, fmt.Errorf("backup: %s already exists: a backup never overwrites a file; choose another name", to)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("backup: %w", err)
	}
	// sqlite.Open migrates the store it opens; a backup must not change it.
	have, err := schemaVersion(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	want, err := latestSchemaVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if have < want {
		return nil, fmt.Errorf("backup: %s has schema version %d, older than this ferry's %d: "+
			"opening it would migrate it; back it up with the ferry version that wrote it", src, have, want)
	}
	st, err := sqlite.Open(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer st.Close()
	if err := st.Backup(ctx, to); err != nil {
		return nil, err
	}
	fi, err := os.Stat(to)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return &backupResult{Store: src, File: to, Bytes: fi.Size(), SchemaVersion: have}, nil
}

// requireStoreFile checks that path, the ferry.db of a data directory, exists.
func requireStoreFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no Ferry store at %s: the data directory has no %s (is --data right?)", path, dbFile)
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s is a directory, not a Ferry store", path)
	}
	return nil
}

// formatBytes formats a size for people: "812 B", "1.5 KiB", "3.2 MiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
