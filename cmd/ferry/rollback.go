package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/engine"
)

func newRollbackCommand(g *globals) *cobra.Command {
	var req engine.RollbackRequest
	var wait bool
	cmd := &cobra.Command{
		Use:   "rollback --pipeline P --env E --reason TEXT",
		Short: "Roll an environment back to an earlier release",
		Long: `Roll an environment back: deploy the release that ran there before the
current one, or the release named by --to. A rollback is a promotion of kind
rollback; --wait follows it like promote --wait (exit 0 only if it succeeds,
3 if it ends any other way).`,
		Example: `  ferry rollback --pipeline shop --env prod --reason "error rate up after 1.4.0" --wait
  ferry rollback --pipeline shop --env prod --to 1.3.2 --reason "INC-88"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(req.Reason) == "" {
				return usageErrorf("--reason must not be empty")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.Rollback(cmd.Context(), req)
			if err != nil {
				return err
			}
			return g.started(cmd.Context(), c, p, wait)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Pipeline, "pipeline", "", "pipeline (required)")
	f.StringVar(&req.Environment, "env", "", "environment to roll back (required)")
	f.StringVar(&req.To, "to", "", "release version to restore (default: the one deployed before the current one)")
	f.StringVar(&req.Reason, "reason", "", "why; recorded in the audit log (required)")
	f.BoolVar(&wait, "wait", false, "follow the rollback to its end; exit 3 unless it succeeds")
	for _, name := range []string{"pipeline", "env", "reason"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
