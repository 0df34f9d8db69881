package burn_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis"
	"github.com/ferry-dev/ferry/internal/analysis/burn"
)

func ExampleEvaluate() {
	// A provider that answers every window: 1000 requests per second, of
	// which 25 fail over the last hour and 40 over the last five minutes.
	p := staticProvider{
		`sum(rate(http_requests_total[1h]))`:              1000,
		`sum(rate(http_requests_total{code=~"5.."}[1h]))`: 25,
		`sum(rate(http_requests_total[5m]))`:              1000,
		`sum(rate(http_requests_total{code=~"5.."}[5m]))`: 40,
	}
	r := burn.Evaluate(context.Background(), p, burn.Spec{
		Errors:    `sum(rate(http_requests_total{code=~"5.."}[$window]))`,
		Total:     `sum(rate(http_requests_total[$window]))`,
		Objective: 99.9,
		Rules:     []burn.Rule{{Long: time.Hour, Short: 5 * time.Minute, Factor: 14.4}},
	}, time.Now())
	fmt.Println(r.Blocked)
	fmt.Println(r.Reason)
	// Output:
	// true
	// burning error budget: 1h burn rate 25.0 and 5m burn rate 40.0 exceed 14.4 (objective 99.9% over 30d)
}

// staticProvider answers each query it knows with a scalar.
type staticProvider map[string]float64

func (p staticProvider) Query(_ context.Context, query string, _ time.Time) (analysis.Value, error) {
	f, ok := p[query]
	if !ok {
		return analysis.Value{}, nil
	}
	return analysis.Value{Scalar: &f}, nil
}
