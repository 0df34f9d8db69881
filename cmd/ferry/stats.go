package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/client"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/stats"
)

func newStatsCommand(g *globals) *cobra.Command {
	var q client.StatsQuery
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show promotion and delivery figures: success, speed, safety, the four keys",
		Long: `Show the figures of the promotions that ended in the window (30 days by
default): promotion success rate (M1), mean time to promote (M2), rollback
rate (M3), verification failure rate (M4), post-promotion incident rate (M5),
time to detect (M6), approval latency (M7), telemetry coverage (M9), audit
completeness (M10), and the four delivery keys: deployment frequency, lead
time for changes, change failure rate and time to restore. docs/stats.md
defines each figure. A figure with nothing to measure shows "-" (null in
JSON), never a made-up 0.

Production is the last environments of each pipeline (those no other
environment runs after), or the environment --env names. --bucket adds the
figures of each bucket of the window (a day: 1d), for a chart over time.`,
		Example: `  ferry stats
  ferry stats --pipeline shop --window 7d
  ferry stats --pipeline shop --env prod --window 90d --bucket 1d -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for flag, v := range map[string]string{"--window": q.Window, "--bucket": q.Bucket} {
				if v == "" {
					continue
				}
				if d, err := pipeline.ParseDuration(v); err != nil || d <= 0 {
					return usageErrorf("%s %q: want a positive duration such as 30d, 7d or 12h", flag, v)
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			rep, err := c.Stats(cmd.Context(), q)
			if err != nil {
				return err
			}
			return g.print(rep, func(w io.Writer) error { return statsTable(w, rep) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Pipeline, "pipeline", "", "only promotions of this pipeline")
	f.StringVar(&q.Environment, "env", "", "only promotions into this environment, which then counts as production")
	f.StringVar(&q.Window, "window", "30d", "how far back from now: 30d, 7d, 12h (at most 366d)")
	f.StringVar(&q.Bucket, "bucket", "", "add the figures of each bucket of this length (1d, 6h): a series over the window")
	return cmd
}

// statsTable prints one row per figure with what it counts, then the audit
// gaps and the series, if any.
func statsTable(w io.Writer, rep *stats.Report) error {
	scope := "every pipeline"
	switch {
	case rep.Pipeline != "" && rep.Environment != "":
		scope = "pipeline " + rep.Pipeline + ", environment " + rep.Environment
	case rep.Pipeline != "":
		scope = "pipeline " + rep.Pipeline
	case rep.Environment != "":
		scope = "environment " + rep.Environment
	}
	fmt.Fprintf(w, "%s: promotions that ended from %s to %s\n", scope, formatTime(rep.From), formatTime(rep.To))
	prod := "none"
	if len(rep.Production) > 0 {
		prod = fmt.Sprint(rep.Production)
	}
	fmt.Fprintf(w, "production: %s\n\n", prod)
	f := rep.Figures
	tw := newTable(w)
	row(tw, "", "FIGURE", "VALUE", "OVER")
	row(tw, "M1", "promotion success rate", percent(f.SuccessRate), fmt.Sprintf("%d of %s", f.Succeeded, plural(f.Attempts, "attempt")))
	row(tw, "M2", "mean time to promote", duration(f.MeanTimeToPromoteSeconds), fmt.Sprintf("%d reached production", f.PromotedToProduction))
	row(tw, "M3", "rollback rate", percent(f.RollbackRate), fmt.Sprintf("%d of %s", f.RolledBack, plural(f.Attempts, "attempt")))
	row(tw, "M4", "verification failure rate", percent(f.VerificationFailureRate), fmt.Sprintf("%d of %d verified", f.VerificationFailed, f.Verified))
	row(tw, "M5", "post-promotion incident rate", percent(f.IncidentRate), fmt.Sprintf("%d of %d live", f.Incidents, f.Live))
	row(tw, "M6", "mean time to detect", duration(f.MeanTimeToDetectSeconds), plural(f.Incidents, "incident"))
	row(tw, "M7", "approval latency", duration(f.ApprovalLatencySeconds), plural(f.AwaitedApproval, "promotion")+" awaited approval")
	row(tw, "M9", "telemetry coverage", percent(f.TelemetryCoverage), fmt.Sprintf("%d of %s", f.WithTelemetry, plural(f.Attempts, "attempt")))
	row(tw, "M10", "audit completeness", percent(f.AuditCompleteness), fmt.Sprintf("%d of %s", f.AuditComplete, plural(f.Promotions, "promotion")))
	row(tw, "DORA", "deployment frequency", perDay(f.DeploymentFrequencyPerDay), plural(f.SuccessfulDeployments, "successful deployment"))
	row(tw, "DORA", "lead time for changes", duration(f.LeadTimeForChangesSeconds),
		fmt.Sprintf("median of %d; %d without commit time", f.LeadTimeCount, f.WithoutCommitTime))
	row(tw, "DORA", "change failure rate", percent(f.ChangeFailureRate), fmt.Sprintf("%d of %s", f.ChangeFailures, plural(f.Deployments, "deployment")))
	row(tw, "DORA", "time to restore", duration(f.TimeToRestoreSeconds), fmt.Sprintf("median of %d; %d not restored", f.Restored, f.Unrestored))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.AuditGaps) > 0 {
		fmt.Fprintln(w, "\nincomplete audit trails:")
		tw = newTable(w)
		for _, gap := range rep.AuditGaps {
			row(tw, "  "+gap.PromotionID, gap.Problem)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(rep.Series) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	row(tw, "FROM", "PROMOTIONS", "SUCCESS", "ROLLBACK", "DEPLOYS/DAY", "LEAD TIME", "CHANGE FAILURE", "RESTORE")
	for _, b := range rep.Series {
		row(tw, formatTime(b.From), b.Promotions, percent(b.SuccessRate), percent(b.RollbackRate), perDay(b.DeploymentFrequencyPerDay),
			duration(b.LeadTimeForChangesSeconds), percent(b.ChangeFailureRate), duration(b.TimeToRestoreSeconds))
	}
	return tw.Flush()
}

// percent formats a rate as a percentage, or "-" when there is none.
func percent(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *r*100)
}

// duration formats seconds as a duration — to the second, or to the tenth
// of a second below ten seconds — or "-" when there are none.
func duration(s *float64) string {
	if s == nil {
		return "-"
	}
	d := time.Duration(*s * float64(time.Second))
	if d > -10*time.Second && d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// perDay formats a frequency, or "-" when there is none.
func perDay(f *float64) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f/day", *f)
}
