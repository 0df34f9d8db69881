package web

// This file is the dashboard's own StatsSource: it computes the executive
// view's figures from the store's promotions, approvals and transitions.
// It stands alone so that a shared statistics package can replace it.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

// StoreStats computes statistics from a store.
type StoreStats struct {
	Store store.Store
}

var _ StatsSource = StoreStats{}

const day = 24 * time.Hour

// acc accumulates the figures of one period.
type acc struct {
	ended, succeeded, rolledBack int
	promoteTime, approval        meanDur
	prodOK, prodBad              int
	lead, restore                meanDur
	days                         float64
}

type meanDur struct {
	sum time.Duration
	n   int
}

func (m *meanDur) add(d time.Duration) {
	if d >= 0 {
		m.sum += d
		m.n++
	}
}

func (m meanDur) value() *time.Duration {
	if m.n == 0 {
		return nil
	}
	v := m.sum / time.Duration(m.n)
	return &v
}

func ratio(num, den int) *float64 {
	if den == 0 {
		return nil
	}
	v := float64(num) / float64(den)
	return &v
}

func (a *acc) figures() StatsFigures {
	f := StatsFigures{
		Promotions:        a.ended,
		SuccessRate:       ratio(a.succeeded, a.ended),
		MeanTimeToPromote: a.promoteTime.value(),
		RollbackRate:      ratio(min(a.rolledBack, a.ended), a.ended),
		ApprovalLatency:   a.approval.value(),
		LeadTime:          a.lead.value(),
		ChangeFailureRate: ratio(a.prodBad, a.prodOK+a.prodBad),
		TimeToRestore:     a.restore.value(),
	}
	if a.days > 0 {
		v := float64(a.prodOK) / a.days
		f.DeploymentFrequency = &v
	}
	return f
}

// Stats computes a pipeline's figures over the query's period.
func (s StoreStats) Stats(ctx context.Context, q StatsQuery) (StatsReport, error) {
	if !q.Until.After(q.Since) {
		return StatsReport{}, fmt.Errorf("stats of %s: the period's end %s is not after its start %s", q.Pipeline, q.Until.Format(time.RFC3339), q.Since.Format(time.RFC3339))
	}
	first := q.Since.UTC().Truncate(day)
	n := int((q.Until.UTC().Sub(first) + day - 1) / day)
	days := make([]acc, n)
	var total acc
	total.days = q.Until.Sub(q.Since).Hours() / 24
	bucket := func(t time.Time) *acc {
		if t.Before(q.Since) || !t.Before(q.Until) {
			return nil
		}
		i := int(t.UTC().Sub(first) / day)
		if i < 0 || i >= n {
			return nil
		}
		return &days[i]
	}
	both := func(t time.Time, fn func(a *acc)) {
		if b := bucket(t); b != nil {
			fn(b)
			fn(&total)
		}
	}
	report := StatsReport{Pipeline: q.Pipeline}
	err := s.Store.View(ctx, func(tx store.Tx) error {
		rev, err := tx.Revision(ctx, q.Pipeline, 0)
		if err != nil {
			return fmt.Errorf("stats of %s: %w", q.Pipeline, err)
		}
		downstream := map[string]bool{}
		for _, env := range rev.Spec.Environments {
			for _, up := range env.After {
				downstream[up] = true
			}
		}
		prod := map[string]bool{}
		for _, env := range rev.Spec.Environments {
			if !downstream[env.Name] {
				prod[env.Name] = true
				report.Production = append(report.Production, env.Name)
			}
		}
		ps, err := tx.Promotions(ctx, store.PromotionFilter{Pipeline: q.Pipeline, Ascending: true})
		if err != nil {
			return fmt.Errorf("stats of %s: list promotions: %w", q.Pipeline, err)
		}
		ids := map[string]bool{}
		for _, p := range ps {
			ids[p.ID] = true
		}
		waiting, failing, err := transitionTimes(ctx, tx, ids, q.Since.Add(-30*day))
		if err != nil {
			return err
		}
		approved, err := firstApprovals(ctx, tx, ids, q.Since.Add(-30*day))
		if err != nil {
			return err
		}
		created := map[string]time.Time{}
		for i, p := range ps {
			if p.FinishedAt == nil {
				continue
			}
			end := *p.FinishedAt
			if at, ok := approved[p.ID]; ok {
				if since, ok := waiting[p.ID]; ok {
					both(at, func(a *acc) { a.approval.add(at.Sub(since)) })
				}
			}
			if p.Kind == promotion.KindRollback {
				if p.State == promotion.Succeeded {
					both(end, func(a *acc) { a.rolledBack++ })
				}
				continue
			}
			if p.State == promotion.Superseded {
				continue
			}
			ok := p.State == promotion.Succeeded
			rolled := p.State == promotion.RolledBack || p.State == promotion.RollbackFailed
			both(end, func(a *acc) {
				a.ended++
				if ok {
					a.succeeded++
					a.promoteTime.add(end.Sub(p.CreatedAt))
				}
				if rolled {
					a.rolledBack++
				}
			})
			if !prod[p.Environment] {
				continue
			}
			switch p.State {
			case promotion.Succeeded:
				c, seen := created[p.ReleaseID]
				if !seen {
					rel, err := tx.ReleaseByID(ctx, p.ReleaseID)
					if err != nil {
						return fmt.Errorf("stats of %s: release %s: %w", q.Pipeline, p.ReleaseVersion, err)
					}
					c = rel.CreatedAt
					created[p.ReleaseID] = c
				}
				both(end, func(a *acc) { a.prodOK++; a.lead.add(end.Sub(c)) })
			case promotion.Failed, promotion.RolledBack, promotion.RollbackFailed:
				both(end, func(a *acc) { a.prodBad++ })
				restored, at := restoreTime(ps[i+1:], p, failing[p.ID])
				if restored {
					both(at, func(a *acc) { a.restore.add(at.Sub(failureStart(p, failing[p.ID]))) })
				}
			}
		}
		return nil
	})
	if err != nil {
		return StatsReport{}, err
	}
	report.Total = total.figures()
	for i := range days {
		days[i].days = 1
		report.Days = append(report.Days, StatsDay{Day: first.Add(time.Duration(i) * day), StatsFigures: days[i].figures()})
	}
	return report, nil
}

// failureStart is when a failed deployment started failing: its move to
// rolling back, or its end.
func failureStart(p promotion.Promotion, rollingBack time.Time) time.Time {
	if !rollingBack.IsZero() {
		return rollingBack
	}
	return *p.FinishedAt
}

// restoreTime returns when the environment of a failed deployment ran a good
// release again: the end of its own rollback, or the next success there.
func restoreTime(later []promotion.Promotion, p promotion.Promotion, rollingBack time.Time) (bool, time.Time) {
	if p.State == promotion.RolledBack {
		return true, *p.FinishedAt
	}
	var best *time.Time
	for _, q := range later {
		if q.Environment == p.Environment && q.State == promotion.Succeeded && q.FinishedAt != nil && !q.FinishedAt.Before(*p.FinishedAt) {
			if best == nil || q.FinishedAt.Before(*best) {
				best = q.FinishedAt
			}
		}
	}
	if best == nil {
		return false, time.Time{}
	}
	return true, *best
}

// transitionTimes returns, for the promotions in ids, when each first
// waited for approval and when each started rolling back.
func transitionTimes(ctx context.Context, tx store.Tx, ids map[string]bool, since time.Time) (waiting, rolling map[string]time.Time, err error) {
	events, err := tx.AuditEvents(ctx, store.AuditFilter{Action: "promotion.transition", Since: since})
	if err != nil {
		return nil, nil, fmt.Errorf("stats: load transitions: %w", err)
	}
	waiting, rolling = map[string]time.Time{}, map[string]time.Time{}
	for _, ev := range events {
		if !ids[ev.PromotionID] {
			continue
		}
		var d struct {
			To promotion.State `json:"to"`
		}
		if json.Unmarshal(ev.Details, &d) != nil {
			continue
		}
		switch d.To {
		case promotion.AwaitingApproval:
			if _, ok := waiting[ev.PromotionID]; !ok {
				waiting[ev.PromotionID] = ev.Time
			}
		case promotion.RollingBack:
			if _, ok := rolling[ev.PromotionID]; !ok {
				rolling[ev.PromotionID] = ev.Time
			}
		}
	}
	return waiting, rolling, nil
}

// firstApprovals returns when each promotion in ids was first approved.
func firstApprovals(ctx context.Context, tx store.Tx, ids map[string]bool, since time.Time) (map[string]time.Time, error) {
	events, err := tx.AuditEvents(ctx, store.AuditFilter{Action: "promotion.approve", Since: since})
	if err != nil {
		return nil, fmt.Errorf("stats: load approvals: %w", err)
	}
	out := map[string]time.Time{}
	for _, ev := range events {
		if ids[ev.PromotionID] {
			if _, ok := out[ev.PromotionID]; !ok {
				out[ev.PromotionID] = ev.Time
			}
		}
	}
	return out, nil
}
