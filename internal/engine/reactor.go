package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/step"
	"github.com/ferry-dev/ferry/internal/store"
)

// effectKind is work done after a transaction commits.
type effectKind int

const (
	effRunStep effectKind = iota
	effWait
	effStopStep
	effWebhook
	effBudget
)

type effect struct {
	kind   effectKind
	id     string
	cursor promotion.Cursor
	at     time.Time
	url    string
	body   []byte
	budget *budgetJob
}

// txn is one transaction of the engine: the store transaction, the time
// decisions are made at, and what to do once it commits.
type txn struct {
	ctx     context.Context
	tx      store.Tx
	now     time.Time
	effects []effect
	changed map[string]bool
	trans   []committedTransition
	spans   []pendingSpan
	// notified is set when the transaction enqueued notifications.
	notified bool
	after    []func() // run once committed: see onCommit
}

type committedTransition struct {
	p  promotion.Promotion
	tr promotion.Transition
}

const maxConflictRetries = 5

// commit runs fn in a store transaction and, once it has committed, carries
// out the effects fn decided on. A lost optimistic update is retried.
func (e *Engine) commit(ctx context.Context, fn func(t *txn) error) error {
	var t *txn
	var err error
	for try := 0; ; try++ {
		err = e.store.Update(ctx, func(tx store.Tx) error {
			t = &txn{ctx: ctx, tx: tx, now: e.cfg.Now().UTC(), changed: map[string]bool{}}
			if err := fn(t); err != nil {
				return err
			}
			return t.notifyChanged()
		})
		if errors.Is(err, store.ErrConflict) && CodeOf(err) == "" && try < maxConflictRetries {
			continue
		}
		break
	}
	if err != nil {
		if CodeOf(err) == "" && ctx.Err() == nil && e.store.Ping(ctx) != nil {
			return &Error{Code: CodeUnavailable, Message: "the store is unreachable: " + err.Error()}
		}
		return err
	}
	e.afterCommit(t)
	return nil
}

func (e *Engine) afterCommit(t *txn) {
	for _, ef := range t.effects {
		switch ef.kind {
		case effRunStep:
			e.startStep(ef.id, ef.cursor)
		case effWait:
			e.arm(ef.id, ef.at)
		case effWebhook:
			e.postWebhook(ef.id, ef.url, ef.body)
		case effBudget:
			e.measureBudget(ef.id, *ef.budget)
		case effStopStep:
			e.stopStep(ef.id, &ef.cursor)
		}
	}
	e.emitSpans(t.spans)
	if t.notified && e.cfg.Notified != nil {
		e.cfg.Notified()
	}
	if e.cfg.Transitioned != nil {
		for _, ct := range t.trans {
			e.cfg.Transitioned(ct.p, ct.tr)
		}
	}
	e.observeCommit(t)
	e.notify(t.changed)
}

// Messages replicas send each other through the store.
const (
	// msgStop + ID [+ " " + phase index attempt]: stop the running step of
	// a promotion — that attempt only, when one is named.
	msgStop = "stop "
	// msgChanged + comma-separated IDs: these promotions changed.
	msgChanged = "changed "
	// maxNotifyIDs bounds one message's length.
	maxNotifyIDs = 100
)

// notifyChanged tells other replicas which promotions the transaction changed,
// so that their waiters wake.
func (t *txn) notifyChanged() error {
	ids := make([]string, 0, len(t.changed))
	for id := range t.changed {
		ids = append(ids, id)
	}
	for len(ids) > 0 {
		n := min(len(ids), maxNotifyIDs)
		if err := t.tx.Notify(t.ctx, msgChanged+strings.Join(ids[:n], ",")); err != nil {
			return fmt.Errorf("notify changes: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

// audit appends an audit event in the transaction.
func (t *txn) audit(actor, action, subject, promotionID, reason string, details any) error {
	ev := &audit.Event{Time: t.now, Actor: actor, Action: action, Subject: subject, PromotionID: promotionID, Reason: reason}
	if details != nil {
		ev.Details = audit.Details(details)
	}
	if err := t.tx.AppendAudit(t.ctx, ev); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// fire applies ev to p inside t and handles every action the transition
// function asks for that can be done inside the transaction; the rest
// become effects.
func (e *Engine) fire(t *txn, actor string, p *promotion.Promotion, ev promotion.Event) error {
	rev, err := e.revision(t.ctx, t.tx, p.Pipeline, p.Revision)
	if err != nil {
		return err
	}
	env, ok := rev.Spec.Environment(p.Environment)
	if !ok {
		return fmt.Errorf("promotion %s: environment %s is not in pipeline %s revision %d", p.ID, p.Environment, p.Pipeline, p.Revision)
	}
	prev := p.Cursor // the step a stop action stops
	res, err := promotion.Apply(*p, planFor(env), ev, t.now)
	if err != nil {
		return fmt.Errorf("promotion %s: %w", p.ID, err)
	}
	next := res.Promotion
	for _, a := range res.Actions {
		if a.Type == promotion.ActRunStep || a.Type == promotion.ActWait {
			// Whoever starts work in flight drives the promotion, under a lease.
			next.Owner, next.LeaseUntil = e.cfg.InstanceID, t.now.Add(e.cfg.LeaseTTL)
		}
	}
	for _, tr := range res.Transitions {
		if tr.From == promotion.Queued && tr.To == promotion.Gating && next.Kind == promotion.KindPromote {
			if err := e.setRollbackTarget(t, &next); err != nil {
				return err
			}
		}
		if err := e.recordTransition(t, actor, &next, tr); err != nil {
			return err
		}
		if err := e.traceTransition(t, &next, tr); err != nil {
			return err
		}
	}
	if err := t.tx.UpdatePromotion(t.ctx, &next); err != nil {
		return fmt.Errorf("update promotion %s: %w", p.ID, err)
	}
	if err := e.enqueueNotifications(t, rev, &next, ev, res.Transitions); err != nil {
		return err
	}
	*p = next
	t.changed[p.ID] = true
	for _, tr := range res.Transitions {
		t.trans = append(t.trans, committedTransition{p: next, tr: tr})
	}

	var follow []func() error
	for _, a := range res.Actions {
		switch a.Type {
		case promotion.ActEvaluateGates:
			follow = append(follow, func() error { return e.gateAndFire(t, p) })
		case promotion.ActRunStep:
			if err := e.beginStep(t, p, env, a.Cursor); err != nil {
				return err
			}
		case promotion.ActWait:
			if p.WakeAt != nil && !e.isStopping() {
				t.effects = append(t.effects, effect{kind: effWait, id: p.ID, at: *p.WakeAt})
			}
		case promotion.ActStopStep:
			// The step may run on another replica: tell every replica.
			if err := t.tx.Notify(t.ctx, stopMessage(p.ID, prev)); err != nil {
				return fmt.Errorf("notify stop of %s: %w", p.ID, err)
			}
			t.effects = append(t.effects, effect{kind: effStopStep, id: p.ID, cursor: prev})
		case promotion.ActReleaseEnvironment:
			pl, en := p.Pipeline, p.Environment
			follow = append(follow, func() error { return e.startNext(t, pl, en) })
		case promotion.ActPromoteDownstream:
			done := *p
			follow = append(follow, func() error { return e.promoteDownstream(t, &done) })
		}
	}
	for _, f := range follow {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// recordTransition audits one transition and records the deployments it implies.
func (e *Engine) recordTransition(t *txn, actor string, p *promotion.Promotion, tr promotion.Transition) error {
	details := map[string]any{
		"from": tr.From, "to": tr.To, "pipeline": p.Pipeline, "environment": p.Environment,
		"kind": p.Kind, "release": p.ReleaseVersion,
	}
	if err := t.audit(actor, "promotion.transition", "promotion/"+p.ID, p.ID, tr.Reason, details); err != nil {
		return err
	}
	var d *store.Deployment
	switch {
	case tr.To == promotion.Watching && tr.From != promotion.Paused,
		tr.To == promotion.Succeeded && tr.From != promotion.Watching:
		// The release runs in the environment from the moment its checks
		// passed: a watch window watches it there.
		d = &store.Deployment{ReleaseID: p.ReleaseID, ReleaseVersion: p.ReleaseVersion}
	case tr.To == promotion.RolledBack:
		d = &store.Deployment{ReleaseID: p.RollbackID, ReleaseVersion: p.RollbackVersion}
	}
	if d == nil {
		return nil
	}
	d.Pipeline, d.Environment, d.PromotionID, d.At = p.Pipeline, p.Environment, p.ID, t.now
	if err := t.tx.InsertDeployment(t.ctx, d); err != nil {
		return fmt.Errorf("record deployment of %s to %s: %w", d.ReleaseVersion, p.Environment, err)
	}
	return nil
}

// setRollbackTarget remembers the release running in the environment when a
// promotion starts: the one to restore if it fails.
func (e *Engine) setRollbackTarget(t *txn, p *promotion.Promotion) error {
	deps, err := t.tx.Deployments(t.ctx, p.Pipeline, p.Environment, 1)
	if err != nil {
		return fmt.Errorf("load deployments of %s/%s: %w", p.Pipeline, p.Environment, err)
	}
	if len(deps) > 0 {
		p.RollbackID, p.RollbackVersion = deps[0].ReleaseID, deps[0].ReleaseVersion
	}
	return nil
}

// missingUpstream returns the environments among after in which the release has not succeeded.
func (e *Engine) missingUpstream(ctx context.Context, tx store.Tx, pipelineName, releaseID string, after []string) ([]string, error) {
	var missing []string
	for _, up := range after {
		ps, err := tx.Promotions(ctx, store.PromotionFilter{
			Pipeline: pipelineName, Environment: up, ReleaseID: releaseID,
			States: []promotion.State{promotion.Succeeded}, Limit: 1,
		})
		if err != nil {
			return nil, fmt.Errorf("check upstream %s: %w", up, err)
		}
		if len(ps) == 0 {
			missing = append(missing, up)
		}
	}
	return missing, nil
}

// beginStep records a new step attempt as running; it is started once the
// transaction commits. While the engine is stopping nothing new starts: the
// cursor already points at the attempt, and the next start runs it.
func (e *Engine) beginStep(t *txn, p *promotion.Promotion, env pipeline.Environment, c promotion.Cursor) error {
	if e.isStopping() {
		return nil
	}
	spec, ok := stepSpec(env, c)
	if !ok {
		return fmt.Errorf("promotion %s: no step at %s[%d]", p.ID, c.Phase, c.Index)
	}
	sr := &promotion.StepRun{
		PromotionID: p.ID, Phase: c.Phase, Index: c.Index, Name: spec.Name, Attempt: c.Attempt,
		State: promotion.StepRunning, Owner: e.cfg.InstanceID,
		IdempotencyKey: step.IdempotencyKey(p.ID, c.Phase, c.Index, spec.Name),
		StartedAt:      t.now,
	}
	if err := t.tx.InsertStepRun(t.ctx, sr); err != nil {
		return fmt.Errorf("record start of step %s/%s attempt %d: %w", c.Phase, spec.Name, c.Attempt, err)
	}
	if err := t.audit(SystemActor, "step.start", "promotion/"+p.ID, p.ID, "",
		map[string]any{"phase": c.Phase, "step": spec.Name, "attempt": c.Attempt, "environment": p.Environment}); err != nil {
		return err
	}
	t.effects = append(t.effects, effect{kind: effRunStep, id: p.ID, cursor: c})
	return nil
}

// startNext starts the oldest queued promotion of an environment if none holds it.
func (e *Engine) startNext(t *txn, pipelineName, env string) error {
	if err := t.tx.LockEnvironment(t.ctx, pipelineName, env); err != nil {
		return fmt.Errorf("lock %s/%s: %w", pipelineName, env, err)
	}
	ps, err := t.tx.Promotions(t.ctx, store.PromotionFilter{Pipeline: pipelineName, Environment: env, Active: true, Ascending: true})
	if err != nil {
		return fmt.Errorf("load queue of %s/%s: %w", pipelineName, env, err)
	}
	next, ok := promotion.NextToStart(ps)
	if !ok {
		return nil
	}
	// An aborted promotion frees its environment only once its step's
	// processes are gone; finishStep calls startNext again then. Only a
	// promotion aborted while a step ran can leave one, and it is among the
	// environment's latest aborted ones: the environment stays busy until
	// its step ends, so no later promotion can have run meanwhile.
	aborted, err := t.tx.Promotions(t.ctx, store.PromotionFilter{Pipeline: pipelineName, Environment: env,
		States: []promotion.State{promotion.Aborted}, Limit: 5})
	if err != nil {
		return fmt.Errorf("load aborted promotions of %s/%s: %w", pipelineName, env, err)
	}
	for _, a := range aborted {
		if a.StartedAt == nil {
			continue // aborted while queued: it never ran a step
		}
		runs, err := t.tx.StepRuns(t.ctx, a.ID)
		if err != nil {
			return fmt.Errorf("load step runs of %s: %w", a.ID, err)
		}
		for _, r := range runs {
			if r.State == promotion.StepRunning {
				return nil
			}
		}
	}
	return e.fire(t, SystemActor, &next, promotion.Event{Type: promotion.EvStart})
}

// newPromotion is what enqueue needs to create a promotion.
type newPromotion struct {
	pipeline, environment string
	kind                  promotion.Kind
	releaseID, version    string
	revision              int
	actor, reason         string
	forced                bool
	expedited             bool
	overrideWindow        bool
}

// enqueue creates a queued promotion, supersedes what it makes obsolete and
// starts it when the environment is free.
func (e *Engine) enqueue(t *txn, n newPromotion) (*promotion.Promotion, error) {
	if err := t.tx.LockEnvironment(t.ctx, n.pipeline, n.environment); err != nil {
		return nil, fmt.Errorf("lock %s/%s: %w", n.pipeline, n.environment, err)
	}
	p := &promotion.Promotion{
		ID: uuid.NewString(), Pipeline: n.pipeline, Environment: n.environment, Kind: n.kind,
		ReleaseID: n.releaseID, ReleaseVersion: n.version, Revision: n.revision,
		State: promotion.Queued, Reason: n.reason, Actor: n.actor, Forced: n.forced,
		Expedited: n.expedited, OverrideWindow: n.overrideWindow,
		Message: "queued", CreatedAt: t.now, UpdatedAt: t.now, Owner: e.cfg.InstanceID,
	}
	if err := t.tx.InsertPromotion(t.ctx, p); err != nil {
		return nil, fmt.Errorf("insert promotion: %w", err)
	}
	details := map[string]any{"pipeline": p.Pipeline, "environment": p.Environment, "kind": p.Kind,
		"release": p.ReleaseVersion, "revision": p.Revision, "forced": p.Forced,
		"expedited": p.Expedited, "overrideWindow": p.OverrideWindow}
	if err := t.audit(n.actor, "promotion.create", "promotion/"+p.ID, p.ID, n.reason, details); err != nil {
		return nil, err
	}
	t.changed[p.ID] = true

	queued, err := t.tx.Promotions(t.ctx, store.PromotionFilter{Pipeline: p.Pipeline, Environment: p.Environment,
		States: []promotion.State{promotion.Queued}, Ascending: true})
	if err != nil {
		return nil, fmt.Errorf("load queue of %s/%s: %w", p.Pipeline, p.Environment, err)
	}
	newRel, err := e.releaseByID(t.ctx, t.tx, p.ReleaseID)
	if err != nil {
		return nil, err
	}
	for i := range queued {
		q := &queued[i]
		qRel, err := e.releaseByID(t.ctx, t.tx, q.ReleaseID)
		if err != nil {
			return nil, err
		}
		if promotion.Supersedes(*p, *q, newRel.CreatedAt, qRel.CreatedAt) {
			reason := fmt.Sprintf("superseded by promotion %s of release %s", p.ID, p.ReleaseVersion)
			if err := e.fire(t, n.actor, q, promotion.Event{Type: promotion.EvSupersede, Reason: reason}); err != nil {
				return nil, err
			}
		}
	}
	if err := e.startNext(t, p.Pipeline, p.Environment); err != nil {
		return nil, err
	}
	// p is as inserted; startNext may have moved the stored row on since.
	return p, nil
}

// promoteDownstream promotes a release that just succeeded in an environment
// to every auto-promote environment after it whose upstreams all succeeded.
func (e *Engine) promoteDownstream(t *txn, done *promotion.Promotion) error {
	rev, err := e.revision(t.ctx, t.tx, done.Pipeline, 0)
	if err != nil {
		return err
	}
	for _, env := range rev.Spec.Downstream(done.Environment) {
		if !env.AutoPromote {
			continue
		}
		missing, err := e.missingUpstream(t.ctx, t.tx, done.Pipeline, done.ReleaseID, env.After)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			continue
		}
		reason := fmt.Sprintf("auto-promoted: succeeded in %s", strings.Join(env.After, ", "))
		if _, err := e.enqueue(t, newPromotion{
			pipeline: done.Pipeline, environment: env.Name, kind: promotion.KindPromote,
			releaseID: done.ReleaseID, version: done.ReleaseVersion, revision: rev.Number,
			actor: SystemActor, reason: reason,
		}); err != nil {
			return err
		}
	}
	return nil
}
