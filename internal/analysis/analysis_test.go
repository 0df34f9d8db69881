package analysis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// answer is what the fake provider returns for one query.
type answer struct {
	v   Value
	err error
}

func scalar(f float64) answer { return answer{v: Value{Scalar: &f}} }

func vector(fs ...float64) answer {
	var v Value
	for i, f := range fs {
		v.Vector = append(v.Vector, Sample{Labels: map[string]string{"i": string(rune('a' + i))}, Value: f})
	}
	return answer{v: v}
}

func document(doc any) answer { return answer{v: Value{JSON: doc}} }

var (
	noData = answer{}
	broken = answer{err: errors.New("connection refused")}
)

// repeat returns n copies of a.
func repeat(n int, a answer) []answer {
	out := make([]answer, n)
	for i := range out {
		out[i] = a
	}
	return out
}

func seq(parts ...[]answer) []answer {
	var out []answer
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(a answer) []answer { return []answer{a} }

// fakeProvider answers queries from a script and records them.
type fakeProvider struct {
	answers []answer
	queries []string
	ats     []time.Time
}

func (f *fakeProvider) Query(_ context.Context, query string, at time.Time) (Value, error) {
	i := len(f.queries)
	f.queries = append(f.queries, query)
	f.ats = append(f.ats, at)
	if i >= len(f.answers) {
		return Value{}, errors.New("fake: the script has no more answers")
	}
	return f.answers[i].v, f.answers[i].err
}

// fakeClock moves forward by d whenever it is asked to wait d, at once.
type fakeClock struct {
	now   time.Time
	waits []time.Duration
}

var start = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// letters abbreviates verdicts: S F I E W.
func letters(ms []Measurement) string {
	abbrev := map[Verdict]string{Successful: "S", Failed: "F", Inconclusive: "I", Errored: "E", Waiting: "W"}
	var out []string
	for _, m := range ms {
		out = append(out, abbrev[m.Verdict])
	}
	return strings.Join(out, " ")
}

func TestRun(t *testing.T) {
	const (
		low  = "result < 0.01"
		high = "result > 0.05"
	)
	tests := []struct {
		name         string
		a            Analysis
		answers      []answer
		want         Verdict
		measurements string
	}{
		{
			name:         "all successful",
			a:            Analysis{Count: 3, SuccessCondition: low, FailureCondition: high},
			answers:      repeat(3, scalar(0.001)),
			want:         Successful,
			measurements: "S S S",
		},
		{
			name:         "count defaults to one",
			a:            Analysis{SuccessCondition: low},
			answers:      one(scalar(0.001)),
			want:         Successful,
			measurements: "S",
		},
		{
			name:         "early failure",
			a:            Analysis{Count: 5, SuccessCondition: low, FailureCondition: high},
			answers:      seq(one(scalar(0.001)), one(scalar(0.2))),
			want:         Failed,
			measurements: "S F",
		},
		{
			name:         "failure limit tolerates",
			a:            Analysis{Count: 4, FailureLimit: 1, SuccessCondition: low, FailureCondition: high},
			answers:      seq(one(scalar(0.2)), repeat(3, scalar(0.001))),
			want:         Successful,
			measurements: "F S S S",
		},
		{
			name:         "failure limit exceeded",
			a:            Analysis{Count: 5, FailureLimit: 1, SuccessCondition: low, FailureCondition: high},
			answers:      []answer{scalar(0.2), scalar(0.001), scalar(0.3)},
			want:         Failed,
			measurements: "F S F",
		},
		{
			name:         "failure wins when both hold",
			a:            Analysis{SuccessCondition: "result < 1.0", FailureCondition: "result > 0.5"},
			answers:      one(scalar(0.7)),
			want:         Failed,
			measurements: "F",
		},
		{
			name:         "neither holds: inconclusive",
			a:            Analysis{Count: 3, SuccessCondition: low, FailureCondition: high},
			answers:      one(scalar(0.03)),
			want:         Inconclusive,
			measurements: "I",
		},
		{
			name:         "inconclusive limit tolerates",
			a:            Analysis{Count: 3, InconclusiveLimit: 1, SuccessCondition: low, FailureCondition: high},
			answers:      []answer{scalar(0.001), scalar(0.03), scalar(0.001)},
			want:         Successful,
			measurements: "S I S",
		},
		{
			name:         "inconclusive limit exceeded",
			a:            Analysis{Count: 5, InconclusiveLimit: 1, SuccessCondition: low, FailureCondition: high},
			answers:      []answer{scalar(0.03), scalar(0.001), scalar(0.02)},
			want:         Inconclusive,
			measurements: "I S I",
		},
		{
			name:         "success condition only, holds",
			a:            Analysis{SuccessCondition: low},
			answers:      one(scalar(0.001)),
			want:         Successful,
			measurements: "S",
		},
		{
			name:         "success condition only, does not hold: failed",
			a:            Analysis{Count: 2, SuccessCondition: low},
			answers:      one(scalar(0.03)),
			want:         Failed,
			measurements: "F",
		},
		{
			name:         "failure condition only, does not hold: successful",
			a:            Analysis{Count: 2, FailureCondition: high},
			answers:      repeat(2, scalar(0.03)),
			want:         Successful,
			measurements: "S S",
		},
		{
			name:         "failure condition only, holds",
			a:            Analysis{Count: 2, FailureCondition: high},
			answers:      one(scalar(0.06)),
			want:         Failed,
			measurements: "F",
		},
		{
			name:         "conditions compare doubles with ints",
			a:            Analysis{SuccessCondition: "result < 1", FailureCondition: "result >= 2"},
			answers:      one(scalar(0.5)),
			want:         Successful,
			measurements: "S",
		},
		{
			name:         "default consecutive error limit is 4",
			a:            Analysis{Count: 3, SuccessCondition: low},
			answers:      repeat(5, broken),
			want:         Errored,
			measurements: "E E E E E",
		},
		{
			name:         "errors do not count and reset on a measurement",
			a:            Analysis{Count: 2, SuccessCondition: low},
			answers:      seq(repeat(4, broken), one(scalar(0.001)), repeat(4, broken), one(scalar(0.02))),
			want:         Failed,
			measurements: "E E E E S E E E E F",
		},
		{
			name:         "errors reset on a measurement",
			a:            Analysis{Count: 3, SuccessCondition: low, FailureCondition: high},
			answers:      seq(repeat(4, broken), one(scalar(0.001)), repeat(4, broken), repeat(2, scalar(0.001))),
			want:         Successful,
			measurements: "E E E E S E E E E S S",
		},
		{
			name:         "consecutive error limit",
			a:            Analysis{Count: 3, ConsecutiveErrorLimit: 1, SuccessCondition: low},
			answers:      seq(one(broken), one(scalar(0.001)), repeat(2, broken)),
			want:         Errored,
			measurements: "E S E E",
		},
		{
			name:         "negative consecutive error limit: the first error ends the run",
			a:            Analysis{Count: 3, ConsecutiveErrorLimit: -1, SuccessCondition: low},
			answers:      one(broken),
			want:         Errored,
			measurements: "E",
		},
		{
			name:         "a condition that cannot be evaluated is an error",
			a:            Analysis{Count: 1, ConsecutiveErrorLimit: -1, SuccessCondition: low},
			answers:      one(vector(0.001)),
			want:         Errored,
			measurements: "E",
		},
		{
			name:         "no data: fail",
			a:            Analysis{Count: 3, NoData: NoDataFail, SuccessCondition: low},
			answers:      one(noData),
			want:         Failed,
			measurements: "F",
		},
		{
			name:         "no data: inconclusive",
			a:            Analysis{Count: 3, NoData: NoDataInconclusive, SuccessCondition: low},
			answers:      one(noData),
			want:         Inconclusive,
			measurements: "I",
		},
		{
			name:         "no data: inconclusive by default",
			a:            Analysis{Count: 3, SuccessCondition: low},
			answers:      one(noData),
			want:         Inconclusive,
			measurements: "I",
		},
		{
			name:         "no data: pass",
			a:            Analysis{Count: 2, NoData: NoDataPass, SuccessCondition: low, FailureCondition: high},
			answers:      []answer{noData, scalar(0.001)},
			want:         Successful,
			measurements: "S S",
		},
		{
			name:         "no data: wait until data comes",
			a:            Analysis{Count: 2, NoData: NoDataWait, SuccessCondition: low},
			answers:      seq(repeat(2, noData), repeat(2, scalar(0.001))),
			want:         Successful,
			measurements: "W W S S",
		},
		{
			name:         "no data: wait up to count times, then inconclusive",
			a:            Analysis{Count: 2, NoData: NoDataWait, SuccessCondition: low},
			answers:      seq(one(noData), one(scalar(0.001)), repeat(2, noData)),
			want:         Inconclusive,
			measurements: "W S W I",
		},
		{
			name:         "no data: an empty vector",
			a:            Analysis{NoData: NoDataFail, SuccessCondition: "result.all(x, x < 1.0)"},
			answers:      one(vector()),
			want:         Failed,
			measurements: "F",
		},
		{
			name:         "vector: all below",
			a:            Analysis{Count: 2, SuccessCondition: "result.all(x, x < 1.0)"},
			answers:      repeat(2, vector(0.5, 0.9)),
			want:         Successful,
			measurements: "S S",
		},
		{
			name:         "vector: one above",
			a:            Analysis{Count: 2, SuccessCondition: "result.all(x, x < 1.0)"},
			answers:      one(vector(0.5, 1.5)),
			want:         Failed,
			measurements: "F",
		},
		{
			name:         "vector: by index and size",
			a:            Analysis{SuccessCondition: "size(result) == 2 && result[0] < 1.0", FailureCondition: "result.exists(x, x > 5.0)"},
			answers:      one(vector(0.5, 4.0)),
			want:         Successful,
			measurements: "S",
		},
		{
			name:         "json document",
			a:            Analysis{SuccessCondition: `result.status == "ok" && result.errorRate < 0.01`},
			answers:      one(document(map[string]any{"status": "ok", "errorRate": 0.001})),
			want:         Successful,
			measurements: "S",
		},
		{
			name:         "json document: missing field is an error",
			a:            Analysis{ConsecutiveErrorLimit: -1, SuccessCondition: `result.errorRate < 0.01`},
			answers:      one(document(map[string]any{"status": "ok"})),
			want:         Errored,
			measurements: "E",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakeProvider{answers: tt.answers}
			clock := &fakeClock{now: start}
			a := tt.a
			a.Provider = p
			a.Query = "q"
			a.Interval = 10 * time.Second
			var ms []Measurement
			got, err := Run(t.Context(), a, clock, func(m Measurement) { ms = append(ms, m) })
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got != tt.want {
				t.Errorf("verdict %s, want %s", got, tt.want)
			}
			if l := letters(ms); l != tt.measurements {
				t.Errorf("measurements %q, want %q", l, tt.measurements)
			}
			if len(p.queries) != len(ms) {
				t.Errorf("%d queries for %d measurements", len(p.queries), len(ms))
			}
			// The first measurement is taken at once, each next one an
			// interval later, and the run does not wait after the last.
			if len(clock.waits) != len(ms)-1 {
				t.Errorf("waited %d times for %d measurements", len(clock.waits), len(ms))
			}
			for i, m := range ms {
				want := start.Add(time.Duration(i) * a.Interval)
				if !m.At.Equal(want) || !p.ats[i].Equal(want) {
					t.Errorf("measurement %d at %v, queried at %v, want %v", i, m.At, p.ats[i], want)
				}
				switch {
				case m.Verdict == Errored && (m.Error == "" || m.Value != nil && tt.answers[i].err != nil):
					t.Errorf("measurement %d: error %q, value %v", i, m.Error, m.Value)
				case m.Verdict != Errored && (m.Error != "" || m.Value == nil):
					t.Errorf("measurement %d: %s with error %q, value %v", i, m.Verdict, m.Error, m.Value)
				}
			}
		})
	}
}

func TestRunMeasurementError(t *testing.T) {
	p := &fakeProvider{answers: []answer{broken, vector(1)}}
	var ms []Measurement
	a := Analysis{Provider: p, Interval: time.Second, ConsecutiveErrorLimit: 1, SuccessCondition: "result < 0.01"}
	got, err := Run(t.Context(), a, &fakeClock{now: start}, func(m Measurement) { ms = append(ms, m) })
	if err != nil || got != Errored {
		t.Fatalf("Run = %s, %v; want error verdict", got, err)
	}
	if ms[0].Error != "connection refused" || ms[0].Value != nil {
		t.Errorf("provider error: %+v", ms[0])
	}
	if !strings.Contains(ms[1].Error, "successCondition: evaluate result < 0.01: no such overload") || ms[1].Value == nil {
		t.Errorf("condition error: %+v", ms[1])
	}
}

func TestRunDefaults(t *testing.T) {
	p := &fakeProvider{answers: repeat(3, scalar(0))}
	clock := &fakeClock{now: start}
	a := Analysis{Provider: p, Count: 2, SuccessCondition: "result == 0"}
	if got, err := Run(t.Context(), a, clock, nil); err != nil || got != Successful {
		t.Fatalf("Run = %s, %v", got, err)
	}
	if len(clock.waits) != 1 || clock.waits[0] != DefaultInterval {
		t.Errorf("waits %v, want one of %v", clock.waits, DefaultInterval)
	}
}

// blockedClock never lets an interval pass.
type blockedClock struct{ fakeClock }

func (c *blockedClock) After(time.Duration) <-chan time.Time { return nil }

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p := &fakeProvider{answers: repeat(3, scalar(0))}
	a := Analysis{Provider: p, Count: 3, Interval: time.Hour, SuccessCondition: "result == 0.0"}
	var ms []Measurement
	done := make(chan struct{})
	var got Verdict
	var err error
	go func() {
		defer close(done)
		got, err = Run(ctx, a, &blockedClock{fakeClock{now: start}}, func(m Measurement) {
			ms = append(ms, m)
			cancel() // after the first measurement
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got != "" || !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %q, %v; want context.Canceled", got, err)
	}
	if len(ms) != 1 {
		t.Errorf("%d measurements, want 1", len(ms))
	}
}

func TestValidate(t *testing.T) {
	p := &fakeProvider{}
	tests := []struct {
		name string
		a    Analysis
		want []string // in the error
	}{
		{"no provider", Analysis{SuccessCondition: "true"}, []string{"provider is required"}},
		{"no condition", Analysis{Provider: p}, []string{"successCondition or failureCondition is required"}},
		{"bad noData", Analysis{Provider: p, SuccessCondition: "true", NoData: "ignore"}, []string{`noData "ignore" is not one of fail, inconclusive, pass, wait`}},
		{"negative numbers", Analysis{Provider: p, SuccessCondition: "true", Count: -1, Interval: -time.Second, FailureLimit: -1, InconclusiveLimit: -2},
			[]string{"count -1 is negative", "interval -1s is negative", "failureLimit -1 is negative", "inconclusiveLimit -2 is negative"}},
		{"bad conditions", Analysis{Provider: p, SuccessCondition: "result <", FailureCondition: "reslt > 1.0"},
			[]string{"successCondition: 1:9: ", "failureCondition: 1:1: undeclared reference to 'reslt'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, rerr := Run(t.Context(), tt.a, &fakeClock{}, nil); rerr == nil || rerr.Error() != err.Error() {
				t.Errorf("Run's error %v, want Validate's", rerr)
			}
		})
	}
	var cerr *Error
	err := Analysis{Provider: p, SuccessCondition: "true", FailureCondition: "result >\n  reslt"}.Validate()
	if !errors.As(err, &cerr) || cerr.Line != 2 || cerr.Column != 3 {
		t.Errorf("Validate: %v; want an *Error at 2:3", err)
	}
	if err := (Analysis{Provider: p, SuccessCondition: "result < 0.01"}).Validate(); err != nil {
		t.Errorf("Validate of a valid analysis: %v", err)
	}
}
