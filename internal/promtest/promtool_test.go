package promtest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/promtest"
)

// fatalRecorder is a testing.TB whose Fatalf records the failure instead of
// ending the test, so that a test can check that a check fails.
type fatalRecorder struct {
	testing.TB
	failure string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.failure = fmt.Sprintf(format, args...) }

func TestCheckMetrics(t *testing.T) {
	promtest.CheckMetrics(t, []byte("# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total{queue=\"a\"} 3\n"))

	r := &fatalRecorder{TB: t}
	promtest.CheckMetrics(r, []byte("# HELP jobs_seconds Jobs done.\n# TYPE jobs_seconds counter\njobs_seconds 3\n"))
	if !strings.Contains(r.failure, `"_total" suffix`) {
		t.Fatalf("a counter without _total passed, or failed for another reason: %q", r.failure)
	}
}

func TestCheckExpressions(t *testing.T) {
	promtest.CheckExpressions(t, []string{
		`sum by (env) (rate(jobs_total[5m]))`,
		`histogram_quantile(0.95, sum by (le) (rate(job_seconds_bucket[1h])))`,
	})

	r := &fatalRecorder{TB: t}
	promtest.CheckExpressions(r, []string{`rate(jobs_total[5m])`, `sum(rate(jobs_total[5m]) by (env)`})
	if !strings.Contains(r.failure, "check:expression_2") || strings.Contains(r.failure, `"check:expression_1"`) ||
		!strings.Contains(r.failure, "sum(rate(jobs_total[5m]) by (env)") {
		t.Fatalf("want a failure naming expression 2 only, got: %q", r.failure)
	}
}
