package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/traceid"
)

const tracedPipeline = `name: shop
environments:
  - name: prod
    gates:
      policies:
        - {name: labelled, expr: 'release.version != ""', message: "a release needs a version"}
    steps:
      - name: deploy
        exec: {run: 'echo "$FERRY_RELEASE $FERRY_PHASE $TRACEPARENT" >> "$WORK/traceparents"; echo "$FERRY_RELEASE" > "$WORK/current"'}
    verify:
      - name: smoke
        exec: {run: 'echo "$FERRY_RELEASE $FERRY_PHASE $TRACEPARENT" >> "$WORK/traceparents"; test "$(cat "$WORK/current")" != 2.0.0'}
`

// attr returns a span attribute's value as a string.
func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestTraceOfRolledBackPromotion runs a promotion whose check fails and
// rolls back, with a tracer: every span of the promotion is in its derived
// trace, under its root span (rollback steps under the rollback span), and
// each step saw the traceparent of its own span.
func TestTraceOfRolledBackPromotion(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(traceid.Generator{}), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	dir := t.TempDir()
	b := &testBundle{dir: dir, dbPath: filepath.Join(dir, "ferry.db")}
	b.start(t, engine.Config{Tracer: tp.Tracer("ferry")})
	b.apply(t, tracedPipeline)
	b.release(t, "shop", "1.0.0")
	b.release(t, "shop", "2.0.0")
	if p := b.wait(t, b.promote(t, "shop", "1.0.0", "prod").ID); p.State != promotion.Succeeded {
		t.Fatalf("1.0.0: %s %s", p.State, p.Message)
	}
	p := b.wait(t, b.promote(t, "shop", "2.0.0", "prod").ID)
	if p.State != promotion.RolledBack {
		t.Fatalf("2.0.0 ended %s (%s), want rolled_back", p.State, p.Message)
	}
	if p.TraceID != traceid.String(p.ID) {
		t.Fatalf("promotion view traceId = %s, want %s", p.TraceID, traceid.String(p.ID))
	}

	tid := traceid.FromPromotion(p.ID)
	root, rollback := traceid.RootSpanID(p.ID), traceid.RollbackSpanID(p.ID)
	bySpanID := map[string]sdktrace.ReadOnlySpan{}
	var names []string
	for _, s := range rec.Ended() {
		if attr(s, "ferry.promotion.id") != p.ID {
			if s.SpanContext().TraceID() == tid {
				t.Errorf("span %s of another promotion is in trace %s", s.Name(), tid)
			}
			continue
		}
		if s.SpanContext().TraceID() != tid {
			t.Errorf("span %s: trace %s, want %s", s.Name(), s.SpanContext().TraceID(), tid)
		}
		bySpanID[s.SpanContext().SpanID().String()] = s
		names = append(names, s.Name())
		switch s.SpanContext().SpanID() {
		case root:
			if s.Parent().IsValid() || s.Name() != "promotion shop/prod" || attr(s, "ferry.promotion.state") != "rolled_back" ||
				!s.StartTime().Equal(p.CreatedAt) || !s.EndTime().Equal(*p.FinishedAt) || s.Status().Code != codes.Error {
				t.Errorf("root span %s: parent %v state %s %v–%v status %v; want no parent, rolled_back, %v–%v, error",
					s.Name(), s.Parent().SpanID(), attr(s, "ferry.promotion.state"), s.StartTime(), s.EndTime(), s.Status(), p.CreatedAt, *p.FinishedAt)
			}
		case rollback:
			if s.Parent().SpanID() != root || s.Name() != "rollback" || attr(s, "ferry.rollback.release") != "1.0.0" {
				t.Errorf("rollback span: parent %s name %s to %s; want under the root, restoring 1.0.0", s.Parent().SpanID(), s.Name(), attr(s, "ferry.rollback.release"))
			}
		default:
			want := root
			if attr(s, "ferry.step.phase") == string(promotion.PhaseRollback) {
				want = rollback
			}
			if s.Parent().SpanID() != want || !s.Parent().IsRemote() {
				t.Errorf("span %s (phase %q): parent %s, want %s", s.Name(), attr(s, "ferry.step.phase"), s.Parent().SpanID(), want)
			}
		}
	}
	if _, ok := bySpanID[root.String()]; !ok {
		t.Fatalf("no root span among %v", names)
	}
	if _, ok := bySpanID[rollback.String()]; !ok {
		t.Fatalf("no rollback span among %v", names)
	}

	// One gate evaluation, with each gate's result.
	var gates []sdktrace.ReadOnlySpan
	for _, s := range bySpanID {
		if s.Name() == "gates" {
			gates = append(gates, s)
		}
	}
	if len(gates) != 1 || attr(gates[0], "ferry.gates.result") != "pass" ||
		!strings.Contains(attr(gates[0], "ferry.gate.names"), "labelled") || len(gates[0].Events()) < 2 {
		t.Fatalf("gate spans %d: %v; want one passing evaluation naming the policy, an event per gate", len(gates), gates)
	}
	for _, ev := range gates[0].Events() {
		kv := attribute.NewSet(ev.Attributes...)
		if r, _ := kv.Value("ferry.gate.result"); r.AsString() != "pass" {
			t.Errorf("gate event %v: want pass", ev.Attributes)
		}
	}

	// Each step's TRACEPARENT names its own span: deploy and smoke of 2.0.0,
	// then deploy and smoke of 1.0.0 in the rollback.
	lines, err := os.ReadFile(filepath.Join(dir, "traceparents"))
	if err != nil {
		t.Fatal(err)
	}
	wantSteps := map[string]string{ // "release phase" → step and result of the span
		"2.0.0 deploy": "step deploy succeeded", "2.0.0 verify": "check smoke failed",
		"1.0.0 rollback": "",
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] == "1.0.0" && f[1] != "rollback" {
			continue // the first promotion's steps
		}
		parts := strings.Split(f[2], "-")
		if len(parts) != 4 || parts[0] != "00" || parts[1] != tid.String() || parts[3] != "01" {
			t.Errorf("step %s %s saw TRACEPARENT %q, want 00-%s-<span>-01", f[0], f[1], f[2], tid)
			continue
		}
		s, ok := bySpanID[parts[2]]
		if !ok {
			t.Errorf("step %s %s saw span %s, which was not recorded", f[0], f[1], parts[2])
			continue
		}
		seen++
		got := s.Name() + " " + attr(s, "ferry.step.result")
		if want := wantSteps[f[0]+" "+f[1]]; want != "" && got != want {
			t.Errorf("step %s %s: span %q, want %q", f[0], f[1], got, want)
		}
		if f[1] == "verify" && (attr(s, "ferry.check.verdict") != "fail" || attr(s, "ferry.check.name") != "smoke" ||
			attr(s, "ferry.step.exit_code") != "1" || s.Status().Code != codes.Error) {
			t.Errorf("check span %s: verdict %q name %q exit %q status %v; want fail, smoke, 1, error", s.Name(),
				attr(s, "ferry.check.verdict"), attr(s, "ferry.check.name"), attr(s, "ferry.step.exit_code"), s.Status())
		}
		if f[1] == "rollback" && (s.Parent().SpanID() != rollback || attr(s, "ferry.step.result") != "succeeded") {
			t.Errorf("rollback step span %s: parent %s result %s", s.Name(), s.Parent().SpanID(), attr(s, "ferry.step.result"))
		}
	}
	if seen != 4 {
		t.Fatalf("%d steps of 2.0.0's promotion saw their span, want 4 (deploy, smoke, and both again in the rollback):\n%s", seen, lines)
	}
}

// TestTraceParentWithoutTracer checks that, with no tracer, steps still get
// the promotion's trace ID, marked not sampled.
func TestTraceParentWithoutTracer(t *testing.T) {
	b := setup(t)
	b.apply(t, tracedPipeline)
	b.release(t, "shop", "1.0.0")
	p := b.wait(t, b.promote(t, "shop", "1.0.0", "prod").ID)
	if p.State != promotion.Succeeded {
		t.Fatalf("1.0.0: %s %s", p.State, p.Message)
	}
	got, err := os.ReadFile(filepath.Join(b.dir, "traceparents"))
	if err != nil {
		t.Fatal(err)
	}
	tp := traceid.TraceParent(traceid.Root(p.ID, false))
	if want := "1.0.0 deploy " + tp + "\n1.0.0 verify " + tp + "\n"; string(got) != want {
		t.Fatalf("steps saw:\n%swant:\n%s", got, want)
	}
}
