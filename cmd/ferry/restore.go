package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/store/sqlite"
)

// restoreResult is what ferry restore -o json prints.
type restoreResult struct {
	Store         string `json:"store"`
	From          string `json:"from"`
	Bytes         int64  `json:"bytes"`
	SchemaVersion int    `json:"schemaVersion"`
	// Replaced is true when a ferry.db was there before.
	Replaced bool `json:"replaced"`
	// Removed lists the stale files of the previous database removed.
	Removed []string `json:"removed"`
}

func newRestoreCommand(g *globals) *cobra.Command {
	var dataDir, from string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --from FILE",
		Short: "Put a backup made with ferry backup in place as the data directory's store",
		Long: `Put FILE, a backup made with ferry backup, in place as the SQLite store of
the data directory (creating the directory if needed).

It refuses when FILE is not a Ferry store (it opens a copy in a temporary
directory to check it, which also checks that this ferry can migrate it),
when the data directory already has a ferry.db, unless --force, and while a
server runs on the data directory (it holds the directory's lock, ferry.lock,
while it puts FILE in place). FILE is copied next to ferry.db, synced, and
renamed over it, so ferry.db is either the old store or the whole backup; the
old store's write-ahead log (ferry.db-wal, ferry.db-shm) is removed first.
Start the server afterwards; it migrates an older backup's schema.

A PostgreSQL store is restored with pg_restore; see docs/operations.md.`,
		Example: `  ferry restore --from /backups/ferry-2025-01-31.db --data /var/lib/ferry
  ferry restore --from ferry-2025-01-31.db --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := restore(cmd.Context(), dataDir, from, force)
			if err != nil {
				return err
			}
			return g.print(res, func(w io.Writer) error { return restoreReport(w, res, dataDir) })
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir, "data directory to restore the store into")
	cmd.Flags().StringVar(&from, "from", "", "backup file made with ferry backup (required)")
	cmd.Flags().BoolVar(&force, "force", false, "replace the data directory's existing ferry.db")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

// restore installs the backup from as the store of dataDir.
func restore(ctx context.Context, dataDir, from string, force bool) (*restoreResult, error) {
	fi, err := os.Stat(from)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("restore: %s is a directory, not a backup file", from)
	}
	if ok, err := isSQLiteFile(from); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	} else if !ok {
		return nil, fmt.Errorf("restore: %s is not a SQLite database, so not a backup made with ferry backup", from)
	}
	if _, err := os.Lstat(from + "-wal"); err == nil {
		return nil, fmt.Errorf("restore: %s-wal exists: %s looks like the database of a store in use, whose latest "+
			"commits are in that write-ahead log; make a backup of it with ferry backup and restore the backup", from, from)
	}

	dst := filepath.Join(dataDir, dbFile)
	res := &restoreResult{Store: dst, From: from, Removed: []string{}}
	// Checked again below, under the lock; this spares checking the backup in vain.
	if _, err := existing(dst, dataDir, force); err != nil {
		return nil, err
	}
	if res.SchemaVersion, err = checkBackup(ctx, from); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}

	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restore: create data directory: %w", err)
	}
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return nil, fmt.Errorf("restore: %w; no server may run on the data directory during a restore (lock file %s)",
			err, filepath.Join(dataDir, lockFile))
	}
	defer unlockDataDir(lock)
	if res.Replaced, err = existing(dst, dataDir, force); err != nil {
		return nil, err
	}
	if res.Bytes, err = installFile(from, dst, &res.Removed); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return res, nil
}

// existing reports whether the store file dst exists, refusing when it does
// and force is false.
func existing(dst, dataDir string, force bool) (bool, error) {
	_, err := os.Lstat(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("restore: %w", err)
	case !force:
		return true, fmt.Errorf("restore: %s exists; pass --force to replace it "+
			"(ferry backup --data %s --to FILE keeps a copy of it first)", dst, dataDir)
	}
	return true, nil
}

// checkBackup checks that the file at path is a Ferry store this binary can
// open, on a copy in a temporary directory: opening migrates it. It returns
// the file's schema version.
func checkBackup(ctx context.Context, path string) (int, error) {
	dir, err := os.MkdirTemp("", "ferry-restore-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	cp := filepath.Join(dir, dbFile)
	if err := copyFile(path, cp); err != nil {
		return 0, err
	}
	if err := quickCheck(ctx, cp); err != nil {
		return 0, fmt.Errorf("%s is damaged: %w", path, err)
	}
	ms, err := readSchema(ctx, cp)
	if err != nil {
		return 0, fmt.Errorf("%s is not a readable SQLite database: %w", path, err)
	}
	if len(ms) == 0 {
		return 0, fmt.Errorf("%s is a SQLite database but not a Ferry store: it records no schema migrations", path)
	}
	st, err := sqlite.Open(ctx, cp)
	if err != nil {
		return 0, fmt.Errorf("%s is not a Ferry store this ferry can open: %w", path, err)
	}
	if err := st.Close(); err != nil {
		return 0, err
	}
	return lastVersion(ms), nil
}

// quickCheck runs SQLite's quick_check on the database at path.
func quickCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=rw&_pragma=query_only(1)")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// installFile copies src over dst atomically: into a temporary file in dst's
// directory, synced, then renamed. Before the rename it removes dst's stale
// write-ahead log and shared-memory files, which SQLite would otherwise
// replay into the new database; it appends the names of those it removed to
// removed. It returns the size copied.
func installFile(src, dst string, removed *[]string) (int64, error) {
	dir := filepath.Dir(dst)
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".restore-*")
	if err != nil {
		return 0, err
	}
	tmp := out.Name()
	installed := false
	defer func() {
		if !installed {
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("copy %s to %s: %w", src, tmp, err)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		err := os.Remove(dst + suffix)
		switch {
		case err == nil:
			*removed = append(*removed, filepath.Base(dst+suffix))
		case !errors.Is(err, fs.ErrNotExist):
			return 0, fmt.Errorf("remove stale %s: %w", dst+suffix, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return 0, err
	}
	installed = true
	if err := syncDir(dir); err != nil {
		return 0, err
	}
	return n, nil
}

// copyFile copies the file src to the new file dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// syncDir flushes a directory's entries (a rename in it) to stable storage.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// isSQLiteFile reports whether the file at path starts with the SQLite header.
func isSQLiteFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 16)
	if _, err := io.ReadFull(f, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		return false, err
	}
	return string(head) == "SQLite format 3\x00", nil
}

// restoreReport prints what ferry restore did.
func restoreReport(w io.Writer, res *restoreResult, dataDir string) error {
	fmt.Fprintf(w, "restored %s from %s (%s, schema version %d)\n", res.Store, res.From, formatBytes(res.Bytes), res.SchemaVersion)
	if res.Replaced {
		fmt.Fprintf(w, "replaced the previous %s\n", dbFile)
	}
	if len(res.Removed) > 0 {
		fmt.Fprintf(w, "removed the previous store's %s\n", strings.Join(res.Removed, ", "))
	}
	_, err := fmt.Fprintf(w, "start the server with: ferry server --data %s\n", dataDir)
	return err
}
