package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/otlptest"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/traceid"
)

// tracedPipeline deploys with a script that records its TRACEPARENT and an
// http step to the test's hook server; its check fails for 2.0.0.
const tracedPipeline = `name: traced
environments:
  - name: prod
    gates:
      policies:
        - {name: versioned, expr: 'release.version != ""', message: "a release needs a version"}
    steps:
      - name: deploy
        exec: {run: 'echo "$FERRY_RELEASE $FERRY_PHASE $TRACEPARENT" >> "$WORK/traceparents"; echo "$FERRY_RELEASE" > "$WORK/prod.current"'}
      - name: notify
        http: {url: "%s/deployed", method: POST}
    verify:
      - name: smoke
        exec: {run: 'echo "$FERRY_RELEASE $FERRY_PHASE $TRACEPARENT" >> "$WORK/traceparents"; test "$(cat "$WORK/prod.current")" != 2.0.0'}
`

func TestTracePromotion(t *testing.T) { eachStore(t, testTracePromotion) }

// testTracePromotion runs a server that exports to an OTLP receiver in this
// process, promotes a release, then one whose check fails and is rolled
// back, and checks the second promotion's trace: its ID is derived from the
// promotion's, every span hangs under its root span (rollback steps under
// the rollback span), the root arrives once the promotion ended, and the
// script and the http endpoint saw the traceparent of their own step's span.
func testTracePromotion(t *testing.T, b backend) {
	rec := otlptest.Start(t)
	var mu sync.Mutex
	var headers []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Get("traceparent"))
		mu.Unlock()
	}))
	defer hook.Close()

	s := startServer(t, b, "--otlp-endpoint", rec.URL())
	s.must("apply", "-f", s.writeFile("traced.yaml", fmt.Sprintf(tracedPipeline, hook.URL)))
	for _, v := range []string{"1.0.0", "2.0.0"} {
		s.must("release", "create", "--pipeline", "traced", "--version", v, "--artifact", "app=registry.example/app@"+digest("app"+v))
	}
	s.must("promote", "--pipeline", "traced", "--release", "1.0.0", "--to", "prod", "--wait")
	if r := s.ferry("promote", "--pipeline", "traced", "--release", "2.0.0", "--to", "prod", "--wait"); r.code != 3 {
		t.Fatalf("promote 2.0.0: exit %d, want 3 (rolled back)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	p := s.promotions("--pipeline", "traced", "--limit", "1")[0]
	if p.State != promotion.RolledBack || p.Release.Version != "2.0.0" {
		t.Fatalf("latest promotion: %s %s, want 2.0.0 rolled_back", p.Release.Version, p.State)
	}
	tid, root, rollback := traceid.String(p.ID), traceid.RootSpanID(p.ID).String(), traceid.RollbackSpanID(p.ID).String()

	// The promotion leads to its trace...
	if got := s.promotion(p.ID).TraceID; got != tid {
		t.Fatalf("promotion show -o json: traceId %q, want %s", got, tid)
	}
	if out := s.must("promotion", "show", p.ID); !strings.Contains(out, "Trace:") || !strings.Contains(out, tid) {
		t.Fatalf("promotion show lacks the trace ID %s:\n%s", tid, out)
	}

	// ... and its spans arrive, the root one once it ended.
	spans := rec.Await(t, 30*time.Second, func(spans []otlptest.Span) bool {
		for _, sp := range spans {
			if sp.SpanID == root {
				return true
			}
		}
		return false
	})
	byID := map[string]otlptest.Span{}
	for _, sp := range spans {
		if sp.TraceID != tid {
			if sp.Attributes["ferry.promotion.id"] == p.ID {
				t.Errorf("span %s of promotion %s is in trace %s, want %s", sp.Name, p.ID, sp.TraceID, tid)
			}
			continue
		}
		if sp.Attributes["ferry.promotion.id"] != p.ID {
			t.Errorf("span %s in trace %s names promotion %v, want %s", sp.Name, tid, sp.Attributes["ferry.promotion.id"], p.ID)
		}
		if sp.Resource["service.name"] != "ferry" {
			t.Errorf("span %s: service.name %v, want ferry", sp.Name, sp.Resource["service.name"])
		}
		byID[sp.SpanID] = sp
	}
	rootSpan, ok := byID[root]
	if !ok || rootSpan.ParentSpanID != "" || rootSpan.Attributes["ferry.promotion.state"] != "rolled_back" || rootSpan.StatusCode != "ERROR" {
		t.Fatalf("root span %+v: want no parent, state rolled_back, status ERROR", rootSpan)
	}
	if rb, ok := byID[rollback]; !ok || rb.ParentSpanID != root || rb.Name != "rollback" || rb.Attributes["ferry.rollback.release"] != "1.0.0" {
		t.Fatalf("rollback span %+v: want one under the root restoring 1.0.0", rb)
	}
	count := map[string]int{}
	for _, sp := range byID {
		phase, _ := sp.Attributes["ferry.step.phase"].(string)
		want := root
		switch {
		case sp.SpanID == root:
			continue
		case phase == string(promotion.PhaseRollback):
			want = rollback
		}
		if sp.ParentSpanID != want {
			t.Errorf("span %s (phase %q): parent %s, want %s", sp.Name, phase, sp.ParentSpanID, want)
		}
		if sp.End.Before(sp.Start) || sp.Start.Before(rootSpan.Start) || sp.End.After(rootSpan.End) {
			t.Errorf("span %s runs %v–%v, outside the promotion's %v–%v", sp.Name, sp.Start, sp.End, rootSpan.Start, rootSpan.End)
		}
		count[phase+"/"+sp.Name]++
	}
	want := map[string]int{"/gates": 1, "/rollback": 1, "deploy/step deploy": 1, "deploy/step notify": 1, "verify/check smoke": 1,
		"rollback/step deploy": 1, "rollback/step notify": 1, "rollback/step smoke": 1}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("spans by phase/name = %v\nwant %v", count, want)
	}
	if c := byID[spanOf(t, byID, "verify", "check smoke")]; c.Attributes["ferry.check.verdict"] != "fail" || c.StatusCode != "ERROR" {
		t.Errorf("check span: verdict %v status %s, want fail, ERROR", c.Attributes["ferry.check.verdict"], c.StatusCode)
	}
	if g := byID[spanOf(t, byID, "", "gates")]; g.Attributes["ferry.gates.result"] != "pass" || len(g.Events) != 2 {
		t.Errorf("gate span: result %v events %v; want pass with an event per gate (upstream, versioned)", g.Attributes["ferry.gates.result"], g.Events)
	}

	// The scripts saw their own step's span as TRACEPARENT.
	saw := 0
	for _, line := range lines(s.readWork("traceparents")) {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] == "1.0.0" && f[1] != "rollback" {
			continue // the first promotion
		}
		saw++
		sp, ok := byID[spanIDOf(t, f[2], tid)]
		if !ok || sp.Attributes["ferry.step.phase"] != f[1] {
			t.Errorf("release %s phase %s saw TRACEPARENT %s: no span of that phase with that ID (got %+v)", f[0], f[1], f[2], sp)
		}
	}
	if saw != 4 {
		t.Errorf("%d script runs of promotion 2.0.0 recorded a TRACEPARENT, want 4 (deploy, smoke, both again in the rollback):\n%s", saw, s.readWork("traceparents"))
	}
	// The http steps sent their own step's span as the traceparent header.
	mu.Lock()
	got := append([]string(nil), headers...)
	mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("the hook received %d requests, want 3 (1.0.0, 2.0.0, the rollback)", len(got))
	}
	for i, h := range got[1:] {
		sp, ok := byID[spanIDOf(t, h, tid)]
		wantPhase := []string{"deploy", "rollback"}[i]
		if !ok || sp.Name != "step notify" || sp.Attributes["ferry.step.phase"] != wantPhase || sp.Kind != "CLIENT" {
			t.Errorf("request %d carried traceparent %s: want the span of the %s notify step (got %+v)", i+2, h, wantPhase, sp)
		}
	}
}

// spanIDOf checks a traceparent is in trace tid and sampled, and returns its span ID.
func spanIDOf(t *testing.T, traceparent, tid string) string {
	t.Helper()
	f := strings.Split(traceparent, "-")
	if len(f) != 4 || f[0] != "00" || f[1] != tid || len(f[2]) != 16 || f[3] != "01" {
		t.Errorf("traceparent %q: want 00-%s-<16 hex digits>-01", traceparent, tid)
		return ""
	}
	return f[2]
}

// spanOf returns the ID of the one span with a phase and a name.
func spanOf(t *testing.T, spans map[string]otlptest.Span, phase, name string) string {
	t.Helper()
	for id, sp := range spans {
		if p, _ := sp.Attributes["ferry.step.phase"].(string); p == phase && sp.Name == name {
			return id
		}
	}
	t.Errorf("no span %q in phase %q", name, phase)
	return ""
}
