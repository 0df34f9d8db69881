package exec

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/step"
)

// TestStepWaitsForStarted checks that a step does nothing until the Started
// callback has returned (so its process group is on record first), and
// nothing at all when the callback fails.
func TestStepWaitsForStarted(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "ran")
	req := step.Request{
		PromotionID: "p", Pipeline: "shop", Environment: "prod", Attempt: 1, IdempotencyKey: "k",
		Step:   pipeline.Step{Name: "deploy", Exec: &pipeline.Exec{Run: `touch "` + mark + `"`}},
		Output: io.Discard,
	}
	req.Started = func(pid int, _ uint64) error {
		time.Sleep(200 * time.Millisecond)
		if _, err := os.Stat(mark); err == nil {
			t.Errorf("the step ran before Started returned")
		}
		if !Alive(pid, 0) {
			t.Errorf("process group %d is not alive while Started runs", pid)
		}
		return nil
	}
	if res := (Driver{}).Run(context.Background(), req); !res.OK {
		t.Fatalf("gated step: %+v", res)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatalf("the step did not run after Started returned: %v", err)
	}

	os.Remove(mark)
	req.Started = func(int, uint64) error { return errors.New("store unreachable") }
	res := (Driver{}).Run(context.Background(), req)
	if res.OK || res.Message != "store unreachable" {
		t.Fatalf("refused start: %+v", res)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("the step ran although Started failed")
	}
}
