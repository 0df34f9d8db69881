package tracing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferry-dev/ferry/internal/otlptest"
	"github.com/ferry-dev/ferry/internal/traceid"
	"github.com/ferry-dev/ferry/internal/tracing"
)

func TestParseEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"http://collector:4318":             "http://collector:4318/v1/traces",
		"http://collector:4318/":            "http://collector:4318/v1/traces",
		"https://otel.example.com":          "https://otel.example.com/v1/traces",
		"http://127.0.0.1:4318/custom/path": "http://127.0.0.1:4318/custom/path",
	} {
		got, err := tracing.ParseEndpoint(in)
		if err != nil || got != want {
			t.Errorf("ParseEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "localhost:4318", "collector", "grpc://collector:4317", "http://", "http://c:4318/?x=1", "http://u:p@c:4318"} {
		if got, err := tracing.ParseEndpoint(in); err == nil || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseEndpoint(%q) = %q, %v; want an error naming the value", in, got, err)
		}
	}
}

// TestExport sends spans through the provider New returns to a receiver,
// plain and gzip-compressed (OTEL_EXPORTER_OTLP_COMPRESSION): Shutdown
// delivers what is buffered, the root span made from a promotion's IDs
// keeps them, and the resource names the service.
func TestExport(t *testing.T) {
	for _, compression := range []string{"none", "gzip"} {
		t.Run(compression, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
			rec := otlptest.Start(t)
			endpoint, err := tracing.ParseEndpoint(rec.URL())
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			tp, err := tracing.New(ctx, tracing.Config{Endpoint: endpoint, Version: "1.2.3"})
			if err != nil {
				t.Fatal(err)
			}
			tr := tp.Tracer("test")
			const id = "promotion-1"
			root := traceid.Root(id, true)
			_, child := tr.Start(trace.ContextWithRemoteSpanContext(ctx, root), "step deploy")
			child.End()
			start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
			_, span := tr.Start(traceid.ContextWithIDs(ctx, root), "promotion", trace.WithNewRoot(), trace.WithTimestamp(start))
			span.End()
			if len(rec.Spans()) != 0 {
				t.Fatalf("spans arrived before Shutdown: the batcher should hold them")
			}
			if err := tp.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			spans := rec.Spans()
			if len(spans) != 2 {
				t.Fatalf("received %d spans (%s), want 2", len(spans), otlptest.Names(spans))
			}
			for _, s := range spans {
				if s.TraceID != traceid.String(id) {
					t.Errorf("span %s: trace %s, want %s", s.Name, s.TraceID, traceid.String(id))
				}
				if s.Resource["service.name"] != tracing.ServiceName || s.Resource["service.version"] != "1.2.3" {
					t.Errorf("span %s: resource %v, want service ferry 1.2.3", s.Name, s.Resource)
				}
				switch s.Name {
				case "promotion":
					if s.SpanID != traceid.RootSpanID(id).String() || s.ParentSpanID != "" || !s.Start.Equal(start) {
						t.Errorf("root span: id %s parent %q start %v; want id %s, no parent, start %v", s.SpanID, s.ParentSpanID, s.Start, traceid.RootSpanID(id), start)
					}
				case "step deploy":
					if s.ParentSpanID != traceid.RootSpanID(id).String() {
						t.Errorf("child span: parent %s, want the root %s", s.ParentSpanID, traceid.RootSpanID(id))
					}
				default:
					t.Errorf("unexpected span %q", s.Name)
				}
			}
		})
	}
}

func TestServiceNameFromEnvironment(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "ferry-staging")
	rec := otlptest.Start(t)
	endpoint, _ := tracing.ParseEndpoint(rec.URL())
	ctx := context.Background()
	tp, err := tracing.New(ctx, tracing.Config{Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(ctx, "x")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := rec.Spans()
	if len(spans) != 1 || spans[0].Resource["service.name"] != "ferry-staging" {
		t.Fatalf("spans %v: want one with service.name from OTEL_SERVICE_NAME", spans)
	}
}
