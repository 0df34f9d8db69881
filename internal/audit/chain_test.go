package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCanonicalForm(t *testing.T) {
	e := Event{
		Seq:         7,
		Time:        time.Date(2025, 3, 4, 5, 6, 7, 80, time.FixedZone("CET", 3600)),
		Actor:       "alice \"a\" <ops>",
		Action:      "promotion.create",
		Subject:     "promotion/p1",
		PromotionID: "p1",
		Reason:      "line\nbreak\ttab\x01é\xff",
		Details:     json.RawMessage(`{ "z": [1, 2.50, {"b": true, "a": null}], "a": "x\u00e9<&>" }`),
		PrevHash:    GenesisHash,
		Hash:        "not covered",
	}
	got, err := Canonical(&e)
	if err != nil {
		t.Fatal(err)
	}
	// Written by hand from the rules in Canonical's doc comment.
	want := `{"action":"promotion.create","actor":"alice \"a\" <ops>",` +
		`"details":{"a":"xé<&>","z":[1,2.50,{"a":null,"b":true}]},` +
		`"prevHash":"` + GenesisHash + `","promotionId":"p1","reason":"line\nbreak\ttab\u0001é` + "\uFFFD" + `",` +
		`"seq":7,"subject":"promotion/p1","time":"2025-03-04T04:06:07.000000080Z"}`
	if string(got) != want {
		t.Fatalf("canonical form:\n got %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Fatalf("canonical form is not JSON: %s", got)
	}

	sum := sha256.Sum256([]byte(GenesisHash + want))
	h, err := ComputeHash(&e)
	if err != nil {
		t.Fatal(err)
	}
	if h != hex.EncodeToString(sum[:]) {
		t.Errorf("hash %s, want SHA-256(prevHash ‖ canonical) = %x", h, sum)
	}

	// Without details: null.
	e.Details = nil
	got, _ = Canonical(&e)
	if !strings.Contains(string(got), `"details":null,`) {
		t.Errorf("canonical form without details: %s", got)
	}
}

func TestCanonicalDetailsRefusesDuplicateKeys(t *testing.T) {
	for _, d := range []string{`{"a":1,"a":2}`, `{"x":{"k":1,"k":1}}`, `[{"b":1,"b":2}]`} {
		if _, err := CanonicalJSON([]byte(d)); err == nil || !strings.Contains(err.Error(), "duplicate object key") {
			t.Errorf("CanonicalJSON(%s) = %v, want a duplicate key error", d, err)
		}
		e := Event{Time: time.Unix(1, 0), Actor: "a", Action: "x", Subject: "s", Details: json.RawMessage(d)}
		if err := e.Validate(); err == nil || !strings.Contains(err.Error(), "duplicate object key") {
			t.Errorf("Validate with details %s = %v, want a duplicate key error", d, err)
		}
	}
}

// A JSON round trip (as an export makes) changes the bytes of the details
// and strings but not the canonical form, so not the hash.
func TestHashSurvivesJSONRoundTrip(t *testing.T) {
	e := Event{Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), Actor: "bob\xfe", Action: "a", Subject: "s<1>",
		Details: json.RawMessage("{\n  \"html\": \"<b>&</b>\",\n  \"n\": 1e3, \"u\": \"\\u00e9\\u2028\"\n}")}
	if _, err := Link(Genesis(), &e); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e) // escapes HTML, compacts details, replaces invalid UTF-8
	if err != nil {
		t.Fatal(err)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if string(back.Details) == string(e.Details) {
		t.Fatalf("the round trip kept the details' bytes; the test needs them changed: %s", back.Details)
	}
	h, err := ComputeHash(&back)
	if err != nil {
		t.Fatal(err)
	}
	if h != e.Hash {
		t.Errorf("hash after a JSON round trip %s, want %s", h, e.Hash)
	}
}

// chain returns n linked events.
func chain(t *testing.T, n int) []Event {
	t.Helper()
	head := Genesis()
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{Time: time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC), Actor: fmt.Sprintf("user-%d", i%3),
			Action: "promotion.transition", Subject: "promotion/p1", PromotionID: "p1",
			Details: Details(map[string]any{"i": i})}
		var err error
		if head, err = Link(head, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestLinkNumbersAndChains(t *testing.T) {
	events := chain(t, 3)
	for i, e := range events {
		if e.Seq != int64(i+1) || len(e.Hash) != 64 {
			t.Fatalf("event %d: seq %d, hash %q", i, e.Seq, e.Hash)
		}
		prev := GenesisHash
		if i > 0 {
			prev = events[i-1].Hash
		}
		if e.PrevHash != prev {
			t.Errorf("event %d: prevHash %s, want %s", i, e.PrevHash, prev)
		}
	}
	if events[0].Hash == events[1].Hash {
		t.Error("two events share a hash")
	}
}

// check runs a whole chain over events and returns the first break.
func check(events []Event) *Break {
	c := NewChain()
	for i := range events {
		if b := c.Add(&events[i]); b != nil {
			return b
		}
	}
	return nil
}

func TestChainNamesFirstBrokenSeq(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(ev []Event) []Event
		seq    int64
		reason string
	}{
		{"edited actor", func(ev []Event) []Event { ev[3].Actor = "mallory"; return ev }, 4, "was changed"},
		{"edited time", func(ev []Event) []Event { ev[3].Time = ev[3].Time.Add(time.Nanosecond); return ev }, 4, "was changed"},
		{"edited details", func(ev []Event) []Event { ev[3].Details = Details(map[string]any{"i": 99}); return ev }, 4, "was changed"},
		{"edited and rehashed", func(ev []Event) []Event {
			ev[3].Reason = "cover-up"
			ev[3].Hash, _ = ComputeHash(&ev[3])
			return ev
		}, 5, "not the hash"},
		{"deleted", func(ev []Event) []Event { return append(ev[:3], ev[4:]...) }, 4, "event missing"},
		{"deleted and renumbered", func(ev []Event) []Event {
			ev = append(ev[:3], ev[4:]...)
			for i := 3; i < len(ev); i++ {
				ev[i].Seq--
			}
			return ev
		}, 4, "not the hash"},
		{"inserted", func(ev []Event) []Event {
			forged := ev[2]
			forged.Actor = "mallory"
			return append(ev[:3], append([]Event{forged}, ev[3:]...)...)
		}, 3, "out of order"},
		{"swapped contents", func(ev []Event) []Event {
			ev[2], ev[5] = ev[5], ev[2]
			ev[2].Seq, ev[5].Seq = 3, 6
			return ev
		}, 3, "not the hash"},
		{"swapped rows", func(ev []Event) []Event { ev[2], ev[5] = ev[5], ev[2]; return ev }, 3, "event missing"},
		{"first prevHash", func(ev []Event) []Event { ev[0].PrevHash = strings.Repeat("1", 64); return ev }, 1, "genesis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b := check(chain(t, 8)); b != nil {
				t.Fatalf("untampered chain: %v", b)
			}
			b := check(tt.tamper(chain(t, 8)))
			if b == nil || b.Seq != tt.seq || !strings.Contains(b.Reason, tt.reason) {
				t.Fatalf("break %v, want at seq %d mentioning %q", b, tt.seq, tt.reason)
			}
		})
	}
}

func TestPartialChainAllowsGapsButChecksEachEvent(t *testing.T) {
	all := chain(t, 10)
	sel := []Event{all[1], all[2], all[5], all[8], all[9]}
	c := NewPartialChain()
	for i := range sel {
		if b := c.Add(&sel[i]); b != nil {
			t.Fatalf("selection: %v", b)
		}
	}
	if c.Runs() != 3 || c.Events() != 5 {
		t.Errorf("runs %d, events %d; want 3, 5", c.Runs(), c.Events())
	}
	sel[3].Actor = "mallory"
	c = NewPartialChain()
	var b *Break
	for i := range sel {
		if b = c.Add(&sel[i]); b != nil {
			break
		}
	}
	if b == nil || b.Seq != 9 {
		t.Errorf("edited selection: break %v, want at seq 9", b)
	}
}

func TestCanonicalParts(t *testing.T) {
	for _, e := range chain(t, 3) {
		e.Reason = `has "prevHash":"" and ,"seq":0, inside`
		e.Details = json.RawMessage(`{"seq":0,"prevHash":""}`)
		p, err := CanonicalParts(&e)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Canonical(&e)
		if err != nil {
			t.Fatal(err)
		}
		assembled := string(p.A) + e.PrevHash + string(p.B) + fmt.Sprint(e.Seq) + string(p.C)
		if assembled != string(c) {
			t.Fatalf("parts assemble to\n%s\nnot\n%s", assembled, c)
		}
		h, err := ComputeHash(&e)
		if err != nil || p.Hash(e.Seq, e.PrevHash) != h {
			t.Errorf("Parts.Hash = %s, ComputeHash = %s (%v)", p.Hash(e.Seq, e.PrevHash), h, err)
		}
	}
}
