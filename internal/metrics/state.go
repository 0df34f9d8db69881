package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

// DefaultStateTimeout bounds the store read a scrape of the promotion gauges makes.
const DefaultStateTimeout = 5 * time.Second

// inFlightStates are the states ferry_promotions_in_flight counts: a
// promotion holds its environment from leaving the queue until it ends.
var inFlightStates = func() []promotion.State {
	var out []promotion.State
	for _, s := range promotion.States {
		if s.HoldsEnvironment() {
			out = append(out, s)
		}
	}
	return out
}()

// StateCollector reports the promotions in flight and queued, read from the
// store at each scrape: ferry_promotions_in_flight{pipeline,environment,state}
// and ferry_promotion_queue_depth{pipeline,environment}. Counting from the
// store rather than from transitions keeps the gauges right after a restart
// and across replicas: every replica sharing a PostgreSQL store reports the
// same values (aggregate them with max, not sum). Every environment of every
// pipeline's latest revision is reported, at 0 when idle, so that series do
// not vanish.
type StateCollector struct {
	st       store.Store
	timeout  time.Duration
	inFlight *prometheus.Desc
	queued   *prometheus.Desc
}

var _ prometheus.Collector = (*StateCollector)(nil)

// NewStateCollector returns a collector reading st, each read bounded by
// timeout (DefaultStateTimeout when 0). Register it on the server's registry.
func NewStateCollector(st store.Store, timeout time.Duration) *StateCollector {
	if timeout <= 0 {
		timeout = DefaultStateTimeout
	}
	return &StateCollector{
		st: st, timeout: timeout,
		inFlight: prometheus.NewDesc(Namespace+"_promotions_in_flight",
			"Promotions holding their environment now (from leaving the queue until they end), by state.",
			[]string{"pipeline", "environment", "state"}, nil),
		queued: prometheus.NewDesc(Namespace+"_promotion_queue_depth",
			"Promotions queued behind the one holding their environment.",
			[]string{"pipeline", "environment"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *StateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inFlight
	ch <- c.queued
}

// Collect implements prometheus.Collector. When the store cannot be read the
// scrape reports the error instead of these gauges.
func (c *StateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	type env struct{ pipeline, environment string }
	inFlight := map[env]map[promotion.State]int{}
	queued := map[env]int{}
	err := c.st.View(ctx, func(tx store.Tx) error {
		revs, err := tx.Pipelines(ctx)
		if err != nil {
			return fmt.Errorf("list pipelines: %w", err)
		}
		for _, rev := range revs {
			for _, e := range rev.Spec.Environments {
				k := env{rev.Pipeline, e.Name}
				inFlight[k] = map[promotion.State]int{}
				queued[k] = 0
			}
		}
		active, err := tx.Promotions(ctx, store.PromotionFilter{Active: true})
		if err != nil {
			return fmt.Errorf("list unfinished promotions: %w", err)
		}
		for _, p := range active {
			k := env{p.Pipeline, p.Environment}
			if inFlight[k] == nil {
				inFlight[k] = map[promotion.State]int{}
			}
			if p.State == promotion.Queued {
				queued[k]++
			} else {
				inFlight[k][p.State]++
			}
		}
		return nil
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.inFlight, fmt.Errorf("read promotion states: %w", err))
		return
	}
	for k, states := range inFlight {
		for _, s := range inFlightStates {
			ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(states[s]), k.pipeline, k.environment, string(s))
		}
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(queued[k]), k.pipeline, k.environment)
	}
}
