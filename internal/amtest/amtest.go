// Package amtest runs real Alertmanager servers for tests, each delivering
// its notifications to one webhook receiver.
//
//	am := amtest.Start(t, amtest.Config{WebhookURL: url, BearerToken: token})
//	am.Fire(t, map[string]string{"alertname": "HighErrorRate", ...})
//
// The alertmanager binary is looked up in PATH as alertmanager or
// prometheus-alertmanager (Debian's name), then in /usr/bin. When it is
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
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Package is the Debian package that provides Alertmanager.
const Package = "prometheus-alertmanager"

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
	pollEvery    = 50 * time.Millisecond
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
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts a server for tb and stops it when tb ends. It returns once
// the server is ready. It skips tb (fails it under CI) when Alertmanager is
// not installed.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	bin, err := findBin()
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			tb.Fatalf("amtest: %v (CI is set, so this fails instead of skipping)", err)
		}
		tb.Skipf("amtest: %v", err)
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

func findBin() (string, error) {
	for _, name := range []string{"alertmanager", "prometheus-alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		p := "/usr/bin/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("Alertmanager is not installed: neither alertmanager nor prometheus-alertmanager is in PATH or /usr/bin; "+
		"install the Debian package %s (apt-get install %s)", Package, Package)
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
		if s.port, err = freePort(); err != nil {
			return nil, fmt.Errorf("start alertmanager: %w", err)
		}
		err = s.start(bin, config)
		if err == nil {
			return s, nil
		}
		if !strings.Contains(err.Error(), "address already in use") || try == 3 {
			return nil, err
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "alertmanager.log") }

func (s *Server) start(bin, config string) error {
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("start alertmanager: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin,
		"--config.file="+config,
		"--storage.path="+filepath.Join(s.dir, "data"),
		"--web.listen-address="+s.host(),
		"--cluster.listen-address=", // no gossip: a single server
		"--log.level=warn",
	)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start alertmanager: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := http.Get(s.URL() + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("start alertmanager: server exited (%v); its log:\n%s", s.err, s.Log())
		case <-time.After(pollEvery):
		}
		if time.Now().After(deadline) {
			_ = s.cmd.Process.Kill()
			<-s.done
			return fmt.Errorf("start alertmanager: not ready after %v; its log:\n%s", startTimeout, s.Log())
		}
	}
}

// Log returns the end of the server's log.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (s *Server) close() error {
	var err error
	if serr := s.cmd.Process.Signal(syscall.SIGTERM); serr != nil && !errors.Is(serr, os.ErrProcessDone) {
		err = fmt.Errorf("stop alertmanager: %w", serr)
	}
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		err = errors.Join(err, fmt.Errorf("stop alertmanager: still running %v after SIGTERM; killed", stopTimeout))
	}
	return errors.Join(err, os.RemoveAll(s.dir))
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
