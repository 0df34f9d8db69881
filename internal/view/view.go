// Package view defines the JSON shapes Ferry's API serves and its client
// reads: promotions with their steps, environment status, history.
package view

import (
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
)

// ReleaseRef names a release.
type ReleaseRef struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

// Step summarises one step of a promotion across its attempts.
type Step struct {
	Name  string          `json:"name"`
	Phase promotion.Phase `json:"phase"`
	Index int             `json:"index"`
	// State is the state of the latest attempt, or "pending" before the first.
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	// ExitCode is the exit code of the latest attempt of an exec step.
	ExitCode   *int       `json:"exitCode"`
	Error      string     `json:"error,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// Promotion is a promotion as the API shows it.
type Promotion struct {
	ID          string          `json:"id"`
	TraceID     string          `json:"traceId"` // the promotion's OpenTelemetry trace, derived from ID (package traceid)
	Pipeline    string          `json:"pipeline"`
	Environment string          `json:"environment"`
	Kind        promotion.Kind  `json:"kind"`
	State       promotion.State `json:"state"`
	Release     ReleaseRef      `json:"release"`
	// RollbackTo is the release restored if this promotion fails.
	RollbackTo *ReleaseRef `json:"rollbackTo,omitempty"`
	Revision   int         `json:"revision"`
	Reason     string      `json:"reason,omitempty"`
	Actor      string      `json:"actor"`
	Forced     bool        `json:"forced"`
	// Expedited and OverrideWindow mark hotfix and break-glass promotions.
	Expedited      bool `json:"expedited,omitempty"`
	OverrideWindow bool `json:"overrideWindow,omitempty"`
	// Gates is the latest evaluation of the environment's gates.
	Gates []promotion.GateEvaluation `json:"gates,omitempty"`
	// Approvals are the decisions recorded on the promotion.
	Approvals []promotion.Approval `json:"approvals,omitempty"`
	// Review is the after-the-fact review of an expedited or break-glass promotion.
	Review *promotion.Review `json:"review,omitempty"`
	// Canary is where a canary strategy stands: its phase and traffic weight.
	Canary *Canary `json:"canary,omitempty"`
	// Watch is the promotion's post-promotion watch window, once it started.
	Watch *Watch `json:"watch,omitempty"`
	// Alerts are the alert groups recorded on the promotion, one entry per
	// group however often Alertmanager repeats it.
	Alerts []Alert `json:"alerts,omitempty"`
	// Message explains the current state.
	Message     string       `json:"message,omitempty"`
	Steps       []Step       `json:"steps"`
	Transitions []Transition `json:"transitions,omitempty"`
	// Notifications are the messages owed to notification endpoints about
	// the promotion, and where their delivery stands.
	Notifications []Notification `json:"notifications,omitempty"`
	CreatedAt     time.Time      `json:"createdAt"`
	StartedAt     *time.Time     `json:"startedAt,omitempty"`
	FinishedAt    *time.Time     `json:"finishedAt"`
	UpdatedAt     time.Time      `json:"updatedAt"`
	WakeAt        *time.Time     `json:"wakeAt,omitempty"`
	Version       int64          `json:"version"`
}

// Notification is one message to a notification endpoint about a
// promotion, and where its delivery stands.
type Notification struct {
	// ID identifies the message for good; receivers see it as the message's id.
	ID string `json:"id"`
	// Endpoint is the endpoint's name.
	Endpoint string `json:"endpoint"`
	Event    string `json:"event"`
	// Seq numbers the messages to the endpoint about the promotion from 1.
	Seq int `json:"seq"`
	// State is pending, delivered or failed.
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"lastError,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	LastAttemptAt *time.Time `json:"lastAttemptAt,omitempty"`
	// FinishedAt is when it was delivered or given up on.
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// Transition is one recorded change of a promotion's state.
type Transition struct {
	From   promotion.State `json:"from"`
	To     promotion.State `json:"to"`
	Reason string          `json:"reason,omitempty"`
	Actor  string          `json:"actor"`
	At     time.Time       `json:"at"`
}

// PromotionRef summarises a promotion inside other views.
type PromotionRef struct {
	ID          string          `json:"id"`
	Pipeline    string          `json:"pipeline,omitempty"`
	Environment string          `json:"environment,omitempty"`
	State       promotion.State `json:"state"`
	Kind        promotion.Kind  `json:"kind"`
	Release     ReleaseRef      `json:"release"`
}

// Environment is the status of one environment.
type Environment struct {
	Name        string   `json:"name"`
	After       []string `json:"after"`
	AutoPromote bool     `json:"autoPromote"`
	// Current is the release running there now, if any.
	Current    *ReleaseRef `json:"current"`
	DeployedAt *time.Time  `json:"deployedAt,omitempty"`
	// Active is the promotion holding the environment, if any.
	Active *PromotionRef `json:"active"`
	// Queued lists promotions waiting for the environment, oldest first.
	Queued []PromotionRef `json:"queued"`
	// Last is the most recent finished promotion.
	Last *PromotionRef `json:"last"`
}

// Status is the status of every environment of a pipeline.
type Status struct {
	Pipeline     string        `json:"pipeline"`
	Revision     int           `json:"revision"`
	Environments []Environment `json:"environments"`
}

// LogChunk is a piece of a step attempt's output.
type LogChunk struct {
	Phase   promotion.Phase `json:"phase"`
	Step    string          `json:"step"`
	Index   int             `json:"index"`
	Attempt int             `json:"attempt"`
	At      time.Time       `json:"at"`
	Text    string          `json:"text"`
}

// Pipeline summarises a pipeline.
type Pipeline struct {
	Name         string    `json:"name"`
	Revision     int       `json:"revision"`
	Digest       string    `json:"digest"`
	Environments []string  `json:"environments"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// ApplyResult is the outcome of applying a pipeline.
type ApplyResult struct {
	Pipeline string `json:"pipeline"`
	Revision int    `json:"revision"`
	Digest   string `json:"digest"`
	// Created is false when the content equalled the latest revision.
	Created bool `json:"created"`
}

// Replica is one Ferry server sharing the store, and the promotions it drives.
type Replica struct {
	ID        string    `json:"id"`
	Host      string    `json:"host"`
	Addr      string    `json:"addr"`
	StartedAt time.Time `json:"startedAt"`
	SeenAt    time.Time `json:"seenAt"`
	// Self is true for the replica that answered the request.
	Self    bool           `json:"self"`
	Driving []PromotionRef `json:"driving"`
}

// Plan explains what would happen if a release were promoted now.
type Plan struct {
	Pipeline    string     `json:"pipeline"`
	Environment string     `json:"environment"`
	Release     ReleaseRef `json:"release"`
	Revision    int        `json:"revision"`
	// Proceed is true when every gate passes now.
	Proceed bool                       `json:"proceed"`
	Result  promotion.GateResult       `json:"result"`
	Reason  string                     `json:"reason"`
	Gates   []promotion.GateEvaluation `json:"gates"`
	// Approvers says who may approve, when approvals are required.
	Approvers []string `json:"approvers,omitempty"`
	// WakeAt is when the gates would next be evaluated while pending.
	WakeAt *time.Time `json:"wakeAt,omitempty"`
	// Preflight names the checks that would run before the steps.
	Preflight []string `json:"preflight,omitempty"`
	// Queue counts the unfinished promotions into the environment now.
	Queue int `json:"queue"`
}

// Canary is the progress of a canary strategy.
type Canary struct {
	// Phase is the current phase, 1-based; 0 before the first.
	Phase int `json:"phase"`
	// Phases counts the strategy's phases.
	Phases int `json:"phases"`
	// Weight is the traffic percentage of the current phase.
	Weight int `json:"weight"`
}

// Watch is a promotion's post-promotion watch window.
type Watch struct {
	// For is the window's length, as written in the pipeline ("30m").
	For string `json:"for"`
	// StartedAt and Until bound the window.
	StartedAt time.Time `json:"startedAt"`
	Until     time.Time `json:"until"`
	// Open is true while the promotion is watching.
	Open bool `json:"open"`
}

// Alert is one alert group recorded on a promotion.
type Alert struct {
	// Key identifies the group for this environment: Alertmanager's repeats
	// of the group land on the same entry.
	Key      string    `json:"key"`
	GroupKey string    `json:"groupKey"`
	Summary  string    `json:"summary"`
	At       time.Time `json:"at"`
	// RolledBack is true when the alert rolled the promotion back.
	RolledBack bool `json:"rolledBack"`
}

// AlertReport says what Ferry did with one Alertmanager notification.
type AlertReport struct {
	// Targets are the pipeline environments its firing alerts concern.
	Targets []AlertTarget `json:"targets"`
}

// AlertTarget is what Ferry did with the alerts of one notification that
// concern one pipeline environment.
type AlertTarget struct {
	Pipeline    string `json:"pipeline"`
	Environment string `json:"environment"`
	Alerts      int    `json:"alerts"`
	// PromotionID is the promotion verifying or watching there, if any.
	PromotionID string `json:"promotionId,omitempty"`
	// Outcome is recorded, duplicate (the group was recorded before),
	// rolled_back (recorded, and the promotion is rolling back) or ignored.
	Outcome string `json:"outcome"`
	// Reason explains an ignored target.
	Reason string `json:"reason,omitempty"`
}

// The outcomes of an AlertTarget.
const (
	AlertRecorded   = "recorded"
	AlertDuplicate  = "duplicate"
	AlertRolledBack = "rolled_back"
	AlertIgnored    = "ignored"
)
