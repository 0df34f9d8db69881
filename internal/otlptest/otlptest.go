// Package otlptest runs an OTLP/HTTP trace receiver inside a test process:
// it accepts what an OpenTelemetry exporter posts to /v1/traces (an
// ExportTraceServiceRequest in protobuf, gzip-compressed or not) and keeps
// the spans for the test to inspect.
//
//	rec := otlptest.Start(t)
//	// point the exporter at rec.URL()
//	spans := rec.Await(t, 30*time.Second, func(s []otlptest.Span) bool { return len(s) >= 3 })
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Path is where the receiver takes spans.
const Path = "/v1/traces"

// maxBody bounds one request's body.
const maxBody = 32 << 20

// Span is one received span, its IDs as lowercase hex.
type Span struct {
	TraceID      string
	SpanID       string
	ParentSpanID string // empty for a root span
	Name         string
	// Kind is the span kind without its prefix: "INTERNAL", "CLIENT", ...
	Kind  string
	Start time.Time
	End   time.Time
	// Attributes holds string, int64, float64, bool and []any values.
	Attributes map[string]any
	// StatusCode is "UNSET", "OK" or "ERROR"; StatusMessage explains an error.
	StatusCode    string
	StatusMessage string
	Events        []Event
	// Resource holds the attributes of the resource that sent the span.
	Resource map[string]any
}

// Event is a span event.
type Event struct {
	Name       string
	Time       time.Time
	Attributes map[string]any
}

// Receiver is a running OTLP/HTTP trace receiver on 127.0.0.1.
type Receiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	spans   []Span
	errs    []error
	changed chan struct{} // closed and replaced when spans arrive
}

// Start starts a receiver for tb and stops it when tb ends.
func Start(tb testing.TB) *Receiver {
	tb.Helper()
	r := &Receiver{changed: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.handle))
	tb.Cleanup(func() {
		r.srv.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, err := range r.errs {
			tb.Errorf("otlp receiver: %v", err)
		}
	})
	return r
}

// URL returns the receiver's base URL, without Path.
func (r *Receiver) URL() string { return r.srv.URL }

// Spans returns the spans received so far, in order of arrival.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Await waits until done holds for the spans received so far and returns
// them; it fails tb when timeout passes first.
func (r *Receiver) Await(tb testing.TB, timeout time.Duration, done func([]Span) bool) []Span {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		spans, changed := append([]Span(nil), r.spans...), r.changed
		r.mu.Unlock()
		if done(spans) {
			return spans
		}
		select {
		case <-changed:
		case <-deadline.C:
			tb.Fatalf("otlp receiver: condition not met after %v; %d spans received: %s", timeout, len(spans), Names(spans))
			return nil
		}
	}
}

// Names lists spans' names, for messages.
func Names(spans []Span) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != Path {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); ct != "application/x-protobuf" {
		r.fail(w, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q, want application/x-protobuf", ct))
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, maxBody)
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(body)
		if err != nil {
			r.fail(w, http.StatusBadRequest, fmt.Errorf("gzip body: %w", err))
			return
		}
		defer gz.Close()
		body = gz
	default:
		r.fail(w, http.StatusUnsupportedMediaType, fmt.Errorf("content encoding %q", enc))
		return
	}
	b, err := io.ReadAll(body)
	if err != nil {
		r.fail(w, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		r.fail(w, http.StatusBadRequest, fmt.Errorf("decode ExportTraceServiceRequest: %w", err))
		return
	}
	var got []Span
	for _, rs := range msg.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, convert(s, res))
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()

	out, err := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	if err != nil {
		r.fail(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// fail answers a request the receiver cannot take and records it: an
// exporter sending what the receiver cannot read fails the test.
func (r *Receiver) fail(w http.ResponseWriter, status int, err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	http.Error(w, err.Error(), status)
}

func convert(s *tracepb.Span, res map[string]any) Span {
	out := Span{
		TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
		ParentSpanID: hex.EncodeToString(s.GetParentSpanId()), Name: s.GetName(),
		Kind:  strings.TrimPrefix(s.GetKind().String(), "SPAN_KIND_"),
		Start: time.Unix(0, int64(s.GetStartTimeUnixNano())), End: time.Unix(0, int64(s.GetEndTimeUnixNano())),
		Attributes: attrs(s.GetAttributes()), Resource: res,
		StatusCode: strings.TrimPrefix(s.GetStatus().GetCode().String(), "STATUS_CODE_"), StatusMessage: s.GetStatus().GetMessage(),
	}
	for _, ev := range s.GetEvents() {
		out.Events = append(out.Events, Event{Name: ev.GetName(), Time: time.Unix(0, int64(ev.GetTimeUnixNano())), Attributes: attrs(ev.GetAttributes())})
	}
	return out
}

func attrs(kvs []*commonpb.KeyValue) map[string]any {
	out := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		out[kv.GetKey()] = value(kv.GetValue())
	}
	return out
}

func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_ArrayValue:
		var out []any
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, value(e))
		}
		return out
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	}
	return nil
}
