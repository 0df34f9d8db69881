package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/client"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/view"
)

// approvalsGateKind is the kind of the gate that waits for people's approvals.
const approvalsGateKind = "approvals"

func newApproveCommand(g *globals) *cobra.Command {
	var text string
	cmd := &cobra.Command{
		Use:   "approve ID [--comment TEXT]",
		Short: "Approve a promotion awaiting approval",
		Long: `Approve a promotion awaiting approval. The approval is bound to the
promotion's release and pipeline revision and recorded in the audit log; the
promotion goes on once every approval it needs is in.

The server refuses (exit 1) when you may not decide on the promotion: your
token lacks the approver role for its environment, you requested it and the
environment does not allow self-approval, or it is not awaiting approval.`,
		Example: `  ferry approve 0193a8c4-…
  ferry approve 0193a8c4-… --comment "checked the migration plan"`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.Approve(cmd.Context(), args[0], text)
			if err != nil {
				return err
			}
			return g.print(p, func(w io.Writer) error { return decided(w, p, "approved") })
		},
	}
	cmd.Flags().StringVar(&text, "comment", "", "a comment recorded with the approval")
	return cmd
}

func newRejectCommand(g *globals) *cobra.Command {
	var text string
	cmd := &cobra.Command{
		Use:   "reject ID --comment TEXT",
		Short: "Reject a promotion awaiting approval",
		Long: `Reject a promotion awaiting approval: it ends in state rejected. --comment
is required and recorded in the audit log.`,
		Example: `  ferry reject 0193a8c4-… --comment "not during the sale"`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(text) == "" {
				return usageErrorf("--comment must not be empty: say why the promotion is rejected")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.Reject(cmd.Context(), args[0], text)
			if err != nil {
				return err
			}
			return g.print(p, func(w io.Writer) error { return decided(w, p, "rejected") })
		},
	}
	cmd.Flags().StringVar(&text, "comment", "", "why; recorded in the audit log (required)")
	_ = cmd.MarkFlagRequired("comment")
	return cmd
}

// decided prints the outcome of a decision on a promotion.
func decided(w io.Writer, p *view.Promotion, what string) error {
	line := fmt.Sprintf("promotion %s %s: %s %s %s → %s is %s", p.ID, what, p.Kind, p.Pipeline, p.Release.Version, p.Environment, p.State)
	if p.Message != "" {
		line += ": " + p.Message
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

func newApprovalsCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "approvals",
		Short: "List the promotions awaiting your approval",
		Long: `List the promotions awaiting approval that you may decide on: ID,
pipeline/environment, release, who requested it, since when it waits, and
what the approvals gate still needs.`,
		Example: `  ferry approvals
  ferry approvals -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ps, err := c.Approvals(cmd.Context())
			if err != nil {
				return err
			}
			if ps == nil {
				ps = []view.Promotion{}
			}
			return g.print(ps, func(w io.Writer) error { return approvalsTable(w, ps) })
		},
	}
}

// approvalsTable lists promotions awaiting approval, one per row.
func approvalsTable(w io.Writer, ps []view.Promotion) error {
	if len(ps) == 0 {
		_, err := fmt.Fprintln(w, "no promotions awaiting your approval")
		return err
	}
	tw := newTable(w)
	row(tw, "ID", "PIPELINE/ENV", "RELEASE", "REQUESTED BY", "WAITING SINCE", "WHY")
	for _, p := range ps {
		since, why := "-", orDash(p.Message)
		if gate := findGate(p.Gates, approvalsGateKind); gate != nil {
			since, why = formatTimePtr(gate.Since), orDash(gate.Reason)
		}
		row(tw, p.ID, p.Pipeline+"/"+p.Environment, p.Release.Version, p.Actor, since, why)
	}
	return tw.Flush()
}

// findGate returns the evaluation of the first gate of the kind, or nil.
func findGate(gates []promotion.GateEvaluation, kind string) *promotion.GateEvaluation {
	for i := range gates {
		if gates[i].Kind == kind {
			return &gates[i]
		}
	}
	return nil
}

func newPlanCommand(g *globals) *cobra.Command {
	var q client.PlanQuery
	cmd := &cobra.Command{
		Use:   "plan --pipeline P --release V --to ENV",
		Short: "Show whether a promotion would proceed now, gate by gate",
		Long: `Evaluate an environment's gates for a release without promoting it: one row
per gate (name, kind, result, reason), then whether a promotion would
proceed now, who may approve it, and when its gates would be evaluated
again. Nothing is recorded.

--expedite and --override-window plan a hotfix or break-glass promotion, as
ferry promote would make it with the same flags; --reason is the reason it
would carry.

Exit code: 0 if the promotion would proceed now, 3 if it would not (a gate
fails or is pending), 1 if the plan could not be made.`,
		Example: `  ferry plan --pipeline shop --release 1.4.0 --to prod
  ferry plan --pipeline shop --release 1.4.1 --to prod --expedite --reason "hotfix for INC-77"
  ferry plan --pipeline shop --release 1.4.0 --to prod -o json | jq .gates`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			plan, err := c.Plan(cmd.Context(), q)
			if err != nil {
				return err
			}
			if err := g.print(plan, func(w io.Writer) error { return printPlan(w, plan) }); err != nil {
				return err
			}
			if !plan.Proceed {
				return &planNotProceedingError{plan: plan}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Pipeline, "pipeline", "", "pipeline (required)")
	f.StringVar(&q.Release, "release", "", "release version (required)")
	f.StringVar(&q.Environment, "to", "", "environment (required)")
	f.BoolVar(&q.Expedite, "expedite", false, "plan a hotfix promotion that skips soak")
	f.BoolVar(&q.OverrideWindow, "override-window", false, "plan a break-glass promotion that ignores deployment windows and freezes")
	f.StringVar(&q.Reason, "reason", "", "the reason the promotion would carry")
	for _, name := range []string{"pipeline", "release", "to"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// printPlan prints a plan: its gates, the verdict, approvers and the next evaluation.
func printPlan(w io.Writer, p *view.Plan) error {
	fmt.Fprintf(w, "plan: promote %s %s → %s (pipeline revision %d)\n\n", p.Pipeline, p.Release.Version, p.Environment, p.Revision)
	tw := newTable(w)
	row(tw, "GATE", "KIND", "RESULT", "REASON")
	for _, gate := range p.Gates {
		row(tw, gate.Name, gate.Kind, gate.Result, orDash(gate.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if p.Proceed {
		fmt.Fprintln(w, "would proceed now")
	} else {
		fmt.Fprintf(w, "would not proceed: %s\n", orDash(p.Reason))
	}
	if len(p.Approvers) > 0 {
		fmt.Fprintf(w, "may approve: %s\n", strings.Join(p.Approvers, ", "))
	}
	if p.WakeAt != nil {
		fmt.Fprintf(w, "gates evaluated again at: %s\n", formatTimePtr(p.WakeAt))
	}
	if len(p.Preflight) > 0 {
		fmt.Fprintf(w, "preflight checks: %s\n", strings.Join(p.Preflight, ", "))
	}
	if p.Queue > 0 {
		fmt.Fprintf(w, "queued behind: %s into %s\n", plural(p.Queue, "unfinished promotion"), p.Environment)
	}
	return nil
}

// planNotProceedingError reports that a planned promotion would not proceed
// now. It unwraps to an endedError so that the exit code is 3, as for a
// followed promotion that did not succeed; the plan printed the reason.
type planNotProceedingError struct{ plan *view.Plan }

func (e *planNotProceedingError) Error() string {
	return fmt.Sprintf("promotion of %s %s into %s would not proceed: %s",
		e.plan.Pipeline, e.plan.Release.Version, e.plan.Environment, e.plan.Reason)
}

func (e *planNotProceedingError) Unwrap() error {
	return &endedError{id: "plan", message: e.plan.Reason}
}

func newReviewsCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reviews",
		Short: "List expedited and break-glass promotions nobody has reviewed",
		Long: `List the expedited (--expedite) and break-glass (--override-window)
promotions that nobody has reviewed yet: ID, pipeline/environment, release,
what was overridden, who requested it, its state, when, and the reason given.
Record a review with ferry review.`,
		Example: `  ferry reviews`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ps, err := c.Reviews(cmd.Context())
			if err != nil {
				return err
			}
			if ps == nil {
				ps = []view.Promotion{}
			}
			return g.print(ps, func(w io.Writer) error { return reviewsTable(w, ps) })
		},
	}
}

// reviewsTable lists promotions awaiting review, one per row.
func reviewsTable(w io.Writer, ps []view.Promotion) error {
	if len(ps) == 0 {
		_, err := fmt.Fprintln(w, "no promotions awaiting review")
		return err
	}
	tw := newTable(w)
	row(tw, "ID", "PIPELINE/ENV", "RELEASE", "OVERRIDE", "REQUESTED BY", "STATE", "CREATED", "REASON")
	for _, p := range ps {
		row(tw, p.ID, p.Pipeline+"/"+p.Environment, p.Release.Version, overrides(p), p.Actor, p.State,
			formatTime(p.CreatedAt), orDash(p.Reason))
	}
	return tw.Flush()
}

// overrides names what an expedited or break-glass promotion overrode:
// "expedited", "break-glass", both, or "-".
func overrides(p view.Promotion) string {
	var o []string
	if p.Expedited {
		o = append(o, "expedited")
	}
	if p.OverrideWindow {
		o = append(o, "break-glass")
	}
	if len(o) == 0 {
		return "-"
	}
	return strings.Join(o, ",")
}

func newReviewCommand(g *globals) *cobra.Command {
	var text string
	cmd := &cobra.Command{
		Use:   "review ID --comment TEXT",
		Short: "Review an expedited or break-glass promotion after the fact",
		Long: `Record your review of an expedited or break-glass promotion: it then no
longer appears in ferry reviews. --comment is required and recorded in the
audit log.`,
		Example: `  ferry review 0193a8c4-… --comment "hotfix justified by INC-77; follow-up in CHG-1300"`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(text) == "" {
				return usageErrorf("--comment must not be empty: say what the review found")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.Review(cmd.Context(), args[0], text)
			if err != nil {
				return err
			}
			return g.print(p, func(w io.Writer) error {
				by := "-"
				if p.Review != nil {
					by = p.Review.By
				}
				_, err := fmt.Fprintf(w, "promotion %s reviewed by %s\n", p.ID, by)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&text, "comment", "", "what the review found; recorded in the audit log (required)")
	_ = cmd.MarkFlagRequired("comment")
	return cmd
}
