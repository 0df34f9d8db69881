package engine

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferry-dev/ferry/internal/gate"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/step"
	"github.com/ferry-dev/ferry/internal/traceid"
)

// A promotion outlives transactions, replicas and restarts, so none of its
// spans stays open across them. Every span of promotion P is in trace
// traceid.FromPromotion(P) under the root span traceid.Root(P), which no
// replica holds open: children name it as their remote parent, and the
// replica that ends the promotion emits the root itself, from its creation
// to its end. The rollback span is made the same way, with a derived ID its
// steps name as their parent. Spans decided inside a transaction are made
// once it commits, so that a transaction retried or rolled back leaves none.

// Attributes of Ferry's spans.
const (
	attrPromotionID   = attribute.Key("ferry.promotion.id")
	attrPromotionKind = attribute.Key("ferry.promotion.kind")
	attrState         = attribute.Key("ferry.promotion.state")
	attrPipeline      = attribute.Key("ferry.pipeline")
	attrEnvironment   = attribute.Key("ferry.environment")
	attrRelease       = attribute.Key("ferry.release")
	attrRollbackTo    = attribute.Key("ferry.rollback.release")
	attrGatesResult   = attribute.Key("ferry.gates.result")
	attrGatesReason   = attribute.Key("ferry.gates.reason")
	attrGateNames     = attribute.Key("ferry.gate.names")
	attrGateResults   = attribute.Key("ferry.gate.results")
	attrGateName      = attribute.Key("ferry.gate.name")
	attrGateKind      = attribute.Key("ferry.gate.kind")
	attrGateResult    = attribute.Key("ferry.gate.result")
	attrGateReason    = attribute.Key("ferry.gate.reason")
	attrPhase         = attribute.Key("ferry.step.phase")
	attrStepName      = attribute.Key("ferry.step.name")
	attrStepIndex     = attribute.Key("ferry.step.index")
	attrStepKind      = attribute.Key("ferry.step.kind")
	attrAttempt       = attribute.Key("ferry.step.attempt")
	attrStepResult    = attribute.Key("ferry.step.result")
	attrExitCode      = attribute.Key("ferry.step.exit_code")
	attrCheckName     = attribute.Key("ferry.check.name")
	attrCheckVerdict  = attribute.Key("ferry.check.verdict")
)

// pendingSpan is a span decided inside a transaction, made once it commits.
type pendingSpan struct {
	name   string
	parent trace.SpanContext // invalid for a root span
	id     trace.SpanContext // the span's own IDs when they are derived
	start  time.Time
	end    time.Time
	attrs  []attribute.KeyValue
	events []spanEvent
	failed bool   // the span's status is error
	reason string // why it failed
}

type spanEvent struct {
	name  string
	attrs []attribute.KeyValue
}

// emitSpans makes the spans a committed transaction decided on.
func (e *Engine) emitSpans(spans []pendingSpan) {
	for _, s := range spans {
		ctx := context.Background()
		opts := []trace.SpanStartOption{trace.WithTimestamp(s.start), trace.WithAttributes(s.attrs...)}
		if s.parent.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, s.parent)
		} else {
			opts = append(opts, trace.WithNewRoot())
		}
		if s.id.IsValid() {
			ctx = traceid.ContextWithIDs(ctx, s.id)
		}
		_, span := e.cfg.Tracer.Start(ctx, s.name, opts...)
		for _, ev := range s.events {
			span.AddEvent(ev.name, trace.WithTimestamp(s.end), trace.WithAttributes(ev.attrs...))
		}
		if s.failed {
			span.SetStatus(codes.Error, s.reason)
		}
		span.End(trace.WithTimestamp(s.end))
	}
}

// promotionAttrs describes a promotion on its spans.
func promotionAttrs(p *promotion.Promotion) []attribute.KeyValue {
	return []attribute.KeyValue{
		attrPromotionID.String(p.ID), attrPipeline.String(p.Pipeline), attrEnvironment.String(p.Environment),
		attrRelease.String(p.ReleaseVersion), attrPromotionKind.String(string(p.Kind)),
	}
}

// traceGates records the span of one evaluation of a promotion's gates,
// begun at began: the combined result, and each gate as an event.
func (e *Engine) traceGates(t *txn, p *promotion.Promotion, began time.Time, out gate.Outcome) {
	if e.cfg.Tracer == nil {
		return
	}
	s := pendingSpan{name: "gates", parent: traceid.Root(p.ID, true), start: began, end: e.cfg.Now().UTC(),
		attrs: append(promotionAttrs(p), attrGatesResult.String(string(out.Result)), attrGatesReason.String(out.Reason))}
	names, results := make([]string, len(out.Gates)), make([]string, len(out.Gates))
	for i, g := range out.Gates {
		names[i], results[i] = g.Name, string(g.Result)
		s.events = append(s.events, spanEvent{name: "gate", attrs: []attribute.KeyValue{
			attrGateName.String(g.Name), attrGateKind.String(g.Kind), attrGateResult.String(string(g.Result)), attrGateReason.String(g.Reason)}})
	}
	s.attrs = append(s.attrs, attrGateNames.StringSlice(names), attrGateResults.StringSlice(results))
	s.failed, s.reason = out.Result == promotion.GateFail, out.Reason
	t.spans = append(t.spans, s)
}

// traceTransition records, when a transition ends a promotion, its root
// span and, when it was rolling back, the span of its rollback.
func (e *Engine) traceTransition(t *txn, p *promotion.Promotion, tr promotion.Transition) error {
	if e.cfg.Tracer == nil || !tr.To.Terminal() {
		return nil
	}
	root := traceid.Root(p.ID, true)
	end := t.now
	if p.FinishedAt != nil {
		end = *p.FinishedAt
	}
	failed := tr.To == promotion.Failed || tr.To == promotion.RolledBack || tr.To == promotion.RollbackFailed
	if tr.From == promotion.RollingBack {
		runs, err := t.tx.StepRuns(t.ctx, p.ID)
		if err != nil {
			return err
		}
		start := end
		for _, r := range runs {
			if r.Phase == promotion.PhaseRollback && r.StartedAt.Before(start) {
				start = r.StartedAt
			}
		}
		s := pendingSpan{name: "rollback", parent: root, id: rollbackSpan(p.ID), start: start, end: end,
			attrs: append(promotionAttrs(p), attrRollbackTo.String(p.RollbackVersion), attrState.String(string(tr.To)))}
		s.failed, s.reason = tr.To != promotion.RolledBack, tr.Reason
		t.spans = append(t.spans, s)
	}
	s := pendingSpan{name: "promotion " + p.Pipeline + "/" + p.Environment, id: root, start: p.CreatedAt, end: end,
		attrs: append(promotionAttrs(p), attrState.String(string(tr.To)))}
	if p.RollbackVersion != "" {
		s.attrs = append(s.attrs, attrRollbackTo.String(p.RollbackVersion))
	}
	s.failed, s.reason = failed, tr.Reason
	t.spans = append(t.spans, s)
	return nil
}

// rollbackSpan returns the span context of a promotion's rollback span.
func rollbackSpan(id string) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceid.FromPromotion(id),
		SpanID: traceid.RollbackSpanID(id), TraceFlags: trace.FlagsSampled, Remote: true})
}

// isCheck reports whether a phase's steps are checks: those of every phase
// but deploy, canary and rollback (verify, preflight, and any checking phase).
func isCheck(ph promotion.Phase) bool {
	return ph != promotion.PhaseDeploy && ph != promotion.PhaseCanary && ph != promotion.PhaseRollback
}

// startStepSpan starts the span of a step attempt and returns it with the
// traceparent handed to the step. Without a tracer the span does nothing
// and the traceparent names the promotion's root span, not sampled, so
// that a step can still tell which promotion's trace it belongs to.
func (e *Engine) startStepSpan(id string, c promotion.Cursor, in *stepInput) (trace.Span, string) {
	if e.cfg.Tracer == nil {
		return trace.SpanFromContext(context.Background()), traceid.TraceParent(traceid.Root(id, false))
	}
	parent := traceid.Root(id, true)
	if c.Phase == promotion.PhaseRollback {
		parent = rollbackSpan(id)
	}
	name, kind := "step "+in.spec.Name, trace.SpanKindInternal
	if isCheck(c.Phase) {
		name = "check " + in.spec.Name
	}
	if in.spec.Kind() == "http" {
		kind = trace.SpanKindClient
	}
	attrs := append(promotionAttrs(&in.p), attrPhase.String(string(c.Phase)), attrStepName.String(in.spec.Name),
		attrStepIndex.Int(c.Index), attrAttempt.Int(c.Attempt), attrStepKind.String(in.spec.Kind()))
	if isCheck(c.Phase) {
		attrs = append(attrs, attrCheckName.String(in.spec.Name))
	}
	if c.Phase == promotion.PhaseRollback || in.p.Kind == promotion.KindRollback {
		attrs = append(attrs, attrRollbackTo.String(in.release.Version))
	}
	_, span := e.cfg.Tracer.Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), name,
		trace.WithSpanKind(kind), trace.WithTimestamp(e.cfg.Now()), trace.WithAttributes(attrs...))
	sc := span.SpanContext()
	if !span.IsRecording() {
		sc = traceid.Root(id, false)
	}
	return span, traceid.TraceParent(sc)
}

// endStepSpan ends the span of a step attempt with its result.
func (e *Engine) endStepSpan(span trace.Span, c promotion.Cursor, res step.Result) {
	if !span.IsRecording() {
		return
	}
	result, verdict := "failed", "fail"
	switch {
	case res.Interrupted:
		result, verdict = "interrupted", "interrupted"
	case res.OK:
		result, verdict = "succeeded", "pass"
	case res.Inconclusive:
		result, verdict = "inconclusive", "inconclusive"
	}
	span.SetAttributes(attrStepResult.String(result))
	if isCheck(c.Phase) {
		span.SetAttributes(attrCheckVerdict.String(verdict))
	}
	if res.ExitCode != nil {
		span.SetAttributes(attrExitCode.Int(*res.ExitCode))
	}
	if result == "failed" {
		span.SetStatus(codes.Error, res.Message)
	}
	span.End(trace.WithTimestamp(e.cfg.Now()))
}
