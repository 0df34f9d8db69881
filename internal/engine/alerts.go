package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/alert"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/stats"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/view"
)

// actionAlert is the audit action of an alert group recorded on a promotion.
const actionAlert = stats.ActionAlert

// alertDetails are the details of an actionAlert audit event.
type alertDetails struct {
	Key         string         `json:"key"`
	GroupKey    string         `json:"groupKey"`
	Receiver    string         `json:"receiver,omitempty"`
	ExternalURL string         `json:"externalURL,omitempty"`
	Pipeline    string         `json:"pipeline"`
	Environment string         `json:"environment"`
	Alerts      []alertSummary `json:"alerts"`
	RolledBack  bool           `json:"rolledBack"`
}

type alertSummary struct {
	Name         string            `json:"name"`
	Fingerprint  string            `json:"fingerprint,omitempty"`
	Labels       map[string]string `json:"labels"`
	StartsAt     time.Time         `json:"startsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// ReceiveAlerts records the firing alerts of an Alertmanager notification
// on the promotions they concern and rolls back where the environment says
// so. An alert concerns the environment its ferry_pipeline and
// ferry_environment labels name, or every environment whose alerts
// matchers it satisfies (latest pipeline revisions). Of each environment it
// concerns, the promotion verifying or watching there (or paused in its
// checks or watch) gets one audit entry per alert group: Alertmanager's
// repeats of the group are recognised by their key and change nothing.
// Everything happens in one transaction.
func (e *Engine) ReceiveAlerts(ctx context.Context, actor string, m *alert.Message) (*view.AlertReport, error) {
	report := &view.AlertReport{Targets: []view.AlertTarget{}}
	err := e.commit(ctx, func(t *txn) error {
		report.Targets = report.Targets[:0]
		revs, err := t.tx.Pipelines(ctx)
		if err != nil {
			return fmt.Errorf("load pipelines: %w", err)
		}
		var routes []alert.Route
		for _, rev := range revs {
			for _, env := range rev.Spec.Environments {
				if env.Alerts == nil || len(env.Alerts.Matchers) == 0 {
					continue
				}
				r := alert.Route{Pipeline: rev.Spec.Name, Environment: env.Name}
				for _, s := range env.Alerts.Matchers {
					mt, err := alert.ParseMatcher(s)
					if err != nil {
						return fmt.Errorf("pipeline %s revision %d environment %s: alerts matcher %q: %w", rev.Spec.Name, rev.Number, env.Name, s, err)
					}
					r.Matchers = append(r.Matchers, mt)
				}
				routes = append(routes, r)
			}
		}
		for _, target := range alert.Targets(m, routes) {
			out, err := e.alertTarget(t, actor, m, target)
			if err != nil {
				return err
			}
			report.Targets = append(report.Targets, out)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return report, nil
}

// watchedBy returns the promotion an alert can concern among an
// environment's active ones: verifying, watching, or paused in either.
func watchedBy(ps []promotion.Promotion) *promotion.Promotion {
	for i := range ps {
		p := &ps[i]
		switch {
		case p.State == promotion.Verifying, p.State == promotion.Watching,
			p.State == promotion.Paused && (p.Cursor.Phase == promotion.PhaseVerify || p.Cursor.Phase == promotion.PhaseWatch):
			return p
		}
	}
	return nil
}

func (e *Engine) alertTarget(t *txn, actor string, m *alert.Message, target alert.Target) (view.AlertTarget, error) {
	ctx := t.ctx
	out := view.AlertTarget{Pipeline: target.Pipeline, Environment: target.Environment, Alerts: len(target.Alerts), Outcome: view.AlertIgnored}
	ps, err := t.tx.Promotions(ctx, store.PromotionFilter{Pipeline: target.Pipeline, Environment: target.Environment, Active: true})
	if err != nil {
		return out, fmt.Errorf("load promotions of %s/%s: %w", target.Pipeline, target.Environment, err)
	}
	p := watchedBy(ps)
	if p == nil {
		out.Reason = fmt.Sprintf("no promotion is verifying or watching in %s/%s", target.Pipeline, target.Environment)
		return out, nil
	}
	out.PromotionID = p.ID
	key := alert.Key(m.GroupKey, target)
	seen, err := t.tx.AuditEvents(ctx, store.AuditFilter{PromotionID: p.ID, Action: actionAlert})
	if err != nil {
		return out, fmt.Errorf("load alerts of %s: %w", p.ID, err)
	}
	for _, ev := range seen {
		var d alertDetails
		if json.Unmarshal(ev.Details, &d) == nil && d.Key == key {
			out.Outcome = view.AlertDuplicate
			return out, nil
		}
	}

	rev, err := e.revision(ctx, t.tx, p.Pipeline, p.Revision)
	if err != nil {
		return out, err
	}
	env, _ := rev.Spec.Environment(p.Environment)
	rollback := env.Alerts != nil && env.Alerts.Rollback
	summary := alert.Summary(target.Alerts)
	d := alertDetails{Key: key, GroupKey: m.GroupKey, Receiver: m.Receiver, ExternalURL: m.ExternalURL,
		Pipeline: p.Pipeline, Environment: p.Environment, RolledBack: rollback}
	for _, a := range target.Alerts {
		d.Alerts = append(d.Alerts, alertSummary{Name: a.Labels["alertname"], Fingerprint: a.Fingerprint,
			Labels: a.Labels, StartsAt: a.StartsAt, GeneratorURL: a.GeneratorURL})
	}
	if err := t.audit(actor, actionAlert, "promotion/"+p.ID, p.ID, summary, d); err != nil {
		return out, err
	}
	t.changed[p.ID] = true
	out.Outcome = view.AlertRecorded
	if !rollback {
		return out, nil
	}
	if err := e.fire(t, actor, p, promotion.Event{Type: promotion.EvAlert, Reason: summary}); err != nil {
		return out, err
	}
	out.Outcome = view.AlertRolledBack
	return out, nil
}

// promotionAlerts returns the alert groups recorded on a promotion.
func promotionAlerts(ctx context.Context, tx store.Tx, id string) ([]view.Alert, error) {
	events, err := tx.AuditEvents(ctx, store.AuditFilter{PromotionID: id, Action: actionAlert})
	if err != nil {
		return nil, fmt.Errorf("load alerts of %s: %w", id, err)
	}
	var out []view.Alert
	for _, ev := range events {
		var d alertDetails
		if err := json.Unmarshal(ev.Details, &d); err != nil {
			return nil, fmt.Errorf("decode alert %d: %w", ev.Seq, err)
		}
		out = append(out, view.Alert{Key: d.Key, GroupKey: d.GroupKey, Summary: ev.Reason, At: ev.Time, RolledBack: d.RolledBack})
	}
	return out, nil
}
