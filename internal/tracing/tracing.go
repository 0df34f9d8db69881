// Package tracing sets up the export of Ferry's OpenTelemetry traces to a
// collector over OTLP/HTTP (protobuf). The tracer provider it returns makes
// promotion root spans with the IDs package traceid derives.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/ferry-dev/ferry/internal/traceid"
)

// ServiceName is the service.name of Ferry's spans unless OTEL_SERVICE_NAME
// or OTEL_RESOURCE_ATTRIBUTES say otherwise.
const ServiceName = "ferry"

// DefaultPath is the path of the OTLP/HTTP traces endpoint, added to an
// endpoint URL that has no path.
const DefaultPath = "/v1/traces"

// Config configures trace export.
type Config struct {
	// Endpoint is the URL spans are posted to, as ParseEndpoint returns it. Required.
	Endpoint string
	// Version is Ferry's version, the service.version of its spans.
	Version string
	// Logger receives export failures. Defaults to slog.Default().
	Logger *slog.Logger
}

// ParseEndpoint checks the value of --otlp-endpoint and returns the URL to
// post spans to: an http:// or https:// URL of a collector's OTLP/HTTP
// receiver; when it has no path, DefaultPath is added
// ("http://collector:4318" becomes "http://collector:4318/v1/traces").
func ParseEndpoint(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL of an OTLP/HTTP receiver, such as http://localhost:4318", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q: an OTLP endpoint URL takes no query, fragment or user info (set headers with OTEL_EXPORTER_OTLP_HEADERS)", s)
	}
	if strings.TrimSuffix(u.Path, "/") == "" {
		u.Path = DefaultPath
	}
	return u.String(), nil
}

// New returns a tracer provider that batches spans and posts them to
// cfg.Endpoint, sampling every promotion. Its IDs come from
// traceid.Generator. The exporter also honours the standard
// OTEL_EXPORTER_OTLP_* variables for what cfg does not set (headers, TLS
// certificates, compression, timeout). Shutdown flushes what is buffered.
func New(ctx context.Context, cfg Config) (*sdktrace.TracerProvider, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("otlp exporter for %s: %w", cfg.Endpoint, err)
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(ServiceName), semconv.ServiceVersion(cfg.Version)),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(loggingExporter{SpanExporter: exp, log: cfg.Logger, endpoint: cfg.Endpoint}),
		sdktrace.WithResource(res),
		sdktrace.WithIDGenerator(traceid.Generator{}),
	), nil
}

// loggingExporter logs the spans an export could not deliver, with Ferry's
// logger, instead of leaving them to OpenTelemetry's global error handler.
type loggingExporter struct {
	sdktrace.SpanExporter
	log      *slog.Logger
	endpoint string
}

func (e loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.SpanExporter.ExportSpans(ctx, spans); err != nil {
		e.log.Warn("export spans", "endpoint", e.endpoint, "spans", len(spans), "err", err)
	}
	return nil
}
