package burn_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-dev/ferry/internal/analysis"
	"github.com/ferry-dev/ferry/internal/analysis/burn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeProvider answers queries from a map; a query it does not know has no
// data. It records the queries it was asked.
type fakeProvider struct {
	values  map[string]analysis.Value
	errs    map[string]error
	queries []string
	at      []time.Time
}

var _ analysis.Provider = (*fakeProvider)(nil)

func (f *fakeProvider) Query(_ context.Context, query string, at time.Time) (analysis.Value, error) {
	f.queries = append(f.queries, query)
	f.at = append(f.at, at)
	if err := f.errs[query]; err != nil {
		return analysis.Value{}, err
	}
	return f.values[query], nil
}

const (
	errorsQuery = `sum(rate(http_requests_total{code=~"5.."}[$window]))`
	totalQuery  = `sum(rate(http_requests_total[$window]))`
)

var now = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

func spec() burn.Spec {
	return burn.Spec{Errors: errorsQuery, Total: totalQuery, Objective: 99.9}
}

func scalar(f float64) analysis.Value { return analysis.Value{Scalar: &f} }

// burning returns a provider whose windows burn a 99.9% objective at the
// given rates, with 1000 requests per second.
func burning(rates map[time.Duration]float64) *fakeProvider {
	f := &fakeProvider{values: map[string]analysis.Value{}}
	for d, rate := range rates {
		f.values[burn.Query(totalQuery, d)] = scalar(1000)
		f.values[burn.Query(errorsQuery, d)] = scalar(rate * 0.001 * 1000)
	}
	return f
}

// quiet is a burn rate well within every default rule.
const quiet = 0.5

func TestEvaluateRules(t *testing.T) {
	tests := []struct {
		name        string
		rates       map[time.Duration]float64
		wantBlocked bool
		wantFiring  []bool
		wantReason  string
	}{
		{
			name:        "both windows over the factor",
			rates:       map[time.Duration]float64{time.Hour: 20.1, 5 * time.Minute: 31, 6 * time.Hour: quiet, 30 * time.Minute: quiet},
			wantBlocked: true,
			wantFiring:  []bool{true, false},
			wantReason:  "burning error budget: 1h burn rate 20.1 and 5m burn rate 31.0 exceed 14.4 (objective 99.9% over 30d)",
		},
		{
			name:       "only the long window over the factor",
			rates:      map[time.Duration]float64{time.Hour: 20, 5 * time.Minute: 2, 6 * time.Hour: quiet, 30 * time.Minute: quiet},
			wantFiring: []bool{false, false},
			wantReason: "within error budget: highest burn rate 20.0 (1h)",
		},
		{
			name:       "only the short window over the factor",
			rates:      map[time.Duration]float64{time.Hour: 3, 5 * time.Minute: 40, 6 * time.Hour: quiet, 30 * time.Minute: quiet},
			wantFiring: []bool{false, false},
			wantReason: "within error budget: highest burn rate 40.0 (5m)",
		},
		{
			name:        "second rule firing",
			rates:       map[time.Duration]float64{time.Hour: 9, 5 * time.Minute: 10, 6 * time.Hour: 7, 30 * time.Minute: 8},
			wantBlocked: true,
			wantFiring:  []bool{false, true},
			wantReason:  "burning error budget: 6h burn rate 7.0 and 30m burn rate 8.0 exceed 6 (objective 99.9% over 30d)",
		},
		{
			name:        "both rules firing",
			rates:       map[time.Duration]float64{time.Hour: 15, 5 * time.Minute: 16, 6 * time.Hour: 7, 30 * time.Minute: 8},
			wantBlocked: true,
			wantFiring:  []bool{true, true},
			wantReason: "burning error budget: 1h burn rate 15.0 and 5m burn rate 16.0 exceed 14.4; " +
				"6h burn rate 7.0 and 30m burn rate 8.0 exceed 6 (objective 99.9% over 30d)",
		},
		{
			name:       "healthy",
			rates:      map[time.Duration]float64{time.Hour: 0.8, 5 * time.Minute: 0.3, 6 * time.Hour: 0.04, 30 * time.Minute: 0},
			wantFiring: []bool{false, false},
			wantReason: "within error budget: highest burn rate 0.8 (1h)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := burn.Evaluate(t.Context(), burning(tt.rates), spec(), now)
			if r.Err != nil {
				t.Fatalf("Err: %v", r.Err)
			}
			if r.Blocked != tt.wantBlocked || r.Reason != tt.wantReason || r.NoData {
				t.Errorf("blocked %v, no data %v, reason %q\nwant blocked %v, reason %q",
					r.Blocked, r.NoData, r.Reason, tt.wantBlocked, tt.wantReason)
			}
			var firing []bool
			for _, rr := range r.Rules {
				firing = append(firing, rr.Firing)
			}
			if !slices.Equal(firing, tt.wantFiring) {
				t.Errorf("firing %v, want %v", firing, tt.wantFiring)
			}
			if len(r.Windows) != 4 {
				t.Fatalf("windows %+v, want 4", r.Windows)
			}
			for _, w := range r.Windows {
				if w.BurnRate == nil || math.Abs(*w.BurnRate-tt.rates[w.Window]) > 1e-9 {
					t.Errorf("%v: burn rate %v, want %v", w.Window, deref(w.BurnRate), tt.rates[w.Window])
				}
			}
		})
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

func TestEvaluateDetails(t *testing.T) {
	rates := map[time.Duration]float64{time.Hour: 20, 5 * time.Minute: 30, 6 * time.Hour: 1, 30 * time.Minute: 2}
	p := burning(rates)
	r := burn.Evaluate(t.Context(), p, spec(), now)

	wantWindows := []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 6 * time.Hour}
	var windows []time.Duration
	for _, w := range r.Windows {
		windows = append(windows, w.Window)
		if w.ErrorRatio == nil || math.Abs(*w.ErrorRatio-rates[w.Window]*0.001) > 1e-12 {
			t.Errorf("%v: error ratio %v, want %v", w.Window, deref(w.ErrorRatio), rates[w.Window]*0.001)
		}
	}
	if !slices.Equal(windows, wantWindows) {
		t.Errorf("windows %v, want %v (distinct, shortest first)", windows, wantWindows)
	}

	r0 := r.Rules[0]
	if r0.Rule != (burn.Rule{Long: time.Hour, Short: 5 * time.Minute, Factor: 14.4}) ||
		math.Abs(*r0.LongBurn-20) > 1e-9 || math.Abs(*r0.ShortBurn-30) > 1e-9 {
		t.Errorf("rule 0: %+v, long %v, short %v", r0.Rule, *r0.LongBurn, *r0.ShortBurn)
	}

	// Two queries per window, each at now, with $window substituted.
	if len(p.queries) != 8 {
		t.Errorf("%d queries, want 8: %q", len(p.queries), p.queries)
	}
	for _, want := range []string{
		`sum(rate(http_requests_total{code=~"5.."}[5m]))`, `sum(rate(http_requests_total[5m]))`,
		`sum(rate(http_requests_total{code=~"5.."}[30m]))`, `sum(rate(http_requests_total[30m]))`,
		`sum(rate(http_requests_total{code=~"5.."}[1h]))`, `sum(rate(http_requests_total[1h]))`,
		`sum(rate(http_requests_total{code=~"5.."}[6h]))`, `sum(rate(http_requests_total[6h]))`,
	} {
		if !slices.Contains(p.queries, want) {
			t.Errorf("query %s was not asked; asked %q", want, p.queries)
		}
	}
	for _, at := range p.at {
		if !at.Equal(now) {
			t.Errorf("query at %v, want %v", at, now)
		}
	}
}

func TestEvaluateSumsVectors(t *testing.T) {
	s := burn.Spec{
		Errors: `sum by (instance) (rate(errors_total[$window]))`, Total: `sum by (instance) (rate(requests_total[$window]))`,
		Objective: 90, Period: 28 * 24 * time.Hour,
		Rules: []burn.Rule{{Long: 90 * time.Minute, Short: 90 * time.Second, Factor: 2}},
	}
	vec := func(values ...float64) analysis.Value {
		var v analysis.Value
		for i, f := range values {
			v.Vector = append(v.Vector, analysis.Sample{Labels: map[string]string{"instance": fmt.Sprint(i)}, Value: f})
		}
		return v
	}
	p := &fakeProvider{values: map[string]analysis.Value{
		`sum by (instance) (rate(requests_total[1h30m]))`: vec(40, 60),
		`sum by (instance) (rate(errors_total[1h30m]))`:   vec(10, 15, math.NaN()),
		`sum by (instance) (rate(requests_total[1m30s]))`: vec(50, 50),
		`sum by (instance) (rate(errors_total[1m30s]))`:   vec(30),
	}}
	r := burn.Evaluate(t.Context(), p, s, now)
	want := "burning error budget: 1h30m burn rate 2.5 and 1m30s burn rate 3.0 exceed 2 (objective 90% over 28d)"
	if r.Err != nil || !r.Blocked || r.Reason != want {
		t.Errorf("blocked %v, reason %q, err %v; want blocked, %q", r.Blocked, r.Reason, r.Err, want)
	}
}

func TestEvaluateNoData(t *testing.T) {
	t.Run("no total for a window", func(t *testing.T) {
		p := burning(map[time.Duration]float64{time.Hour: 0.8, 6 * time.Hour: 0.2, 30 * time.Minute: 0.1})
		r := burn.Evaluate(t.Context(), p, spec(), now)
		want := "no data for 5m; cannot judge the burn rate; highest burn rate with data 0.8 (1h)"
		if r.Err != nil || r.Blocked || !r.NoData || r.Reason != want {
			t.Errorf("blocked %v, no data %v, reason %q, err %v; want not blocked, no data, %q",
				r.Blocked, r.NoData, r.Reason, r.Err, want)
		}
		if w := r.Windows[0]; w.Window != 5*time.Minute || w.ErrorRatio != nil || w.BurnRate != nil {
			t.Errorf("window %v: ratio %v, burn %v; want unknown", w.Window, deref(w.ErrorRatio), deref(w.BurnRate))
		}
		if r.Rules[0].ShortBurn != nil || r.Rules[0].Firing {
			t.Errorf("rule 0: %+v", r.Rules[0])
		}
	})
	t.Run("total of zero", func(t *testing.T) {
		p := burning(map[time.Duration]float64{time.Hour: 0.8, 6 * time.Hour: 0.2})
		p.values[burn.Query(totalQuery, 5*time.Minute)] = scalar(0)
		p.values[burn.Query(totalQuery, 30*time.Minute)] = analysis.Value{Vector: []analysis.Sample{{Value: 0}}}
		r := burn.Evaluate(t.Context(), p, spec(), now)
		if !r.NoData || r.Blocked || !strings.HasPrefix(r.Reason, "no data for 5m, 30m; cannot judge the burn rate") {
			t.Errorf("no data %v, blocked %v, reason %q", r.NoData, r.Blocked, r.Reason)
		}
	})
	t.Run("no data at all", func(t *testing.T) {
		r := burn.Evaluate(t.Context(), &fakeProvider{}, spec(), now)
		want := "no data for 5m, 30m, 1h, 6h; cannot judge the burn rate"
		if r.Err != nil || r.Blocked || !r.NoData || r.Reason != want {
			t.Errorf("blocked %v, no data %v, reason %q, err %v; want %q", r.Blocked, r.NoData, r.Reason, r.Err, want)
		}
	})
	t.Run("no errors series means no errors", func(t *testing.T) {
		p := burning(map[time.Duration]float64{time.Hour: 1, 5 * time.Minute: 1, 6 * time.Hour: 1, 30 * time.Minute: 1})
		delete(p.values, burn.Query(errorsQuery, 5*time.Minute))
		r := burn.Evaluate(t.Context(), p, spec(), now)
		if r.NoData || r.Windows[0].ErrorRatio == nil || *r.Windows[0].ErrorRatio != 0 {
			t.Errorf("no data %v, 5m ratio %v; want known ratio 0", r.NoData, deref(r.Windows[0].ErrorRatio))
		}
	})
	t.Run("a firing rule blocks although another window has no data", func(t *testing.T) {
		p := burning(map[time.Duration]float64{time.Hour: 20, 5 * time.Minute: 30})
		r := burn.Evaluate(t.Context(), p, spec(), now)
		want := "burning error budget: 1h burn rate 20.0 and 5m burn rate 30.0 exceed 14.4 (objective 99.9% over 30d); no data for 30m, 6h"
		if !r.Blocked || !r.NoData || r.Reason != want {
			t.Errorf("blocked %v, no data %v, reason %q; want %q", r.Blocked, r.NoData, r.Reason, want)
		}
	})
}

func TestEvaluateProviderError(t *testing.T) {
	boom := errors.New("prometheus: timeout: query timed out (status 503)")
	p := burning(map[time.Duration]float64{time.Hour: 20, 5 * time.Minute: 30, 6 * time.Hour: 1, 30 * time.Minute: 1})
	p.errs = map[string]error{burn.Query(errorsQuery, time.Hour): boom}
	r := burn.Evaluate(t.Context(), p, spec(), now)
	if !errors.Is(r.Err, boom) {
		t.Fatalf("Err %v, want %v", r.Err, boom)
	}
	if r.Blocked {
		t.Errorf("blocked on a query error")
	}
	want := "cannot judge the burn rate: burn: errors over 1h: prometheus: timeout: query timed out (status 503)"
	if r.Reason != want {
		t.Errorf("reason %q, want %q", r.Reason, want)
	}

	t.Run("JSON value", func(t *testing.T) {
		p := &fakeProvider{values: map[string]analysis.Value{burn.Query(totalQuery, 5*time.Minute): {JSON: "x"}}}
		r := burn.Evaluate(t.Context(), p, spec(), now)
		if r.Err == nil || r.Blocked || !strings.Contains(r.Reason, "total over 5m") {
			t.Errorf("err %v, blocked %v, reason %q", r.Err, r.Blocked, r.Reason)
		}
	})
	t.Run("invalid spec", func(t *testing.T) {
		p := &fakeProvider{}
		r := burn.Evaluate(t.Context(), p, burn.Spec{Errors: errorsQuery, Total: totalQuery}, now)
		if r.Err == nil || r.Blocked || !strings.Contains(r.Reason, "objective 0") || len(p.queries) != 0 {
			t.Errorf("err %v, blocked %v, reason %q, queries %q", r.Err, r.Blocked, r.Reason, p.queries)
		}
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*burn.Spec)
		want   []string // substrings of the error; none for a valid spec
	}{
		{name: "valid with defaults", modify: func(*burn.Spec) {}},
		{name: "valid with rules", modify: func(s *burn.Spec) {
			s.Rules = []burn.Rule{{Long: 10 * time.Second, Short: 5 * time.Second, Factor: 2}}
			s.Period = 7 * 24 * time.Hour
		}},
		{name: "empty errors", modify: func(s *burn.Spec) { s.Errors = " " }, want: []string{"errors: query is empty"}},
		{name: "total without $window", modify: func(s *burn.Spec) { s.Total = "sum(rate(x[5m]))" },
			want: []string{`total "sum(rate(x[5m]))": query does not contain $window`}},
		{name: "objective 100", modify: func(s *burn.Spec) { s.Objective = 100 }, want: []string{"objective 100: must be above 0 and below 100"}},
		{name: "objective 0", modify: func(s *burn.Spec) { s.Objective = 0 }, want: []string{"objective 0:"}},
		{name: "objective NaN", modify: func(s *burn.Spec) { s.Objective = math.NaN() }, want: []string{"objective NaN:"}},
		{name: "negative period", modify: func(s *burn.Spec) { s.Period = -time.Hour }, want: []string{"period -1h0m0s: must not be negative"}},
		{name: "zero long window", modify: func(s *burn.Spec) {
			s.Rules = []burn.Rule{{Short: time.Minute, Factor: 1}}
		}, want: []string{"rules[0].long 0s: must be positive"}},
		{name: "negative short window", modify: func(s *burn.Spec) {
			s.Rules = []burn.Rule{{Long: time.Hour, Short: time.Minute, Factor: 1}, {Long: time.Hour, Short: -time.Minute, Factor: 1}}
		}, want: []string{"rules[1].short -1m0s: must be positive"}},
		{name: "short not shorter than long", modify: func(s *burn.Spec) {
			s.Rules = []burn.Rule{{Long: time.Hour, Short: time.Hour, Factor: 1}}
		}, want: []string{"rules[0].short 1h: must be shorter than long 1h"}},
		{name: "sub-millisecond window", modify: func(s *burn.Spec) {
			s.Rules = []burn.Rule{{Long: time.Hour, Short: time.Microsecond, Factor: 1}}
		}, want: []string{"rules[0].short 1µs: must be a whole number of milliseconds"}},
		{name: "zero factor", modify: func(s *burn.Spec) {
			s.Rules = []burn.Rule{{Long: time.Hour, Short: time.Minute}}
		}, want: []string{"rules[0].factor 0: must be positive"}},
		{name: "every problem", modify: func(s *burn.Spec) {
			*s = burn.Spec{Objective: 120, Rules: []burn.Rule{{Long: time.Minute, Short: time.Hour, Factor: -1}}}
		}, want: []string{"errors: query is empty", "total: query is empty", "objective 120", "rules[0].short 1h", "rules[0].factor -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec()
			tt.modify(&s)
			err := s.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestQuery(t *testing.T) {
	tests := []struct {
		query  string
		window time.Duration
		want   string
	}{
		{`sum(rate(x[$window]))`, time.Hour, `sum(rate(x[1h]))`},
		{`sum(rate(x[$window]))`, 5 * time.Minute, `sum(rate(x[5m]))`},
		{`sum(rate(x[$window]))`, 10 * time.Second, `sum(rate(x[10s]))`},
		{`sum(rate(x[$window]))`, 1500 * time.Millisecond, `sum(rate(x[1s500ms]))`},
		{`sum(rate(x[$window]))`, 30 * 24 * time.Hour, `sum(rate(x[30d]))`},
		{`sum(rate(x[$window]))`, 26*time.Hour + 30*time.Minute, `sum(rate(x[1d2h30m]))`},
		{`sum(increase(e[$window])) / sum(increase(t[$window]))`, 6 * time.Hour, `sum(increase(e[6h])) / sum(increase(t[6h]))`},
		{`x{window="$window"}`, time.Minute, `x{window="1m"}`},
	}
	for _, tt := range tests {
		if got := burn.Query(tt.query, tt.window); got != tt.want {
			t.Errorf("Query(%q, %v) = %q, want %q", tt.query, tt.window, got, tt.want)
		}
	}
}
