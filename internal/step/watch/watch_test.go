package watch_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/step"
	"github.com/ferry-dev/ferry/internal/step/exec"
	"github.com/ferry-dev/ferry/internal/step/metric"
	"github.com/ferry-dev/ferry/internal/step/watch"
)

func check(name, script string) pipeline.Step {
	return pipeline.Step{Name: name, Exec: &pipeline.Exec{Run: script}}
}

func drivers() map[string]step.Driver {
	return map[string]step.Driver{"exec": exec.Driver{KillGrace: time.Second}}
}

func TestWindowPassesWhenEveryCheckHolds(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	w := watch.Window{
		Checks: []pipeline.Step{
			check("health", "echo ok | tee -a "+filepath.Join(dir, "health")),
			check("smoke", "echo ok >> "+filepath.Join(dir, "smoke")),
		},
		Until:   time.Now().Add(1200 * time.Millisecond),
		Every:   200 * time.Millisecond,
		Drivers: drivers(),
	}
	start := time.Now()
	res := w.Run(context.Background(), step.Request{Output: &out})
	if !res.OK {
		t.Fatalf("result %+v, want OK\n%s", res, out.String())
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("window ended after %s, before its end", took)
	}
	for _, name := range []string{"health", "smoke"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if runs := strings.Count(string(b), "ok"); runs < 3 {
			t.Errorf("check %s ran %d times in a 1.2 s window every 200 ms, want several", name, runs)
		}
	}
	// Each check's lines carry its name.
	fromHealth := 0
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if c, _, ok := watch.SplitLine(l); ok && c == "health" {
			fromHealth++
		}
	}
	if !strings.Contains(out.String(), "every check passed") {
		t.Errorf("output does not say the window passed:\n%s", out.String())
	}
	if fromHealth == 0 {
		t.Errorf("no output line attributed to check health:\n%s", out.String())
	}
}

func TestWindowFailsAtTheFirstFailingCheck(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "broken")
	var out bytes.Buffer
	w := watch.Window{
		Checks: []pipeline.Step{
			check("health", "sleep 0.05"),
			check("errors", "if [ -e "+flag+" ]; then echo error rate 0.3; exit 1; fi; echo error rate 0"),
		},
		Until:   time.Now().Add(time.Minute),
		Every:   100 * time.Millisecond,
		Drivers: drivers(),
	}
	time.AfterFunc(400*time.Millisecond, func() { _ = os.WriteFile(flag, nil, 0o644) })
	start := time.Now()
	res := w.Run(context.Background(), step.Request{Output: &out})
	if res.OK || res.Interrupted {
		t.Fatalf("result %+v, want a failure", res)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("failure noticed after %s", took)
	}
	if !strings.HasPrefix(res.Message, "check errors failed (run ") {
		t.Errorf("message %q does not name the failing check", res.Message)
	}
	var sawFailure bool
	for _, l := range strings.Split(out.String(), "\n") {
		if c, rest, ok := watch.SplitLine(l); ok && c == "errors" && rest == "error rate 0.3" {
			sawFailure = true
		}
	}
	if !sawFailure {
		t.Errorf("the failing check's output is not attributed to it:\n%s", out.String())
	}
}

func TestWindowStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	w := watch.Window{
		Checks:  []pipeline.Step{check("slow", "sleep 30")},
		Until:   time.Now().Add(time.Minute),
		Drivers: drivers(),
	}
	start := time.Now()
	res := w.Run(ctx, step.Request{})
	if !res.Interrupted {
		t.Fatalf("result %+v, want interrupted", res)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stopping took %s", took)
	}
}

func TestWindowAlreadyOver(t *testing.T) {
	w := watch.Window{Checks: []pipeline.Step{check("never", "exit 1")}, Until: time.Now().Add(-time.Second), Drivers: drivers()}
	if res := w.Run(context.Background(), step.Request{}); !res.OK {
		t.Fatalf("a window that already ended: %+v, want OK without running its checks", res)
	}
}

func TestSplitLine(t *testing.T) {
	for _, c := range []struct {
		line, check, rest string
		ok                bool
	}{
		{"[error-rate] measurement {}", "error-rate", "measurement {}", true},
		{"watching 2 checks until x", "", "watching 2 checks until x", false},
		{"[broken", "", "[broken", false},
	} {
		check, rest, ok := watch.SplitLine(c.line)
		if check != c.check || rest != c.rest || ok != c.ok {
			t.Errorf("SplitLine(%q) = %q, %q, %v", c.line, check, rest, ok)
		}
	}
}

// A web check in a watch measures at its interval for the whole window,
// whatever its count says: with one measurement and an hour between runs it
// would look once and miss the regression.
func TestWindowStretchesMetricChecks(t *testing.T) {
	var bad atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ratio := 0.001
		if bad.Load() {
			ratio = 0.3
		}
		fmt.Fprintf(w, `{"errorRatio": %g}`, ratio)
	}))
	defer srv.Close()
	time.AfterFunc(500*time.Millisecond, func() { bad.Store(true) })
	var out bytes.Buffer
	w := watch.Window{
		Checks: []pipeline.Step{{Name: "error-rate", Web: &pipeline.WebCheck{URL: srv.URL, JSONPath: "$.errorRatio",
			Measure: pipeline.Measure{Interval: pipeline.Duration(100 * time.Millisecond), Count: 1,
				SuccessCondition: "result < 0.01", FailureCondition: "result > 0.05"}}}},
		Until:   time.Now().Add(time.Minute),
		Every:   time.Hour,
		Drivers: map[string]step.Driver{"web": metric.Driver{}},
	}
	res := w.Run(context.Background(), step.Request{Output: &out})
	if res.OK || !strings.HasPrefix(res.Message, "check error-rate failed (run 1)") {
		t.Fatalf("result %+v, want the first run to catch the regression\n%s", res, out.String())
	}
	var measured int
	for _, l := range strings.Split(out.String(), "\n") {
		if c, rest, ok := watch.SplitLine(l); ok && c == "error-rate" {
			if _, ok := metric.ParseMeasurement(rest); ok {
				measured++
			}
		}
	}
	if measured < 4 {
		t.Errorf("%d measurements recorded, want one every 100 ms until the regression\n%s", measured, out.String())
	}
}
