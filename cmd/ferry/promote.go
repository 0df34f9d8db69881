package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/client"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/view"
)

func newPromoteCommand(g *globals) *cobra.Command {
	var req engine.PromoteRequest
	var wait bool
	cmd := &cobra.Command{
		Use:   "promote --pipeline P --release V --to ENV",
		Short: "Promote a release into an environment",
		Long: `Promote a release into an environment. The promotion queues behind any
promotion holding the environment, passes its gates, runs its steps and
checks, and is rolled back automatically when they fail.

--force overrides the requirement that the release succeeded upstream first;
it needs --reason and is recorded in the audit log.

--expedite makes a hotfix promotion that skips soak; --override-window makes
a break-glass promotion that ignores deployment windows and freezes. Each
needs --reason and a role the environment allows for it, and the promotion
awaits an after-the-fact review (ferry reviews, ferry review).

--wait follows the promotion to its end, printing each state change and each
step as it starts and finishes; the exit code is then 0 only if it
succeeded, and 3 if it ended any other way (failed, rolled back, aborted,
rejected, superseded).`,
		Example: `  ferry promote --pipeline shop --release 1.4.0 --to staging
  ferry promote --pipeline shop --release 1.4.0 --to prod --reason "CHG-1234" --wait
  ferry promote --pipeline shop --release 1.4.1 --to prod --force --reason "hotfix for INC-77"
  ferry promote --pipeline shop --release 1.4.1 --to prod --expedite --reason "hotfix for INC-77"
  ferry promote --pipeline shop --release 1.4.1 --to prod --override-window --reason "INC-78: checkout down"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Force && req.Reason == "" {
				return usageErrorf("--force needs --reason: say why the upstream requirement is overridden")
			}
			if req.Expedite && req.Reason == "" {
				return usageErrorf("--expedite needs --reason: say why soak is skipped")
			}
			if req.OverrideWindow && req.Reason == "" {
				return usageErrorf("--override-window needs --reason: say why deployment windows and freezes are ignored")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.Promote(cmd.Context(), req)
			if err != nil {
				return err
			}
			return g.started(cmd.Context(), c, p, wait)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Pipeline, "pipeline", "", "pipeline (required)")
	f.StringVar(&req.Release, "release", "", "release version to promote (required)")
	f.StringVar(&req.Environment, "to", "", "environment to promote into (required)")
	f.StringVar(&req.Reason, "reason", "", "why; recorded in the audit log")
	f.BoolVar(&req.Force, "force", false, "override the upstream requirement (needs --reason)")
	f.BoolVar(&req.Expedite, "expedite", false, "hotfix: skip soak (needs --reason; reviewed afterwards)")
	f.BoolVar(&req.OverrideWindow, "override-window", false, "break-glass: ignore deployment windows and freezes (needs --reason; reviewed afterwards)")
	f.BoolVar(&wait, "wait", false, "follow the promotion to its end; exit 3 unless it succeeds")
	for _, name := range []string{"pipeline", "release", "to"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// started reports a promotion just created and, with wait, follows it. In
// table output progress goes to stdout; with -o json or yaml it goes to
// stderr and stdout gets the promotion (the final one when waiting).
func (g *globals) started(ctx context.Context, c *client.Client, p *view.Promotion, wait bool) error {
	progress := g.stdout
	if g.output != "table" {
		progress = g.stderr
	}
	if g.output == "table" || wait {
		fmt.Fprintf(progress, "promotion %s: %s %s %s → %s (%s)\n",
			p.ID, p.Kind, p.Pipeline, p.Release.Version, p.Environment, p.State)
	}
	if !wait {
		return g.print(p, func(io.Writer) error { return nil })
	}
	final, err := follow(ctx, c, p, progress)
	if final != nil && g.output != "table" {
		if perr := g.print(final, nil); perr != nil {
			return perr
		}
	}
	return err
}
