package main

import (
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/client"
)

func newAuditCommand(g *globals) *cobra.Command {
	var q client.AuditQuery
	var since string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List audit events: who did what, when, why, to what",
		Example: `  ferry audit --promotion 0193a8c2-…
  ferry audit --actor alice --since 24h
  ferry audit --action promotion.create --since 2025-01-01T00:00:00Z -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLimit(q.Limit); err != nil {
				return err
			}
			var err error
			if q.Since, err = parseSince(since, time.Now()); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			events, err := c.Audit(cmd.Context(), q)
			if err != nil {
				return err
			}
			return g.print(events, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "REASON")
				for _, e := range events {
					row(tw, e.Seq, formatTime(e.Time), e.Actor, e.Action, e.Subject, orDash(e.Reason))
				}
				return tw.Flush()
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.PromotionID, "promotion", "", "only events of this promotion ID")
	f.StringVar(&q.Actor, "actor", "", "only events by this actor")
	f.StringVar(&q.Action, "action", "", "only events with this action, such as promotion.create or promotion.transition")
	f.StringVar(&since, "since", "", "only events since this RFC 3339 time, or this long ago (24h)")
	f.IntVar(&q.Limit, "limit", 0, "largest number of events to list (default: the server's, 100)")
	return cmd
}

// parseSince parses --since: an RFC 3339 time, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usageErrorf("--since %q: want an RFC 3339 time (2025-01-31T09:00:00Z) or a duration (24h)", s)
}
