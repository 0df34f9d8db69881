package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckpointSignatures(t *testing.T) {
	s, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	head := Head{Seq: 42, Hash: strings.Repeat("ab", 32)}
	c := s.Sign(head, time.Date(2025, 6, 1, 12, 0, 0, 5, time.FixedZone("X", 7200)))
	if c.Seq != 42 || c.Hash != head.Hash || c.KeyID != s.PublicKey().ID() || !c.Time.Equal(time.Date(2025, 6, 1, 10, 0, 0, 5, time.UTC)) {
		t.Fatalf("checkpoint %+v", c)
	}
	// The signature is a plain ed25519 signature of the documented bytes.
	wantMsg := "ferry audit checkpoint v1\n" + `{"hash":"` + head.Hash + `","keyId":"` + c.KeyID + `","seq":42,"time":"2025-06-01T10:00:00.000000005Z"}`
	if string(c.SignedBytes()) != wantMsg {
		t.Fatalf("signed bytes %q, want %q", c.SignedBytes(), wantMsg)
	}
	if err := VerifyCheckpoint(&c, []PublicKey{other.PublicKey(), s.PublicKey()}); err != nil {
		t.Fatalf("verify with the right key among others: %v", err)
	}
	if err := VerifyCheckpoint(&c, []PublicKey{other.PublicKey()}); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "not by a trusted key") {
		t.Errorf("verify with another key: %v", err)
	}
	for name, mutate := range map[string]func(c *Checkpoint){
		"seq":       func(c *Checkpoint) { c.Seq++ },
		"hash":      func(c *Checkpoint) { c.Hash = strings.Repeat("cd", 32) },
		"time":      func(c *Checkpoint) { c.Time = c.Time.Add(time.Second) },
		"signature": func(c *Checkpoint) { c.Signature = "AAAA" + c.Signature[4:] },
	} {
		bad := c
		mutate(&bad)
		if err := VerifyCheckpoint(&bad, []PublicKey{s.PublicKey()}); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "does not verify") {
			t.Errorf("checkpoint with a changed %s: %v", name, err)
		}
	}
}

func TestPublicKeyText(t *testing.T) {
	s, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	text := s.PublicKey().String()
	if !strings.HasPrefix(text, "ed25519:") {
		t.Fatalf("public key text %q", text)
	}
	k, err := ParsePublicKey(" " + text + "\n")
	if err != nil || !bytes.Equal(k, s.PublicKey()) {
		t.Fatalf("ParsePublicKey(%q) = %x, %v", text, k, err)
	}
	for _, bad := range []string{"", "AAAA", "ed25519:!!", "ed25519:" + text[8:12], "rsa:" + text[8:]} {
		if _, err := ParsePublicKey(bad); err == nil || !strings.Contains(err.Error(), "ed25519:") {
			t.Errorf("ParsePublicKey(%q) = %v, want an error showing the expected form", bad, err)
		}
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit-key")
	s, created, err := LoadOrCreateSigner(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateSigner: created %v, %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	again, created, err := LoadOrCreateSigner(path)
	if err != nil || created || !bytes.Equal(again.PublicKey(), s.PublicKey()) {
		t.Fatalf("second LoadOrCreateSigner: created %v, same key %v, %v", created, bytes.Equal(again.PublicKey(), s.PublicKey()), err)
	}
	// What one signs, the other verifies: the key is the file's.
	c := again.Sign(Head{Seq: 1, Hash: GenesisHash}, time.Now())
	if err := VerifyCheckpoint(&c, []PublicKey{s.PublicKey()}); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(path); err == nil || !strings.Contains(err.Error(), "PEM") {
		t.Errorf("LoadSigner on garbage: %v", err)
	}
}

// memLog is a stored log in memory.
type memLog struct {
	events []Event
	cps    []Checkpoint
	head   Head
}

func (m *memLog) Events(_ context.Context, after int64, limit int) ([]Event, error) {
	var out []Event
	for _, e := range m.events {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memLog) Checkpoints(context.Context) ([]Checkpoint, error) { return m.cps, nil }
func (m *memLog) Head(context.Context) (Head, error)                { return m.head, nil }

// newMemLog returns a log of n events with a checkpoint every `every`.
func newMemLog(t *testing.T, s *Signer, n, every int) *memLog {
	t.Helper()
	m := &memLog{events: chain(t, n)}
	for _, e := range m.events {
		if e.Seq%int64(every) == 0 {
			m.cps = append(m.cps, s.Sign(Head{Seq: e.Seq, Hash: e.Hash}, e.Time))
		}
	}
	last := m.events[n-1]
	m.head = Head{Seq: last.Seq, Hash: last.Hash}
	return m
}

func TestVerifyStoredLog(t *testing.T) {
	s, _ := GenerateSigner()
	other, _ := GenerateSigner()
	keys := []PublicKey{s.PublicKey()}
	ctx := t.Context()

	rep, err := Verify(ctx, newMemLog(t, s, 2500, 1000), keys)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Events != 2500 || rep.Checkpoints != 2 || rep.Signed.Seq != 2000 || rep.Unsigned != 500 || rep.Break != nil {
		t.Fatalf("report of an intact log: %+v", rep)
	}
	if !strings.Contains(rep.Summary(), "OK: 2500 events") || !strings.Contains(rep.Summary(), "signed up to seq 2000") {
		t.Errorf("summary: %s", rep.Summary())
	}

	tests := []struct {
		name   string
		tamper func(m *memLog)
		keys   []PublicKey
		seq    int64
		reason string
	}{
		{"edited", func(m *memLog) { m.events[1499].Reason = "edited" }, keys, 1500, "was changed"},
		{"tail removed", func(m *memLog) { m.events = m.events[:2400] }, keys, 2401, "store's head records seq 2500"},
		{"tail removed with the head", func(m *memLog) {
			m.events = m.events[:1500]
			m.head = Head{Seq: 1500, Hash: m.events[1499].Hash}
		}, keys, 1501, "a checkpoint signed at"},
		{"tail rewritten after the last checkpoint", func(m *memLog) {
			// Rechained from seq 2001: only the head in the store tells.
			head := Head{Seq: 2000, Hash: m.events[1999].Hash}
			for i := 2000; i < 2500; i++ {
				m.events[i].Actor = "mallory"
				head, _ = Link(head, &m.events[i])
			}
		}, keys, 2500, "store's head records hash"},
		{"whole log rechained", func(m *memLog) {
			head := Genesis()
			for i := range m.events {
				if i == 10 {
					m.events[i].Actor = "mallory"
				}
				head, _ = Link(head, &m.events[i])
			}
			m.head = head
		}, keys, 1000, "differs from the checkpoint"},
		{"forged checkpoint", func(m *memLog) {
			m.cps[0] = other.Sign(Head{Seq: 1000, Hash: m.events[999].Hash}, time.Now())
		}, keys, 1000, "not by a trusted key"},
		{"events appended outside", func(m *memLog) {
			e := Event{Time: time.Now(), Actor: "mallory", Action: "x", Subject: "y"}
			Link(m.head, &e)
			m.events = append(m.events, e)
		}, keys, 2501, "added outside Ferry"},
		{"forged checkpoint, signatures not checked", func(m *memLog) {
			m.cps[0].Hash = m.events[998].Hash
		}, nil, 1000, "differs from the checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemLog(t, s, 2500, 1000)
			tt.tamper(m)
			rep, err := Verify(ctx, m, tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.Break == nil || rep.Break.Seq != tt.seq || !strings.Contains(rep.Break.Reason, tt.reason) {
				t.Fatalf("report %+v (break %v), want a break at seq %d mentioning %q", rep, rep.Break, tt.seq, tt.reason)
			}
			if !strings.Contains(rep.Summary(), "BROKEN at seq") {
				t.Errorf("summary: %s", rep.Summary())
			}
		})
	}

	rep, err = Verify(ctx, &memLog{head: Genesis()}, nil)
	if err != nil || !rep.OK || rep.Events != 0 || rep.SignaturesChecked {
		t.Errorf("empty log: %+v, %v", rep, err)
	}
	if !strings.Contains(rep.Summary(), "signatures NOT checked") {
		t.Errorf("summary without keys: %s", rep.Summary())
	}
}

// export writes m as an export; partial selects events by keep.
func export(t *testing.T, m *memLog, s *Signer, keep func(e *Event) bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	x, err := NewExporter(&buf, ExportHeader{ExportedAt: time.Now(), Partial: keep != nil})
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.events {
		e := &m.events[i]
		if keep != nil && !keep(e) {
			continue
		}
		if err := x.Event(e); err != nil {
			t.Fatal(err)
		}
		for j := range m.cps {
			if m.cps[j].Seq == e.Seq {
				if err := x.Checkpoint(&m.cps[j]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if keep == nil && s != nil {
		c := s.Sign(m.head, time.Now())
		if err := x.Checkpoint(&c); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerifyExport(t *testing.T) {
	s, _ := GenerateSigner()
	other, _ := GenerateSigner()
	keys := []PublicKey{s.PublicKey()}
	m := newMemLog(t, s, 250, 100)
	m.events[7].Details = json.RawMessage(`{"html": "<b>&amp;</b>", "n": 1.50}`)
	m.events[7].Reason = "needs \"quotes\"\n"
	head := Genesis()
	for i := range m.events {
		head, _ = Link(head, &m.events[i])
	}
	m.head = head
	m.cps = nil
	for _, e := range m.events {
		if e.Seq%100 == 0 {
			m.cps = append(m.cps, s.Sign(Head{Seq: e.Seq, Hash: e.Hash}, e.Time))
		}
	}
	data := export(t, m, s, nil)

	rep, err := VerifyExport(bytes.NewReader(data), keys)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Events != 250 || rep.Checkpoints != 3 || rep.Signed.Seq != 250 || rep.Unsigned != 0 {
		t.Fatalf("report of an intact export: %+v %v", rep, rep.Break)
	}
	if rep, err := VerifyExport(bytes.NewReader(data), []PublicKey{other.PublicKey()}); err != nil || rep.OK || rep.Break.Seq != 100 {
		t.Errorf("export verified with another key: %+v, %v", rep, err)
	}

	lines := strings.SplitAfter(string(data), "\n")
	lineOf := func(seq int64) int {
		for i, l := range lines {
			if strings.HasPrefix(l, `{"type":"event","seq":`+itoa(seq)+`,`) {
				return i
			}
		}
		t.Fatalf("no line for seq %d", seq)
		return 0
	}
	join := func(ls []string) []byte { return []byte(strings.Join(ls, "")) }
	edit := func(seq int64, from, to string) []byte {
		ls := append([]string(nil), lines...)
		i := lineOf(seq)
		if !strings.Contains(ls[i], from) {
			t.Fatalf("line of seq %d lacks %q: %s", seq, from, ls[i])
		}
		ls[i] = strings.Replace(ls[i], from, to, 1)
		return join(ls)
	}
	without := func(from, to int) []byte {
		ls := append([]string(nil), lines[:from]...)
		return join(append(ls, lines[to:]...))
	}
	swapped := func(a, b int64) []byte {
		ls := append([]string(nil), lines...)
		i, j := lineOf(a), lineOf(b)
		ls[i], ls[j] = ls[j], ls[i]
		return join(ls)
	}
	tests := []struct {
		name   string
		data   []byte
		seq    int64
		reason string
	}{
		{"edited actor", edit(42, `"actor":"user-`, `"actor":"xuser-`), 42, "was changed"},
		{"edited details", edit(8, `1.50`, `1.5`), 8, "was changed"},
		{"deleted line", without(lineOf(120), lineOf(120)+1), 120, "event missing"},
		{"reordered lines", swapped(60, 61), 60, "event missing"},
		{"cut short", without(lineOf(230), len(lines)), 230, "no end line"},
		{"end line removed", without(len(lines)-2, len(lines)), 251, "no end line"},
		{"last event removed", without(lineOf(250), lineOf(250)+1), 250, "a checkpoint signed at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := VerifyExport(bytes.NewReader(tt.data), keys)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.Break == nil || rep.Break.Seq != tt.seq || !strings.Contains(rep.Break.Reason, tt.reason) {
				t.Fatalf("report %+v (break %v), want a break at seq %d mentioning %q", rep, rep.Break, tt.seq, tt.reason)
			}
		})
	}

	if _, err := VerifyExport(strings.NewReader(`{"seq":1}`+"\n"), keys); !errors.Is(err, ErrNotExport) {
		t.Errorf("not an export: %v", err)
	}
	if _, err := VerifyExport(bytes.NewReader(append(append([]byte(nil), lines[0]...), "{not json\n"...)), keys); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("malformed line: %v", err)
	}
}

func TestVerifyPartialExport(t *testing.T) {
	s, _ := GenerateSigner()
	keys := []PublicKey{s.PublicKey()}
	m := newMemLog(t, s, 300, 100)
	// Seqs 95 to 105 and 250 to 260: the first run reaches the checkpoint of seq 100.
	keep := func(e *Event) bool { return e.Seq >= 95 && e.Seq <= 105 || e.Seq >= 250 && e.Seq <= 260 }
	data := export(t, m, s, keep)
	rep, err := VerifyExport(bytes.NewReader(data), keys)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || !rep.Partial || rep.Events != 22 || rep.Runs != 2 || rep.Anchored != 6 || rep.Checkpoints != 1 {
		t.Fatalf("partial export: %+v %v", rep, rep.Break)
	}
	if !strings.Contains(rep.Summary(), "cannot show that no event is missing") {
		t.Errorf("summary of a partial export: %s", rep.Summary())
	}
	edited := bytes.Replace(data, []byte(`"seq":255,"time":"2025-01-01T00:04:14Z","actor":"user-`), []byte(`"seq":255,"time":"2025-01-01T00:04:14Z","actor":"xuser-`), 1)
	if bytes.Equal(edited, data) {
		t.Fatal("the edit changed nothing")
	}
	rep, err = VerifyExport(bytes.NewReader(edited), keys)
	if err != nil || rep.OK || rep.Break.Seq != 255 {
		t.Errorf("edited partial export: %+v, %v", rep, err)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestExportSignsItsEnd(t *testing.T) {
	s, _ := GenerateSigner()
	keys := []PublicKey{s.PublicKey()}
	m := newMemLog(t, s, 2345, 1000)
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rep, err := Export(t.Context(), m, &buf, ExportOptions{Header: ExportHeader{ExportedAt: now}, Signer: s, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Events != 2345 || rep.Signed.Seq != 2345 || rep.Unsigned != 0 {
		t.Fatalf("export report: %s", rep.Summary())
	}
	got, err := VerifyExport(bytes.NewReader(buf.Bytes()), keys)
	if err != nil {
		t.Fatal(err)
	}
	if !got.OK || got.Events != 2345 || got.Checkpoints != 3 || got.Signed.Seq != 2345 || !got.Signed.Time.Equal(now) {
		t.Fatalf("offline report: %s", got.Summary())
	}

	// A broken log is exported as it is, but its end is not signed.
	m.events[100].Actor = "mallory"
	buf.Reset()
	rep, err = Export(t.Context(), m, &buf, ExportOptions{Header: ExportHeader{ExportedAt: now}, Signer: s, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Break.Seq != 101 || strings.Count(buf.String(), `"type":"event"`) != 2345 {
		t.Fatalf("export of a broken log: %s", rep.Summary())
	}
	if strings.Contains(buf.String(), `"type":"checkpoint","seq":2345`) {
		t.Error("the end of a broken log was signed")
	}
	got, err = VerifyExport(bytes.NewReader(buf.Bytes()), keys)
	if err != nil || got.OK || got.Break.Seq != 101 {
		t.Errorf("offline report of the broken export: %+v, %v", got, err)
	}
}
