package promtest

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Target is an HTTP server on 127.0.0.1 that serves /metrics in the
// Prometheus text format, with the counters and gauges the test sets. Its
// methods are safe for concurrent use.
type Target struct {
	srv *httptest.Server

	mu       sync.Mutex
	families map[string]*family
	onScrape func()
}

// family is one metric name with its type and its series.
type family struct {
	kind   string            // "counter" or "gauge"
	series map[string]series // by rendered label set
}

type series struct {
	labels string // rendered, such as {code="500"}; empty without labels
	value  float64
}

// NewTarget starts a target for tb and stops it when tb ends.
func NewTarget(tb testing.TB) *Target {
	tb.Helper()
	t := &Target{families: map[string]*family{}}
	t.srv = httptest.NewServer(http.HandlerFunc(t.serve))
	tb.Cleanup(t.srv.Close)
	return t
}

// Address returns the target's host:port, as Config.Targets wants it.
func (t *Target) Address() string { return strings.TrimPrefix(t.srv.URL, "http://") }

// URL returns the URL of the target's metrics, such as
// http://127.0.0.1:41234/metrics.
func (t *Target) URL() string { return t.srv.URL + "/metrics" }

// SetCounter sets the counter name with labels (nil for none) to value.
// It panics if name is already a gauge.
func (t *Target) SetCounter(name string, labels map[string]string, value float64) {
	t.set(name, "counter", labels, func(float64) float64 { return value })
}

// SetGauge sets the gauge name with labels (nil for none) to value. It panics
// if name is already a counter.
func (t *Target) SetGauge(name string, labels map[string]string, value float64) {
	t.set(name, "gauge", labels, func(float64) float64 { return value })
}

// Add adds delta to the counter name with labels (nil for none), creating it
// at 0 first if need be. It panics if name is already a gauge.
func (t *Target) Add(name string, labels map[string]string, delta float64) {
	t.set(name, "counter", labels, func(v float64) float64 { return v + delta })
}

// OnScrape sets a function that runs before each scrape's answer is
// written, to move the metrics along with the scrapes: a test that calls
// Add there gets counters that grow at a known rate per scrape. f may call
// the target's methods.
func (t *Target) OnScrape(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onScrape = f
}

func (t *Target) set(name, kind string, labels map[string]string, f func(float64) float64) {
	if !validName(name) {
		panic(fmt.Sprintf("promtest: invalid metric name %q", name))
	}
	key := renderLabels(labels)
	t.mu.Lock()
	defer t.mu.Unlock()
	fam := t.families[name]
	if fam == nil {
		fam = &family{kind: kind, series: map[string]series{}}
		t.families[name] = fam
	}
	if fam.kind != kind {
		panic(fmt.Sprintf("promtest: %s is a %s, not a %s", name, fam.kind, kind))
	}
	s := fam.series[key]
	fam.series[key] = series{labels: key, value: f(s.value)}
}

// serve answers a scrape.
func (t *Target) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/metrics" {
		http.NotFound(w, r)
		return
	}
	t.mu.Lock()
	f := t.onScrape
	t.mu.Unlock()
	if f != nil {
		f()
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(t.exposition()))
}

// exposition renders the metrics in the text format, sorted by name and
// labels.
func (t *Target) exposition() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	names := make([]string, 0, len(t.families))
	for name := range t.families {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fam := t.families[name]
		fmt.Fprintf(&b, "# TYPE %s %s\n", name, fam.kind)
		keys := make([]string, 0, len(fam.series))
		for k := range fam.series {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s%s %s\n", name, k, formatValue(fam.series[k].value))
		}
	}
	return b.String()
}

// renderLabels renders labels as the text format writes them, sorted by
// name: {a="1",b="x\"y"}; empty for no labels.
func renderLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	names := make([]string, 0, len(labels))
	for name := range labels {
		if !validName(name) || strings.Contains(name, ":") {
			panic(fmt.Sprintf("promtest: invalid label name %q", name))
		}
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(labelEscaper.Replace(labels[name]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

// formatValue writes v as the text format does, including NaN and ±Inf.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// validName reports whether name matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && r >= '0' && r <= '9':
		default:
			return false
		}
	}
	return true
}
