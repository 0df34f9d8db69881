// Package amtest runs real Alertmanager servers for tests, each delivering
// its notifications to one webhook receiver.
//
//	am := amtest.Start(t, amtest.Config{WebhookURL: url, BearerToken: token})
//	am.Fire(t, map[string]string{"alertname": "HighErrorRate", ...})
//
// The alertmanager binary is looked up in PATH as alertmanager or
// prometheus-alertmanager (Debian's name), then in /usr/bin (package testproc). When it is
// missing a test is skipped, or fails when the environment variable CI is
// true, naming the Debian package that provides it.
package amtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testproc"
)

// Package is the Debian package that provides Alertmanager.
const Package = "prometheus-alertmanager"

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
)

// Config is where a server delivers and how it groups.
type Config struct {
	// WebhookURL receives every notification. Required.
	WebhookURL string
	// BearerToken, when set, is sent as the webhook's Authorization.
	BearerToken string
	// GroupBy lists the labels alerts are grouped by. Defaults to
	// alertname, ferry_pipeline and ferry_environment.
	GroupBy []string
	// RepeatInterval is how often a firing group is sent again. Defaults to 1s.
	RepeatInterval time.Duration
}

// Server is one running Alertmanager listening on 127.0.0.1, with its data
// in a temporary directory.
type Server struct {
	dir  string
	port int
	proc *testproc.Process
}

// Start starts a server for tb and stops it when tb ends. It returns once
// the server is ready. It skips tb (fails it under CI) when Alertmanager is
// not installed.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	// Debian installs Alertmanager as prometheus-alertmanager.
	bin, err := testproc.Find(Package, "alertmanager", "prometheus-alertmanager")
	if err != nil {
		testproc.Unavailable(tb, "amtest", err)
	}
	s, err := start(bin, cfg)
	if err != nil {
		tb.Fatalf("amtest: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.close(); err != nil {
			tb.Errorf("amtest: %v", err)
		}
	})
	return s
}

// configFile returns the Alertmanager configuration for cfg, as JSON (which is YAML).
func configFile(cfg Config, tokenFile string) []byte {
	groupBy := cfg.GroupBy
	if groupBy == nil {
		groupBy = []string{"alertname", "ferry_pipeline", "ferry_environment"}
	}
	repeat := cfg.RepeatInterval
	if repeat <= 0 {
		repeat = time.Second
	}
	webhook := map[string]any{"url": cfg.WebhookURL, "send_resolved": false}
	if cfg.BearerToken != "" {
		webhook["http_config"] = map[string]any{
			"authorization": map[string]string{"type": "Bearer", "credentials_file": tokenFile},
		}
	}
	b, _ := json.MarshalIndent(map[string]any{
		"route": map[string]any{
			"receiver":        "ferry",
			"group_by":        groupBy,
			"group_wait":      "0s",
			"group_interval":  repeat.String(),
			"repeat_interval": repeat.String(),
		},
		"receivers": []any{map[string]any{"name": "ferry", "webhook_configs": []any{webhook}}},
	}, "", "  ")
	return b
}

func start(bin string, cfg Config) (_ *Server, err error) {
	dir, err := os.MkdirTemp("", "amtest-")
	if err != nil {
		return nil, fmt.Errorf("start alertmanager: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(cfg.BearerToken), 0o600); err != nil {
		return nil, fmt.Errorf("start alertmanager: %w", err)
	}
	config := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(config, configFile(cfg, tokenFile), 0o644); err != nil {
		return nil, fmt.Errorf("start alertmanager: %w", err)
	}
	for try := 1; ; try++ {
		s := &Server{dir: dir}
		if s.port, err = testproc.FreePort(); err != nil {
			return nil, fmt.Errorf("start alertmanager: %w", err)
		}
		err = s.start(bin, config)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, testproc.ErrAddrInUse) || try == 3 {
			return nil, err
		}
	}
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "alertmanager.log") }

func (s *Server) start(bin, config string) error {
	if err := os.Remove(s.logPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("start alertmanager: %w", err)
	}
	proc, err := testproc.Start(bin, []string{
		"--config.file=" + config,
		"--storage.path=" + filepath.Join(s.dir, "data"),
		"--web.listen-address=" + s.host(),
		"--cluster.listen-address=", // no gossip: a single server
		"--log.level=warn",
	}, s.dir, s.logPath())
	if err != nil {
		return err
	}
	s.proc = proc
	return proc.WaitReady(startTimeout, testproc.HTTPReady(s.URL()+"/-/ready"))
}

// Log returns the end of the server's log.
func (s *Server) Log() string { return s.proc.Log() }

func (s *Server) close() error {
	return errors.Join(s.proc.Stop(stopTimeout), os.RemoveAll(s.dir))
}

func (s *Server) host() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns the server's base URL.
func (s *Server) URL() string { return "http://" + s.host() }

// Fire posts one firing alert with labels to the server, as Prometheus does.
func (s *Server) Fire(tb testing.TB, labels, annotations map[string]string) {
	tb.Helper()
	body, _ := json.Marshal([]map[string]any{{
		"labels": labels, "annotations": annotations,
		"startsAt":     time.Now().UTC().Format(time.RFC3339Nano),
		"generatorURL": "http://prometheus.example/graph",
	}})
	resp, err := http.Post(s.URL()+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("amtest: post alert: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("amtest: post alert: status %d; the server's log:\n%s", resp.StatusCode, s.Log())
	}
}

// Notifications returns how many webhook notifications the server has sent
// and how many failed, from its own metrics.
func (s *Server) Notifications(ctx context.Context) (sent, failed int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		value := func() int {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return int(v)
		}
		switch {
		case strings.HasPrefix(line, `alertmanager_notifications_total{integration="webhook"}`):
			sent = value()
		case strings.HasPrefix(line, `alertmanager_notifications_failed_total{integration="webhook"`):
			failed += value()
		}
	}
	return sent, failed, nil
}
