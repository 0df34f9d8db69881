// Package promotion defines promotions — one release moving into one
// environment — their states, and the pure transition function that decides
// what happens next. It does no I/O: the engine loads a promotion, asks Apply
// what an event means, and commits the result before acting on it.
package promotion

import (
	"time"
)

// State is the lifecycle state of a promotion. It is persisted as a string.
type State string

// The states of a promotion.
const (
	Queued           State = "queued"
	Gating           State = "gating"
	AwaitingApproval State = "awaiting_approval"
	Deploying        State = "deploying"
	Verifying        State = "verifying"
	// Watching: the checks passed and the release runs in the environment;
	// the watch window's checks keep running until it ends.
	Watching State = "watching"
	// Paused: a check was inconclusive; a person resumes or aborts.
	Paused         State = "paused"
	Succeeded      State = "succeeded"
	Failed         State = "failed"
	RollingBack    State = "rolling_back"
	RolledBack     State = "rolled_back"
	RollbackFailed State = "rollback_failed"
	Aborted        State = "aborted"
	Superseded     State = "superseded"
	Rejected       State = "rejected"
)

// States lists every state, in lifecycle order.
var States = []State{Queued, Gating, AwaitingApproval, Deploying, Verifying, Watching, Paused, Succeeded, Failed,
	RollingBack, RolledBack, RollbackFailed, Aborted, Superseded, Rejected}

// Terminal reports whether s is final.
func (s State) Terminal() bool {
	switch s {
	case Succeeded, Failed, RolledBack, RollbackFailed, Aborted, Superseded, Rejected:
		return true
	}
	return false
}

// HoldsEnvironment reports whether a promotion in state s occupies its
// environment: from the moment it leaves the queue until it ends.
func (s State) HoldsEnvironment() bool { return !s.Terminal() && s != Queued }

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, x := range States {
		if x == s {
			return true
		}
	}
	return false
}

// Kind says whether a promotion moves a release forward or restores an earlier one.
type Kind string

// The kinds of promotion.
const (
	KindPromote  Kind = "promote"
	KindRollback Kind = "rollback"
)

// Phase is the part of a promotion a step belongs to.
type Phase string

// The phases of a promotion.
const (
	PhasePreflight Phase = "preflight"
	// PhaseCanary runs the canary strategy's phases: set a traffic weight,
	// pause, analyse — after the deploy steps, before the checks.
	PhaseCanary   Phase = "canary"
	PhaseDeploy   Phase = "deploy"
	PhaseVerify   Phase = "verify"
	PhaseRollback Phase = "rollback"
	// PhaseWatch is the post-promotion watch window: one item that runs the
	// watch's checks until the window ends.
	PhaseWatch Phase = "watch"
)

// Cursor points at the step a promotion is running or about to run.
type Cursor struct {
	// Phase is the list the step is in; empty when no step is current.
	Phase Phase `json:"phase,omitempty"`
	// Index is the step's position in its phase's list.
	Index int `json:"index"`
	// Attempt is the 1-based attempt number handed to the step as FERRY_ATTEMPT.
	Attempt int `json:"attempt"`
	// Failures counts failed attempts of the current step; interrupted attempts do not count.
	Failures int `json:"failures"`
}

// Promotion is one release moving into one environment.
type Promotion struct {
	ID          string `json:"id"`
	Seq         int64  `json:"seq"`
	Pipeline    string `json:"pipeline"`
	Environment string `json:"environment"`
	Kind        Kind   `json:"kind"`
	// ReleaseID and ReleaseVersion name the release being deployed.
	ReleaseID      string `json:"releaseId"`
	ReleaseVersion string `json:"releaseVersion"`
	// Revision is the pipeline revision the promotion pinned when it was created.
	Revision int   `json:"revision"`
	State    State `json:"state"`
	// Reason is the requester's reason, if any.
	Reason string `json:"reason,omitempty"`
	// Actor requested the promotion ("system" for automatic ones).
	Actor string `json:"actor"`
	// Forced is set when upstream requirements were overridden.
	Forced bool `json:"forced,omitempty"`
	// Expedited is set for a hotfix promotion that skips soak; it awaits review.
	Expedited bool `json:"expedited,omitempty"`
	// OverrideWindow is set for a break-glass promotion that ignores
	// deployment windows and freezes; it awaits review.
	OverrideWindow bool `json:"overrideWindow,omitempty"`
	// Gates holds the latest evaluation of the environment's gates.
	Gates []GateEvaluation `json:"gates,omitempty"`
	// Review records the after-the-fact review of an expedited or break-glass promotion.
	Review *Review `json:"review,omitempty"`
	// RollbackID and RollbackVersion name the release to restore if this promotion fails.
	RollbackID      string `json:"rollbackId,omitempty"`
	RollbackVersion string `json:"rollbackVersion,omitempty"`
	// Cursor is the current step.
	Cursor Cursor `json:"cursor"`
	// WakeAt is when a waiting promotion (a retry backoff) continues.
	WakeAt *time.Time `json:"wakeAt,omitempty"`
	// Message explains the current state in words.
	Message    string     `json:"message,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Owner is the replica driving the promotion and LeaseUntil when its claim lapses.
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitempty"`
	// Version increments on every update, for optimistic concurrency.
	Version int64 `json:"version"`
}

// GateEvaluation is the outcome of one gate for a promotion.
type GateEvaluation struct {
	// Name identifies the gate ("upstream", "soak", a policy's name, "windows", "approvals").
	Name string `json:"name"`
	// Kind is the gate's kind: upstream, soak, policy, windows, approvals.
	Kind   string     `json:"kind"`
	Result GateResult `json:"result"`
	// Reason explains the result to a person.
	Reason string `json:"reason"`
	// Until is when a pending gate may pass (soak ends, a window opens), if known.
	Until *time.Time `json:"until,omitempty"`
	// Since is when a pending gate started waiting on people (approvals),
	// carried from one evaluation to the next; deadlines count from it.
	Since *time.Time `json:"since,omitempty"`
	At    time.Time  `json:"at"`
}

// Review is a person's after-the-fact review of an expedited or break-glass promotion.
type Review struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment"`
}

// Decision is a person's verdict on a promotion awaiting approval.
type Decision string

// The decisions.
const (
	Approve Decision = "approve"
	Reject  Decision = "reject"
)

// Approval is one person's decision on a promotion, bound to exactly what
// they saw: the release's content digest and the pipeline revision.
type Approval struct {
	PromotionID string   `json:"promotionId"`
	User        string   `json:"user"`
	Decision    Decision `json:"decision"`
	Comment     string   `json:"comment,omitempty"`
	// Roles are the approver's roles that covered the environment when they decided ("approver", "admin").
	Roles []string `json:"roles,omitempty"`
	// ReleaseDigest and Revision bind the approval: a change to either voids it.
	ReleaseDigest string    `json:"releaseDigest"`
	Revision      int       `json:"revision"`
	At            time.Time `json:"at"`
}

// StepState is the state of one step attempt.
type StepState string

// The states of a step attempt.
const (
	StepRunning     StepState = "running"
	StepSucceeded   StepState = "succeeded"
	StepFailed      StepState = "failed"
	StepInterrupted StepState = "interrupted"
	StepAborted     StepState = "aborted"
	// StepInconclusive: a check could not decide; the promotion is paused.
	StepInconclusive StepState = "inconclusive"
)

// StepRun is one attempt of one step of a promotion.
type StepRun struct {
	PromotionID string    `json:"promotionId"`
	Phase       Phase     `json:"phase"`
	Index       int       `json:"index"`
	Name        string    `json:"name"`
	Attempt     int       `json:"attempt"`
	State       StepState `json:"state"`
	ExitCode    *int      `json:"exitCode,omitempty"`
	Error       string    `json:"error,omitempty"`
	// PID and PIDStart identify the step's process group while it runs
	// (PIDStart is the kernel start time, guarding against PID reuse).
	PID            int        `json:"pid,omitempty"`
	PIDStart       uint64     `json:"pidStart,omitempty"`
	Owner          string     `json:"owner,omitempty"`
	IdempotencyKey string     `json:"idempotencyKey"`
	StartedAt      time.Time  `json:"startedAt"`
	FinishedAt     *time.Time `json:"finishedAt,omitempty"`
}

// Transition records one change of state.
type Transition struct {
	From   State  `json:"from"`
	To     State  `json:"to"`
	Reason string `json:"reason"`
}
