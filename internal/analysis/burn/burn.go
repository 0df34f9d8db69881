// Package burn decides whether a service is spending its error budget too
// fast to promote a release into it, with the multi-window, multi-burn-rate
// rule of the Google SRE workbook.
//
// A service with an availability objective of 99.9% over 30 days has an
// error budget of 0.1% of its requests. The burn rate over a window is the
// error ratio over that window divided by the budget: a burn rate of 1
// spends the budget exactly in the period, a burn rate of 14.4 spends 2% of
// it in an hour. Each Rule pairs a long window, which shows that the burn
// is significant, with a short one, which shows that it is still going on;
// a rule fires when the burn rates of both windows exceed its factor, and
// Evaluate blocks when any rule fires.
//
// The error ratio is measured with two queries per window, Spec.Errors and
// Spec.Total, in which $window stands for the window as a PromQL duration.
package burn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis"
)

// WindowVar is the placeholder of Spec.Errors and Spec.Total that stands
// for the window, such as 1h or 5m.
const WindowVar = "$window"

// DefaultPeriod is the period of the objective when Spec.Period is zero: 30
// days.
const DefaultPeriod = 30 * 24 * time.Hour

// DefaultRules returns the rules used when Spec.Rules is empty: the first
// two alerting rules of the SRE workbook, a burn rate of 14.4 over an hour
// and five minutes (2% of a 30-day budget in an hour) and a burn rate of 6
// over six hours and thirty minutes (5% of the budget in six hours).
func DefaultRules() []Rule {
	return []Rule{
		{Long: time.Hour, Short: 5 * time.Minute, Factor: 14.4},
		{Long: 6 * time.Hour, Short: 30 * time.Minute, Factor: 6},
	}
}

// Spec is what Evaluate checks: the queries that count requests, the
// objective, and the rules.
type Spec struct {
	// Errors is the PromQL expression of the rate of failed requests over
	// $window, such as sum(rate(http_requests_total{code=~"5.."}[$window])).
	// The samples it returns are summed; no data counts as no errors.
	Errors string
	// Total is the PromQL expression of the rate of all requests over
	// $window, such as sum(rate(http_requests_total[$window])). The samples
	// it returns are summed; no data, or a sum of 0, leaves the error ratio
	// of the window unknown.
	Total string
	// Objective is the share of requests that should succeed, in percent,
	// such as 99.9. It must be above 0 and below 100.
	Objective float64
	// Period is the time over which the objective holds; it only appears in
	// reasons, since burn rates do not depend on it. Defaults to 30 days.
	Period time.Duration
	// Rules are the pairs of windows and their factors. Defaults to
	// DefaultRules.
	Rules []Rule
}

// Rule fires when the burn rates over both its windows exceed its factor.
type Rule struct {
	// Long is the window that shows the burn is significant, such as 1h.
	Long time.Duration
	// Short is the window that shows the burn goes on, such as 5m; it must
	// be shorter than Long.
	Short time.Duration
	// Factor is the burn rate both windows must exceed, such as 14.4.
	Factor float64
}

// withDefaults returns s with its zero fields set to their defaults.
func (s Spec) withDefaults() Spec {
	if s.Period == 0 {
		s.Period = DefaultPeriod
	}
	if len(s.Rules) == 0 {
		s.Rules = DefaultRules()
	}
	return s
}

// Validate reports every problem of s, each naming its field, such as
// "objective 100: must be above 0 and below 100". Zero Period and empty
// Rules are valid: they take their defaults.
func (s Spec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, q := range []struct{ field, query string }{{"errors", s.Errors}, {"total", s.Total}} {
		switch {
		case strings.TrimSpace(q.query) == "":
			bad("%s: query is empty", q.field)
		case !strings.Contains(q.query, WindowVar):
			bad("%s %q: query does not contain %s", q.field, q.query, WindowVar)
		}
	}
	if !(s.Objective > 0 && s.Objective < 100) { // also rejects NaN
		bad("objective %v: must be above 0 and below 100 (percent)", s.Objective)
	}
	if s.Period < 0 {
		bad("period %v: must not be negative", s.Period)
	}
	for i, r := range s.Rules {
		for _, w := range []struct {
			field string
			d     time.Duration
		}{{"long", r.Long}, {"short", r.Short}} {
			switch {
			case w.d <= 0:
				bad("rules[%d].%s %v: must be positive", i, w.field, w.d)
			case w.d%time.Millisecond != 0:
				bad("rules[%d].%s %v: must be a whole number of milliseconds", i, w.field, w.d)
			}
		}
		if r.Short > 0 && r.Long > 0 && r.Short >= r.Long {
			bad("rules[%d].short %s: must be shorter than long %s", i, formatWindow(r.Short), formatWindow(r.Long))
		}
		if !(r.Factor > 0) || math.IsInf(r.Factor, 1) {
			bad("rules[%d].factor %v: must be positive", i, r.Factor)
		}
	}
	return errors.Join(errs...)
}

// Query returns query with $window replaced by window as a PromQL duration:
// Query("sum(rate(x[$window]))", time.Hour) is "sum(rate(x[1h]))".
func Query(query string, window time.Duration) string {
	return strings.ReplaceAll(query, WindowVar, formatWindow(window))
}

// Result is the outcome of Evaluate.
type Result struct {
	// Blocked is true when at least one rule fires.
	Blocked bool
	// Reason says why, in a sentence for people, such as "within error
	// budget: highest burn rate 0.8 (1h)".
	Reason string
	// NoData is true when the error ratio of at least one window is
	// unknown, because Total had no data or was 0. The caller decides
	// whether that may pass; Blocked is false unless a rule with data
	// fires.
	NoData bool
	// Windows holds each distinct window of the rules, shortest first.
	Windows []Window
	// Rules holds the outcome of each rule, in the order of Spec.Rules.
	Rules []RuleResult
	// Err is set when the spec is invalid or a query failed; Blocked is
	// then false.
	Err error
}

// Window is what was measured over one window.
type Window struct {
	Window time.Duration
	// ErrorRatio is Errors/Total over the window; nil when unknown.
	ErrorRatio *float64
	// BurnRate is ErrorRatio divided by the error budget, 1 − Objective/100;
	// nil when unknown.
	BurnRate *float64
}

// RuleResult is the outcome of one rule.
type RuleResult struct {
	Rule
	// LongBurn and ShortBurn are the burn rates over the rule's windows; nil
	// when unknown.
	LongBurn, ShortBurn *float64
	// Firing is true when both burn rates exceed the factor.
	Firing bool
}

// Evaluate measures the burn rate of every window of s's rules as of now,
// with instant queries to p, and applies the rules.
func Evaluate(ctx context.Context, p analysis.Provider, s Spec, now time.Time) Result {
	if err := s.Validate(); err != nil {
		err = fmt.Errorf("burn: invalid spec: %w", err)
		return Result{Err: err, Reason: "cannot judge the burn rate: " + oneLine(err)}
	}
	s = s.withDefaults()
	budget := (100 - s.Objective) / 100

	var durations []time.Duration
	for _, r := range s.Rules {
		durations = append(durations, r.Long, r.Short)
	}
	slices.Sort(durations)
	durations = slices.Compact(durations)

	var res Result
	burns := make(map[time.Duration]*float64, len(durations))
	for _, d := range durations {
		ratio, err := errorRatio(ctx, p, s, d, now)
		if err != nil {
			res.Err = err
			res.Reason = "cannot judge the burn rate: " + oneLine(err)
			return res
		}
		w := Window{Window: d, ErrorRatio: ratio}
		if ratio != nil {
			w.BurnRate = ptr(*ratio / budget)
		}
		burns[d] = w.BurnRate
		res.Windows = append(res.Windows, w)
	}

	var firing []string
	for _, r := range s.Rules {
		rr := RuleResult{Rule: r, LongBurn: burns[r.Long], ShortBurn: burns[r.Short]}
		rr.Firing = rr.LongBurn != nil && rr.ShortBurn != nil &&
			*rr.LongBurn > r.Factor && *rr.ShortBurn > r.Factor
		if rr.Firing {
			res.Blocked = true
			firing = append(firing, fmt.Sprintf("%s burn rate %s and %s burn rate %s exceed %s",
				formatWindow(r.Long), formatRate(*rr.LongBurn),
				formatWindow(r.Short), formatRate(*rr.ShortBurn), formatFloat(r.Factor)))
		}
		res.Rules = append(res.Rules, rr)
	}

	var missing []string
	var highest *Window
	for i, w := range res.Windows {
		if w.BurnRate == nil {
			missing = append(missing, formatWindow(w.Window))
			continue
		}
		if highest == nil || *w.BurnRate > *highest.BurnRate {
			highest = &res.Windows[i]
		}
	}
	res.NoData = len(missing) > 0

	objective := fmt.Sprintf("objective %s%% over %s", formatFloat(s.Objective), formatWindow(s.Period))
	switch {
	case res.Blocked:
		res.Reason = fmt.Sprintf("burning error budget: %s (%s)", strings.Join(firing, "; "), objective)
		if res.NoData {
			res.Reason += fmt.Sprintf("; no data for %s", strings.Join(missing, ", "))
		}
	case res.NoData:
		res.Reason = fmt.Sprintf("no data for %s; cannot judge the burn rate", strings.Join(missing, ", "))
		if highest != nil {
			res.Reason += fmt.Sprintf("; highest burn rate with data %s (%s)",
				formatRate(*highest.BurnRate), formatWindow(highest.Window))
		}
	default:
		res.Reason = fmt.Sprintf("within error budget: highest burn rate %s (%s)",
			formatRate(*highest.BurnRate), formatWindow(highest.Window))
	}
	return res
}

// errorRatio returns Errors/Total over window d as of now, nil when Total
// has no data or is 0.
func errorRatio(ctx context.Context, p analysis.Provider, s Spec, d time.Duration, now time.Time) (*float64, error) {
	total, err := sum(ctx, p, Query(s.Total, d), now)
	if err != nil {
		return nil, fmt.Errorf("burn: total over %s: %w", formatWindow(d), err)
	}
	if total == nil || *total == 0 {
		return nil, nil
	}
	errs, err := sum(ctx, p, Query(s.Errors, d), now)
	if err != nil {
		return nil, fmt.Errorf("burn: errors over %s: %w", formatWindow(d), err)
	}
	if errs == nil {
		return ptr(0.0), nil // no failed requests
	}
	return ptr(*errs / *total), nil
}

// sum runs query and returns the sum of its samples, or its scalar; nil for
// no data.
func sum(ctx context.Context, p analysis.Provider, query string, at time.Time) (*float64, error) {
	v, err := p.Query(ctx, query, at)
	if err != nil {
		return nil, err
	}
	switch {
	case v.JSON != nil:
		return nil, fmt.Errorf("query %q returned a JSON document, not a number", query)
	case v.Scalar != nil:
		if math.IsNaN(*v.Scalar) {
			return nil, nil
		}
		return ptr(*v.Scalar), nil
	}
	var total float64
	n := 0
	for _, s := range v.Vector {
		if !math.IsNaN(s.Value) {
			total += s.Value
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}
	return &total, nil
}

func ptr[T any](v T) *T { return &v }

// formatWindow writes d as a PromQL duration: 30d, 6h, 1h30m, 5m, 10s,
// 1500ms.
func formatWindow(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	if d%time.Millisecond != 0 {
		return d.String()
	}
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			d -= n * u.d
		}
	}
	return b.String()
}

// formatRate writes a burn rate with one decimal, or two significant digits
// when it is smaller than 0.1 but not 0.
func formatRate(f float64) string {
	if f != 0 && math.Abs(f) < 0.1 {
		return strconv.FormatFloat(f, 'g', 2, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

// formatFloat writes f in its shortest form: 14.4, 6, 99.9.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// oneLine returns err's text with the lines errors.Join puts between errors
// replaced by "; ".
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
