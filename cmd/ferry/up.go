package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/examples/quickstart"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
)

func newUpCommand(_ *globals) *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a server with the quickstart pipeline and promote a first release",
		Long: `Start a Ferry server on embedded SQLite, apply the quickstart pipeline
(examples/quickstart: dev → staging → prod, a tiny demo app per environment
running as a local process; prod waits for one approval), create release
1.0.0 and promote it to dev; it moves on to staging by itself. Then print the
dashboard's address and what to try next, and serve until interrupted. The
demo apps are stopped on exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return up(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(cmd)
	return cmd
}

// demoDigest is a stand-in digest for a demo build of version v.
func demoDigest(v string) string {
	sum := sha256.Sum256([]byte("ferry quickstart demo app " + v))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func up(ctx context.Context, o serverOptions, out, logOut io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	absData, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	demo := filepath.Join(absData, "demo")
	o.extraEnv = append(o.extraEnv, "FERRY_DEMO_BIN="+exe, "FERRY_DEMO_DIR="+demo)
	if o.logLevel == "info" {
		o.logLevel = "warn" // keep the terminal for the walkthrough; the server logs warnings and errors
	}
	srv, err := startServer(ctx, o, logOut)
	if err != nil {
		return err
	}
	defer stopDemos(demo)
	defer func() {
		if err := srv.stop(); err != nil {
			fmt.Fprintln(logOut, "stop:", err)
		}
	}()
	eng := srv.engine
	actor := os.Getenv("USER")
	if actor == "" {
		actor = "quickstart"
	}
	fmt.Fprintf(out, "Ferry is running at http://%s (data in %s)\n", srv.addr, o.dataDir)
	if srv.adminToken != "" {
		fmt.Fprintf(out, "admin token (shown once): %s\n", srv.adminToken)
	}
	switch {
	case o.auth != "on":
		fmt.Fprintf(out, "Dashboard: http://%s/ (authentication is off)\n", srv.addr)
	case srv.adminToken != "":
		fmt.Fprintf(out, "Dashboard: http://%s/ (sign in with the admin token above)\n", srv.addr)
	default:
		fmt.Fprintf(out, "Dashboard: http://%s/ (sign in with an API token, such as the one in %s)\n", srv.addr, filepath.Join(o.dataDir, adminTokenFile))
	}

	applied, err := eng.Apply(ctx, actor, quickstart.Filename, quickstart.Pipeline)
	if err != nil {
		return fmt.Errorf("apply the quickstart pipeline: %w", err)
	}
	fmt.Fprintf(out, "Applied pipeline %s (revision %d): dev → staging (auto) → prod\n", applied.Pipeline, applied.Revision)

	const first = "1.0.0"
	rel := release.Release{Pipeline: "quickstart", Version: first,
		Artifacts: []release.Artifact{{Name: "app", URI: "example.com/quickstart/app", Digest: demoDigest(first)}},
		Labels:    map[string]string{"origin": "ferry up"}}
	if _, _, err := eng.CreateRelease(ctx, actor, rel); err != nil {
		return fmt.Errorf("create release %s: %w", first, err)
	}
	st, err := eng.Status(ctx, "quickstart")
	if err != nil {
		return err
	}
	if st.Environments[0].Current == nil && st.Environments[0].Active == nil {
		p, err := eng.Promote(ctx, actor, engine.PromoteRequest{Pipeline: "quickstart", Release: first, Environment: "dev", Reason: "quickstart"})
		if err != nil {
			return fmt.Errorf("promote %s to dev: %w", first, err)
		}
		fmt.Fprintf(out, "Promoting release %s to dev (promotion %s)...\n", first, p.ID)
		if err := waitEnvironments(ctx, eng, first, out, "dev", "staging"); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(out, "Resumed: the pipeline already has releases (run `ferry status --pipeline quickstart`).")
	}

	fmt.Fprintf(out, `
The demo app runs per environment: curl http://127.0.0.1:18081/ (dev), :18082 (staging), :18083 (prod).
In another terminal (build the CLI once with: go build -o ferry ./cmd/ferry):
%[4]s

  ./ferry status --pipeline quickstart
  ./ferry promote --pipeline quickstart --release %[1]s --to prod --reason "first prod release"
  ./ferry approvals                                                          # prod waits for one approval
  ./ferry approve <promotion-id> --comment "looks good"                      # or approve it in the dashboard
  ./ferry release create --pipeline quickstart --version 1.1.0 --artifact app=example.com/quickstart/app@%[2]s
  ./ferry promote --pipeline quickstart --release 1.1.0 --to dev --wait     # staging follows automatically
  ./ferry release create --pipeline quickstart --version 1.2.0-bad --artifact app=example.com/quickstart/app@%[3]s
  ./ferry promote --pipeline quickstart --release 1.2.0-bad --to dev --wait # fails its smoke check, rolled back
  ./ferry history --pipeline quickstart
  ./ferry logs <promotion-id>

Press Ctrl-C to stop.
`, first, demoDigest("1.1.0"), demoDigest("1.2.0-bad"), cliSetup(o, srv.addr))
	<-ctx.Done()
	return nil
}

// cliSetup returns what to run before the walkthrough's commands so that
// the CLI reaches this server with the admin token: nothing when the CLI's
// defaults (the default address, ./ferry-data/admin-token) find them.
func cliSetup(o serverOptions, addr string) string {
	var lines []string
	if "http://"+addr != defaultServer {
		lines = append(lines, "  export FERRY_SERVER=http://"+addr)
	}
	switch {
	case o.auth != "on":
	case os.Getenv(adminTokenEnv) != "":
		lines = append(lines, "  export FERRY_TOKEN=$"+adminTokenEnv)
	case filepath.Clean(o.dataDir) != filepath.Clean(filepath.Dir(defaultTokenFile)):
		lines = append(lines, "  export FERRY_TOKEN=$(cat "+filepath.Join(o.dataDir, adminTokenFile)+")")
	}
	if len(lines) == 0 {
		return ""
	}
	return "\n" + strings.Join(lines, "\n") + "\n"
}

// waitEnvironments waits until the release's latest promotion into each
// environment has ended, printing each outcome.
func waitEnvironments(ctx context.Context, eng *engine.Engine, version string, out io.Writer, envs ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, env := range envs {
		for {
			changed := eng.Changes()
			ps, err := eng.Promotions(ctx, store.PromotionFilter{Pipeline: "quickstart", Environment: env, Limit: 1})
			if err != nil {
				return err
			}
			if len(ps) > 0 && ps[0].Release.Version == version && ps[0].State.Terminal() {
				fmt.Fprintf(out, "  %-8s %s: %s\n", env, version, ps[0].State)
				if ps[0].State != promotion.Succeeded {
					fmt.Fprintf(out, "           %s\n", ps[0].Message)
					return nil
				}
				break
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s in %s: %w", version, env, ctx.Err())
			}
		}
	}
	return nil
}
