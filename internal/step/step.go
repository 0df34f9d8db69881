// Package step defines how Ferry runs one step or check: the Driver interface
// each kind of step implements (sub-packages exec and http), the environment a
// step receives, and the capture of its output.
package step

import (
	"context"
	"io"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
)

// Request is one attempt of one step.
type Request struct {
	PromotionID string
	Pipeline    string
	Environment string
	// Release is the release being deployed (the rollback target during a rollback).
	Release  release.Release
	Baseline string // version running before the promotion (canary checks' ${baseline})
	// Rollback is true while restoring an earlier release (FERRY_ROLLBACK=1).
	Rollback bool
	// CanaryWeight is, for a canary's set-weight steps, the percentage of
	// traffic to route to the release (FERRY_CANARY_WEIGHT).
	CanaryWeight *int
	Phase        promotion.Phase
	Step         pipeline.Step
	// Attempt is 1-based and increases across retries and restarts.
	Attempt int
	// IdempotencyKey is the same for every attempt of this step of this promotion.
	IdempotencyKey string
	// TraceParent is handed to the step as TRACEPARENT when set.
	TraceParent string
	// Output receives the step's stdout and stderr.
	Output io.Writer
	// Started, when set, is called once a process has started, before the
	// driver waits for it, with its process group ID and kernel start time.
	// The engine records them durably; if Started returns an error the driver
	// stops the process and returns that error.
	Started func(pid int, start uint64) error
}

// Result is the outcome of one attempt.
type Result struct {
	// OK is true when the step succeeded.
	OK bool
	// ExitCode is the exit code of a process, when there was one.
	ExitCode *int
	// Message explains a failure in words ("exit status 3", "GET http://…: status 503, want 200").
	Message string
	// Interrupted is true when the attempt was stopped because ctx was cancelled.
	Interrupted bool
	// Inconclusive is true when a check could not decide (its measurements
	// were neither good nor bad enough); the promotion then waits for a person.
	Inconclusive bool
}

// Driver runs steps of one kind. Run stops the step when ctx is cancelled
// and returns a Result with Interrupted set; it returns only after the
// step's processes are gone.
type Driver interface {
	Run(ctx context.Context, req Request) Result
}
