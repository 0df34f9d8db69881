package web

import (
	"context"
	"time"
)

// StatsSource computes the delivery figures the executive view charts.
type StatsSource interface {
	Stats(ctx context.Context, q StatsQuery) (StatsReport, error)
}

// StatsQuery asks for one pipeline's figures over [Since, Until), by day.
type StatsQuery struct {
	Pipeline string
	Since    time.Time
	Until    time.Time
}

// StatsReport holds a pipeline's figures over the whole period and per
// day (UTC). A figure is nil where nothing happened to compute it from.
type StatsReport struct {
	Pipeline string
	// Production names the environments the DORA keys are measured on:
	// those no other environment comes after.
	Production []string
	Total      StatsFigures
	Days       []StatsDay
}

// StatsDay is the figures of one day.
type StatsDay struct {
	// Day is the day's start, midnight UTC.
	Day time.Time
	StatsFigures
}

// StatsFigures are the figures of a period.
type StatsFigures struct {
	// Promotions counts the promotions (kind promote) that ended in the period.
	Promotions int
	// SuccessRate is the share of them that succeeded.
	SuccessRate *float64
	// MeanTimeToPromote is the mean time from request to success of the
	// promotions that succeeded.
	MeanTimeToPromote *time.Duration
	// RollbackRate is the share of ended promotions that were rolled back,
	// automatically or by a person.
	RollbackRate *float64
	// ApprovalLatency is the mean time from a promotion starting to wait
	// for approval to its first approval.
	ApprovalLatency *time.Duration

	// The DORA four keys, on the production environments.

	// DeploymentFrequency is successful production deployments per day.
	DeploymentFrequency *float64
	// LeadTime is the mean time from a release's creation to its
	// successful production deployment.
	LeadTime *time.Duration
	// ChangeFailureRate is the share of production deployments that failed
	// or were rolled back.
	ChangeFailureRate *float64
	// TimeToRestore is the mean time from a failed production deployment
	// to the next success in that environment.
	TimeToRestore *time.Duration
}
