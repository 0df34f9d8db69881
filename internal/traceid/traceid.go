// Package traceid derives the OpenTelemetry identity of a promotion's trace
// from the promotion's ID, so that a promotion leads to its trace and any
// replica, at any time, makes spans of the same trace without sharing state.
//
// The trace ID of promotion id is the first 16 bytes of
// SHA-256("ferry/promotion/" + id); its root span's ID is the next 8 bytes of
// the same digest. Logs use the same definition for their trace_id.
package traceid

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"
)

// prefix is hashed before a promotion ID.
const prefix = "ferry/promotion/"

func digest(promotionID string) [sha256.Size]byte {
	return sha256.Sum256([]byte(prefix + promotionID))
}

// FromPromotion returns the trace ID of a promotion: the first 16 bytes of
// SHA-256("ferry/promotion/" + id).
func FromPromotion(id string) trace.TraceID {
	d := digest(id)
	var t trace.TraceID
	copy(t[:], d[:16])
	return t
}

// String returns the trace ID of a promotion as 32 lowercase hex digits, as
// trace backends show it.
func String(id string) string { return FromPromotion(id).String() }

// RootSpanID returns the span ID of a promotion's root span: bytes 16 to 23
// of SHA-256("ferry/promotion/" + id).
func RootSpanID(id string) trace.SpanID {
	d := digest(id)
	var s trace.SpanID
	copy(s[:], d[16:24])
	return s
}

// RollbackSpanID returns the span ID of the span covering a promotion's
// rollback, the parent of its rollback steps' spans: the first 8 bytes of
// SHA-256("ferry/promotion/" + id + "/rollback").
func RollbackSpanID(id string) trace.SpanID {
	d := digest(id + "/rollback")
	var s trace.SpanID
	copy(s[:], d[:8])
	return s
}

// Root returns the span context of a promotion's root span, marked remote:
// the parent of every span of the promotion, whichever replica makes it.
// sampled sets its sampled flag.
func Root(id string, sampled bool) trace.SpanContext {
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: FromPromotion(id), SpanID: RootSpanID(id), TraceFlags: flags, Remote: true,
	})
}

// TraceParent returns the W3C traceparent of a span context
// ("00-<trace ID>-<span ID>-<flags>"), or "" when it is not valid.
func TraceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// idsKey is the context key of the IDs ContextWithIDs fixes.
type idsKey struct{}

// ContextWithIDs returns a context from which the next span started by a
// tracer provider using Generator gets sc's IDs: sc's trace and span IDs
// for a new root span, sc's span ID for a span in sc's trace. This is how a
// span whose ID others already use as a parent (a promotion's root span,
// emitted when the promotion ends) is made with that ID. Start exactly one
// span from the returned context: every span started from it gets the same ID.
func ContextWithIDs(ctx context.Context, sc trace.SpanContext) context.Context {
	return context.WithValue(ctx, idsKey{}, sc)
}

func idsFrom(ctx context.Context) (trace.SpanContext, bool) {
	sc, ok := ctx.Value(idsKey{}).(trace.SpanContext)
	return sc, ok && sc.IsValid()
}

// Generator makes trace and span IDs for an OpenTelemetry SDK tracer
// provider (sdktrace.WithIDGenerator): the IDs ContextWithIDs put in the
// context when there are some, random ones otherwise. The zero value is
// ready to use.
type Generator struct{}

// NewIDs returns the IDs of a new root span.
func (Generator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if sc, ok := idsFrom(ctx); ok {
		return sc.TraceID(), sc.SpanID()
	}
	var t trace.TraceID
	for !t.IsValid() {
		binary.NativeEndian.PutUint64(t[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(t[8:], rand.Uint64())
	}
	return t, randomSpanID()
}

// NewSpanID returns the ID of a new span in trace traceID.
func (Generator) NewSpanID(ctx context.Context, traceID trace.TraceID) trace.SpanID {
	if sc, ok := idsFrom(ctx); ok && sc.TraceID() == traceID {
		return sc.SpanID()
	}
	return randomSpanID()
}

func randomSpanID() trace.SpanID {
	var s trace.SpanID
	for !s.IsValid() {
		binary.NativeEndian.PutUint64(s[:], rand.Uint64())
	}
	return s
}
