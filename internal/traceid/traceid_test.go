package traceid_test

import (
	"context"
	"regexp"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferry-dev/ferry/internal/traceid"
)

const promotionID = "0b8e4c2e-6a36-4d4f-9a8e-2f1f4f0c8d11"

// The expected digests were computed outside Go, with coreutils:
//
//	printf 'ferry/promotion/0b8e4c2e-6a36-4d4f-9a8e-2f1f4f0c8d11' | sha256sum
//	55c03f504fea8c49b71214ad766eefc73b0053dbeea120600ae35c3f6fdf4fb9
//	printf 'ferry/promotion/0b8e4c2e-6a36-4d4f-9a8e-2f1f4f0c8d11/rollback' | sha256sum
//	3841219bb0b15087b192dea2405bd5a1267e0a82d396c1c8cab35bc3b23ba80c
//
// Logs carry the same trace ID: this is the definition they rely on.
func TestDerivation(t *testing.T) {
	if got, want := traceid.String(promotionID), "55c03f504fea8c49b71214ad766eefc7"; got != want {
		t.Errorf("trace ID = %s, want the first 16 bytes of the digest %s", got, want)
	}
	if got, want := traceid.FromPromotion(promotionID).String(), traceid.String(promotionID); got != want {
		t.Errorf("FromPromotion = %s, String = %s", got, want)
	}
	if got, want := traceid.RootSpanID(promotionID).String(), "3b0053dbeea12060"; got != want {
		t.Errorf("root span ID = %s, want bytes 16 to 23 of the digest %s", got, want)
	}
	if got, want := traceid.RollbackSpanID(promotionID).String(), "3841219bb0b15087"; got != want {
		t.Errorf("rollback span ID = %s, want the first 8 bytes of the rollback digest %s", got, want)
	}
}

func TestDistinctPromotionsDistinctTraces(t *testing.T) {
	seen := map[trace.TraceID]string{}
	for _, id := range []string{"", "a", "b", "ab", promotionID, promotionID + "x", "0B8E4C2E-6A36-4D4F-9A8E-2F1F4F0C8D11"} {
		tid := traceid.FromPromotion(id)
		if !tid.IsValid() || !traceid.RootSpanID(id).IsValid() {
			t.Errorf("promotion %q: invalid trace %s or root span %s", id, tid, traceid.RootSpanID(id))
		}
		if other, dup := seen[tid]; dup {
			t.Errorf("promotions %q and %q share trace ID %s", other, id, tid)
		}
		seen[tid] = id
		if traceid.RootSpanID(id) == traceid.RollbackSpanID(id) {
			t.Errorf("promotion %q: root and rollback spans share ID %s", id, traceid.RootSpanID(id))
		}
	}
}

func TestTraceParent(t *testing.T) {
	for _, sampled := range []bool{true, false} {
		sc := traceid.Root(promotionID, sampled)
		tp := traceid.TraceParent(sc)
		if !regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`).MatchString(tp) {
			t.Fatalf("TraceParent = %q, not a W3C traceparent", tp)
		}
		// The W3C propagator reads back the same span context.
		got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
			propagation.MapCarrier{"traceparent": tp}))
		if got.TraceID() != traceid.FromPromotion(promotionID) || got.SpanID() != traceid.RootSpanID(promotionID) || got.IsSampled() != sampled {
			t.Errorf("traceparent %q extracts to trace %s span %s sampled %v", tp, got.TraceID(), got.SpanID(), got.IsSampled())
		}
	}
	if tp := traceid.TraceParent(trace.SpanContext{}); tp != "" {
		t.Errorf("TraceParent of an invalid span context = %q, want empty", tp)
	}
}

// TestGenerator makes spans with the SDK: a root span made from
// ContextWithIDs carries the promotion's IDs, a span under the remote root
// is its child, and without fixed IDs the IDs are random.
func TestGenerator(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(traceid.Generator{}), sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("test")
	root := traceid.Root(promotionID, true)

	_, span := tr.Start(traceid.ContextWithIDs(context.Background(), root), "promotion", trace.WithNewRoot())
	span.End()
	_, child := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), root), "step")
	child.End()
	rb := trace.NewSpanContext(trace.SpanContextConfig{TraceID: root.TraceID(), SpanID: traceid.RollbackSpanID(promotionID), TraceFlags: trace.FlagsSampled})
	_, rollback := tr.Start(traceid.ContextWithIDs(trace.ContextWithRemoteSpanContext(context.Background(), root), rb), "rollback")
	rollback.End()
	_, other := tr.Start(context.Background(), "unrelated")
	other.End()

	spans := rec.Ended()
	if len(spans) != 4 {
		t.Fatalf("%d spans ended, want 4", len(spans))
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = s
	}
	want := traceid.FromPromotion(promotionID)
	if s := byName["promotion"]; s.SpanContext().TraceID() != want || s.SpanContext().SpanID() != traceid.RootSpanID(promotionID) || s.Parent().IsValid() {
		t.Errorf("root span: trace %s span %s parent %s; want trace %s span %s and no parent",
			s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID(), want, traceid.RootSpanID(promotionID))
	}
	if s := byName["step"]; s.SpanContext().TraceID() != want || s.Parent().SpanID() != traceid.RootSpanID(promotionID) ||
		s.SpanContext().SpanID() == traceid.RootSpanID(promotionID) || !s.SpanContext().IsSampled() {
		t.Errorf("child span: trace %s span %s parent %s sampled %v; want a new sampled span under the root",
			s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID(), s.SpanContext().IsSampled())
	}
	if s := byName["rollback"]; s.SpanContext().SpanID() != traceid.RollbackSpanID(promotionID) || s.Parent().SpanID() != traceid.RootSpanID(promotionID) {
		t.Errorf("rollback span: span %s parent %s; want span %s under the root", s.SpanContext().SpanID(), s.Parent().SpanID(), traceid.RollbackSpanID(promotionID))
	}
	if s := byName["unrelated"]; s.SpanContext().TraceID() == want || !s.SpanContext().IsValid() {
		t.Errorf("a span without fixed IDs got trace %s", s.SpanContext().TraceID())
	}
}
