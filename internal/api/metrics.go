package api

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newMetricsHandler returns the handler of GET /metrics: the text exposition
// of g. A collector that fails is logged and left out; the rest is served.
func newMetricsHandler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	if g == nil {
		g = prometheus.NewRegistry()
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      promLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// metrics serves GET /metrics.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) error {
	s.metricsHandler.ServeHTTP(w, r)
	return nil
}

// promLogger logs what the metrics handler reports, at error level.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Error("serve metrics", "err", fmt.Sprint(v...)) }
