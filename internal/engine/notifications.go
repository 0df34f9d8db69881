package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ferry-dev/ferry/internal/gate"
	"github.com/ferry-dev/ferry/internal/notify"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/view"
)

// notification is one event a change of a promotion reports, before it is
// addressed to the endpoints that ask for it.
type notification struct {
	event string
	// key tells the event apart from others of the same promotion.
	key   string
	from  promotion.State
	state promotion.State
	// reason explains the change.
	reason string
	gates  []promotion.GateEvaluation
}

// transitionEvent returns the event a transition reports, if any.
func transitionEvent(tr promotion.Transition) string {
	switch tr.To {
	case promotion.Succeeded:
		return pipeline.EventPromotionSucceeded
	case promotion.Failed, promotion.RollbackFailed, promotion.Rejected:
		return pipeline.EventPromotionFailed
	case promotion.RolledBack:
		return pipeline.EventPromotionRolledBack
	case promotion.AwaitingApproval:
		return pipeline.EventApprovalRequested
	}
	return ""
}

// notifications returns what applying ev to a promotion, now p (as
// stored, with its new version), reports to notification endpoints.
func notifications(p *promotion.Promotion, ev promotion.Event, trs []promotion.Transition) []notification {
	var out []notification
	if ev.Type == promotion.EvGates {
		// A gate other than approvals that holds the promotion, or any gate
		// that refuses it. The same gates holding it again are not news.
		var blocking []promotion.GateEvaluation
		var sig []string
		for _, g := range p.Gates {
			if g.Result == promotion.GateFail || (g.Result == promotion.GatePending && g.Kind != gate.KindApprovals) {
				blocking = append(blocking, g)
				sig = append(sig, g.Name+"="+string(g.Result))
			}
		}
		if len(blocking) > 0 {
			out = append(out, notification{event: pipeline.EventGateBlocked, key: pipeline.EventGateBlocked + ":" + strings.Join(sig, ","),
				state: p.State, reason: ev.Reason, gates: blocking})
		}
	}
	for i, tr := range trs {
		event := transitionEvent(tr)
		if event == "" {
			continue
		}
		n := notification{event: event, key: event, from: tr.From, state: tr.To, reason: tr.Reason}
		if event == pipeline.EventApprovalRequested {
			// A promotion may wait for approvals again, after one of several.
			n.key = fmt.Sprintf("%s:%d.%d", event, p.Version, i)
			for _, g := range p.Gates {
				if g.Kind == gate.KindApprovals {
					n.gates = append(n.gates, g)
				}
			}
		}
		out = append(out, n)
	}
	return out
}

// enqueueNotifications writes, in the transaction, a notification to each
// endpoint of the promotion's environment that asks for an event the change
// reports. A key the endpoint's thread holds already is not sent again.
func (e *Engine) enqueueNotifications(t *txn, rev *pipeline.Revision, p *promotion.Promotion, ev promotion.Event, trs []promotion.Transition) error {
	endpoints := rev.Spec.NotificationsFor(p.Environment)
	if len(endpoints) == 0 {
		return nil
	}
	for _, n := range notifications(p, ev, trs) {
		payload, err := json.Marshal(notify.Event{Event: n.event, At: t.now, From: n.from, State: n.state, Reason: n.reason, Gates: n.gates,
			Promotion: notify.Promotion{ID: p.ID, Pipeline: p.Pipeline, Environment: p.Environment, Kind: p.Kind,
				Release: p.ReleaseVersion, Actor: p.Actor}})
		if err != nil {
			return fmt.Errorf("notification %s of %s: %w", n.event, p.ID, err)
		}
		for _, ep := range endpoints {
			if !ep.Wants(n.event) {
				continue
			}
			added, err := t.tx.EnqueueNotification(t.ctx, &store.Notification{PromotionID: p.ID, Endpoint: ep, Event: n.event,
				Key: n.key, Payload: payload, CreatedAt: t.now})
			if err != nil {
				return err
			}
			t.notified = t.notified || added
		}
	}
	return nil
}

// notificationViews returns a promotion's notifications as the API shows them.
func notificationViews(ctx context.Context, tx store.Tx, id string) ([]view.Notification, error) {
	ns, err := tx.Notifications(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load notifications of %s: %w", id, err)
	}
	var out []view.Notification
	for _, n := range ns {
		out = append(out, view.Notification{ID: notify.MessageID(n), Endpoint: n.Endpoint.Name, Event: n.Event, Seq: n.ThreadSeq,
			State: string(n.State), Attempts: n.Attempts, LastError: n.LastError, CreatedAt: n.CreatedAt,
			LastAttemptAt: n.LastAttemptAt, FinishedAt: n.FinishedAt})
	}
	return out, nil
}
