package main

import (
	"io"
	"strings"

	"github.com/spf13/cobra"
)

func newPipelinesCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pipelines",
		Short: "List pipelines with their latest revision",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ps, err := c.Pipelines(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(ps, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "NAME", "REVISION", "ENVIRONMENTS", "UPDATED")
				for _, p := range ps {
					row(tw, p.Name, p.Revision, strings.Join(p.Environments, " → "), formatTime(p.UpdatedAt))
				}
				return tw.Flush()
			})
		},
	}
}

func newPipelineCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Show a pipeline",
	}
	cmd.AddCommand(newPipelineShowCommand(g))
	return cmd
}

func newPipelineShowCommand(g *globals) *cobra.Command {
	var revision int
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Print a revision of a pipeline as YAML (the latest unless --revision)",
		Long: `Print a revision of a pipeline: its YAML as applied in table output, the
whole revision (number, digest, parsed spec, source) with -o json or -o yaml.`,
		Example: `  ferry pipeline show shop
  ferry pipeline show shop --revision 2 -o json`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if revision < 0 {
				return usageErrorf("--revision %d: want a revision number, 1 or more", revision)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			rev, err := c.Pipeline(cmd.Context(), args[0], revision)
			if err != nil {
				return err
			}
			return g.print(rev, func(w io.Writer) error {
				if rev.Source == "" {
					return printYAML(w, rev.Spec)
				}
				_, err := io.WriteString(w, rev.Source)
				if err == nil && !strings.HasSuffix(rev.Source, "\n") {
					_, err = io.WriteString(w, "\n")
				}
				return err
			})
		},
	}
	cmd.Flags().IntVar(&revision, "revision", 0, "revision number (default: the latest)")
	return cmd
}
