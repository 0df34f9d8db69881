package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis"
	"github.com/ferry-dev/ferry/internal/analysis/burn"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/expr"
	"github.com/ferry-dev/ferry/internal/gate"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/view"
)

// programs returns the compiled expressions of an environment's gates in a
// revision, compiled once: revisions never change.
func (e *Engine) programs(rev *pipeline.Revision, env pipeline.Environment) (*gate.Programs, error) {
	key := fmt.Sprintf("%s@%d/%s", rev.Pipeline, rev.Number, env.Name)
	e.revMu.Lock()
	progs, ok := e.compiled[key]
	e.revMu.Unlock()
	if ok {
		return progs, nil
	}
	cel, err := e.celEnv()
	if err != nil {
		return nil, err
	}
	progs, err = gate.Compile(cel, env)
	if err != nil {
		return nil, fmt.Errorf("compile gates of %s: %w", key, err)
	}
	e.revMu.Lock()
	e.compiled[key] = progs
	e.revMu.Unlock()
	return progs, nil
}

func (e *Engine) celEnv() (*expr.Env, error) {
	e.revMu.Lock()
	defer e.revMu.Unlock()
	if e.cel == nil {
		cel, err := expr.NewEnv()
		if err != nil {
			return nil, fmt.Errorf("expression environment: %w", err)
		}
		e.cel = cel
	}
	return e.cel, nil
}

// gateInput gathers from the store what a promotion's gates are evaluated against.
func (e *Engine) gateInput(ctx context.Context, tx store.Tx, p *promotion.Promotion, env pipeline.Environment, now time.Time) (gate.Input, error) {
	rel, err := e.releaseByID(ctx, tx, p.ReleaseID)
	if err != nil {
		return gate.Input{}, err
	}
	hist, err := tx.Promotions(ctx, store.PromotionFilter{Pipeline: p.Pipeline, ReleaseID: p.ReleaseID})
	if err != nil {
		return gate.Input{}, fmt.Errorf("load history of %s: %w", rel.Version, err)
	}
	in := gate.Input{Promotion: *p, Release: *rel, Environment: env, History: hist, Now: now, Previous: p.Gates}
	if p.ID == "" || env.Gates == nil || env.Gates.Approvals == nil {
		return in, nil // a plan, or no approvals to count
	}
	if in.Approvals, err = tx.Approvals(ctx, p.ID); err != nil {
		return gate.Input{}, fmt.Errorf("load approvals of %s: %w", p.ID, err)
	}
	esc, err := tx.AuditEvents(ctx, store.AuditFilter{PromotionID: p.ID, Action: "promotion.escalate", Limit: 1})
	if err != nil {
		return gate.Input{}, fmt.Errorf("load escalations of %s: %w", p.ID, err)
	}
	in.Escalated = len(esc) > 0
	return in, nil
}

// repin moves a promotion that has not started deploying to the pipeline's
// latest revision, so that it deploys what the pipeline says now; approvals
// given under the old revision no longer count.
func (e *Engine) repin(t *txn, p *promotion.Promotion) (*pipeline.Revision, pipeline.Environment, error) {
	rev, err := e.revision(t.ctx, t.tx, p.Pipeline, p.Revision)
	if err != nil {
		return nil, pipeline.Environment{}, err
	}
	latest, err := e.revision(t.ctx, t.tx, p.Pipeline, 0)
	if err != nil {
		return nil, pipeline.Environment{}, err
	}
	if latest.Number > rev.Number {
		if env, ok := latest.Spec.Environment(p.Environment); ok {
			if err := t.audit(SystemActor, "promotion.repin", "promotion/"+p.ID, p.ID,
				fmt.Sprintf("pipeline changed while waiting: revision %d → %d; earlier approvals no longer count", rev.Number, latest.Number),
				map[string]any{"from": rev.Number, "to": latest.Number}); err != nil {
				return nil, pipeline.Environment{}, err
			}
			p.Revision = latest.Number
			return latest, env, nil
		}
	}
	env, _ := rev.Spec.Environment(p.Environment)
	return rev, env, nil
}

// gateAndFire evaluates a gating promotion's gates, records the evaluation
// on it, and applies the outcome.
func (e *Engine) gateAndFire(t *txn, p *promotion.Promotion) error {
	began := e.cfg.Now().UTC()
	rev, env, err := e.repin(t, p)
	if err != nil {
		return err
	}
	progs, err := e.programs(rev, env)
	if err != nil {
		return err
	}
	in, err := e.gateInput(t.ctx, t.tx, p, env, t.now)
	if err != nil {
		return err
	}
	var job *budgetJob
	in.Budget, job = e.budgetFor(p, env, t.now)
	if job != nil {
		t.effects = append(t.effects, effect{kind: effBudget, id: p.ID, budget: job})
	}
	out := gate.Evaluate(t.ctx, in, progs)
	e.traceGates(t, p, began, out)
	previous := p.Gates
	p.Gates = out.Gates
	if out.Escalate {
		if err := e.escalate(t, p, env, out); err != nil {
			return err
		}
	}
	if err := e.fire(t, SystemActor, p, promotion.Event{Type: promotion.EvGates, Gate: out.Result, Reason: out.Reason, WakeAt: out.WakeAt, Approval: out.Approval}); err != nil {
		return err
	}
	e.gatesEvaluated(t, p, previous)
	return nil
}

// escalate records that approvals are late and posts to the escalation
// webhook once the transaction commits.
func (e *Engine) escalate(t *txn, p *promotion.Promotion, env pipeline.Environment, out gate.Outcome) error {
	a := env.Gates.Approvals
	payload := map[string]any{
		"event": "approvals.escalated", "promotion": p.ID, "pipeline": p.Pipeline, "environment": p.Environment,
		"release": p.ReleaseVersion, "requestedBy": p.Actor, "waitingSince": p.StartedAt, "approvers": out.Approvers,
		"reason": out.Reason,
	}
	if err := t.audit(SystemActor, "promotion.escalate", "promotion/"+p.ID, p.ID, "approvals are late: "+out.Reason,
		map[string]any{"webhook": a.Escalate.Webhook}); err != nil {
		return err
	}
	body, _ := json.Marshal(payload)
	t.effects = append(t.effects, effect{kind: effWebhook, id: p.ID, url: a.Escalate.Webhook, body: body})
	return nil
}

// postWebhook delivers an escalation, retrying a few times.
func (e *Engine) postWebhook(id, url string, body []byte) {
	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		return
	}
	e.background.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.background.Done()
		for try := 1; try <= 3; try++ {
			ctx, cancel := context.WithTimeout(e.stepCtx, 10*time.Second)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", "ferry-escalation-"+id)
				var resp *http.Response
				if resp, err = http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
					if resp.StatusCode >= 300 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
			}
			cancel()
			if err == nil {
				return
			}
			// The webhook's URL may hold a secret (chat webhooks do): log its host only.
			e.logID(id).Warn("escalation webhook", "host", urlHost(url), "try", try, "err", redactURL(err, url))
			select {
			case <-e.stepCtx.Done():
				return
			case <-time.After(time.Duration(try) * time.Second):
			}
		}
	}()
}

// rolesIn returns the roles a principal holds that cover an environment.
func rolesIn(who auth.Principal, pipelineName, env string) []string {
	var out []string
	for _, g := range who.Grants {
		if g.Scope.Covers(pipelineName, env) {
			out = append(out, string(g.Role))
		}
	}
	return out
}

// holdsRole reports whether who holds, on the environment, a role that
// includes one of allowed. A nil principal is the server itself.
func holdsRole(who *auth.Principal, pipelineName, env string, allowed ...string) bool {
	if who == nil {
		return true
	}
	for _, r := range rolesIn(*who, pipelineName, env) {
		for _, a := range allowed {
			if auth.Role(r).Includes(auth.Role(a)) {
				return true
			}
		}
	}
	return false
}

// Approve records an approval of a promotion by who, bound to the release's
// content and the pipeline revision, and moves the promotion on if it waited.
func (e *Engine) Approve(ctx context.Context, who auth.Principal, id, comment string) (*view.Promotion, error) {
	return e.decide(ctx, who, id, promotion.Approve, comment)
}

// Reject records a rejection of a promotion by who; a rejection by an
// eligible approver ends the promotion rejected.
func (e *Engine) Reject(ctx context.Context, who auth.Principal, id, comment string) (*view.Promotion, error) {
	if strings.TrimSpace(comment) == "" {
		return nil, errorf(CodeInvalid, "a rejection needs a comment: it is recorded in the audit log")
	}
	return e.decide(ctx, who, id, promotion.Reject, comment)
}

func (e *Engine) decide(ctx context.Context, who auth.Principal, id string, d promotion.Decision, comment string) (*view.Promotion, error) {
	err := e.commit(ctx, func(t *txn) error {
		p, err := t.tx.Promotion(ctx, id)
		if err != nil {
			return notFound(err, "promotion %q", id)
		}
		if p.State != promotion.Gating && p.State != promotion.AwaitingApproval {
			return errorf(CodeConflict, "promotion %s is %s: approvals are taken only before it deploys", id, p.State)
		}
		if err := t.tx.LockEnvironment(ctx, p.Pipeline, p.Environment); err != nil {
			return err
		}
		_, env, err := e.repin(t, p)
		if err != nil {
			return err
		}
		if env.Gates == nil || env.Gates.Approvals == nil {
			return errorf(CodePrecondition, "%s/%s takes no approvals", p.Pipeline, p.Environment)
		}
		rel, err := e.releaseByID(ctx, t.tx, p.ReleaseID)
		if err != nil {
			return err
		}
		roles := rolesIn(who, p.Pipeline, p.Environment)
		if ok, why := gate.Eligible(env.Gates.Approvals, who.User, roles, rel.CreatedBy, p.Actor); !ok {
			return errorf(CodeForbidden, "%s may not decide on promotion %s: %s", who.User, id, why)
		}
		ap := &promotion.Approval{PromotionID: id, User: who.User, Decision: d, Comment: comment, Roles: roles,
			ReleaseDigest: rel.ContentDigest(), Revision: p.Revision, At: t.now}
		if err := t.tx.PutApproval(ctx, ap); err != nil {
			return fmt.Errorf("record %s: %w", d, err)
		}
		if err := t.audit(who.User, "promotion."+string(d), "promotion/"+id, id, comment,
			map[string]any{"release": p.ReleaseVersion, "releaseDigest": ap.ReleaseDigest, "revision": ap.Revision, "roles": roles}); err != nil {
			return err
		}
		t.changed[id] = true
		switch {
		case d == promotion.Reject:
			reason := "rejected by " + who.User + ": " + comment
			if p.State == promotion.AwaitingApproval || p.WakeAt != nil {
				return e.fire(t, who.User, p, promotion.Event{Type: promotion.EvReject, Reason: reason})
			}
			return nil // evaluated at the next gate evaluation
		case p.State == promotion.AwaitingApproval:
			return e.fire(t, who.User, p, promotion.Event{Type: promotion.EvApprove, Reason: "approved by " + who.User + ": evaluating gates"})
		}
		// Gating (waiting for a window or a soak): the approval counts when it ends.
		return t.tx.UpdatePromotion(ctx, p)
	})
	if err != nil {
		return nil, err
	}
	return e.Promotion(ctx, id)
}

// PendingApprovals lists the promotions awaiting approval on which who may decide and has not.
func (e *Engine) PendingApprovals(ctx context.Context, who auth.Principal) ([]view.Promotion, error) {
	var out []view.Promotion
	err := e.store.View(ctx, func(tx store.Tx) error {
		ps, err := tx.Promotions(ctx, store.PromotionFilter{States: []promotion.State{promotion.AwaitingApproval}, Ascending: true})
		if err != nil {
			return fmt.Errorf("list promotions awaiting approval: %w", err)
		}
	next:
		for i := range ps {
			p := &ps[i]
			rev, err := e.revision(ctx, tx, p.Pipeline, p.Revision)
			if err != nil {
				return err
			}
			env, _ := rev.Spec.Environment(p.Environment)
			if env.Gates == nil || env.Gates.Approvals == nil {
				continue
			}
			rel, err := e.releaseByID(ctx, tx, p.ReleaseID)
			if err != nil {
				return err
			}
			if ok, _ := gate.Eligible(env.Gates.Approvals, who.User, rolesIn(who, p.Pipeline, p.Environment), rel.CreatedBy, p.Actor); !ok {
				continue
			}
			aps, err := tx.Approvals(ctx, p.ID)
			if err != nil {
				return err
			}
			for _, a := range aps {
				if a.User == who.User && a.Revision == p.Revision {
					continue next
				}
			}
			v, err := e.promotionView(ctx, tx, p, true)
			if err != nil {
				return err
			}
			out = append(out, *v)
		}
		return nil
	})
	return out, err
}

// PlanRequest asks what would happen if a release were promoted now.
type PlanRequest struct {
	Pipeline       string `json:"pipeline"`
	Release        string `json:"release"`
	Environment    string `json:"environment"`
	Expedite       bool   `json:"expedite,omitempty"`
	OverrideWindow bool   `json:"overrideWindow,omitempty"`
	Reason         string `json:"reason,omitempty"`
}

// Plan evaluates every gate of a promotion that is not made, and explains
// each; nothing changes.
func (e *Engine) Plan(ctx context.Context, who auth.Principal, req PlanRequest) (*view.Plan, error) {
	budget, err := e.planBudget(ctx, req)
	if err != nil {
		return nil, err
	}
	var out *view.Plan
	err = e.store.View(ctx, func(tx store.Tx) error {
		rev, err := tx.Revision(ctx, req.Pipeline, 0)
		if err != nil {
			return notFound(err, "pipeline %q", req.Pipeline)
		}
		env, ok := rev.Spec.Environment(req.Environment)
		if !ok {
			return errorf(CodeNotFound, "environment %q is not in pipeline %s (environments: %s)", req.Environment, req.Pipeline, envNames(rev.Spec))
		}
		rel, err := tx.Release(ctx, req.Pipeline, req.Release)
		if err != nil {
			return notFound(err, "release %q of pipeline %s", req.Release, req.Pipeline)
		}
		now := e.cfg.Now().UTC()
		p := promotion.Promotion{Pipeline: req.Pipeline, Environment: env.Name, Kind: promotion.KindPromote,
			ReleaseID: rel.ID, ReleaseVersion: rel.Version, Revision: rev.Number, State: promotion.Gating,
			Actor: who.User, Reason: req.Reason, Expedited: req.Expedite, OverrideWindow: req.OverrideWindow, StartedAt: &now}
		progs, err := e.programs(rev, env)
		if err != nil {
			return err
		}
		in, err := e.gateInput(ctx, tx, &p, env, now)
		if err != nil {
			return err
		}
		in.Budget = budget
		res := gate.Evaluate(ctx, in, progs)
		out = &view.Plan{Pipeline: req.Pipeline, Environment: env.Name, Release: view.ReleaseRef{ID: rel.ID, Version: rel.Version},
			Revision: rev.Number, Proceed: res.Result == promotion.GatePass, Result: res.Result, Reason: res.Reason,
			Gates: res.Gates, Approvers: res.Approvers, WakeAt: res.WakeAt}
		if env.Gates != nil {
			for _, pf := range env.Gates.Preflight {
				out.Preflight = append(out.Preflight, pf.Name)
			}
		}
		active, err := tx.Promotions(ctx, store.PromotionFilter{Pipeline: req.Pipeline, Environment: env.Name, Active: true})
		if err != nil {
			return err
		}
		out.Queue = len(active)
		return nil
	})
	return out, err
}

// Reviews lists expedited and break-glass promotions nobody has reviewed.
func (e *Engine) Reviews(ctx context.Context) ([]view.Promotion, error) {
	return e.Promotions(ctx, store.PromotionFilter{Unreviewed: true, Ascending: true})
}

// Review records who's after-the-fact review of an expedited or break-glass promotion.
func (e *Engine) Review(ctx context.Context, who auth.Principal, id, comment string) (*view.Promotion, error) {
	if strings.TrimSpace(comment) == "" {
		return nil, errorf(CodeInvalid, "a review needs a comment")
	}
	err := e.commit(ctx, func(t *txn) error {
		p, err := t.tx.Promotion(ctx, id)
		if err != nil {
			return notFound(err, "promotion %q", id)
		}
		switch {
		case !p.Expedited && !p.OverrideWindow:
			return errorf(CodePrecondition, "promotion %s was neither expedited nor break-glass: there is nothing to review", id)
		case p.Review != nil:
			return errorf(CodeConflict, "promotion %s was reviewed by %s at %s", id, p.Review.By, p.Review.At.Format(time.RFC3339))
		case who.User == p.Actor:
			return errorf(CodeForbidden, "%s requested promotion %s and may not review it", who.User, id)
		}
		p.Review = &promotion.Review{By: who.User, At: t.now, Comment: comment}
		if err := t.tx.UpdatePromotion(ctx, p); err != nil {
			return fmt.Errorf("record review: %w", err)
		}
		t.changed[id] = true
		return t.audit(who.User, "promotion.review", "promotion/"+id, id, comment,
			map[string]any{"expedited": p.Expedited, "overrideWindow": p.OverrideWindow})
	})
	if err != nil {
		return nil, err
	}
	return e.Promotion(ctx, id)
}

// planBudget measures the error budget of the environment a plan is about,
// before any transaction opens: a plan explains the burn rates as they are.
func (e *Engine) planBudget(ctx context.Context, req PlanRequest) (*burn.Result, error) {
	var env pipeline.Environment
	err := e.store.View(ctx, func(tx store.Tx) error {
		rev, err := tx.Revision(ctx, req.Pipeline, 0)
		if err != nil {
			return notFound(err, "pipeline %q", req.Pipeline)
		}
		env, _ = rev.Spec.Environment(req.Environment)
		return nil
	})
	if err != nil || env.Gates == nil || env.Gates.ErrorBudget == nil {
		return nil, err
	}
	job, err := budgetSpec(req.Pipeline, env)
	if err != nil {
		return &burn.Result{Err: err, Reason: "cannot judge the burn rate: " + err.Error()}, nil
	}
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res := burn.Evaluate(qctx, &analysis.Prometheus{Address: job.address}, job.spec, e.cfg.Now().UTC())
	return &res, nil
}
