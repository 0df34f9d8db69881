package alert

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func decodeFile(t *testing.T, name string) *Message {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Decode(f, 0)
	if err != nil {
		t.Fatalf("Decode(%s): %v", name, err)
	}
	return m
}

func TestDecodeFiring(t *testing.T) {
	m := decodeFile(t, "firing.json")
	if m.Version != "4" || m.Status != StatusFiring || m.Receiver != "ferry" {
		t.Errorf("header = %q %q %q", m.Version, m.Status, m.Receiver)
	}
	if want := `{}/{severity=~"critical|page"}:{alertname="HighErrorRate"}`; m.GroupKey != want {
		t.Errorf("GroupKey = %q, want %q", m.GroupKey, want)
	}
	if m.GroupLabels["alertname"] != "HighErrorRate" || m.CommonLabels["severity"] != "critical" {
		t.Errorf("group/common labels = %v %v", m.GroupLabels, m.CommonLabels)
	}
	if m.CommonAnnotations["summary"] != "Checkout 5xx rate above 5%" {
		t.Errorf("CommonAnnotations = %v", m.CommonAnnotations)
	}
	if m.ExternalURL != "http://alertmanager.example.com:9093" {
		t.Errorf("ExternalURL = %q", m.ExternalURL)
	}
	if len(m.Alerts) != 2 {
		t.Fatalf("got %d alerts, want 2", len(m.Alerts))
	}
	a := m.Alerts[0]
	if !a.Firing() || a.Fingerprint != "c3a1f2b4d5e60718" || a.Labels["instance"] != "checkout-7d9f-2" {
		t.Errorf("alert 0 = %+v", a)
	}
	if want := time.Date(2024, 5, 14, 9, 31, 2, 123e6, time.UTC); !a.StartsAt.Equal(want) {
		t.Errorf("StartsAt = %v, want %v", a.StartsAt, want)
	}
	if !a.EndsAt.IsZero() {
		t.Errorf("EndsAt = %v, want zero", a.EndsAt)
	}
	if !strings.HasPrefix(a.GeneratorURL, "http://prometheus.example.com:9090/graph?") {
		t.Errorf("GeneratorURL = %q", a.GeneratorURL)
	}
}

func TestDecodeResolvedAndTruncated(t *testing.T) {
	r := decodeFile(t, "resolved.json")
	if r.Status != StatusResolved || r.Alerts[0].Firing() || r.Alerts[0].EndsAt.IsZero() {
		t.Errorf("resolved message = %+v", r)
	}
	m := decodeFile(t, "mixed_ferry_labels.json")
	if m.TruncatedAlerts != 2 || len(m.Alerts) != 3 {
		t.Errorf("TruncatedAlerts = %d, alerts = %d", m.TruncatedAlerts, len(m.Alerts))
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		limit   int64
		is      error
		wantMsg string
	}{
		{name: "empty", body: "  \n", wantMsg: "empty body"},
		{name: "syntax", body: "{\n  \"version\": \"4\",\n  \"groupKey\": }", wantMsg: "invalid JSON at line 3, column 15"},
		{name: "truncated", body: `{"version": "4", "groupKey": "g"`, wantMsg: "invalid JSON at line 1"},
		{name: "wrong type", body: "{\"version\": \"4\",\n\"truncatedAlerts\": \"two\"}", wantMsg: "wrong type at line 2"},
		{name: "not an object", body: `[1, 2]`, wantMsg: "wrong type at line 1"},
		{name: "bad time", body: `{"version":"4","groupKey":"g","alerts":[{"startsAt":"yesterday"}]}`, wantMsg: "decode alert webhook"},
		{name: "trailing data", body: `{"version":"4","groupKey":"g"} {}`, wantMsg: "invalid JSON at line 1, column 32"},
		{name: "version 3", body: `{"version":"3","groupKey":"g"}`, is: ErrUnsupportedVersion, wantMsg: `"3" (want "4")`},
		{name: "no version", body: `{"groupKey":"g"}`, is: ErrUnsupportedVersion},
		{name: "no group key", body: `{"version":"4","status":"firing"}`, is: ErrMissingGroupKey},
		{name: "too large", body: `{"version":"4","groupKey":"g"}`, limit: 10, is: ErrTooLarge, wantMsg: "more than 10 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(strings.NewReader(tt.body), tt.limit)
			if err == nil {
				t.Fatalf("Decode = %+v, want error", m)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestDecodeLimitExact(t *testing.T) {
	body := `{"version":"4","groupKey":"g"}`
	if _, err := Decode(strings.NewReader(body), int64(len(body))); err != nil {
		t.Errorf("payload of exactly the limit: %v", err)
	}
}

func TestDecodeReadError(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := Decode(errReader{boom}, 0)
	if !errors.Is(err, boom) {
		t.Errorf("Decode = %v, want %v wrapped", err, boom)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"version":"4","groupKey":"g","alerts":[null,{"labels":null}]}`))
	f.Add([]byte(`{"version":4}`))
	f.Add([]byte("{\"version\":\"4\",\n\"groupKey\":\"\xff\"}"))
	f.Add([]byte(``))
	routes := []Route{{Pipeline: "p", Environment: "e", Matchers: []Matcher{mustParse(f, `alertname=~".+"`)}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(bytes.NewReader(data), 4096)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned both a message and error %v", err)
			}
			return
		}
		if m.Version != Version || m.GroupKey == "" {
			t.Fatalf("Decode accepted version %q, groupKey %q", m.Version, m.GroupKey)
		}
		for _, tg := range Targets(m, routes) {
			_ = Key(m.GroupKey, tg)
			_ = Summary(tg.Alerts)
		}
		_ = Summary(m.Alerts)
	})
}
