// Package promtest runs real Prometheus servers for tests, and targets for
// them to scrape whose metrics the test sets.
//
//	target := promtest.NewTarget(t)
//	target.SetCounter("requests_total", nil, 1)
//	prom := promtest.Start(t, promtest.Config{Targets: []string{target.Address()}})
//	prom.Await(t, "requests_total", 10*time.Second)
//	// query prom.URL() + "/api/v1/query"
//
// A target's first samples appear about five seconds after the server
// starts, since Prometheus hands its targets to the scraper in batches every
// five seconds: tests that need scraped data share one server where they can.
//
// CheckMetrics and CheckExpressions run the real promtool on a scrape and
// on PromQL expressions.
//
// The prometheus and promtool binaries are looked up in PATH, then in
// /usr/bin. When one is missing a test is skipped, or fails when the
// environment variable CI is true, naming the Debian package that provides it.
package promtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testproc"
)

// Package is the Debian package that provides the prometheus binary.
const Package = "prometheus"

const (
	// DefaultScrapeInterval is how often targets are scraped unless
	// Config.ScrapeInterval says otherwise.
	DefaultScrapeInterval = time.Second
	// startTimeout bounds how long a server may take to become ready.
	startTimeout = 60 * time.Second
	// stopTimeout bounds how long a server may take to exit after SIGTERM
	// before it is killed.
	stopTimeout = 10 * time.Second
	// pollEvery is how often Await asks the server again.
	pollEvery = 50 * time.Millisecond
)

// Config is what a server scrapes.
type Config struct {
	// Targets are the host:port addresses whose /metrics the server scrapes,
	// all in one job named "test". Defaults to none.
	Targets []string
	// ScrapeInterval is how often each target is scraped. Defaults to 1
	// second.
	ScrapeInterval time.Duration
}

// Server is one running Prometheus server listening on 127.0.0.1, with its
// data in a temporary directory.
type Server struct {
	dir  string // temporary directory: prometheus.yml, data/, the log
	port int
	proc *testproc.Process
}

// Start starts a new server for tb, scraping cfg's targets, and stops it,
// removing its data, when tb ends. It returns once the server is ready. It
// skips tb (fails it under CI) when Prometheus is not installed.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s, err := start(cfg)
	if err != nil {
		testproc.Unavailable(tb, "promtest", err)
	}
	tb.Cleanup(func() {
		if err := s.close(); err != nil {
			tb.Errorf("promtest: %v", err)
		}
	})
	return s
}

// start writes the configuration and starts a server on it.
func start(cfg Config) (_ *Server, err error) {
	bin, err := testproc.Find(Package, "prometheus")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "promtest-")
	if err != nil {
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, configFile(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	// Another process may take the free port before the server binds it:
	// then the server exits, and another port is tried.
	for try := 1; ; try++ {
		s := &Server{dir: dir}
		if s.port, err = testproc.FreePort(); err != nil {
			return nil, fmt.Errorf("start prometheus: %w", err)
		}
		err = s.start(bin, config)
		switch {
		case err == nil:
			return s, nil
		case !errors.Is(err, testproc.ErrAddrInUse) || try == 3:
			return nil, err
		}
		os.Remove(s.logPath())
	}
}

// configFile returns the YAML configuration for cfg. JSON is YAML, so the
// configuration is written with encoding/json.
func configFile(cfg Config) []byte {
	interval := cfg.ScrapeInterval
	if interval <= 0 {
		interval = DefaultScrapeInterval
	}
	targets := cfg.Targets
	if targets == nil {
		targets = []string{}
	}
	type staticConfig struct {
		Targets []string `json:"targets"`
	}
	type scrapeConfig struct {
		JobName       string         `json:"job_name"`
		StaticConfigs []staticConfig `json:"static_configs"`
	}
	b, _ := json.MarshalIndent(map[string]any{
		"global": map[string]string{
			"scrape_interval":     interval.String(),
			"scrape_timeout":      interval.String(),
			"evaluation_interval": interval.String(),
		},
		"scrape_configs": []scrapeConfig{{
			JobName:       "test",
			StaticConfigs: []staticConfig{{Targets: targets}},
		}},
	}, "", "  ")
	return b
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "prometheus.log") }

// start runs the server program and waits until it is ready.
func (s *Server) start(bin, config string) error {
	proc, err := testproc.Start(bin, []string{
		"--config.file=" + config,
		"--storage.tsdb.path=" + filepath.Join(s.dir, "data"),
		"--web.listen-address=" + s.host(),
		"--log.level=warn",
	}, s.dir, s.logPath())
	if err != nil {
		return err
	}
	s.proc = proc
	return proc.WaitReady(startTimeout, testproc.HTTPReady(s.URL()+"/-/ready"))
}

// logTail returns the end of the server's log.
func (s *Server) logTail() string { return s.proc.Log() }

// close stops the server and removes its directory.
func (s *Server) close() error {
	err := s.proc.Stop(stopTimeout)
	if rerr := os.RemoveAll(s.dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("remove %s: %w", s.dir, rerr))
	}
	return err
}

func (s *Server) host() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns the server's base URL, such as http://127.0.0.1:41234; the
// query API is at URL()+"/api/v1/query".
func (s *Server) URL() string { return "http://" + s.host() }

// Await waits until the instant query returns at least one sample (or a
// scalar that is not NaN), and fails tb when that takes longer than timeout.
// A test awaits its metrics before it queries them: a target's first samples
// appear about five seconds after the server starts.
func (s *Server) Await(tb testing.TB, query string, timeout time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, err := s.has(ctx, query)
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("promtest: %s has no data after %v (last error: %v); the server's log:\n%s", query, timeout, err, s.logTail())
		case <-tick.C:
		}
	}
}

// has reports whether query returns data now.
func (s *Server) has(ctx context.Context, query string) (bool, error) {
	u := s.URL() + "/api/v1/query?" + url.Values{"query": {query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return false, fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	if body.Status != "success" {
		return false, fmt.Errorf("status %d: %s", resp.StatusCode, body.Error)
	}
	switch body.Data.ResultType {
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return false, err
		}
		return v[1] != "NaN", nil
	default:
		var v []json.RawMessage
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return false, err
		}
		return len(v) > 0, nil
	}
}
