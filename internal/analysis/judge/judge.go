// Package judge decides whether a canary is as healthy as its baseline by
// comparing samples of their metrics.
//
// Each metric is tested with a two-sided Mann–Whitney U test (MannWhitney):
// it makes no assumption about the shape of the distributions, only asks
// whether the canary's values tend to be higher or lower than the
// baseline's. The p-values of all metrics are adjusted together with the
// Holm–Bonferroni method (Holm), so that judging many metrics does not make
// a false alarm likely. A metric is classified high or low when its adjusted
// p-value is at most Alpha, the change is in a direction configured as bad,
// and the relative change is at least the metric's EffectSize; otherwise it
// passes. The score is the weighted share of metrics that pass; critical
// metrics that fail fail the whole judgement.
//
// Judge is a pure function: the same input always gives the same Result.
package judge

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Defaults of Config and MetricConfig, used where a field is zero.
const (
	DefaultAlpha             = 0.05
	DefaultPassThreshold     = 95
	DefaultMarginalThreshold = 75
	DefaultMinSamples        = 3
	DefaultWeight            = 1
)

// Direction is the change of a metric that is bad.
type Direction string

// Directions.
const (
	// Increase means a higher canary is bad (latency, errors); a lower one passes.
	Increase Direction = "increase"
	// Decrease means a lower canary is bad (throughput, success rate); a higher one passes.
	Decrease Direction = "decrease"
	// Either means any significant change is bad.
	Either Direction = "either"
)

// Classification is the outcome for one metric.
type Classification string

// Classifications.
const (
	// Pass means no significant change in a bad direction of at least the
	// metric's effect size.
	Pass Classification = "pass"
	// High means the canary is significantly higher than the baseline, and
	// that is bad.
	High Classification = "high"
	// Low means the canary is significantly lower than the baseline, and
	// that is bad.
	Low Classification = "low"
	// NoData means the baseline or the canary has fewer than MinSamples
	// samples.
	NoData Classification = "nodata"
)

// Verdict is the outcome of a judgement.
type Verdict string

// Verdicts.
const (
	Passed   Verdict = "pass"
	Marginal Verdict = "marginal"
	Failed   Verdict = "fail"
)

// MetricConfig is how one metric is judged.
type MetricConfig struct {
	// Direction is the change that is bad. Defaults to Either.
	Direction Direction `json:"direction,omitempty"`
	// Critical makes the whole judgement fail when the metric is high or
	// low, or has no data. Defaults to false.
	Critical bool `json:"critical,omitempty"`
	// Weight is the metric's share of the score relative to the others.
	// Defaults to 1.
	Weight float64 `json:"weight,omitempty"`
	// EffectSize is the smallest relative change that matters, 0.1 for 10%:
	// a significant change smaller than this passes. It is compared with the
	// absolute value of the metric's effect size (see Metric.EffectSize).
	// Defaults to 0: any significant change matters.
	EffectSize float64 `json:"effectSize,omitempty"`
}

// Config is how a judgement is made.
type Config struct {
	// Metrics configures metrics by name. A metric named here that has no
	// samples at all is judged, as no data.
	Metrics map[string]MetricConfig `json:"metrics,omitempty"`
	// Default configures the metrics not named in Metrics.
	Default MetricConfig `json:"default"`
	// Alpha is the significance level for the Holm-adjusted p-values, and
	// one minus the confidence level of the intervals. Defaults to 0.05.
	Alpha float64 `json:"alpha,omitempty"`
	// PassThreshold is the lowest score, from 0 to 100, that passes.
	// Defaults to 95.
	PassThreshold float64 `json:"passThreshold,omitempty"`
	// MarginalThreshold is the lowest score, from 0 to 100, that is
	// marginal rather than failed. Defaults to 75.
	MarginalThreshold float64 `json:"marginalThreshold,omitempty"`
	// MinSamples is the fewest samples the baseline and the canary must each
	// have for a metric to be tested; with fewer it is classified NoData.
	// Defaults to 3.
	MinSamples int `json:"minSamples,omitempty"`
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Alpha == 0 {
		c.Alpha = DefaultAlpha
	}
	if c.PassThreshold == 0 {
		c.PassThreshold = DefaultPassThreshold
	}
	if c.MarginalThreshold == 0 {
		c.MarginalThreshold = DefaultMarginalThreshold
	}
	if c.MinSamples == 0 {
		c.MinSamples = DefaultMinSamples
	}
	return c
}

// metric returns the configuration of the named metric, with defaults.
func (c Config) metric(name string) MetricConfig {
	mc, ok := c.Metrics[name]
	if !ok {
		mc = c.Default
	}
	if mc.Direction == "" {
		mc.Direction = Either
	}
	if mc.Weight == 0 {
		mc.Weight = DefaultWeight
	}
	return mc
}

// Validate reports the first field of c, with its defaults applied, that
// has a value that cannot be right.
func (c Config) Validate() error {
	c = c.withDefaults()
	if !(c.Alpha > 0 && c.Alpha < 1) {
		return fmt.Errorf("alpha %v: want a value between 0 and 1", c.Alpha)
	}
	if !(c.PassThreshold >= 0 && c.PassThreshold <= 100) {
		return fmt.Errorf("passThreshold %v: want a score from 0 to 100", c.PassThreshold)
	}
	if !(c.MarginalThreshold >= 0 && c.MarginalThreshold <= c.PassThreshold) {
		return fmt.Errorf("marginalThreshold %v: want a score from 0 to passThreshold (%v)", c.MarginalThreshold, c.PassThreshold)
	}
	if c.MinSamples < 1 {
		return fmt.Errorf("minSamples %d: want at least 1", c.MinSamples)
	}
	if err := c.Default.validate(); err != nil {
		return fmt.Errorf("default: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Metrics)) {
		if err := c.Metrics[name].validate(); err != nil {
			return fmt.Errorf("metrics[%q]: %w", name, err)
		}
	}
	return nil
}

func (mc MetricConfig) validate() error {
	switch mc.Direction {
	case "", Increase, Decrease, Either:
	default:
		return fmt.Errorf("direction %q: want increase, decrease or either", mc.Direction)
	}
	if !(mc.Weight >= 0 && !math.IsInf(mc.Weight, 0)) {
		return fmt.Errorf("weight %v: want a finite number ≥ 0", mc.Weight)
	}
	if !(mc.EffectSize >= 0 && !math.IsInf(mc.EffectSize, 0)) {
		return fmt.Errorf("effectSize %v: want a finite number ≥ 0", mc.EffectSize)
	}
	return nil
}

// Result is a judgement.
type Result struct {
	// Verdict is pass, marginal or fail.
	Verdict Verdict `json:"verdict"`
	// Score is the weighted percentage of metrics that pass, from 0 to 100;
	// it is 0 when no metric has data.
	Score float64 `json:"score"`
	// Reason explains the verdict.
	Reason string `json:"reason"`
	// Metrics are the judged metrics, by name.
	Metrics []Metric `json:"metrics"`
}

// Metric is the judgement of one metric. The pointer fields are null when
// they cannot be computed: all the statistics of a NoData metric, the means
// of an empty sample, and any value that would not be a finite number.
type Metric struct {
	Name           string         `json:"name"`
	Classification Classification `json:"classification"`
	// PValue is the two-sided p-value of the Mann–Whitney U test.
	PValue *float64 `json:"pValue"`
	// AdjustedPValue is PValue adjusted with the Holm–Bonferroni method over
	// all the metrics with data; it is what is compared with Alpha.
	AdjustedPValue *float64 `json:"adjustedPValue"`
	// Estimate is the Hodges–Lehmann estimate of the shift of the canary
	// relative to the baseline: the median of all differences
	// canary − baseline.
	Estimate *float64 `json:"estimate"`
	// CILow and CIHigh bound the 1 − Alpha confidence interval of Estimate.
	CILow  *float64 `json:"ciLow"`
	CIHigh *float64 `json:"ciHigh"`
	// EffectSize is the relative change of the mean,
	// (canaryMean − baselineMean) / |baselineMean|, which is
	// canaryMean/baselineMean − 1 for a positive baseline. When the baseline
	// mean is 0 it is instead the common-language effect size
	// P(canary > baseline) + ½·P(canary = baseline) − ½, from −0.5 to 0.5.
	EffectSize    *float64 `json:"effectSize"`
	BaselineCount int      `json:"baselineCount"`
	CanaryCount   int      `json:"canaryCount"`
	BaselineMean  *float64 `json:"baselineMean"`
	CanaryMean    *float64 `json:"canaryMean"`
	Critical      bool     `json:"critical"`
	Weight        float64  `json:"weight"`
}

// Judge compares the samples of each metric of the canary with those of the
// baseline, keyed by metric name, and decides whether the canary passes.
// Values that are not finite numbers are left out of the samples.
//
// The metrics judged are those with samples in either input and those named
// in cfg.Metrics. A metric with fewer than MinSamples in the baseline or the
// canary is NoData and counts as not passing in the score; when no metric
// has data the verdict is fail with reason "no data". A critical metric that
// is high, low or NoData fails the judgement. Otherwise the verdict is pass
// when the score is at least PassThreshold, marginal when it is at least
// MarginalThreshold, and fail below.
//
// When cfg is not valid (see Config.Validate) the verdict is fail, with the
// problem as the reason, and no metric is judged.
func Judge(baseline, canary map[string][]float64, cfg Config) Result {
	if err := cfg.Validate(); err != nil {
		return Result{Verdict: Failed, Reason: "invalid configuration: " + err.Error(), Metrics: []Metric{}}
	}
	cfg = cfg.withDefaults()

	names := make(map[string]bool)
	for _, m := range []map[string][]float64{baseline, canary} {
		for name := range m {
			names[name] = true
		}
	}
	for name := range cfg.Metrics {
		names[name] = true
	}

	// tested is a metric with data: its index in metrics, its test and means.
	type tested struct {
		index        int
		test         Test
		bMean, cMean float64
	}
	metrics := make([]Metric, 0, len(names))
	var withData []tested
	for _, name := range slices.Sorted(maps.Keys(names)) {
		mc := cfg.metric(name)
		b, c := finiteValues(baseline[name]), finiteValues(canary[name])
		bMean, cMean := mean(b), mean(c)
		m := Metric{
			Name: name, Classification: NoData,
			BaselineCount: len(b), CanaryCount: len(c),
			BaselineMean: finite(bMean), CanaryMean: finite(cMean),
			Critical: mc.Critical, Weight: mc.Weight,
		}
		if len(b) >= cfg.MinSamples && len(c) >= cfg.MinSamples {
			t, err := MannWhitney(c, b, cfg.Alpha)
			if err != nil {
				panic("judge: " + err.Error()) // the samples are finite and not empty
			}
			m.PValue = finite(t.PValue)
			m.Estimate, m.CILow, m.CIHigh = finite(t.Estimate), finite(t.CILow), finite(t.CIHigh)
			withData = append(withData, tested{len(metrics), t, bMean, cMean})
		}
		metrics = append(metrics, m)
	}

	raw := make([]float64, len(withData))
	for i, w := range withData {
		raw[i] = w.test.PValue
	}
	adjusted := Holm(raw)
	for i, w := range withData {
		m := &metrics[w.index]
		m.AdjustedPValue = finite(adjusted[i])
		effect := effectSize(w.test, w.bMean, w.cMean, m.BaselineCount, m.CanaryCount)
		m.EffectSize = finite(effect)
		m.Classification = classify(w.test, adjusted[i], effect, m.BaselineCount, m.CanaryCount, cfg.metric(m.Name), cfg.Alpha)
	}
	return verdict(metrics, len(withData), cfg)
}

// effectSize returns the relative change of the mean, or the common-language
// effect size when the baseline mean is 0.
func effectSize(t Test, baselineMean, canaryMean float64, nb, nc int) float64 {
	if baselineMean == 0 {
		return t.U/(float64(nb)*float64(nc)) - 0.5
	}
	return (canaryMean - baselineMean) / math.Abs(baselineMean)
}

// classify classifies a metric with data. The direction of a change is that
// of the test statistic: up when the canary tends to be higher.
func classify(t Test, adjusted, effect float64, nb, nc int, mc MetricConfig, alpha float64) Classification {
	centre := float64(nb) * float64(nc) / 2
	if !(adjusted <= alpha) || t.U == centre || math.Abs(effect) < mc.EffectSize {
		return Pass
	}
	if t.U > centre {
		if mc.Direction == Decrease {
			return Pass
		}
		return High
	}
	if mc.Direction == Increase {
		return Pass
	}
	return Low
}

// verdict scores the classified metrics and decides.
func verdict(metrics []Metric, withData int, cfg Config) Result {
	r := Result{Verdict: Failed, Metrics: metrics}
	if withData == 0 {
		r.Reason = "no data"
		return r
	}
	var passed, total float64
	var critical, failing []string
	for _, m := range metrics {
		total += m.Weight
		if m.Classification == Pass {
			passed += m.Weight
			continue
		}
		what := m.Name + " " + string(m.Classification)
		failing = append(failing, what)
		if m.Critical {
			critical = append(critical, what)
		}
	}
	r.Score = 100 * passed / total // weights are > 0: a weight of 0 means the default
	score := fmt.Sprintf("score %.1f", r.Score)
	switch {
	case len(critical) > 0:
		r.Reason = "critical metric failed: " + strings.Join(critical, ", ")
	case r.Score >= cfg.PassThreshold:
		r.Verdict = Passed
		r.Reason = fmt.Sprintf("%s ≥ %g", score, cfg.PassThreshold)
	case r.Score >= cfg.MarginalThreshold:
		r.Verdict = Marginal
		r.Reason = fmt.Sprintf("%s < %g", score, cfg.PassThreshold)
	default:
		r.Reason = fmt.Sprintf("%s < %g", score, cfg.MarginalThreshold)
	}
	if len(failing) > 0 && len(critical) == 0 {
		r.Reason += "; not passing: " + strings.Join(failing, ", ")
	}
	return r
}

// Holm adjusts p-values for multiple comparisons with the Holm–Bonferroni
// method: the i-th smallest of k p-values is multiplied by k − i + 1, the
// results are made non-decreasing in the order of the p-values, and capped
// at 1. The adjusted values are returned in the order of p. Equal p-values
// are ordered by position, so the result is deterministic.
func Holm(p []float64) []float64 {
	order := make([]int, len(p))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(p[a], p[b]) })
	adjusted := make([]float64, len(p))
	var running float64
	for rank, i := range order {
		v := min(1, float64(len(p)-rank)*p[i])
		running = max(running, v)
		adjusted[i] = running
	}
	return adjusted
}

// finiteValues returns the values of v that are finite numbers.
func finiteValues(v []float64) []float64 {
	out := make([]float64, 0, len(v))
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			out = append(out, x)
		}
	}
	return out
}

// mean returns the arithmetic mean of v, or NaN when v is empty.
func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	m := sum / float64(len(v))
	if math.IsInf(m, 0) { // the sum overflowed: average in smaller steps
		m = 0
		for _, x := range v {
			m += x / float64(len(v))
		}
	}
	return m
}

// finite returns a pointer to v, with −0 made +0, or nil when v is NaN or
// infinite.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	v += 0
	return &v
}
