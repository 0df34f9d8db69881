// Package analysis decides from metrics whether a deployment is healthy: an
// Analysis queries a Provider (Prometheus, or any JSON endpoint) a number of
// times, judges each measurement with CEL conditions over its result, and
// ends with a Verdict, as an Argo Rollouts AnalysisRun does.
//
//	verdict, err := analysis.Run(ctx, analysis.Analysis{
//		Provider:         analysis.Prometheus{Address: "http://prometheus:9090"},
//		Query:            `scalar(sum(rate(errors_total[5m])) / sum(rate(requests_total[5m])))`,
//		Interval:         time.Minute,
//		Count:            5,
//		SuccessCondition: "result < 0.01",
//		FailureCondition: "result > 0.05",
//	}, analysis.RealClock{}, record)
package analysis

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Verdict is the outcome of a measurement or of a whole analysis.
type Verdict string

// The verdicts.
const (
	// Successful: the success condition held, or the failure condition did
	// not. A run is successful when it took all its measurements within its
	// limits.
	Successful Verdict = "successful"
	// Failed: the failure condition held, or the success condition did not.
	// A run fails once its failed measurements exceed its FailureLimit.
	Failed Verdict = "failed"
	// Inconclusive: neither condition held. A run is inconclusive once its
	// inconclusive measurements exceed its InconclusiveLimit, which asks a
	// person to decide.
	Inconclusive Verdict = "inconclusive"
	// Errored: the query or a condition failed to run. A run errs once its
	// consecutive errors exceed its ConsecutiveErrorLimit.
	Errored Verdict = "error"
	// Waiting is a measurement's only: it found no data, and the run
	// retries (NoData is wait). It does not count towards the run's Count.
	Waiting Verdict = "waiting"
)

// What a measurement without data counts as: Analysis.NoData.
const (
	NoDataFail         = "fail"
	NoDataInconclusive = "inconclusive"
	NoDataPass         = "pass"
	NoDataWait         = "wait"
)

// Defaults of Analysis.
const (
	// DefaultInterval is the time between measurements.
	DefaultInterval = time.Minute
	// DefaultCount is the number of measurements.
	DefaultCount = 1
	// DefaultConsecutiveErrorLimit is how many errors in a row a run
	// tolerates.
	DefaultConsecutiveErrorLimit = 4
	// DefaultNoData is what a measurement without data counts as.
	DefaultNoData = NoDataInconclusive
)

// Analysis is one metric check: what to measure, how often, and how to judge
// it.
type Analysis struct {
	// Provider answers Query. Required.
	Provider Provider
	// Query is what Provider evaluates, such as a PromQL expression; use
	// Interpolate for its variables first. The Web provider ignores it.
	Query string
	// Interval is the time between measurements, and before a measurement
	// that erred or found no data to wait for is retried. Defaults to 1
	// minute.
	Interval time.Duration
	// Count is the number of measurements that must be taken; the first is
	// taken at once. Measurements that erred or are waiting for data do not
	// count. Defaults to 1.
	Count int
	// SuccessCondition is a CEL condition over result that makes a
	// measurement successful, such as "result < 0.01". With no
	// FailureCondition, a measurement where it does not hold fails. At least
	// one of the conditions is required.
	SuccessCondition string
	// FailureCondition is a CEL condition over result that makes a
	// measurement fail, such as "result > 0.05"; it wins when both hold.
	// With no SuccessCondition, a measurement where it does not hold is
	// successful; with both, a measurement where neither holds is
	// inconclusive.
	FailureCondition string
	// FailureLimit is how many failed measurements a run tolerates: it fails
	// as soon as it has more. Defaults to 0.
	FailureLimit int
	// InconclusiveLimit is how many inconclusive measurements a run
	// tolerates: it is inconclusive as soon as it has more. Defaults to 0.
	InconclusiveLimit int
	// ConsecutiveErrorLimit is how many measurements in a row may err: the
	// run errs as soon as more do. Any measurement that does not err resets
	// the count. Zero means the default, 4; a negative limit makes the first
	// error end the run.
	ConsecutiveErrorLimit int
	// NoData is what a measurement without data counts as: fail,
	// inconclusive or pass; or wait, which retries at the next interval
	// without counting the measurement, up to Count times in a run, after
	// which no data counts as inconclusive. Defaults to inconclusive.
	NoData string
}

// Measurement is one query of an analysis and its verdict.
type Measurement struct {
	// At is when the query was made, by the run's clock.
	At time.Time `json:"at"`
	// Value is the query's answer; nil when the query erred.
	Value *Value `json:"value,omitempty"`
	// Verdict is successful, failed, inconclusive, error, or waiting.
	Verdict Verdict `json:"verdict"`
	// Error is why the measurement erred.
	Error string `json:"error,omitempty"`
}

// Clock tells the time and waits; tests stub it to run an analysis without
// sleeping.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// RealClock is the system's clock.
type RealClock struct{}

var _ Clock = RealClock{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Validate checks a's settings and compiles its conditions, so that a
// pipeline with a broken check is refused before it runs. A condition's
// error wraps an *Error with its position.
func (a Analysis) Validate() error {
	_, err := a.compile()
	return err
}

// plan is a validated Analysis with its defaults applied and its conditions
// compiled.
type plan struct {
	Analysis
	success, failure *Condition
	errorLimit       int
}

// compile validates a and returns its plan.
func (a Analysis) compile() (*plan, error) {
	p := &plan{Analysis: a, errorLimit: a.ConsecutiveErrorLimit}
	var errs []error
	if a.Provider == nil {
		errs = append(errs, errors.New("provider is required"))
	}
	switch {
	case a.Interval < 0:
		errs = append(errs, fmt.Errorf("interval %v is negative", a.Interval))
	case a.Interval == 0:
		p.Interval = DefaultInterval
	}
	switch {
	case a.Count < 0:
		errs = append(errs, fmt.Errorf("count %d is negative", a.Count))
	case a.Count == 0:
		p.Count = DefaultCount
	}
	if a.FailureLimit < 0 {
		errs = append(errs, fmt.Errorf("failureLimit %d is negative", a.FailureLimit))
	}
	if a.InconclusiveLimit < 0 {
		errs = append(errs, fmt.Errorf("inconclusiveLimit %d is negative", a.InconclusiveLimit))
	}
	switch {
	case a.ConsecutiveErrorLimit == 0:
		p.errorLimit = DefaultConsecutiveErrorLimit
	case a.ConsecutiveErrorLimit < 0:
		p.errorLimit = 0
	}
	switch a.NoData {
	case "":
		p.NoData = DefaultNoData
	case NoDataFail, NoDataInconclusive, NoDataPass, NoDataWait:
	default:
		errs = append(errs, fmt.Errorf("noData %q is not one of fail, inconclusive, pass, wait", a.NoData))
	}
	if a.SuccessCondition == "" && a.FailureCondition == "" {
		errs = append(errs, errors.New("successCondition or failureCondition is required"))
	}
	var err error
	if a.SuccessCondition != "" {
		if p.success, err = CompileCondition(a.SuccessCondition); err != nil {
			errs = append(errs, fmt.Errorf("successCondition: %w", err))
		}
	}
	if a.FailureCondition != "" {
		if p.failure, err = CompileCondition(a.FailureCondition); err != nil {
			errs = append(errs, fmt.Errorf("failureCondition: %w", err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("analysis: %w", errors.Join(errs...))
	}
	return p, nil
}

// Run runs a: it takes a measurement at once and then one every Interval,
// passes each to record (which may be nil), and returns the run's verdict
// as soon as it is known:
//
//   - failed when failed measurements exceed FailureLimit;
//   - inconclusive when inconclusive measurements exceed InconclusiveLimit;
//   - error when consecutive erring measurements exceed ConsecutiveErrorLimit;
//   - successful once Count measurements are taken without any of the above.
//
// Run returns an error, and no verdict, when a is invalid (see Validate) or
// ctx ends; measurements that err are verdicts, not errors.
func Run(ctx context.Context, a Analysis, clock Clock, record func(Measurement)) (Verdict, error) {
	p, err := a.compile()
	if err != nil {
		return "", err
	}
	if clock == nil {
		clock = RealClock{}
	}
	if record == nil {
		record = func(Measurement) {}
	}
	var counted, failed, inconclusive, errorsInARow, waits int
	for {
		m := p.measure(ctx, clock.Now(), waits < p.Count)
		if ctx.Err() != nil {
			return "", fmt.Errorf("analysis: %w", ctx.Err())
		}
		switch m.Verdict {
		case Successful:
			counted++
		case Failed:
			counted++
			failed++
		case Inconclusive:
			counted++
			inconclusive++
		case Waiting:
			waits++
		}
		if m.Verdict == Errored {
			errorsInARow++
		} else {
			errorsInARow = 0
		}
		record(m)
		switch {
		case failed > p.FailureLimit:
			return Failed, nil
		case inconclusive > p.InconclusiveLimit:
			return Inconclusive, nil
		case errorsInARow > p.errorLimit:
			return Errored, nil
		case counted >= p.Count:
			return Successful, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("analysis: %w", ctx.Err())
		case <-clock.After(p.Interval):
		}
	}
}

// measure takes one measurement at time at. mayWait tells whether a
// measurement without data may still wait for it, when NoData is wait.
func (p *plan) measure(ctx context.Context, at time.Time, mayWait bool) Measurement {
	m := Measurement{At: at}
	v, err := p.Provider.Query(ctx, p.Query, at)
	if err != nil {
		m.Verdict, m.Error = Errored, err.Error()
		return m
	}
	m.Value = &v
	if v.Empty() {
		switch p.NoData {
		case NoDataFail:
			m.Verdict = Failed
		case NoDataPass:
			m.Verdict = Successful
		case NoDataWait:
			m.Verdict = Waiting
			if !mayWait {
				m.Verdict = Inconclusive
			}
		default:
			m.Verdict = Inconclusive
		}
		return m
	}
	verdict, err := p.judge(ctx, v)
	if err != nil {
		m.Verdict, m.Error = Errored, err.Error()
		return m
	}
	m.Verdict = verdict
	return m
}

// judge applies the conditions to v.
func (p *plan) judge(ctx context.Context, v Value) (Verdict, error) {
	var succeeded, failed bool
	var err error
	if p.failure != nil {
		if failed, err = p.failure.Eval(ctx, v); err != nil {
			return "", fmt.Errorf("failureCondition: %w", err)
		}
	}
	if p.success != nil {
		if succeeded, err = p.success.Eval(ctx, v); err != nil {
			return "", fmt.Errorf("successCondition: %w", err)
		}
	}
	switch {
	case failed:
		return Failed, nil
	case succeeded:
		return Successful, nil
	case p.success == nil:
		return Successful, nil // only a failure condition, and it does not hold
	case p.failure == nil:
		return Failed, nil // only a success condition, and it does not hold
	}
	return Inconclusive, nil
}
