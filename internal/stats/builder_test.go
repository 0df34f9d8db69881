package stats

import (
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
)

// t0 is the start of every scripted history; times are given as offsets from it.
var t0 = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

// hm returns t0 plus h hours and m minutes.
func hm(h, m int) time.Time { return t0.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }

// script builds records the way the engine writes them: every transition,
// step attempt and decision comes with its audit event, so the audit trail
// is complete unless a test breaks it.
type script struct {
	records []*Record
	seq     int64
}

// rel returns a release created at created, with a commit time when commit is set.
func rel(version string, created time.Time, commit *time.Time) *release.Release {
	return &release.Release{ID: "rel-" + version, Pipeline: "shop", Version: version, CreatedAt: created, CommitTime: commit}
}

// builder scripts one promotion.
type builder struct {
	s *script
	r *Record
}

// promote starts a promote-kind promotion of r into env, created (and queued) at at.
func (s *script) promote(id, env string, production bool, r *release.Release, at time.Time) *builder {
	return s.start(id, env, promotion.KindPromote, production, r, at)
}

// rollback starts a rollback-kind promotion into env, created at at.
func (s *script) rollback(id, env string, production bool, r *release.Release, at time.Time) *builder {
	return s.start(id, env, promotion.KindRollback, production, r, at)
}

func (s *script) start(id, env string, kind promotion.Kind, production bool, r *release.Release, at time.Time) *builder {
	rec := &Record{
		Promotion: promotion.Promotion{ID: id, Pipeline: "shop", Environment: env, Kind: kind,
			ReleaseID: r.ID, ReleaseVersion: r.Version, State: promotion.Queued, Actor: "alice", CreatedAt: at},
		Production: production,
		Release:    r,
	}
	s.records = append(s.records, rec)
	b := &builder{s: s, r: rec}
	b.event(at, "alice", ActionCreate, map[string]any{"environment": env})
	return b
}

func (b *builder) event(at time.Time, actor, action string, details any) {
	b.s.seq++
	b.r.Events = append(b.r.Events, audit.Event{Seq: b.s.seq, Time: at, Actor: actor, Action: action,
		Subject: "promotion/" + b.r.Promotion.ID, PromotionID: b.r.Promotion.ID, Details: audit.Details(details)})
}

// to moves the promotion to each state in turn at at, as the engine would.
func (b *builder) to(at time.Time, states ...promotion.State) *builder {
	for _, st := range states {
		p := &b.r.Promotion
		b.event(at, "system", ActionTransition, map[string]any{"from": p.State, "to": st})
		p.State = st
		if st.Terminal() {
			p.FinishedAt = &at
		}
	}
	return b
}

// step records one finished step attempt with its start and finish events.
func (b *builder) step(phase promotion.Phase, index, attempt int, state promotion.StepState, start, end time.Time) *builder {
	name := fmt.Sprintf("%s-%d", phase, index)
	b.r.Steps = append(b.r.Steps, promotion.StepRun{PromotionID: b.r.Promotion.ID, Phase: phase, Index: index,
		Name: name, Attempt: attempt, State: state, StartedAt: start, FinishedAt: &end})
	b.event(start, "system", ActionStepStart, map[string]any{"phase": phase, "step": name, "attempt": attempt})
	b.event(end, "system", ActionStepFinish, map[string]any{"phase": phase, "step": name, "attempt": attempt, "state": state})
	return b
}

// decide records a person's approval or rejection with its event.
func (b *builder) decide(user string, d promotion.Decision, at time.Time) *builder {
	b.r.Approvals = append(b.r.Approvals, promotion.Approval{PromotionID: b.r.Promotion.ID, User: user, Decision: d, At: at})
	b.event(at, user, "promotion."+string(d), map[string]any{"release": b.r.Promotion.ReleaseVersion})
	// A decision carries the person's comment; a rejection must.
	b.r.Events[len(b.r.Events)-1].Reason = "decided by " + user
	return b
}

// alert records an alert about the promotion.
func (b *builder) alert(at time.Time) *builder {
	b.event(at, "alertmanager", ActionAlert, map[string]any{"alertname": "HighErrorRate"})
	return b
}

// deployed scripts the common path from gating to verifying: deploying at
// start with one deploy step of a minute, then verifying.
func (b *builder) deployed(start time.Time) *builder {
	b.to(start, promotion.Deploying)
	b.step(promotion.PhaseDeploy, 0, 1, promotion.StepSucceeded, start, start.Add(time.Minute))
	return b.to(start.Add(time.Minute), promotion.Verifying)
}

// list returns the records built.
func (s *script) list() []Record {
	out := make([]Record, len(s.records))
	for i, r := range s.records {
		out[i] = *r
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// secs is d in seconds, as a figure.
func secs(d time.Duration) *float64 { return ptr(d.Seconds()) }

// frac is n/d, as a figure.
func frac(n, d int) *float64 { return ptr(float64(n) / float64(d)) }
