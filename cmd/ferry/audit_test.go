package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
)

func TestAuditUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "verify", "--data", "a", "--file", "b"}, "at most one of --data, --db and --file"},
		{[]string{"audit", "verify", "--file", "x", "--pubkey", "ed25519:nope"}, `--pubkey "ed25519:nope"`},
		{[]string{"audit", "verify", "--file", "x", "--pubkey", "/no/such/file"}, "neither a key"},
		{[]string{"audit", "list", "--until", "tomorrow"}, `--until "tomorrow"`},
		{[]string{"audit", "list", "--since", "1h", "--until", "2h"}, "is not after --since"},
		{[]string{"audit", "pubkey", "--data", "d", "--audit-key", "k"}, "not both"},
		{[]string{"server", "--audit-checkpoint-every", "0"}, "--audit-checkpoint-every 0"},
	} {
		code, _, stderr := runCLI(t, "", tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("ferry %s: exit %d, stderr %q; want 2 and %q", strings.Join(tt.args, " "), code, stderr, tt.want)
		}
	}
}

// TestAuditOffline verifies a data directory and an export without a server.
func TestAuditOffline(t *testing.T) {
	dir := t.TempDir()
	signer, created, err := audit.LoadOrCreateSigner(filepath.Join(dir, auditKeyFile))
	if err != nil || !created {
		t.Fatalf("create key: %v %v", created, err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, dbFile), sqlite.WithCheckpoints(store.Checkpoints{Signer: signer, Every: 4}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		err := st.Update(t.Context(), func(tx store.Tx) error {
			return tx.AppendAudit(t.Context(), &audit.Event{Time: time.Unix(int64(i), 0), Actor: "alice",
				Action: "promotion.transition", Subject: "promotion/p1", PromotionID: "p1"})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var export bytes.Buffer
	err = st.View(t.Context(), func(tx store.Tx) error {
		_, err := audit.Export(context.Background(), store.AuditSource(tx, store.AuditFilter{}), &export,
			audit.ExportOptions{Header: audit.ExportHeader{ExportedAt: time.Now()}, Signer: signer, Now: time.Now()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	out := mustRun(t, "", "audit", "verify", "--data", dir)
	if !strings.Contains(out, "OK: 10 events, seq 1 to 10") || !strings.Contains(out, "signed up to seq 8") || !strings.Contains(out, "2 events after it") {
		t.Errorf("verify --data:\n%s", out)
	}
	key := strings.TrimSpace(mustRun(t, "", "audit", "pubkey", "--data", dir))
	if key != signer.PublicKey().String() {
		t.Errorf("pubkey --data = %q, want %q", key, signer.PublicKey())
	}
	out = mustRun(t, export.String(), "audit", "verify", "--file", "-", "--pubkey", key, "-o", "json")
	if !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"unsigned": 0`) {
		t.Errorf("verify --file - -o json:\n%s", out)
	}
	edited := strings.Replace(export.String(), `"seq":3,"time":"1970-01-01T00:00:02Z","actor":"alice"`, `"seq":3,"time":"1970-01-01T00:00:02Z","actor":"bob"`, 1)
	if edited == export.String() {
		t.Fatal("the edit changed nothing")
	}
	code, stdout, stderr := runCLI(t, edited, "audit", "verify", "--file", "-", "--pubkey", key)
	if code != 1 || !strings.Contains(stderr, "audit chain broken at seq 3:") || !strings.Contains(stdout, "BROKEN at seq 3") {
		t.Errorf("edited export: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "not-an-export"), []byte(fmt.Sprintln(`{"seq":1}`)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "", "audit", "verify", "--file", filepath.Join(dir, "not-an-export"))
	if code != 1 || !strings.Contains(stderr, "not a Ferry audit export") {
		t.Errorf("not an export: exit %d, %s", code, stderr)
	}
}
