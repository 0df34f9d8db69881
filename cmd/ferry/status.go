package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/view"
)

func newStatusCommand(g *globals) *cobra.Command {
	var pipelineName string
	cmd := &cobra.Command{
		Use:   "status --pipeline P",
		Short: "Show what runs in each environment of a pipeline, and what is moving",
		Long: `Show each environment of a pipeline: the release running there, the
promotion holding it (or the last one that finished) with its state, and how
many promotions are queued for it.`,
		Example: `  ferry status --pipeline shop`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context(), pipelineName)
			if err != nil {
				return err
			}
			return g.print(st, func(w io.Writer) error { return statusTable(w, st) })
		},
	}
	cmd.Flags().StringVar(&pipelineName, "pipeline", "", "pipeline (required)")
	_ = cmd.MarkFlagRequired("pipeline")
	return cmd
}

// statusTable prints one row per environment.
func statusTable(w io.Writer, st *view.Status) error {
	fmt.Fprintf(w, "pipeline %s, revision %d\n\n", st.Pipeline, st.Revision)
	tw := newTable(w)
	row(tw, "ENVIRONMENT", "CURRENT", "PROMOTION", "RELEASE", "STATE", "QUEUED")
	for _, e := range st.Environments {
		current := "-"
		if e.Current != nil {
			current = e.Current.Version
		}
		id, version, state := "-", "-", "-"
		switch {
		case e.Active != nil:
			id, version, state = e.Active.ID, e.Active.Release.Version, string(e.Active.State)
		case e.Last != nil:
			id, version, state = e.Last.ID, e.Last.Release.Version, string(e.Last.State)
		}
		row(tw, e.Name, current, id, version, state, len(e.Queued))
	}
	return tw.Flush()
}

func newHistoryCommand(g *globals) *cobra.Command {
	var pipelineName, env string
	var limit int
	cmd := &cobra.Command{
		Use:   "history --pipeline P",
		Short: "List a pipeline's promotions, newest first",
		Example: `  ferry history --pipeline shop
  ferry history --pipeline shop --env prod --limit 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLimit(limit); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ps, err := c.History(cmd.Context(), pipelineName, env, limit)
			if err != nil {
				return err
			}
			return g.print(ps, func(w io.Writer) error { return promotionTable(w, ps) })
		},
	}
	cmd.Flags().StringVar(&pipelineName, "pipeline", "", "pipeline (required)")
	cmd.Flags().StringVar(&env, "env", "", "only promotions into this environment")
	cmd.Flags().IntVar(&limit, "limit", 0, "largest number of promotions to list (default: the server's, 100)")
	_ = cmd.MarkFlagRequired("pipeline")
	return cmd
}
