package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/client"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/step/metric"
	"github.com/ferry-dev/ferry/internal/step/watch"
	"github.com/ferry-dev/ferry/internal/view"
)

func newPromotionsCommand(g *globals) *cobra.Command {
	var q client.PromotionQuery
	var states []string
	cmd := &cobra.Command{
		Use:   "promotions",
		Short: "List promotions, newest first",
		Example: `  ferry promotions --pipeline shop --active
  ferry promotions --pipeline shop --env prod --state failed,rolled_back --limit 20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLimit(q.Limit); err != nil {
				return err
			}
			q.States = nil
			for _, s := range states {
				st := promotion.State(s)
				if !st.Valid() {
					return usageErrorf("--state %q: want one of %s", s, stateList())
				}
				q.States = append(q.States, st)
			}
			if q.Release != "" && q.Pipeline == "" {
				return usageErrorf("--release needs --pipeline")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ps, err := c.Promotions(cmd.Context(), q)
			if err != nil {
				return err
			}
			return g.print(ps, func(w io.Writer) error { return promotionTable(w, ps) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Pipeline, "pipeline", "", "only promotions of this pipeline")
	f.StringVar(&q.Environment, "env", "", "only promotions into this environment")
	f.StringSliceVar(&states, "state", nil, "only promotions in these states (repeat, or separate with commas)")
	f.BoolVar(&q.Active, "active", false, "only promotions that have not ended")
	f.StringVar(&q.Release, "release", "", "only promotions of this release version (needs --pipeline)")
	f.IntVar(&q.Limit, "limit", 0, "largest number of promotions to list (default: the server's, 100)")
	return cmd
}

func stateList() string {
	names := make([]string, len(promotion.States))
	for i, s := range promotion.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// promotionTable lists promotions one per row.
func promotionTable(w io.Writer, ps []view.Promotion) error {
	tw := newTable(w)
	row(tw, "ID", "PIPELINE", "ENVIRONMENT", "KIND", "RELEASE", "STATE", "ACTOR", "CREATED", "FINISHED")
	for _, p := range ps {
		row(tw, p.ID, p.Pipeline, p.Environment, p.Kind, p.Release.Version, p.State, p.Actor,
			formatTime(p.CreatedAt), formatTimePtr(p.FinishedAt))
	}
	return tw.Flush()
}

func newPromotionCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "promotion",
		Short: "Show a promotion",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "show ID",
		Short:   "Show a promotion: its fields, state transitions and steps",
		Example: `  ferry promotion show 0193a8c2-…`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.Promotion(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.print(p, func(w io.Writer) error {
				if err := printPromotion(w, p); err != nil {
					return err
				}
				chunks, err := c.Logs(cmd.Context(), p.ID)
				if err != nil {
					return err
				}
				return printMeasurements(w, chunks)
			})
		},
	})
	return cmd
}

// printMeasurements prints the measurements metric checks recorded in
// their output, when there are any.
func printMeasurements(w io.Writer, chunks []view.LogChunk) error {
	type key struct {
		phase   string
		step    string
		attempt int
	}
	var rows [][]any
	partial := map[key]string{}
	for _, c := range chunks {
		k := key{string(c.Phase), c.Step, c.Attempt}
		text := partial[k] + c.Text
		lines := strings.Split(text, "\n")
		partial[k] = lines[len(lines)-1]
		for _, l := range lines[:len(lines)-1] {
			name := k.phase + "/" + k.step
			if check, rest, ok := watch.SplitLine(l); ok && k.phase == string(promotion.PhaseWatch) {
				// A watch window's checks share its output, each line named.
				name, l = k.phase+"/"+check, rest
			}
			if m, ok := metric.ParseMeasurement(l); ok {
				value := "no data"
				if m.Value != nil {
					b, _ := json.Marshal(m.Value)
					value = string(b)
				}
				rows = append(rows, []any{name, k.attempt, formatTime(m.At), value, m.Verdict, orDash(m.Error)})
			}
		}
	}
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nMeasurements:")
	tw := newTable(w)
	row(tw, "CHECK", "ATTEMPT", "AT", "VALUE", "VERDICT", "ERROR")
	for _, r := range rows {
		row(tw, r...)
	}
	return tw.Flush()
}

// printPromotion prints a promotion's fields, its transitions and a table of its steps.
func printPromotion(w io.Writer, p *view.Promotion) error {
	tw := newTable(w)
	row(tw, "ID:", p.ID)
	row(tw, "Trace:", p.TraceID)
	row(tw, "Pipeline:", fmt.Sprintf("%s (revision %d)", p.Pipeline, p.Revision))
	row(tw, "Environment:", p.Environment)
	row(tw, "Kind:", p.Kind)
	row(tw, "Release:", fmt.Sprintf("%s (%s)", p.Release.Version, p.Release.ID))
	if p.RollbackTo != nil {
		row(tw, "Rollback to:", fmt.Sprintf("%s (%s)", p.RollbackTo.Version, p.RollbackTo.ID))
	}
	row(tw, "State:", p.State)
	if p.Message != "" {
		row(tw, "Message:", p.Message)
	}
	actor := p.Actor
	if p.Forced {
		actor += " (forced)"
	}
	row(tw, "Actor:", actor)
	row(tw, "Reason:", orDash(p.Reason))
	if p.Expedited {
		row(tw, "Expedited:", "yes (soak skipped)")
	}
	if p.OverrideWindow {
		row(tw, "Break-glass:", "yes (deployment windows and freezes ignored)")
	}
	if p.Review != nil {
		row(tw, "Reviewed:", fmt.Sprintf("by %s at %s: %s", p.Review.By, formatTime(p.Review.At), p.Review.Comment))
	} else if p.Expedited || p.OverrideWindow {
		row(tw, "Reviewed:", "not yet (see ferry reviews)")
	}
	row(tw, "Created:", formatTime(p.CreatedAt))
	row(tw, "Started:", formatTimePtr(p.StartedAt))
	row(tw, "Finished:", formatTimePtr(p.FinishedAt))
	if p.WakeAt != nil {
		row(tw, "Continues at:", formatTimePtr(p.WakeAt))
	}
	if p.Watch != nil {
		state := "ended"
		if p.Watch.Open {
			state = "open"
		}
		row(tw, "Watch:", fmt.Sprintf("%s, %s to %s (%s)", state, formatTime(p.Watch.StartedAt), formatTime(p.Watch.Until), p.Watch.For))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := printGatesAndApprovals(w, p); err != nil {
		return err
	}
	if len(p.Alerts) > 0 {
		fmt.Fprintln(w, "\nAlerts:")
		tw = newTable(w)
		row(tw, "AT", "ALERTS", "ROLLED BACK", "GROUP")
		for _, a := range p.Alerts {
			rolled := "no"
			if a.RolledBack {
				rolled = "yes"
			}
			row(tw, formatTime(a.At), a.Summary, rolled, a.GroupKey)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(p.Transitions) > 0 {
		fmt.Fprintln(w, "\nTransitions:")
		tw = newTable(w)
		row(tw, "AT", "FROM", "TO", "ACTOR", "REASON")
		for _, t := range p.Transitions {
			row(tw, formatTime(t.At), t.From, t.To, t.Actor, orDash(t.Reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "\nSteps:")
	tw = newTable(w)
	row(tw, "PHASE", "NAME", "STATE", "ATTEMPTS", "EXIT CODE", "ERROR")
	for _, s := range p.Steps {
		exit := "-"
		if s.ExitCode != nil {
			exit = fmt.Sprint(*s.ExitCode)
		}
		row(tw, s.Phase, s.Name, s.State, s.Attempts, exit, orDash(s.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printNotifications(w, p.Notifications)
}

// printNotifications prints a table of a promotion's notifications, if any.
func printNotifications(w io.Writer, ns []view.Notification) error {
	if len(ns) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nNotifications:")
	tw := newTable(w)
	row(tw, "ENDPOINT", "SEQ", "EVENT", "STATE", "ATTEMPTS", "LAST ATTEMPT", "LAST ERROR")
	for _, n := range ns {
		row(tw, n.Endpoint, n.Seq, n.Event, n.State, n.Attempts, formatTimePtr(n.LastAttemptAt), orDash(n.LastError))
	}
	return tw.Flush()
}

// printGatesAndApprovals prints tables of a promotion's latest gate
// evaluation and of the approvals recorded on it, each when there is one.
func printGatesAndApprovals(w io.Writer, p *view.Promotion) error {
	if len(p.Gates) > 0 {
		fmt.Fprintln(w, "\nGates:")
		tw := newTable(w)
		row(tw, "GATE", "KIND", "RESULT", "REASON", "UNTIL")
		for _, g := range p.Gates {
			row(tw, g.Name, g.Kind, g.Result, orDash(g.Reason), formatTimePtr(g.Until))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(p.Approvals) > 0 {
		fmt.Fprintln(w, "\nApprovals:")
		tw := newTable(w)
		row(tw, "USER", "DECISION", "COMMENT", "AT")
		for _, a := range p.Approvals {
			row(tw, a.User, a.Decision, orDash(a.Comment), formatTime(a.At))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func newLogsCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logs ID",
		Short: "Print the output of a promotion's steps, grouped by step attempt",
		Example: `  ferry logs 0193a8c2-…
  ferry logs 0193a8c2-… -o json`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			chunks, err := c.Logs(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.print(chunks, func(w io.Writer) error { return printLogs(w, chunks) })
		},
	}
}

// printLogs prints log chunks with a header line before each step attempt's output.
func printLogs(w io.Writer, chunks []view.LogChunk) error {
	type attempt struct {
		phase   promotion.Phase
		index   int
		attempt int
	}
	var last *attempt
	atLineStart := true
	for _, c := range chunks {
		cur := attempt{c.Phase, c.Index, c.Attempt}
		if last == nil || *last != cur {
			if !atLineStart {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "==> %s/%s attempt %d <==\n", c.Phase, c.Step, c.Attempt)
			last = &cur
		}
		if _, err := io.WriteString(w, c.Text); err != nil {
			return err
		}
		if c.Text != "" {
			atLineStart = strings.HasSuffix(c.Text, "\n")
		}
	}
	if !atLineStart {
		fmt.Fprintln(w)
	}
	return nil
}

// reasonAction describes a command that acts on one promotion with a reason:
// abort, resume, advance.
type reasonAction struct {
	use, short, long, example string
	// defaultReason, when set, makes --reason optional.
	defaultReason string
	do            func(c *client.Client, ctx context.Context, id, reason string) (*view.Promotion, error)
}

func newReasonCommand(g *globals, a reasonAction) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use: a.use, Short: a.short, Long: a.long, Example: a.example,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				if a.defaultReason == "" {
					return usageErrorf("--reason must not be empty")
				}
				reason = a.defaultReason
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := a.do(c, cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			return g.print(p, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "promotion %s: %s\n", p.ID, p.State)
				return err
			})
		},
	}
	if a.defaultReason == "" {
		cmd.Flags().StringVar(&reason, "reason", "", "why; recorded in the audit log (required)")
		_ = cmd.MarkFlagRequired("reason")
	} else {
		cmd.Flags().StringVar(&reason, "reason", "", "why; recorded in the audit log")
	}
	return cmd
}

func newAbortCommand(g *globals) *cobra.Command {
	return newReasonCommand(g, reasonAction{
		use: "abort ID --reason TEXT", short: "Abort a promotion that has not ended",
		example: `  ferry abort 0193a8c2-… --reason "wrong build"`,
		do:      (*client.Client).Abort,
	})
}

func newResumeCommand(g *globals) *cobra.Command {
	return newReasonCommand(g, reasonAction{
		use: "resume ID --reason TEXT", short: "Resume a promotion paused by an inconclusive check, or end a watch window early",
		long: `Resume a promotion that an inconclusive check paused: the check counts as
passed, because a person looked and decided, and the promotion goes on. To
stop it instead, use ferry abort.

On a promotion that is watching (its post-promotion watch window is open),
resume ends the window early: the promotion succeeds now, and the
environment is free for the next one.`,
		example: `  ferry resume 0193a8c2-… --reason "error rate is flat on the dashboard"`,
		do:      (*client.Client).Resume,
	})
}

func newAdvanceCommand(g *globals) *cobra.Command {
	return newReasonCommand(g, reasonAction{
		use: "advance ID [--reason TEXT]", short: "Move a canary past a manual pause to its next phase",
		long: `Move a promotion whose canary phase waits at a manual pause (pause: manual)
on to its next phase. The advance is recorded in the audit log with the reason.`,
		example:       `  ferry advance 0193a8c2-… --reason "5% looked healthy for an hour"`,
		defaultReason: "advance to the next canary phase",
		do:            (*client.Client).Resume,
	})
}
