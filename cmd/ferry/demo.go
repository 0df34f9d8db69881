package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// newDemoCommand returns the hidden commands the quickstart pipeline's steps
// run: a tiny app per environment, deployed as a local process.
func newDemoCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "demo",
		Short:  "The quickstart's demo app (used by examples/quickstart)",
		Hidden: true,
	}
	var port int
	deploy := &cobra.Command{
		Use:   "deploy --port PORT",
		Short: "Replace this environment's demo app with the release being deployed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demoDeploy(cmd.Context(), port, cmd.OutOrStdout())
		},
	}
	deploy.Flags().IntVar(&port, "port", 0, "port the app listens on (required)")
	_ = deploy.MarkFlagRequired("port")

	var version, env string
	serve := &cobra.Command{
		Use:   "serve --port PORT --version V",
		Short: "Serve the demo app",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demoServe(cmd.Context(), port, version, env)
		},
	}
	serve.Flags().IntVar(&port, "port", 0, "port to listen on (required)")
	serve.Flags().StringVar(&version, "version", "", "release version to report")
	serve.Flags().StringVar(&env, "environment", "", "environment name to report")
	_ = serve.MarkFlagRequired("port")
	cmd.AddCommand(deploy, serve)
	return cmd
}

// demoDir is where the demo apps keep their PID files and logs.
func demoDir() string {
	if d := os.Getenv("FERRY_DEMO_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "ferry-demo")
}

func demoDeploy(ctx context.Context, port int, out interface{ Write([]byte) (int, error) }) error {
	version, env := os.Getenv("FERRY_RELEASE"), os.Getenv("FERRY_ENVIRONMENT")
	if version == "" || env == "" {
		return errors.New("FERRY_RELEASE and FERRY_ENVIRONMENT must be set: run this as a Ferry step")
	}
	dir := demoDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pidFile := filepath.Join(dir, env+".pid")
	if err := stopDemo(pidFile); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, env+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	c := exec.Command(exe, "demo", "serve", "--port", strconv.Itoa(port), "--version", version, "--environment", env)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives the step's process group
	if err := c.Start(); err != nil {
		return fmt.Errorf("start demo app: %w", err)
	}
	pid := c.Process.Pid
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case err := <-exited:
			return fmt.Errorf("demo app exited before listening on %s: %v (see %s)", addr, err, logf.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo app did not listen on %s within 10s", addr)
		}
	}
	fmt.Fprintf(out, "demo app %s serving %s on http://%s (pid %d)\n", version, env, addr, pid)
	return nil
}

// stopDemo stops the demo app recorded in pidFile, if it runs.
func stopDemo(pidFile string) error {
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return os.Remove(pidFile)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err == nil {
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return os.Remove(pidFile)
}

// stopDemos stops every demo app started from dir.
func stopDemos(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	for _, f := range files {
		_ = stopDemo(f)
	}
}

func demoServe(ctx context.Context, port int, version, env string) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if strings.HasSuffix(version, "-bad") {
			http.Error(w, "unhealthy: this build is broken on purpose", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "quickstart demo app: environment %s, release %s\n", env, version)
	})
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	}
}
