package storetest

import (
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
)

// base is the time fixtures are built around. It has nanoseconds and is not
// in UTC: stores must keep every digit and return times in UTC.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+1", 3600))

// at returns base moved by d.
func at(d time.Duration) time.Time { return base.Add(d) }

func ptr[T any](v T) *T { return &v }

// utc returns t as a store returns it: in UTC.
func utc(t time.Time) time.Time { return t.UTC() }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return ptr(t.UTC())
}

// digest returns a valid artifact digest made of c.
func digest(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return "sha256:" + string(b)
}

func newSpec(name string, envs ...string) pipeline.Spec {
	s := pipeline.Spec{Name: name}
	prev := ""
	for _, e := range envs {
		env := pipeline.Environment{
			Name: e,
			Steps: []pipeline.Step{
				{Name: "deploy", Exec: &pipeline.Exec{
					Run:     "./deploy.sh " + e,
					Env:     map[string]string{"ENV": e},
					Timeout: pipeline.Duration(5 * time.Minute),
				}, Retries: 2, Backoff: pipeline.Duration(time.Second), SecretEnv: []string{"TOKEN"}},
			},
			Verify: []pipeline.Step{
				{Name: "smoke", HTTP: &pipeline.HTTP{
					Method:       "GET",
					URL:          "https://" + e + ".example.com/health",
					Headers:      map[string]string{"Accept": "application/json"},
					ExpectStatus: 200,
				}},
			},
		}
		if prev != "" {
			env.After = []string{prev}
			env.AutoPromote = true
			env.Rollback = &pipeline.Rollback{Automatic: ptr(false)}
		}
		s.Environments = append(s.Environments, env)
		prev = e
	}
	return s
}

func newRevision(name, dig string, created time.Time) *pipeline.Revision {
	return &pipeline.Revision{
		Pipeline:  name,
		Digest:    dig,
		Spec:      newSpec(name, "dev", "prod"),
		Source:    "name: " + name + "\n# " + dig + "\n",
		CreatedAt: created,
		CreatedBy: "alice",
	}
}

func wantRevision(r pipeline.Revision) pipeline.Revision {
	r.CreatedAt = utc(r.CreatedAt)
	return r
}

func newRelease(id, pipelineName, version string, created time.Time) *release.Release {
	return &release.Release{
		ID:       id,
		Pipeline: pipelineName,
		Version:  version,
		Artifacts: []release.Artifact{
			{Name: "api", URI: "registry.example.com/shop/api", Digest: digest('a')},
			{Name: "web", URI: "registry.example.com/shop/web", Digest: digest('b')},
		},
		Commit:     "0123456789abcdef0123456789abcdef01234567",
		CommitTime: ptr(created.Add(-90 * time.Minute)),
		Source:     "https://git.example.com/shop",
		BuildURL:   "https://ci.example.com/build/" + version,
		Labels:     map[string]string{"team": "checkout", "ticket": "SHOP-" + version},
		CreatedAt:  created,
		CreatedBy:  "ci",
	}
}

func wantRelease(r release.Release) release.Release {
	r.CreatedAt = utc(r.CreatedAt)
	r.CommitTime = utcPtr(r.CommitTime)
	return r
}

// newPromotion returns a promotion with every field set, pointers included.
func newPromotion(id, pipelineName, env, releaseID string) *promotion.Promotion {
	return &promotion.Promotion{
		ID:             id,
		Pipeline:       pipelineName,
		Environment:    env,
		Kind:           promotion.KindPromote,
		ReleaseID:      releaseID,
		ReleaseVersion: "v-" + releaseID,
		Revision:       3,
		State:          promotion.Deploying,
		Reason:         "weekly release",
		Actor:          "alice",
		Forced:         true,
		Expedited:      true,
		OverrideWindow: true,
		Gates: []promotion.GateEvaluation{
			{Name: "soak", Kind: "soak", Result: promotion.GatePending, Reason: "soaking in staging for 1h",
				Until: ptr(at(time.Hour)), At: at(500 * time.Millisecond)},
			{Name: "no-friday \"deploys\" <&>", Kind: "policy", Result: promotion.GatePass,
				Reason: "it is Thursday ✓", At: at(600 * time.Millisecond)},
		},
		Review:          &promotion.Review{By: "carol", At: at(4 * time.Second), Comment: "looked fine afterwards"},
		RollbackID:      "rel-old",
		RollbackVersion: "v-old",
		Cursor:          promotion.Cursor{Phase: promotion.PhaseDeploy, Index: 2, Attempt: 3, Failures: 1},
		WakeAt:          ptr(at(10 * time.Second)),
		Message:         "running step deploy",
		CreatedAt:       at(0),
		UpdatedAt:       at(time.Second),
		StartedAt:       ptr(at(2 * time.Second)),
		FinishedAt:      ptr(at(3 * time.Second)),
		Owner:           "replica-1",
		LeaseUntil:      at(time.Minute),
	}
}

// newBarePromotion returns a queued promotion with nil pointers, slices and
// zero optional fields.
func newBarePromotion(id, pipelineName, env, releaseID string) *promotion.Promotion {
	return &promotion.Promotion{
		ID:             id,
		Pipeline:       pipelineName,
		Environment:    env,
		Kind:           promotion.KindPromote,
		ReleaseID:      releaseID,
		ReleaseVersion: "v-" + releaseID,
		Revision:       1,
		State:          promotion.Queued,
		Actor:          "system",
		CreatedAt:      at(0),
		UpdatedAt:      at(0),
	}
}

func wantPromotion(p promotion.Promotion) promotion.Promotion {
	p.WakeAt = utcPtr(p.WakeAt)
	p.CreatedAt = utc(p.CreatedAt)
	p.UpdatedAt = utc(p.UpdatedAt)
	p.StartedAt = utcPtr(p.StartedAt)
	p.FinishedAt = utcPtr(p.FinishedAt)
	p.LeaseUntil = utc(p.LeaseUntil)
	if p.Gates != nil {
		gates := make([]promotion.GateEvaluation, len(p.Gates))
		for i, g := range p.Gates {
			g.Until = utcPtr(g.Until)
			g.At = utc(g.At)
			gates[i] = g
		}
		p.Gates = gates
	}
	if p.Review != nil {
		r := *p.Review
		r.At = utc(r.At)
		p.Review = &r
	}
	return p
}

func newStepRun(promotionID string, phase promotion.Phase, index, attempt int, started time.Time) *promotion.StepRun {
	return &promotion.StepRun{
		PromotionID:    promotionID,
		Phase:          phase,
		Index:          index,
		Name:           fmt.Sprintf("%s-%d", phase, index),
		Attempt:        attempt,
		State:          promotion.StepRunning,
		PID:            4242,
		PIDStart:       1<<63 + 12345, // does not fit an int64
		Owner:          "replica-1",
		IdempotencyKey: fmt.Sprintf("%s/%s/%d", promotionID, phase, index),
		StartedAt:      started,
	}
}

func wantStepRun(s promotion.StepRun) promotion.StepRun {
	s.StartedAt = utc(s.StartedAt)
	s.FinishedAt = utcPtr(s.FinishedAt)
	if s.ExitCode != nil {
		s.ExitCode = ptr(*s.ExitCode)
	}
	return s
}

func newEvent(actor, action, promotionID string, t time.Time) *audit.Event {
	subject := "pipeline/shop"
	if promotionID != "" {
		subject = "promotion/" + promotionID
	}
	return &audit.Event{
		Time:        t,
		Actor:       actor,
		Action:      action,
		Subject:     subject,
		PromotionID: promotionID,
		Reason:      "because " + actor + " said so",
		Details:     []byte(`{"to": "deploying",  "from":"gating", "n": [1, 2.50]}`),
	}
}

func wantEvent(e audit.Event) audit.Event {
	e.Time = utc(e.Time)
	return e
}

func wantDeployment(d store.Deployment) store.Deployment {
	d.At = utc(d.At)
	return d
}

func wantLogChunk(c store.LogChunk) store.LogChunk {
	c.At = utc(c.At)
	return c
}
