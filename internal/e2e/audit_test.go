package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // to tamper with a store as an attacker would

	"github.com/ferry-dev/ferry/internal/audit"
)

// auditEvents lists audit events through the CLI with extra filter args.
func auditEvents(s *server, args ...string) []audit.Event {
	s.t.Helper()
	var events []audit.Event
	out := s.must(append([]string{"audit", "list", "-o", "json", "--limit", "1000"}, args...)...)
	if err := json.Unmarshal([]byte(out), &events); err != nil {
		s.t.Fatalf("decode audit events: %v\n%s", err, out)
	}
	return events
}

// TestAuditChainAndExport runs promotions, then verifies the chain through
// the server, exports it and verifies the export offline with the public
// key alone — and sees an edited export fail.
func TestAuditChainAndExport(t *testing.T) { eachStore(t, testAuditChainAndExport) }

func testAuditChainAndExport(t *testing.T, b backend) {
	s := startServer(t, b, "--audit-checkpoint-every", "10")
	s.must("apply", "-f", s.writeFile("shop.yaml", shopPipeline))
	createRelease(s, "1.0.0")
	s.must("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "dev", "--reason", "first", "--wait")
	createRelease(s, "1.1.0")
	s.must("promote", "--pipeline", "shop", "--release", "1.1.0", "--to", "dev", "--wait")
	for _, p := range s.promotions("--pipeline", "shop", "--env", "staging") {
		s.waitEnded(p.ID)
	}

	all := auditEvents(s)
	if len(all) < 20 {
		t.Fatalf("%d audit events, want at least 20", len(all))
	}
	out := s.must("audit", "verify")
	if !strings.Contains(out, fmt.Sprintf("OK: %d events, seq 1 to %d, chain intact", len(all), len(all))) ||
		!strings.Contains(out, "signed up to seq") {
		t.Fatalf("ferry audit verify:\n%s", out)
	}
	if out := s.must("audit", "checkpoint"); !strings.Contains(out, "signed seq") {
		t.Fatalf("ferry audit checkpoint: %s", out)
	}

	// Filters of ferry audit list.
	creates := auditEvents(s, "--action", "promotion.create")
	if len(creates) < 4 {
		t.Errorf("%d promotion.create events, want at least 4 (two to dev, two to staging)", len(creates))
	}
	pid := creates[0].PromotionID
	for _, e := range auditEvents(s, "--promotion", pid) {
		if e.PromotionID != pid {
			t.Errorf("--promotion %s listed an event of %q", pid, e.PromotionID)
		}
	}
	for _, e := range auditEvents(s, "--actor", "admin") {
		if e.Actor != "admin" {
			t.Errorf("--actor admin listed an event by %q", e.Actor)
		}
	}
	mid := all[len(all)/2].Time
	before := auditEvents(s, "--until", mid.Format("2006-01-02T15:04:05Z07:00"))
	for _, e := range before {
		if !e.Time.Before(mid.Truncate(1e9)) {
			t.Errorf("--until %s listed an event of %s", mid, e.Time)
		}
	}

	// The public key, and an export verified with it and nothing else.
	key := strings.TrimSpace(s.must("audit", "pubkey"))
	keyFile := s.writeFile("ferry-audit.pub", key+"\n")
	export := filepath.Join(s.work, "audit.jsonl")
	s.must("audit", "export", "--file", export)
	out = s.must("audit", "verify", "--file", export, "--pubkey", keyFile)
	if !strings.Contains(out, fmt.Sprintf("OK: %d events", len(all))) || !strings.Contains(out, fmt.Sprintf("signed up to seq %d", len(all))) {
		t.Fatalf("offline verification of the export:\n%s", out)
	}
	if out := s.must("audit", "verify", "--file", export); !strings.Contains(out, "signatures NOT checked") {
		t.Errorf("verification without a key does not say so:\n%s", out)
	}
	other, err := audit.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	r := s.ferry("audit", "verify", "--file", export, "--pubkey", other.PublicKey().String())
	if r.code != 1 || !strings.Contains(r.stderr, "not by a trusted key") {
		t.Errorf("verification with another key: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// An edited line of the export: exit 1 naming its seq.
	data, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	victim := all[6]
	from := fmt.Sprintf(`"seq":%d,`, victim.Seq)
	lines := strings.Split(string(data), "\n")
	edited := false
	for i, l := range lines {
		if strings.HasPrefix(l, `{"type":"event",`+from) {
			lines[i] = strings.Replace(l, `"actor":"`+victim.Actor+`"`, `"actor":"mallory"`, 1)
			edited = lines[i] != l
		}
	}
	if !edited {
		t.Fatalf("no event line of seq %d with actor %s in the export", victim.Seq, victim.Actor)
	}
	tampered := s.writeFile("tampered.jsonl", strings.Join(lines, "\n"))
	r = s.ferry("audit", "verify", "--file", tampered, "--pubkey", keyFile)
	if want := fmt.Sprintf("audit chain broken at seq %d:", victim.Seq); r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stdout, "BROKEN") {
		t.Errorf("edited export: exit %d, want 1 and %q\n%s\n%s", r.code, want, r.stdout, r.stderr)
	}

	// A partial export verifies event by event, and says what it cannot show.
	partial := filepath.Join(s.work, "partial.jsonl")
	s.must("audit", "export", "--promotion", pid, "--file", partial)
	out = s.must("audit", "verify", "--file", partial, "--pubkey", keyFile)
	if !strings.Contains(out, "OK (partial export)") || !strings.Contains(out, "cannot show that no event is missing") {
		t.Errorf("partial export:\n%s", out)
	}
}

// TestAuditTamperedSQLite edits, deletes, inserts and reorders rows of the
// audit log directly in the SQLite file, past the triggers, as someone with
// the file would; ferry audit verify --data then names the first broken seq.
func TestAuditTamperedSQLite(t *testing.T) {
	s := startServer(t, sqliteStore, "--audit-checkpoint-every", "10")
	s.must("apply", "-f", s.writeFile("shop.yaml", shopPipeline))
	createRelease(s, "1.0.0")
	s.must("promote", "--pipeline", "shop", "--release", "1.0.0", "--to", "dev", "--wait")
	for _, p := range s.promotions("--pipeline", "shop", "--env", "staging") {
		s.waitEnded(p.ID)
	}
	n := int64(len(auditEvents(s)))
	if n < 15 {
		t.Fatalf("%d audit events, want at least 15", n)
	}
	s.term()

	out := s.must("audit", "verify", "--data", s.data)
	if !strings.Contains(out, fmt.Sprintf("OK: %d events", n)) || !strings.Contains(out, "signed up to seq 10") {
		t.Fatalf("verify --data of an intact store:\n%s", out)
	}

	tests := []struct {
		name   string
		sql    []string
		broken int64
	}{
		{"edit", []string{`UPDATE audit_events SET actor = 'mallory' WHERE seq = 5`}, 5},
		{"edit details", []string{`UPDATE audit_events SET details = '{"to":"succeeded"}' WHERE seq = 12`}, 12},
		{"delete", []string{`DELETE FROM audit_events WHERE seq = 7`}, 7},
		{"delete the tail", []string{fmt.Sprintf(`DELETE FROM audit_events WHERE seq > %d`, n-2)}, n - 1},
		{"insert at the end", []string{fmt.Sprintf(`INSERT INTO audit_events (seq, time, actor, action, subject, promotion_id, reason, details, prev_hash, hash)
			SELECT seq + 1, time, 'mallory', action, subject, promotion_id, reason, details, hash, hash FROM audit_events WHERE seq = %d`, n)}, n + 1},
		{"insert in the middle", []string{
			`UPDATE audit_events SET seq = seq + 1000000 WHERE seq >= 4`,
			`UPDATE audit_events SET seq = seq - 999999 WHERE seq >= 1000000`,
			`INSERT INTO audit_events (seq, time, actor, action, subject, promotion_id, reason, details, prev_hash, hash)
				SELECT 4, time, 'mallory', action, subject, promotion_id, 'inserted', details, hash, hash FROM audit_events WHERE seq = 3`,
		}, 4},
		{"reorder", []string{
			`CREATE TEMP TABLE a AS SELECT * FROM audit_events WHERE seq IN (6, 9)`,
			`UPDATE audit_events SET (time, actor, action, subject, promotion_id, reason, details, prev_hash, hash) =
				(SELECT time, actor, action, subject, promotion_id, reason, details, prev_hash, hash FROM a
				 WHERE a.seq = 15 - audit_events.seq) WHERE seq IN (6, 9)`,
		}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, s.data)
			tamper(t, filepath.Join(dir, "ferry.db"), tt.sql...)
			r := s.ferry("audit", "verify", "--data", dir)
			want := fmt.Sprintf("audit chain broken at seq %d:", tt.broken)
			if r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Fatalf("verify --data after %s: exit %d, want 1 and %q\nstdout: %s\nstderr: %s", tt.name, r.code, want, r.stdout, r.stderr)
			}
		})
	}
}

// tamper runs statements on the SQLite file at path after dropping the
// triggers that keep the audit log append-only.
func tamper(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // the temporary table lives on one connection
	for _, q := range append([]string{
		`DROP TRIGGER audit_events_no_update`,
		`DROP TRIGGER audit_events_no_delete`,
	}, stmts...) {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// copyDir copies the files of a data directory into a new one.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
