package judge

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// Samples used by the tests below: latency of a healthy service, the same
// latency about 30% slower and about 30% faster, and a sample too small.
var (
	latency = []float64{101, 98, 103, 97, 100, 102, 99, 104, 96, 100.5, 98.5, 101.5}
	slower  = []float64{131, 128, 133, 127, 130, 132, 129, 134, 126, 130.5, 128.5, 131.5}
	faster  = []float64{71, 68, 73, 67, 70, 72, 69, 74, 66, 70.5, 68.5, 71.5}
	same    = []float64{100.2, 98.1, 102.9, 97.3, 99.8, 101.7, 99.1, 103.6, 96.4, 100.9, 98.2, 101.1}
	tiny    = []float64{100, 101}
)

// metricNamed returns the metric of r with the name.
func metricNamed(t *testing.T, r Result, name string) Metric {
	t.Helper()
	for _, m := range r.Metrics {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no metric %q in %+v", name, r)
	return Metric{}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name     string
		baseline map[string][]float64
		canary   map[string][]float64
		cfg      Config
		want     Verdict
		reason   string
		classes  map[string]Classification
		score    float64
	}{
		{
			name:     "no change passes",
			baseline: map[string][]float64{"latency": latency},
			canary:   map[string][]float64{"latency": same},
			want:     Passed, reason: "score 100.0 ≥ 95", score: 100,
			classes: map[string]Classification{"latency": Pass},
		},
		{
			name:     "a bad increase fails",
			baseline: map[string][]float64{"latency": latency},
			canary:   map[string][]float64{"latency": slower},
			cfg:      Config{Default: MetricConfig{Direction: Increase}},
			want:     Failed, reason: "score 0.0 < 75; not passing: latency high", score: 0,
			classes: map[string]Classification{"latency": High},
		},
		{
			name:     "a change in the allowed direction passes",
			baseline: map[string][]float64{"latency": latency},
			canary:   map[string][]float64{"latency": faster},
			cfg:      Config{Default: MetricConfig{Direction: Increase}},
			want:     Passed, score: 100,
			classes: map[string]Classification{"latency": Pass},
		},
		{
			name:     "either direction is bad by default",
			baseline: map[string][]float64{"latency": latency},
			canary:   map[string][]float64{"latency": faster},
			want:     Failed, score: 0,
			classes: map[string]Classification{"latency": Low},
		},
		{
			name:     "a change smaller than the effect size passes",
			baseline: map[string][]float64{"latency": latency},
			canary:   map[string][]float64{"latency": slower},
			cfg:      Config{Default: MetricConfig{EffectSize: 0.5}},
			want:     Passed, score: 100,
			classes: map[string]Classification{"latency": Pass},
		},
		{
			name:     "a failing critical metric fails the judgement",
			baseline: map[string][]float64{"latency": latency, "a": latency, "b": latency, "c": latency, "d": latency},
			canary:   map[string][]float64{"latency": slower, "a": same, "b": same, "c": same, "d": same},
			cfg:      Config{Metrics: map[string]MetricConfig{"latency": {Critical: true, Weight: 0.01}}},
			want:     Failed, reason: "critical metric failed: latency high",
			classes: map[string]Classification{"latency": High, "a": Pass},
			score:   100 * 4 / 4.01,
		},
		{
			name:     "a critical metric without data fails the judgement",
			baseline: map[string][]float64{"a": latency},
			canary:   map[string][]float64{"a": same},
			cfg:      Config{Metrics: map[string]MetricConfig{"errors": {Critical: true}}},
			want:     Failed, reason: "critical metric failed: errors nodata",
			classes: map[string]Classification{"a": Pass, "errors": NoData},
			score:   50,
		},
		{
			name:     "a metric without data counts as not passing",
			baseline: map[string][]float64{"a": latency, "b": latency, "c": latency, "d": tiny},
			canary:   map[string][]float64{"a": same, "b": same, "c": same, "d": same},
			want:     Marginal, reason: "score 75.0 < 95; not passing: d nodata", score: 75,
			classes: map[string]Classification{"d": NoData},
		},
		{
			name:     "weights",
			baseline: map[string][]float64{"a": latency, "b": latency},
			canary:   map[string][]float64{"a": same, "b": slower},
			cfg:      Config{Metrics: map[string]MetricConfig{"a": {Weight: 3}}},
			want:     Marginal, score: 75,
			classes: map[string]Classification{"a": Pass, "b": High},
		},
		{
			name:     "thresholds",
			baseline: map[string][]float64{"a": latency, "b": latency},
			canary:   map[string][]float64{"a": same, "b": slower},
			cfg:      Config{PassThreshold: 50, MarginalThreshold: 10},
			want:     Passed, score: 50,
		},
		{
			name:     "no data at all",
			baseline: map[string][]float64{"a": tiny},
			canary:   map[string][]float64{"a": same, "b": same},
			want:     Failed, reason: "no data", score: 0,
			classes: map[string]Classification{"a": NoData, "b": NoData},
		},
		{
			name: "no metrics",
			want: Failed, reason: "no data",
		},
		{
			name:     "invalid configuration",
			baseline: map[string][]float64{"a": latency},
			canary:   map[string][]float64{"a": same},
			cfg:      Config{Metrics: map[string]MetricConfig{"a": {Direction: "up"}}},
			want:     Failed, reason: `invalid configuration: metrics["a"]: direction "up"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Judge(tt.baseline, tt.canary, tt.cfg)
			if r.Verdict != tt.want {
				t.Errorf("verdict = %s (%s), want %s", r.Verdict, r.Reason, tt.want)
			}
			if !strings.HasPrefix(r.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to start with %q", r.Reason, tt.reason)
			}
			if math.Abs(r.Score-tt.score) > 1e-9 {
				t.Errorf("score = %v, want %v", r.Score, tt.score)
			}
			for name, want := range tt.classes {
				if got := metricNamed(t, r, name).Classification; got != want {
					t.Errorf("%s: classification = %s, want %s", name, got, want)
				}
			}
		})
	}
}

func TestJudgeMetricFields(t *testing.T) {
	baseline := map[string][]float64{"latency": latency, "errors": {0, 0, 0, 0, 0, 0}, "cpu": tiny}
	canary := map[string][]float64{"latency": append(clone(slower), math.NaN(), math.Inf(1)), "errors": {0, 1, 2, 1, 3, 2}}
	r := Judge(baseline, canary, Config{Metrics: map[string]MetricConfig{"errors": {Direction: Increase, Critical: true, Weight: 2}}})

	var names []string
	for _, m := range r.Metrics {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, " "); got != "cpu errors latency" {
		t.Errorf("metrics = %s, want sorted by name", got)
	}

	lat := metricNamed(t, r, "latency")
	if lat.CanaryCount != 12 || lat.BaselineCount != 12 {
		t.Errorf("latency counts = %d/%d, want 12/12 (values that are not finite left out)", lat.BaselineCount, lat.CanaryCount)
	}
	if lat.Estimate == nil || math.Abs(*lat.Estimate-30) > 1e-9 {
		t.Errorf("latency estimate = %v, want 30", lat.Estimate)
	}
	if *lat.CILow > 30 || *lat.CIHigh < 30 {
		t.Errorf("latency interval [%v, %v] does not hold the estimate", *lat.CILow, *lat.CIHigh)
	}
	if want := mean(slower)/mean(latency) - 1; math.Abs(*lat.EffectSize-want) > 1e-12 {
		t.Errorf("latency effect = %v, want %v (ratio of means − 1)", *lat.EffectSize, want)
	}
	if *lat.AdjustedPValue < *lat.PValue {
		t.Errorf("adjusted p %v < p %v", *lat.AdjustedPValue, *lat.PValue)
	}

	errs := metricNamed(t, r, "errors")
	// The baseline mean is 0: the effect is P(canary > baseline) + ½P(=) − ½,
	// and 5 of the 6 canary values exceed every baseline value.
	if want := 5.0/6 + 0.5/6 - 0.5; math.Abs(*errs.EffectSize-want) > 1e-12 {
		t.Errorf("errors effect = %v, want %v", *errs.EffectSize, want)
	}
	if errs.Classification != High || !errs.Critical || errs.Weight != 2 {
		t.Errorf("errors = %+v", errs)
	}
	if r.Verdict != Failed || r.Reason != "critical metric failed: errors high" {
		t.Errorf("verdict %s: %s", r.Verdict, r.Reason)
	}

	cpu := metricNamed(t, r, "cpu")
	if cpu.Classification != NoData || cpu.PValue != nil || cpu.CanaryMean != nil || cpu.BaselineMean == nil || cpu.Weight != 1 {
		t.Errorf("cpu = %+v", cpu)
	}

	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Verdict string           `json:"verdict"`
		Score   *float64         `json:"score"`
		Reason  string           `json:"reason"`
		Metrics []map[string]any `json:"metrics"`
	}
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"name", "classification", "pValue", "adjustedPValue", "estimate", "ciLow", "ciHigh",
		"effectSize", "baselineCount", "canaryCount", "baselineMean", "canaryMean", "critical", "weight"} {
		if _, ok := decoded.Metrics[0][key]; !ok {
			t.Errorf("metric JSON has no %q: %s", key, data)
		}
	}
	if decoded.Metrics[0]["pValue"] != nil {
		t.Errorf("cpu pValue = %v, want null", decoded.Metrics[0]["pValue"])
	}
}

// clone returns a copy of v that append may grow without touching v.
func clone(v []float64) []float64 { return append([]float64(nil), v...) }

func TestHolm(t *testing.T) {
	// As R's p.adjust(c(0.01, 0.04, 0.03, 0.005), method = "holm").
	got := Holm([]float64{0.01, 0.04, 0.03, 0.005})
	want := []float64{0.03, 0.06, 0.06, 0.02}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-15 {
			t.Errorf("Holm = %v, want %v", got, want)
			break
		}
	}
	if got := Holm([]float64{0.6, 0.9}); got[0] != 1 || got[1] != 1 {
		t.Errorf("Holm caps at 1: %v", got)
	}
	if got := Holm(nil); len(got) != 0 {
		t.Errorf("Holm(nil) = %v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Alpha: 1},
		{Alpha: -0.1},
		{PassThreshold: 101},
		{PassThreshold: 50, MarginalThreshold: 60},
		{MinSamples: -1},
		{Default: MetricConfig{Weight: -1}},
		{Default: MetricConfig{EffectSize: math.NaN()}},
		{Metrics: map[string]MetricConfig{"x": {Direction: "sideways"}}},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}
