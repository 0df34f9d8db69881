package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/store"
)

// auditBundle is the API over a real SQLite store holding n audit events,
// with an audit key.
type auditBundle struct {
	*testBundle
	st     store.Store
	signer *audit.Signer
}

func setupAudit(t *testing.T, n int) *auditBundle {
	t.Helper()
	signer, err := audit.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	b := &auditBundle{signer: signer}
	b.testBundle = setup(t, func(c *Config) {
		c.AuditSigner = signer
		b.st = c.Store
	})
	for i := range n {
		promotion := "p1"
		if i%2 == 1 {
			promotion = "p2"
		}
		err := b.st.Update(t.Context(), func(tx store.Tx) error {
			return tx.AppendAudit(t.Context(), &audit.Event{
				Time:  time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC),
				Actor: "alice", Action: "promotion.transition", Subject: "promotion/" + promotion, PromotionID: promotion,
				Details: audit.Details(map[string]int{"i": i}),
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func TestAuditVerifyAndCheckpoint(t *testing.T) {
	b := setupAudit(t, 5)
	rec := b.do(t, http.MethodGet, "/api/v1/audit/verify", "")
	var rep audit.Report
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &rep) != nil {
		t.Fatalf("verify: %d %s", rec.Code, rec.Body)
	}
	if !rep.OK || rep.Events != 5 || !rep.SignaturesChecked || rep.Signed != nil || rep.Unsigned != 5 {
		t.Fatalf("report: %s", rec.Body)
	}

	rec = b.do(t, http.MethodPost, "/api/v1/audit/checkpoints", "")
	var c audit.Checkpoint
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &c) != nil {
		t.Fatalf("checkpoint: %d %s", rec.Code, rec.Body)
	}
	if c.Seq != 5 || c.Hash != rep.Head.Hash || audit.VerifyCheckpoint(&c, []audit.PublicKey{b.signer.PublicKey()}) != nil {
		t.Errorf("checkpoint %+v does not sign the head %+v", c, rep.Head)
	}
	again := b.do(t, http.MethodPost, "/api/v1/audit/checkpoints", "")
	if again.Code != http.StatusOK || again.Body.String() != rec.Body.String() {
		t.Errorf("second checkpoint of the same head: %d %s, want 200 with the first", again.Code, again.Body)
	}
	rec = b.do(t, http.MethodGet, "/api/v1/audit/verify", "")
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || !rep.OK || rep.Signed == nil || rep.Signed.Seq != 5 || rep.Unsigned != 0 {
		t.Errorf("report after the checkpoint: %s", rec.Body)
	}

	rec = b.do(t, http.MethodGet, "/api/v1/audit/pubkey", "")
	var k publicKeyInfo
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &k) != nil || k.PublicKey != b.signer.PublicKey().String() || k.KeyID != c.KeyID {
		t.Errorf("pubkey: %d %s", rec.Code, rec.Body)
	}

	empty := setupAudit(t, 0)
	if rec := empty.do(t, http.MethodPost, "/api/v1/audit/checkpoints", ""); rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "empty") {
		t.Errorf("checkpoint of an empty log: %d %s", rec.Code, rec.Body)
	}
	keyless := setup(t)
	for _, r := range []struct{ method, target string }{{http.MethodPost, "/api/v1/audit/checkpoints"}, {http.MethodGet, "/api/v1/audit/pubkey"}} {
		if rec := keyless.do(t, r.method, r.target, ""); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "no audit key") {
			t.Errorf("%s %s without a key: %d %s", r.method, r.target, rec.Code, rec.Body)
		}
	}
}

func TestAuditExport(t *testing.T) {
	b := setupAudit(t, 6)
	keys := []audit.PublicKey{b.signer.PublicKey()}
	rec := b.do(t, http.MethodGet, "/api/v1/audit/export", "")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ndjsonContentType {
		t.Fatalf("export: %d %s %s", rec.Code, rec.Header(), rec.Body)
	}
	rep, err := audit.VerifyExport(bytes.NewReader(rec.Body.Bytes()), keys)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Partial || rep.Events != 6 || rep.Signed == nil || rep.Signed.Seq != 6 {
		t.Fatalf("whole export: %s", rep.Summary())
	}

	rec = b.do(t, http.MethodGet, "/api/v1/audit/export?promotion=p2&since=2025-01-01T00:00:02Z", "")
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	if rec.Code != http.StatusOK || len(lines) != 4 || !strings.Contains(lines[0], `"partial":true`) || !strings.Contains(lines[0], `"promotionId":"p2"`) {
		t.Fatalf("partial export: %d\n%s", rec.Code, rec.Body)
	}
	rep, err = audit.VerifyExport(bytes.NewReader(rec.Body.Bytes()), keys)
	if err != nil || !rep.OK || !rep.Partial || rep.Events != 2 || rep.First != 4 || rep.Last != 6 {
		t.Fatalf("partial export: %+v, %v", rep, err)
	}

	for _, target := range []string{
		"/api/v1/audit/export?actor=alice",
		"/api/v1/audit/export?since=yesterday",
		"/api/v1/audit?since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z",
	} {
		if rec := b.do(t, http.MethodGet, target, ""); rec.Code != http.StatusBadRequest {
			t.Errorf("GET %s: %d %s, want 400", target, rec.Code, rec.Body)
		}
	}
}

func TestAuditRoutesWithoutStore(t *testing.T) {
	signer, err := audit.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(c *Config) { c.Store, c.AuditSigner = nil, signer })
	for _, r := range []struct{ method, target string }{
		{http.MethodGet, "/api/v1/audit/verify"},
		{http.MethodGet, "/api/v1/audit/export"},
		{http.MethodPost, "/api/v1/audit/checkpoints"},
	} {
		if rec := b.do(t, r.method, r.target, ""); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "no store") {
			t.Errorf("%s %s without a store: %d %s", r.method, r.target, rec.Code, rec.Body)
		}
	}
	if rec := b.do(t, http.MethodGet, "/api/v1/audit/pubkey", ""); rec.Code != http.StatusOK {
		t.Errorf("pubkey without a store: %d %s", rec.Code, rec.Body)
	}
}
