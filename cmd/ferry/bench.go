package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/step"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/tracing"
)

// benchOptions configures `ferry bench`.
type benchOptions struct {
	promotions  int
	concurrency int
	dataDir     string
	db          string
	replicas    int
	cpuProfile  string
	// otlpEndpoint, when set, has the engines trace promotions and export the spans there.
	otlpEndpoint string
}

// benchResult is what `ferry bench -o json` prints.
type benchResult struct {
	Store             string  `json:"store"`
	Replicas          int     `json:"replicas"`
	Promotions        int     `json:"promotions"`
	Concurrency       int     `json:"concurrency"`
	Seconds           float64 `json:"seconds"`
	PromotionsPerSec  float64 `json:"promotionsPerSec"`
	TransitionsPerSec float64 `json:"transitionsPerSec"`
	RawCommitsPerSec  float64 `json:"rawCommitsPerSec"`
	CommitRatio       float64 `json:"commitRatio"`
	ReadyToStartP50Ms float64 `json:"readyToStartP50Ms"`
	ReadyToStartP99Ms float64 `json:"readyToStartP99Ms"`
}

func newBenchCommand(g *globals) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the promotion engine on a store: promotions/s, transitions/s, wake-up latency",
		Long: `Run N promotions through three-environment pipelines (dev → staging → prod,
auto-promoted, one no-op step each) with C pipelines in parallel, in this
process, against a SQLite store (a temporary one unless --data is given) or,
with --db, a PostgreSQL database driven by --replicas engines in parallel,
each with its own connection pool, as separate servers would. Steps use an
internal no-op driver, so the figures measure the engine and the store alone.

It prints promotions/s, transitions/s, the latency from "promotion ready to
run" (committed as started) to "its first step handed to its driver" (p50,
p99), and the raw durable-commit rate of the same store measured in the same
run (before and after, averaged), with the ratio transitions/s ÷ commits/s.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.promotions < 3 || o.concurrency < 1 || o.replicas < 1 {
				return usageErrorf("-n must be at least 3, -c and --replicas at least 1")
			}
			if o.cpuProfile != "" {
				f, err := os.Create(o.cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			res, err := runBench(cmd.Context(), o)
			if err != nil {
				return err
			}
			return printBench(cmd.OutOrStdout(), g.output, res)
		},
	}
	cmd.Flags().IntVarP(&o.promotions, "promotions", "n", 300, "number of promotions (rounded up to whole releases: 3 per release)")
	cmd.Flags().IntVarP(&o.concurrency, "concurrency", "c", 4, "pipelines driven in parallel")
	cmd.Flags().StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	cmd.Flags().StringVar(&o.db, "db", os.Getenv("FERRY_DB"), "PostgreSQL URL of the store to measure (env FERRY_DB); default: SQLite")
	cmd.Flags().IntVar(&o.replicas, "replicas", 1, "engines (replicas) driving the store in parallel, each with its own connection pool (PostgreSQL only)")
	cmd.Flags().StringVar(&o.dataDir, "data", "", "data directory of the store to measure (default: a temporary one, removed afterwards)")
	cmd.Flags().StringVar(&o.otlpEndpoint, "otlp-endpoint", "", "trace the promotions and export the spans to this OTLP/HTTP receiver, to measure what tracing costs (default: no tracing)")
	return cmd
}

const benchPipeline = `name: %s
environments:
  - name: dev
    steps: [{name: deploy, exec: {run: "true"}}]
  - name: staging
    after: [dev]
    autoPromote: true
    steps: [{name: deploy, exec: {run: "true"}}]
  - name: prod
    after: [staging]
    autoPromote: true
    steps: [{name: deploy, exec: {run: "true"}}]
`

func runBench(ctx context.Context, o benchOptions) (*benchResult, error) {
	if o.replicas > 1 && o.db == "" {
		return nil, usageErrorf("--replicas above 1 needs --db postgres://...: a SQLite store has one server")
	}
	var tracer trace.Tracer
	if o.otlpEndpoint != "" {
		endpoint, err := tracing.ParseEndpoint(o.otlpEndpoint)
		if err != nil {
			return nil, usageErrorf("--otlp-endpoint: %v", err)
		}
		tp, err := tracing.New(ctx, tracing.Config{Endpoint: endpoint, Version: version})
		if err != nil {
			return nil, err
		}
		defer tp.Shutdown(context.WithoutCancel(ctx))
		tracer = tp.Tracer("github.com/ferry-dev/ferry/internal/engine")
	}

	dir := o.dataDir
	if dir == "" && o.db == "" {
		tmp, err := os.MkdirTemp("", "ferry-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	// The engines sign audit checkpoints as servers do, with a key of the run's own.
	signer, err := audit.GenerateSigner()
	if err != nil {
		return nil, err
	}
	backends := make([]*backend, o.replicas)
	for i := range backends {
		b, err := openBackend(ctx, dir, o.db, store.Checkpoints{Signer: signer})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		defer b.close()
		backends[i] = b
	}
	st := backends[0].store

	releases := (o.promotions + 2) / 3
	res := &benchResult{Store: backends[0].describe, Replicas: o.replicas, Promotions: releases * 3, Concurrency: o.concurrency}

	rawBefore, err := measureCommits(ctx, st, o.concurrency, max(1000, releases*6))
	if err != nil {
		return nil, err
	}

	var transitions atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	done := map[string]chan struct{}{} // release ID → closed when its prod promotion ends
	engines := make([]*engine.Engine, o.replicas)
	for i, b := range backends {
		eng, err := engine.New(engine.Config{
			Store:      b.store,
			Shared:     b.shared,
			Listen:     b.listen,
			InstanceID: fmt.Sprintf("%s-bench-%d", defaultHostPID(), i),
			Drivers:    map[string]step.Driver{"exec": step.Nop{}, "http": step.Nop{}},
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
			Tracer:     tracer,
			StepStarted: func(p promotion.Promotion, at time.Time) {
				if p.StartedAt != nil && p.Cursor.Phase == promotion.PhaseDeploy && p.Cursor.Index == 0 && p.Cursor.Attempt == 1 {
					mu.Lock()
					latencies = append(latencies, at.Sub(*p.StartedAt))
					mu.Unlock()
				}
			},
			Transitioned: func(p promotion.Promotion, tr promotion.Transition) {
				transitions.Add(1)
				if p.Environment == "prod" && tr.To.Terminal() {
					mu.Lock()
					if ch, ok := done[p.ReleaseID]; ok {
						close(ch)
						delete(done, p.ReleaseID)
					}
					mu.Unlock()
				}
			},
		})
		if err != nil {
			return nil, err
		}
		if err := eng.Start(ctx); err != nil {
			return nil, err
		}
		defer eng.Stop()
		engines[i] = eng
	}
	eng := engines[0]

	run := time.Now().UTC().Format("20060102t150405.000")
	names := make([]string, o.concurrency)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%s-%d", strings.ReplaceAll(run, ".", "-"), i)
		src := fmt.Sprintf(benchPipeline, names[i])
		if _, err := eng.Apply(ctx, "bench", names[i]+".yaml", []byte(src)); err != nil {
			return nil, fmt.Errorf("apply bench pipeline: %w", err)
		}
	}

	start := time.Now()
	transitions.Store(0)
	errs := make(chan error, o.concurrency)
	var wg sync.WaitGroup
	for w := range o.concurrency {
		n := releases / o.concurrency
		if w < releases%o.concurrency {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range n {
				if err := benchRelease(ctx, engines[w%len(engines)], names[w], fmt.Sprintf("1.0.%d", k), &mu, done); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	for _, e := range engines {
		e.Stop()
	}

	rawAfter, err := measureCommits(ctx, st, o.concurrency, max(1000, releases*6))
	if err != nil {
		return nil, err
	}
	res.Seconds = elapsed.Seconds()
	res.PromotionsPerSec = float64(res.Promotions) / elapsed.Seconds()
	res.TransitionsPerSec = float64(transitions.Load()) / elapsed.Seconds()
	res.RawCommitsPerSec = (rawBefore + rawAfter) / 2
	res.CommitRatio = res.TransitionsPerSec / res.RawCommitsPerSec
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	res.ReadyToStartP50Ms = percentileMs(latencies, 0.50)
	res.ReadyToStartP99Ms = percentileMs(latencies, 0.99)
	return res, nil
}

// benchRelease creates a release, promotes it to dev and waits until its
// promotion into prod has ended.
func benchRelease(ctx context.Context, eng *engine.Engine, pipelineName, version string, mu *sync.Mutex, done map[string]chan struct{}) error {
	digest := demoDigest(pipelineName + version)
	rel, _, err := eng.CreateRelease(ctx, "bench", release.Release{Pipeline: pipelineName, Version: version,
		Artifacts: []release.Artifact{{Name: "app", URI: "bench.example/app", Digest: digest}}})
	if err != nil {
		return err
	}
	ch := make(chan struct{})
	mu.Lock()
	done[rel.ID] = ch
	mu.Unlock()
	if _, err := eng.Promote(ctx, "bench", engine.PromoteRequest{Pipeline: pipelineName, Release: version, Environment: "dev"}); err != nil {
		return err
	}
	select {
	case <-ch:
	case <-time.After(time.Minute):
		return fmt.Errorf("release %s of %s did not reach prod within a minute", version, pipelineName)
	case <-ctx.Done():
		return ctx.Err()
	}
	ps, err := eng.Promotions(ctx, store.PromotionFilter{Pipeline: pipelineName, ReleaseID: rel.ID})
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.State != promotion.Succeeded {
			return fmt.Errorf("bench promotion %s into %s ended %s: %s", p.ID, p.Environment, p.State, p.Message)
		}
	}
	return nil
}

// measureCommits returns the store's raw durable commits per second with c
// writers making n commits in all.
func measureCommits(ctx context.Context, st store.Store, c, n int) (float64, error) {
	var left atomic.Int64
	left.Store(int64(n))
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, c)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := st.BenchCommit(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("raw commit: %w", err)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func percentileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * q)
	return float64(sorted[i].Microseconds()) / 1000
}

func printBench(w io.Writer, format string, r *benchResult) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "yaml":
		return printYAML(w, r)
	}
	fmt.Fprintf(w, "store              %s, %d replica(s)\n", r.Store, r.Replicas)
	fmt.Fprintf(w, "promotions         %d (%d releases × 3 environments), %d pipelines in parallel, %.2fs\n", r.Promotions, r.Promotions/3, r.Concurrency, r.Seconds)
	fmt.Fprintf(w, "promotions/s       %.1f\n", r.PromotionsPerSec)
	fmt.Fprintf(w, "transitions/s      %.1f\n", r.TransitionsPerSec)
	fmt.Fprintf(w, "raw commits/s      %.1f\n", r.RawCommitsPerSec)
	fmt.Fprintf(w, "commit ratio       %.2f (transitions/s ÷ raw commits/s; target ≥ 0.5)\n", r.CommitRatio)
	fmt.Fprintf(w, "ready→start p50    %.2f ms\n", r.ReadyToStartP50Ms)
	fmt.Fprintf(w, "ready→start p99    %.2f ms (target ≤ 50)\n", r.ReadyToStartP99Ms)
	return nil
}
