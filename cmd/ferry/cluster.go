package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/view"
)

func newClusterCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cluster",
		Short: "List the server replicas sharing the store and the promotions each drives",
		Long: `List the live replicas sharing the server's store: instance ID (host:pid),
host, API address, when it started, when it last renewed its leases, and the
promotions it drives, as pipeline/environment:state. A SQLite store has one
replica; several servers on one PostgreSQL share the work, and a dead
replica's promotions are taken over by another within seconds.`,
		Example: `  ferry cluster
  ferry cluster -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			reps, err := c.Cluster(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(reps, func(w io.Writer) error { return clusterTable(w, reps) })
		},
	}
}

// clusterTable prints one row per replica, after a line naming the replica
// that answered.
func clusterTable(w io.Writer, reps []view.Replica) error {
	if len(reps) == 0 {
		fmt.Fprintln(w, "no live replicas")
		return nil
	}
	summary := plural(len(reps), "replica")
	for _, r := range reps {
		if r.Self {
			summary += "; answered by " + r.ID
		}
	}
	fmt.Fprintf(w, "%s\n\n", summary)
	tw := newTable(w)
	row(tw, "REPLICA", "HOST", "ADDRESS", "STARTED", "LAST SEEN", "PROMOTIONS")
	for _, r := range reps {
		driving := make([]string, len(r.Driving))
		for i, p := range r.Driving {
			driving[i] = fmt.Sprintf("%s/%s:%s", p.Pipeline, p.Environment, p.State)
		}
		row(tw, r.ID, orDash(r.Host), orDash(r.Addr), formatTime(r.StartedAt), formatTime(r.SeenAt),
			orDash(strings.Join(driving, ", ")))
	}
	return tw.Flush()
}
