package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/promotion"
)

const canaryPipeline = `name: shop
environments:
  - name: prod
    steps: [{name: deploy, exec: {run: 'echo "$FERRY_RELEASE" > "$WORK/deployed"'}}]
    strategy:
      canary:
        setWeight:
          - name: route
            exec: {run: 'echo "$FERRY_RELEASE@$FERRY_CANARY_WEIGHT" >> "$WORK/weights"'}
        phases:
          - weight: 5
            pause: 100ms
            analysis:
              - name: error-rate
                exec: {run: 'test "$(cat "$WORK/deployed")" != 2.0.0'}
          - {weight: 50, pause: manual}
          - {weight: 100}
`

func TestCanaryPhasesEndToEnd(t *testing.T) {
	b := setup(t)
	b.apply(t, canaryPipeline)
	b.release(t, "shop", "1.0.0")
	b.release(t, "shop", "2.0.0")
	ctx := context.Background()

	p := b.waitState(t, b.promote(t, "shop", "1.0.0", "prod").ID, promotion.Paused)
	if p.State != promotion.Paused || p.Canary == nil || p.Canary.Phase != 2 || p.Canary.Weight != 50 || p.Canary.Phases != 3 {
		t.Fatalf("at the manual pause: %s %+v", p.State, p.Canary)
	}
	if _, err := b.eng.Resume(ctx, "alice", p.ID, "advance to 100%"); err != nil {
		t.Fatal(err)
	}
	if done := b.wait(t, p.ID); done.State != promotion.Succeeded {
		t.Fatalf("1.0.0: %s %q", done.State, done.Message)
	}
	if got := readFile(t, b.dir+"/weights"); got != "1.0.0@5\n1.0.0@50\n1.0.0@100\n" {
		t.Fatalf("weights = %q", got)
	}

	// 2.0.0 fails its first phase's analysis: weight back to 0, then rolled back to 1.0.0.
	bad := b.wait(t, b.promote(t, "shop", "2.0.0", "prod").ID)
	if bad.State != promotion.RolledBack || !strings.Contains(bad.Message, "rolled back to 1.0.0") {
		t.Fatalf("2.0.0: %s %q", bad.State, bad.Message)
	}
	weights := readFile(t, b.dir+"/weights")
	if !strings.HasSuffix(weights, "2.0.0@5\n1.0.0@0\n") {
		t.Fatalf("weights = %q: want 2.0.0 at 5%%, then the weight set back to 0 before the rollback", weights)
	}
	if strings.Contains(weights, "2.0.0@50") {
		t.Fatalf("2.0.0 went past its first phase: %q", weights)
	}
}
