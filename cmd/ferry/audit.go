package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/client"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/postgres"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
)

func newAuditCommand(g *globals, getenv func(string) string) *cobra.Command {
	cmd := newAuditListCommand(g)
	cmd.Use = "audit"
	cmd.Short = "The audit log: list, verify, export; `ferry audit` alone lists"
	cmd.Long = `The audit log records who did what, when, why, to what. It is a hash chain:
each event carries the hash of the one before, and checkpoints signed with the
server's ed25519 key pin the chain's head. ` + "`ferry audit`" + ` alone is ` + "`ferry audit list`" + `.`
	cmd.AddCommand(
		newAuditListCommand(g),
		newAuditVerifyCommand(g, getenv),
		newAuditExportCommand(g),
		newAuditPubkeyCommand(g),
		newAuditCheckpointCommand(g),
	)
	return cmd
}

func newAuditListCommand(g *globals) *cobra.Command {
	var q client.AuditQuery
	var since, until string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit events: who did what, when, why, to what",
		Example: `  ferry audit list --promotion 0193a8c2-…
  ferry audit list --actor alice --since 24h
  ferry audit list --action promotion.create --since 2025-01-01T00:00:00Z --until 2025-02-01T00:00:00Z -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLimit(q.Limit); err != nil {
				return err
			}
			now := time.Now()
			var err error
			if q.Since, err = parseTimeFlag("since", since, now); err != nil {
				return err
			}
			if q.Until, err = parseTimeFlag("until", until, now); err != nil {
				return err
			}
			if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
				return usageErrorf("--until %q is not after --since %q", until, since)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			events, err := c.Audit(cmd.Context(), q)
			if err != nil {
				return err
			}
			return g.print(events, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "REASON")
				for _, e := range events {
					row(tw, e.Seq, formatTime(e.Time), e.Actor, e.Action, e.Subject, orDash(e.Reason))
				}
				return tw.Flush()
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.PromotionID, "promotion", "", "only events of this promotion ID")
	f.StringVar(&q.Actor, "actor", "", "only events by this actor")
	f.StringVar(&q.Action, "action", "", "only events with this action, such as promotion.create or promotion.transition")
	f.StringVar(&since, "since", "", "only events since this RFC 3339 time, or this long ago (24h)")
	f.StringVar(&until, "until", "", "only events before this RFC 3339 time, or this long ago (1h)")
	f.IntVar(&q.Limit, "limit", 0, "largest number of events to list (default: the server's, 100)")
	return cmd
}

// parseSince parses --since: an RFC 3339 time, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	return parseTimeFlag("since", s, now)
}

// parseTimeFlag parses a time flag: an RFC 3339 time, or a duration before now.
func parseTimeFlag(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usageErrorf("--%s %q: want an RFC 3339 time (2025-01-31T09:00:00Z) or a duration (24h)", name, s)
}

// brokenError reports an audit log or export that does not verify.
type brokenError struct{ b *audit.Break }

func (e *brokenError) Error() string { return e.b.Error() }

func newAuditVerifyCommand(g *globals, getenv func(string) string) *cobra.Command {
	var dataDir, db, file, auditKey string
	var pubkeys []string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit chain and its signed checkpoints; exit 1 naming the first broken seq",
		Long: `Verify that no audit event was changed, removed, inserted or reordered: every
event's hash must match its content and link to the event before, from the
genesis; every checkpoint must match the chain and carry a valid signature;
and the log must end where the store's head (or the export's end line) says.
Exits 0 and prints OK, or exits 1 naming the first sequence number where the
chain breaks.

Without flags the server verifies its store (needs admin). Offline:
  --data DIR    the SQLite store of a data directory (a running server may
                keep using it); signatures are checked with the key in DIR
  --db URL      a PostgreSQL store; signatures are checked with --audit-key
  --file F      an export written by ferry audit export ("-" for stdin);
                signatures are checked with the keys given by --pubkey only

--pubkey (repeatable) names a trusted public key, as ferry audit pubkey
prints it, or a file holding one; a checkpoint signed by any other key fails.
Without a key, checkpoints are compared with the chain and the output says
their signatures were not checked.`,
		Example: `  ferry audit verify
  ferry audit verify --data /var/lib/ferry
  ferry audit verify --file audit.jsonl --pubkey ferry-audit.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, s := range []string{dataDir, db, file} {
				if s != "" {
					n++
				}
			}
			if n > 1 {
				return usageErrorf("give at most one of --data, --db and --file")
			}
			keys, err := readPublicKeys(pubkeys)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var rep *audit.Report
			switch {
			case file != "":
				rep, err = verifyExportFile(file, keys, g.stdin)
			case dataDir != "":
				if keys == nil {
					if keys, err = dataDirKey(dataDir); err != nil {
						return err
					}
				}
				rep, err = verifyDataDir(ctx, dataDir, keys)
			case db != "":
				if keys == nil && auditKey != "" {
					s, err := audit.LoadSigner(auditKey)
					if err != nil {
						return err
					}
					keys = []audit.PublicKey{s.PublicKey()}
				}
				rep, err = verifyPostgres(ctx, db, keys)
			default:
				if len(pubkeys) > 0 {
					return usageErrorf("--pubkey goes with --data, --db or --file: the server verifies with its own key")
				}
				var c *client.Client
				if c, err = g.client(); err == nil {
					rep, err = c.VerifyAudit(ctx)
				}
			}
			if err != nil {
				return err
			}
			if err := g.print(rep, func(w io.Writer) error { return printReport(w, rep) }); err != nil {
				return err
			}
			if !rep.OK {
				return &brokenError{rep.Break}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "", "verify the SQLite store of this data directory, offline")
	f.StringVar(&db, "db", "", "verify the PostgreSQL store at this URL, offline")
	f.StringVar(&file, "file", "", `verify this export ("-" for standard input)`)
	f.StringArrayVar(&pubkeys, "pubkey", nil, "trusted public key (ed25519:BASE64) or a file holding one; repeatable")
	f.StringVar(&auditKey, "audit-key", getenv("FERRY_AUDIT_KEY"), "with --db: the servers' audit key file, whose public key checks the signatures (env FERRY_AUDIT_KEY)")
	return cmd
}

// printReport prints a verification report for a person.
func printReport(w io.Writer, rep *audit.Report) error {
	fmt.Fprintln(w, rep.Summary())
	if !rep.OK && rep.Signed != nil {
		fmt.Fprintf(w, "the chain verified up to seq %d before the break; the newest checkpoint that matched is of seq %d, signed at %s\n",
			rep.Head.Seq, rep.Signed.Seq, formatTime(rep.Signed.Time))
	}
	return nil
}

// readPublicKeys parses --pubkey values: keys, or files holding one. None
// gives nil.
func readPublicKeys(values []string) ([]audit.PublicKey, error) {
	var keys []audit.PublicKey
	for _, v := range values {
		text := v
		if !strings.HasPrefix(v, "ed25519:") {
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, usageErrorf("--pubkey %q: neither a key (ed25519:BASE64) nor a readable file: %v", v, err)
			}
			text = string(b)
		}
		k, err := audit.ParsePublicKey(text)
		if err != nil {
			return nil, usageErrorf("--pubkey %q: %v", v, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// verifyExportFile verifies the export in path, or stdin for "-".
func verifyExportFile(path string, keys []audit.PublicKey, stdin io.Reader) (*audit.Report, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("verify export: %w", err)
		}
		defer f.Close()
		r = f
	}
	rep, err := audit.VerifyExport(r, keys)
	if err != nil {
		return nil, fmt.Errorf("verify export %s: %w", path, err)
	}
	return &rep, nil
}

// dataDirKey returns the public key of the audit key in dir, or nil when
// there is none.
func dataDirKey(dir string) ([]audit.PublicKey, error) {
	s, err := audit.LoadSigner(filepath.Join(dir, auditKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []audit.PublicKey{s.PublicKey()}, nil
}

// verifyDataDir verifies the SQLite store of a data directory. It refuses a
// store an older Ferry left, rather than migrate it.
func verifyDataDir(ctx context.Context, dir string, keys []audit.PublicKey) (*audit.Report, error) {
	path := filepath.Join(dir, dbFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("verify %s: %w", dir, err)
	}
	have, err := schemaVersion(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", dir, err)
	}
	want, err := latestSchemaVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", dir, err)
	}
	if have < want {
		return nil, fmt.Errorf("verify %s: the store is at schema version %d, this ferry reads %d: run ferry migrate --data %s first", dir, have, want, dir)
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", dir, err)
	}
	defer st.Close()
	return verifyStore(ctx, st, keys)
}

// verifyPostgres verifies the PostgreSQL store at dsn.
func verifyPostgres(ctx context.Context, dsn string, keys []audit.PublicKey) (*audit.Report, error) {
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", redactDSN(dsn), err)
	}
	defer st.Close()
	return verifyStore(ctx, st, keys)
}

func verifyStore(ctx context.Context, st store.Store, keys []audit.PublicKey) (*audit.Report, error) {
	var rep audit.Report
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		rep, err = audit.Verify(ctx, store.AuditSource(tx, store.AuditFilter{}), keys)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &rep, nil
}

func newAuditExportCommand(g *globals) *cobra.Command {
	var since, promotionID, file string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export the audit log as JSON lines, with its signed checkpoints",
		Long: `Write the audit log as JSON lines: a header, one line per event in sequence
order, each followed by the checkpoints of its seq, and an end line. A whole
export ends with a checkpoint of its last event signed at export time, so that
ferry audit verify --file F --pubkey KEY checks it to the end, with nothing
else. With --since or --promotion the export is partial: each event still
verifies against its hash and consecutive events link, but a partial export
cannot show that no event is missing (its verification says so).`,
		Example: `  ferry audit export --file audit.jsonl
  ferry audit export --promotion 0193a8c2-… --file p.jsonl
  ferry audit export --since 720h > last-month.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var q client.ExportQuery
			var err error
			if q.Since, err = parseTimeFlag("since", since, time.Now()); err != nil {
				return err
			}
			q.PromotionID = promotionID
			c, err := g.client()
			if err != nil {
				return err
			}
			if file == "" || file == "-" {
				return c.ExportAudit(cmd.Context(), q, g.stdout)
			}
			return writeFileAtomic(file, func(w io.Writer) error { return c.ExportAudit(cmd.Context(), q, w) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "only events since this RFC 3339 time, or this long ago (720h); makes a partial export")
	f.StringVar(&promotionID, "promotion", "", "only events of this promotion ID; makes a partial export")
	f.StringVarP(&file, "file", "f", "", "write the export to this file (default: standard output)")
	return cmd
}

// writeFileAtomic writes a new file at path through write: to a temporary
// file next to it, renamed into place once complete.
func writeFileAtomic(path string, write func(w io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newAuditPubkeyCommand(g *globals) *cobra.Command {
	var dataDir, auditKey string
	cmd := &cobra.Command{
		Use:   "pubkey",
		Short: "Print the public key that verifies the server's audit checkpoints",
		Long: `Print the ed25519 public key that verifies the audit checkpoints, as
ferry audit verify --pubkey takes it: the server's (any token may ask), or,
offline, the key in a data directory (--data) or a key file (--audit-key).
Hand it to whoever verifies exports, by a channel other than the export.`,
		Example: `  ferry audit pubkey > ferry-audit.pub
  ferry audit pubkey --data /var/lib/ferry`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir != "" && auditKey != "" {
				return usageErrorf("give --data or --audit-key, not both")
			}
			var k audit.PublicKey
			switch path := auditKey; {
			case dataDir != "" || auditKey != "":
				if path == "" {
					path = filepath.Join(dataDir, auditKeyFile)
				}
				s, err := audit.LoadSigner(path)
				if err != nil {
					return err
				}
				k = s.PublicKey()
			default:
				c, err := g.client()
				if err != nil {
					return err
				}
				if k, err = c.AuditPublicKey(cmd.Context()); err != nil {
					return err
				}
			}
			out := struct {
				PublicKey string `json:"publicKey"`
				KeyID     string `json:"keyId"`
			}{k.String(), k.ID()}
			return g.print(out, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, k.String())
				return err
			})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "", "read the key in this data directory instead of asking the server")
	cmd.Flags().StringVar(&auditKey, "audit-key", "", "read this key file instead of asking the server")
	return cmd
}

func newAuditCheckpointCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoint",
		Short: "Have the server sign the audit chain's head now",
		Long: `Have the server sign a checkpoint of the last audit event now, with its audit
key, and store it (the server also signs one every --audit-checkpoint-every
events). When the last event has a checkpoint already, prints that one.
Needs admin.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			cp, created, err := c.CreateCheckpoint(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(cp, func(w io.Writer) error {
				verb := "signed"
				if !created {
					verb = "already signed"
				}
				_, err := fmt.Fprintf(w, "%s seq %d (hash %s) at %s with key %s\n", verb, cp.Seq, cp.Hash, formatTime(cp.Time), cp.KeyID)
				return err
			})
		},
	}
}
