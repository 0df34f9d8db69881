package step_test

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/step"
	"github.com/ferry-dev/ferry/internal/step/exec"
)

// One attempt of an exec step as the engine runs it: the output goes
// through a Capture that hides the step's secrets and hands chunks to a sink
// (the engine appends them to the stored log).
func ExampleCapture() {
	base := []string{"PATH=/usr/bin:/bin", "DEPLOY_TOKEN=t0k3n-42"}
	s := pipeline.Step{
		Name:      "deploy",
		Exec:      &pipeline.Exec{Run: `echo "deploying $FERRY_RELEASE with $DEPLOY_TOKEN"`},
		SecretEnv: []string{"DEPLOY_TOKEN"},
	}
	var log bytes.Buffer
	out := step.NewCapture(0, step.SecretValues(s, base), 250*time.Millisecond, func(b []byte) { log.Write(b) })
	req := step.Request{
		PromotionID:    "prm_1",
		Release:        release.Release{Version: "1.4.2"},
		Phase:          promotion.PhaseDeploy,
		Step:           s,
		Attempt:        1,
		IdempotencyKey: step.IdempotencyKey("prm_1", promotion.PhaseDeploy, 0, s.Name),
		Output:         out,
	}
	res := exec.Driver{Environ: base}.Run(context.Background(), req)
	out.Close()
	fmt.Printf("ok=%v\n%s", res.OK, log.String())
	// Output:
	// ok=true
	// deploying 1.4.2 with ***
}
