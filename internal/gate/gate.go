// Package gate evaluates the conditions that must hold before a release
// deploys into an environment — upstream success, soak, policies, deployment
// windows and approvals — each yielding pass, fail or pending with a reason a
// person can read. It does no I/O: the engine gathers the facts from the
// store and applies the outcome.
package gate

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis/burn"
	"github.com/ferry-dev/ferry/internal/expr"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
)

// The kinds of gate.
const (
	KindUpstream  = "upstream"
	KindSoak      = "soak"
	KindPolicy    = "policy"
	KindWindows   = "windows"
	KindApprovals = "approvals"
	KindBudget    = "error-budget"
)

// Input is everything the gates of one promotion are evaluated against.
type Input struct {
	// Promotion is the promotion being decided (or, for a plan, the one that would be).
	Promotion promotion.Promotion
	// Release is the release it deploys.
	Release release.Release
	// Environment is the target environment in the pinned revision.
	Environment pipeline.Environment
	// History is every promotion of the release in the pipeline, any order.
	History []promotion.Promotion
	// Approvals are the decisions recorded on the promotion.
	Approvals []promotion.Approval
	// Escalated is true once the approval escalation was sent.
	Escalated bool
	// Previous is the promotion's previous evaluation, if any.
	Previous []promotion.GateEvaluation
	// Budget is the latest burn-rate evaluation of the environment's error
	// budget, when it has one; nil while none is known yet.
	Budget *burn.Result
	// Now is the evaluation time.
	Now time.Time
}

// Outcome is the combined result of an environment's gates.
type Outcome struct {
	// Gates lists every gate's evaluation, in order.
	Gates []promotion.GateEvaluation
	// Result is fail if any gate failed, else pending if any is pending, else pass.
	Result promotion.GateResult
	// Reason explains Result: the first failure, or what is awaited.
	Reason string
	// WakeAt is when to evaluate again while pending (soak end, window
	// opening, approval deadline), if known.
	WakeAt *time.Time
	// Approval is set when only approvals are awaited.
	Approval bool
	// Escalate is set when the approval escalation is due now and was not sent yet.
	Escalate bool
	// Approvers says who may approve, when approvals are configured.
	Approvers []string
}

// Programs are an environment's compiled expressions.
type Programs struct {
	Policies []*expr.Program
	// Required is the approvals count expression, when it is not a plain number.
	Required *expr.Program
	// RequiredN is the approvals count when it is a plain number.
	RequiredN int
}

// Compile compiles the expressions of an environment's gates.
func Compile(env *expr.Env, e pipeline.Environment) (*Programs, error) {
	out := &Programs{}
	g := e.Gates
	if g == nil {
		return out, nil
	}
	for _, p := range g.Policies {
		prog, err := env.Compile(p.Expr, expr.Bool)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", p.Name, err)
		}
		out.Policies = append(out.Policies, prog)
	}
	if a := g.Approvals; a != nil {
		req := strings.TrimSpace(a.Required)
		if n, err := strconv.Atoi(req); err == nil {
			out.RequiredN = n
		} else if req != "" {
			prog, err := env.Compile(req, expr.Int)
			if err != nil {
				return nil, fmt.Errorf("approvals.required: %w", err)
			}
			out.Required = prog
		}
	}
	return out, nil
}

// Evaluate evaluates every gate of in.Environment for in.Promotion.
func Evaluate(ctx context.Context, in Input, progs *Programs) Outcome {
	e := evaluator{in: in, progs: progs}
	e.upstream()
	g := in.Environment.Gates
	if g != nil {
		e.soak(g)
		e.policies(ctx, g)
		e.windows(g)
		e.errorBudget(g)
		e.approvals(ctx, g)
	}
	return e.combine()
}

type evaluator struct {
	in    Input
	progs *Programs
	out   Outcome
	// approvalWake is the next approval deadline; approvalPending marks approvals awaited.
	approvalWake    *time.Time
	approvalPending bool
}

func (e *evaluator) add(name, kind string, result promotion.GateResult, reason string, until *time.Time) {
	e.out.Gates = append(e.out.Gates, promotion.GateEvaluation{Name: name, Kind: kind, Result: result, Reason: reason, Until: until, At: e.in.Now})
}

func (e *evaluator) combine() Outcome {
	o := e.out
	o.Result = promotion.GatePass
	var pendingReasons []string
	var wake *time.Time
	for _, g := range o.Gates {
		switch g.Result {
		case promotion.GateFail:
			if o.Result != promotion.GateFail {
				o.Result, o.Reason = promotion.GateFail, g.Name+": "+g.Reason
			}
		case promotion.GatePending:
			pendingReasons = append(pendingReasons, g.Name+": "+g.Reason)
			if g.Kind != KindApprovals && g.Until != nil && (wake == nil || g.Until.Before(*wake)) {
				wake = g.Until
			}
		}
	}
	switch {
	case o.Result == promotion.GateFail:
	case len(pendingReasons) > 0:
		o.Result = promotion.GatePending
		o.Reason = strings.Join(pendingReasons, "; ")
		if wake == nil && e.approvalPending && len(pendingReasons) == 1 {
			o.Approval = true
			wake = e.approvalWake
		} else if wake == nil {
			// Pending on something without a known time: look again in a minute rather than never.
			t := e.in.Now.Add(time.Minute)
			wake = &t
		}
		o.WakeAt = wake
	default:
		parts := make([]string, len(o.Gates))
		for i, g := range o.Gates {
			parts[i] = g.Name + ": " + g.Reason
		}
		o.Reason = "gates passed (" + strings.Join(parts, "; ") + ")"
	}
	return o
}

// upstream: the release must have succeeded in every environment listed in after.
func (e *evaluator) upstream() {
	p, env := e.in.Promotion, e.in.Environment
	switch {
	case p.Kind == promotion.KindRollback:
		e.add(KindUpstream, KindUpstream, promotion.GatePass, "rollback: upstream requirements do not apply", nil)
		return
	case len(env.After) == 0:
		e.add(KindUpstream, KindUpstream, promotion.GatePass, "no upstream environments", nil)
		return
	}
	var missing []string
	for _, up := range env.After {
		if _, ok := e.succeededIn(up); !ok {
			missing = append(missing, up)
		}
	}
	switch {
	case len(missing) == 0:
		e.add(KindUpstream, KindUpstream, promotion.GatePass, fmt.Sprintf("release %s succeeded in %s", e.in.Release.Version, strings.Join(env.After, ", ")), nil)
	case p.Forced:
		e.add(KindUpstream, KindUpstream, promotion.GatePass, fmt.Sprintf("overridden by %s (not succeeded in %s): %s", p.Actor, strings.Join(missing, ", "), p.Reason), nil)
	default:
		e.add(KindUpstream, KindUpstream, promotion.GateFail, fmt.Sprintf("release %s has not succeeded in %s", e.in.Release.Version, strings.Join(missing, ", ")), nil)
	}
}

// succeededIn returns when the release last succeeded in env.
func (e *evaluator) succeededIn(env string) (time.Time, bool) {
	var at time.Time
	ok := false
	for _, h := range e.in.History {
		if h.Environment == env && h.State == promotion.Succeeded && h.Kind == promotion.KindPromote && h.FinishedAt != nil {
			if !ok || h.FinishedAt.After(at) {
				at, ok = *h.FinishedAt, true
			}
		}
	}
	return at, ok
}

// soak: the release must have run for a while upstream without failing since.
func (e *evaluator) soak(g *pipeline.Gates) {
	if g.Soak <= 0 {
		return
	}
	p, env, soak := e.in.Promotion, e.in.Environment, g.Soak.D()
	switch {
	case p.Kind == promotion.KindRollback && (g.Rollbacks == nil || !g.Rollbacks.Soak):
		e.add(KindSoak, KindSoak, promotion.GatePass, "rollback: soak does not apply", nil)
		return
	case p.Expedited:
		e.add(KindSoak, KindSoak, promotion.GatePass, fmt.Sprintf("skipped: expedited by %s: %s", p.Actor, p.Reason), nil)
		return
	case len(env.After) == 0:
		e.add(KindSoak, KindSoak, promotion.GatePass, "no upstream environments to soak in", nil)
		return
	}
	var since, end time.Time
	for i, up := range env.After {
		at, ok := e.succeededIn(up)
		if !ok {
			e.add(KindSoak, KindSoak, promotion.GatePending, fmt.Sprintf("%s of soak has not started: release %s has not succeeded in %s", soak, e.in.Release.Version, up), nil)
			return
		}
		if i == 0 || at.Before(since) {
			since = at
		}
		if at.Add(soak).After(end) {
			end = at.Add(soak)
		}
	}
	for _, h := range e.in.History {
		if h.FinishedAt == nil || h.FinishedAt.Before(since) || h.ID == p.ID {
			continue
		}
		switch h.State {
		case promotion.Failed, promotion.RolledBack, promotion.RollbackFailed:
			e.add(KindSoak, KindSoak, promotion.GateFail, fmt.Sprintf("release %s ended %s in %s at %s, after it succeeded upstream",
				e.in.Release.Version, h.State, h.Environment, h.FinishedAt.UTC().Format(time.RFC3339)), nil)
			return
		}
	}
	if !e.in.Now.Before(end) {
		e.add(KindSoak, KindSoak, promotion.GatePass, fmt.Sprintf("soaked %s in %s with no failure since", soak, strings.Join(env.After, ", ")), nil)
		return
	}
	left := end.Sub(e.in.Now).Round(time.Second)
	e.add(KindSoak, KindSoak, promotion.GatePending, fmt.Sprintf("soaking in %s: %s left, until %s", strings.Join(env.After, ", "), left, end.UTC().Format(time.RFC3339)), &end)
}

// policies: every CEL policy must hold.
func (e *evaluator) policies(ctx context.Context, g *pipeline.Gates) {
	if len(g.Policies) == 0 {
		return
	}
	in := e.exprInput()
	for i, pol := range g.Policies {
		var ok bool
		var err error
		if e.progs == nil || i >= len(e.progs.Policies) {
			err = fmt.Errorf("not compiled")
		} else {
			ok, err = e.progs.Policies[i].EvalBool(ctx, in)
		}
		switch {
		case err != nil:
			e.add(pol.Name, KindPolicy, promotion.GateFail, fmt.Sprintf("could not evaluate %s: %v", pol.Expr, err), nil)
		case ok:
			e.add(pol.Name, KindPolicy, promotion.GatePass, "holds: "+pol.Expr, nil)
		default:
			msg := pol.Message
			if msg == "" {
				msg = "policy does not hold"
			}
			e.add(pol.Name, KindPolicy, promotion.GateFail, fmt.Sprintf("%s (%s is false)", msg, pol.Expr), nil)
		}
	}
}

func (e *evaluator) exprInput() expr.Input {
	var hist []promotion.Promotion
	for _, h := range e.in.History {
		if h.ID != e.in.Promotion.ID {
			hist = append(hist, h)
		}
	}
	sort.Slice(hist, func(i, j int) bool { return hist[i].Seq < hist[j].Seq })
	return expr.Input{
		Release:     e.in.Release,
		Pipeline:    expr.Pipeline{Name: e.in.Promotion.Pipeline, Revision: e.in.Promotion.Revision},
		Environment: expr.Environment{Name: e.in.Environment.Name, After: e.in.Environment.After},
		Promotion:   e.in.Promotion,
		Expedited:   e.in.Promotion.Expedited,
		Now:         e.in.Now,
		History:     expr.HistoryOf(hist),
	}
}

// windows: deploy only inside allowed windows and outside freezes.
func (e *evaluator) windows(g *pipeline.Gates) {
	if g.Windows == nil {
		return
	}
	p := e.in.Promotion
	switch {
	case p.Kind == promotion.KindRollback && (g.Rollbacks == nil || !g.Rollbacks.Windows):
		e.add(KindWindows, KindWindows, promotion.GatePass, "rollback: deployment windows do not apply", nil)
		return
	case p.OverrideWindow:
		e.add(KindWindows, KindWindows, promotion.GatePass, fmt.Sprintf("break-glass by %s: %s", p.Actor, p.Reason), nil)
		return
	}
	d := g.Windows.Evaluate(e.in.Now)
	switch {
	case d.Open:
		e.add(KindWindows, KindWindows, promotion.GatePass, d.Reason, nil)
	case !d.Next.IsZero():
		next := d.Next
		e.add(KindWindows, KindWindows, promotion.GatePending, d.Reason, &next)
	default:
		e.add(KindWindows, KindWindows, promotion.GateFail, d.Reason, nil)
	}
}

// BudgetRecheck is the longest a promotion held by its error budget waits
// before the burn rates are measured again; it waits as long as the
// shortest window of the rules, the fastest the rates can change, but at
// least 5 seconds.
const BudgetRecheck = time.Minute

// budgetRecheck returns how long to wait before measuring eb again.
func budgetRecheck(eb *pipeline.ErrorBudget) time.Duration {
	d := BudgetRecheck
	for _, r := range eb.Rules {
		d = min(d, r.Short.D())
	}
	return max(d, 5*time.Second)
}

// errorBudget: hold while the service burns its error budget too fast.
func (e *evaluator) errorBudget(g *pipeline.Gates) {
	if g.ErrorBudget == nil {
		return
	}
	p, b := e.in.Promotion, e.in.Budget
	switch {
	case p.Kind == promotion.KindRollback:
		e.add(KindBudget, KindBudget, promotion.GatePass, "rollback: the error budget does not apply", nil)
	case b == nil:
		soon := e.in.Now.Add(5 * time.Second)
		e.add(KindBudget, KindBudget, promotion.GatePending, "measuring the burn rates", &soon)
	case b.Err != nil:
		later := e.in.Now.Add(budgetRecheck(g.ErrorBudget))
		e.add(KindBudget, KindBudget, promotion.GatePending, b.Reason+"; trying again", &later)
	case b.Blocked:
		later := e.in.Now.Add(budgetRecheck(g.ErrorBudget))
		e.add(KindBudget, KindBudget, promotion.GatePending, b.Reason, &later)
	default:
		e.add(KindBudget, KindBudget, promotion.GatePass, b.Reason, nil)
	}
}
