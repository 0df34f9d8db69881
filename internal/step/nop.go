package step

import "context"

// Nop is a Driver whose steps succeed at once without doing anything. It
// exists for the engine's benchmarks, which measure Ferry's own overhead;
// pipelines cannot select it.
type Nop struct{}

var _ Driver = Nop{}

// Run returns a successful Result, or an interrupted one when ctx is already done.
func (Nop) Run(ctx context.Context, _ Request) Result {
	if ctx.Err() != nil {
		return Result{Interrupted: true, Message: "interrupted"}
	}
	return Result{OK: true}
}
