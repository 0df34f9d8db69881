// Package stats computes Ferry's promotion figures from plain records of
// what happened: the promotion SLIs M1–M10 (success rate, time to promote,
// rollback rate, verification failure rate, post-promotion incident rate,
// time to detect, approval latency, telemetry coverage, audit completeness)
// and the four keys of delivery performance (deployment frequency, lead time
// for changes, change failure rate, time to restore). It does no I/O: a
// loader reads the records from the store and Compute turns them into a
// Report. docs/stats.md defines every figure; the comments here say how.
package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
)

// Audit actions the figures read.
const (
	ActionCreate     = "promotion.create"
	ActionTransition = "promotion.transition"
	ActionStepStart  = "step.start"
	ActionStepFinish = "step.finish"
	// ActionAlert records an alert about a live promotion (Alertmanager).
	ActionAlert = "promotion.alert"
)

// Limits of a Query.
const (
	// MinBucket is the shortest bucket of a series.
	MinBucket = time.Hour
	// MaxBuckets is the largest number of buckets in a series.
	MaxBuckets = 1000
	// maxGaps is how many promotions with an incomplete audit trail a Report names.
	maxGaps = 20
)

// ErrInvalidQuery marks a Query Compute refuses.
var ErrInvalidQuery = errors.New("invalid stats query")

// Record is one promotion with everything the figures need to know of it.
type Record struct {
	Promotion promotion.Promotion
	// Production is true when the promotion's environment counts as production.
	Production bool
	// Release is the release the promotion deploys; nil when unknown.
	Release *release.Release
	// Events are the promotion's audit events in Seq order.
	Events []audit.Event
	// Steps are the promotion's step attempts in the order they started.
	Steps []promotion.StepRun
	// Approvals are the decisions people recorded on the promotion.
	Approvals []promotion.Approval
}

// Query says which figures to compute.
type Query struct {
	// From and To bound the window: a promotion counts when it ended at or
	// after From and before To.
	From, To time.Time
	// Bucket, when set, splits the window into a series of buckets of this
	// length, from From; the window must be a whole number of buckets.
	Bucket time.Duration
}

func (q Query) validate() error {
	if !q.To.After(q.From) {
		return fmt.Errorf("%w: the window must end after it starts (from %s, to %s)", ErrInvalidQuery,
			q.From.UTC().Format(time.RFC3339), q.To.UTC().Format(time.RFC3339))
	}
	if q.Bucket == 0 {
		return nil
	}
	window := q.To.Sub(q.From)
	switch {
	case q.Bucket < MinBucket:
		return fmt.Errorf("%w: bucket %s is shorter than %s", ErrInvalidQuery, q.Bucket, MinBucket)
	case q.Bucket > window:
		return fmt.Errorf("%w: bucket %s is longer than the window %s", ErrInvalidQuery, q.Bucket, window)
	case window%q.Bucket != 0:
		return fmt.Errorf("%w: the window %s is not a whole number of %s buckets", ErrInvalidQuery, window, q.Bucket)
	case window/q.Bucket > MaxBuckets:
		return fmt.Errorf("%w: the window %s makes %d buckets of %s; at most %d", ErrInvalidQuery, window, window/q.Bucket, q.Bucket, MaxBuckets)
	}
	return nil
}

// Figures are the figures of one window or bucket. A figure with nothing to
// measure — a rate over no promotions, a mean of no durations — is nil
// (null in JSON), never a made-up 0. Rates are fractions from 0 to 1;
// durations are in seconds.
type Figures struct {
	// Promotions counts the promotions, of both kinds, that ended in the window.
	Promotions int `json:"promotions"`

	// Attempts counts the promote-kind promotions that passed their gates
	// and started deploying (preflight included); Succeeded those of them
	// that succeeded. SuccessRate (M1) is Succeeded / Attempts.
	Attempts    int      `json:"attempts"`
	Succeeded   int      `json:"succeeded"`
	SuccessRate *float64 `json:"successRate"`

	// PromotedToProduction counts the promote-kind promotions into
	// production that succeeded and whose release is known;
	// MeanTimeToPromoteSeconds (M2) is the mean time from the release's
	// creation to their success.
	PromotedToProduction     int      `json:"promotedToProduction"`
	MeanTimeToPromoteSeconds *float64 `json:"meanTimeToPromoteSeconds"`

	// RolledBack counts the attempts rolled back, automatically (they ended
	// rolled_back or rollback_failed) or by a later ferry rollback of the
	// environment; RollbackRate (M3) is RolledBack / Attempts.
	RolledBack   int      `json:"rolledBack"`
	RollbackRate *float64 `json:"rollbackRate"`

	// Verified counts the attempts whose checks or canary phases ran;
	// VerificationFailed those stopped by a failing one (its last attempt
	// failed). VerificationFailureRate (M4) is their ratio.
	Verified                int      `json:"verified"`
	VerificationFailed      int      `json:"verificationFailed"`
	VerificationFailureRate *float64 `json:"verificationFailureRate"`

	// Live counts the promote-kind promotions that passed verification
	// (entered watching, or succeeded); Incidents those of them with a
	// failed watch window or an alert after going live. IncidentRate (M5)
	// is their ratio; MeanTimeToDetectSeconds (M6) is the mean time from
	// going live to the first of those signals.
	Live                    int      `json:"live"`
	Incidents               int      `json:"incidents"`
	IncidentRate            *float64 `json:"incidentRate"`
	MeanTimeToDetectSeconds *float64 `json:"meanTimeToDetectSeconds"`

	// AwaitedApproval counts the promotions that waited for approval;
	// ApprovalLatencySeconds (M7) is the mean time each spent in
	// awaiting_approval, all its waits added up.
	AwaitedApproval        int      `json:"awaitedApproval"`
	ApprovalLatencySeconds *float64 `json:"approvalLatencySeconds"`

	// WithTelemetry counts the attempts with at least one verification
	// measurement (a check or canary step that reached a verdict);
	// TelemetryCoverage (M9) is WithTelemetry / Attempts.
	WithTelemetry     int      `json:"withTelemetry"`
	TelemetryCoverage *float64 `json:"telemetryCoverage"`

	// AuditComplete counts the promotions whose audit trail accounts for
	// their whole stored record; AuditCompleteness (M10) is AuditComplete /
	// Promotions.
	AuditComplete     int      `json:"auditComplete"`
	AuditCompleteness *float64 `json:"auditCompleteness"`

	// Deployments counts the promote-kind promotions into production that
	// deployed something and ended succeeded, failed, rolled_back or
	// rollback_failed; SuccessfulDeployments those that succeeded.
	// DeploymentFrequencyPerDay is SuccessfulDeployments per day of the
	// window, nil when no promotion at all ended in it.
	Deployments               int      `json:"deployments"`
	SuccessfulDeployments     int      `json:"successfulDeployments"`
	DeploymentFrequencyPerDay *float64 `json:"deploymentFrequencyPerDay"`

	// LeadTimeCount counts the successful deployments whose release has a
	// commit time, WithoutCommitTime those left out for lack of one.
	// LeadTimeForChangesSeconds is the median time from commit to success.
	LeadTimeCount             int      `json:"leadTimeCount"`
	WithoutCommitTime         int      `json:"withoutCommitTime"`
	LeadTimeForChangesSeconds *float64 `json:"leadTimeForChangesSeconds"`

	// ChangeFailures counts the deployments that failed, were rolled back,
	// or drew an alert after going live; ChangeFailureRate is ChangeFailures
	// / Deployments.
	ChangeFailures    int      `json:"changeFailures"`
	ChangeFailureRate *float64 `json:"changeFailureRate"`

	// Restored counts the change failures after which the environment ran a
	// good release again, Unrestored those still waiting for one.
	// TimeToRestoreSeconds is the median time from detecting the failure to
	// that restoration.
	Restored             int      `json:"restored"`
	Unrestored           int      `json:"unrestored"`
	TimeToRestoreSeconds *float64 `json:"timeToRestoreSeconds"`
}

// Report is the figures of a window, with a series of buckets when asked.
type Report struct {
	// Pipeline and Environment repeat the filter the records were chosen by.
	Pipeline    string `json:"pipeline,omitempty"`
	Environment string `json:"environment,omitempty"`
	// Production lists the environments ("pipeline/environment") the
	// production figures count.
	Production []string  `json:"production"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Figures
	// AuditGaps names promotions whose audit trail is incomplete, and why
	// (the first few).
	AuditGaps []AuditGap `json:"auditGaps,omitempty"`
	// BucketSeconds is the length of each bucket of Series, when asked for.
	BucketSeconds float64 `json:"bucketSeconds,omitempty"`
	// Series holds the figures of each bucket, oldest first.
	Series []Bucket `json:"series,omitempty"`
}

// Bucket is the figures of one bucket of a series.
type Bucket struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	Figures
}

// AuditGap is a promotion whose audit trail is incomplete.
type AuditGap struct {
	PromotionID string `json:"promotionId"`
	Problem     string `json:"problem"`
}

// Compute returns the figures of the records that ended in q's window.
// Records that ended elsewhere are still consulted for what happened after
// the promotions of the window: a later rollback of the environment, or the
// promotion that restored it.
func Compute(records []Record, q Query) (*Report, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	h := analyze(records)
	rep := &Report{From: q.From.UTC(), To: q.To.UTC(), Production: []string{}}
	rep.Figures = h.figures(q.From, q.To)
	for _, f := range h.facts {
		if f.inWindow(q.From, q.To) && f.auditProblem != "" && len(rep.AuditGaps) < maxGaps {
			rep.AuditGaps = append(rep.AuditGaps, AuditGap{PromotionID: f.p.ID, Problem: f.auditProblem})
		}
	}
	if q.Bucket > 0 {
		rep.BucketSeconds = q.Bucket.Seconds()
		rep.Series = []Bucket{}
		for from := q.From; from.Before(q.To); from = from.Add(q.Bucket) {
			to := from.Add(q.Bucket)
			rep.Series = append(rep.Series, Bucket{From: from.UTC(), To: to.UTC(), Figures: h.figures(from, to)})
		}
	}
	return rep, nil
}

// figures computes the figures of the promotions that ended in [from, to).
func (h *history) figures(from, to time.Time) Figures {
	var (
		out                                              Figures
		toPromote, toDetect, waits, leadTimes, toRestore []time.Duration
	)
	for _, f := range h.facts {
		if !f.inWindow(from, to) {
			continue
		}
		out.Promotions++
		if f.auditProblem == "" {
			out.AuditComplete++
		}
		if f.waitedForApproval {
			out.AwaitedApproval++
			waits = append(waits, f.approvalWait)
		}
		if f.p.Kind != promotion.KindPromote {
			continue
		}
		if f.reachedDeploying {
			out.Attempts++
			if f.p.State == promotion.Succeeded {
				out.Succeeded++
			}
			if f.rolledBack() {
				out.RolledBack++
			}
			if f.measured {
				out.WithTelemetry++
			}
			if f.verificationRan {
				out.Verified++
				if f.verificationFailed {
					out.VerificationFailed++
				}
			}
		}
		if f.liveAt != nil {
			out.Live++
			if at := f.incidentAt(); at != nil {
				out.Incidents++
				toDetect = append(toDetect, at.Sub(*f.liveAt))
			}
		}
		if !f.rec.Production {
			continue
		}
		if f.p.State == promotion.Succeeded && f.rec.Release != nil {
			out.PromotedToProduction++
			toPromote = append(toPromote, f.finished.Sub(f.rec.Release.CreatedAt))
		}
		if !f.isDeployment() {
			continue
		}
		out.Deployments++
		if f.p.State == promotion.Succeeded {
			out.SuccessfulDeployments++
			if f.rec.Release != nil && f.rec.Release.CommitTime != nil {
				out.LeadTimeCount++
				leadTimes = append(leadTimes, f.finished.Sub(*f.rec.Release.CommitTime))
			} else {
				out.WithoutCommitTime++
			}
		}
		if failedAt := f.changeFailedAt(); failedAt != nil {
			out.ChangeFailures++
			if restoredAt := h.restoredAt(f, *failedAt); restoredAt != nil {
				out.Restored++
				toRestore = append(toRestore, restoredAt.Sub(*failedAt))
			} else {
				out.Unrestored++
			}
		}
	}
	out.SuccessRate = ratio(out.Succeeded, out.Attempts)
	out.MeanTimeToPromoteSeconds = seconds(mean(toPromote))
	out.RollbackRate = ratio(out.RolledBack, out.Attempts)
	out.VerificationFailureRate = ratio(out.VerificationFailed, out.Verified)
	out.IncidentRate = ratio(out.Incidents, out.Live)
	out.MeanTimeToDetectSeconds = seconds(mean(toDetect))
	out.ApprovalLatencySeconds = seconds(mean(waits))
	out.TelemetryCoverage = ratio(out.WithTelemetry, out.Attempts)
	out.AuditCompleteness = ratio(out.AuditComplete, out.Promotions)
	if out.Promotions > 0 {
		perDay := float64(out.SuccessfulDeployments) / (to.Sub(from).Hours() / 24)
		out.DeploymentFrequencyPerDay = &perDay
	}
	out.LeadTimeForChangesSeconds = seconds(median(leadTimes))
	out.ChangeFailureRate = ratio(out.ChangeFailures, out.Deployments)
	out.TimeToRestoreSeconds = seconds(median(toRestore))
	return out
}

// ratio returns n/d, or nil when d is 0.
func ratio(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	r := float64(n) / float64(d)
	return &r
}

// mean returns the mean of ds, truncated to the nanosecond, or nil when
// there are none.
func mean(ds []time.Duration) *time.Duration {
	if len(ds) == 0 {
		return nil
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	m := sum / time.Duration(len(ds))
	return &m
}

// median returns the median of ds — the mean of the two middle ones for an
// even count, truncated to the nanosecond — or nil when there are none.
func median(ds []time.Duration) *time.Duration {
	if len(ds) == 0 {
		return nil
	}
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	n := len(s)
	m := s[n/2]
	if n%2 == 0 {
		m = (s[n/2-1] + s[n/2]) / 2
	}
	return &m
}

func seconds(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	s := d.Seconds()
	return &s
}

// Diff names each figure of f that differs from want, by its JSON name, as
// "successRate = 0.5, want 0.75" (null for a figure without data): what a
// test comparing reports reports.
func (f Figures) Diff(want Figures) []string {
	show := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	var out []string
	g, w := reflect.ValueOf(f), reflect.ValueOf(want)
	for i := range g.NumField() {
		gv, wv := g.Field(i).Interface(), w.Field(i).Interface()
		if !reflect.DeepEqual(gv, wv) {
			out = append(out, fmt.Sprintf("%s = %s, want %s", g.Type().Field(i).Tag.Get("json"), show(gv), show(wv)))
		}
	}
	return out
}
