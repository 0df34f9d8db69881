package step_test

import (
	"context"
	"testing"

	"github.com/ferry-dev/ferry/internal/step"
)

func TestNop(t *testing.T) {
	if res := (step.Nop{}).Run(t.Context(), step.Request{}); !res.OK {
		t.Errorf("result %+v, want success", res)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if res := (step.Nop{}).Run(ctx, step.Request{}); res.OK || !res.Interrupted {
		t.Errorf("result %+v, want Interrupted", res)
	}
}
