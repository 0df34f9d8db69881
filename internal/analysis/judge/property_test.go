package judge

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// sampleGen draws a sample of minLen to maxLen values of one of three kinds:
// continuous values, small integers with many ties, or, when wide, values
// spread over almost the whole range of float64.
func sampleGen(minLen, maxLen int, wide bool) *rapid.Generator[[]float64] {
	kinds := 2
	if wide {
		kinds = 3
	}
	return rapid.Custom(func(t *rapid.T) []float64 {
		var value *rapid.Generator[float64]
		switch rapid.IntRange(0, kinds-1).Draw(t, "kind") {
		case 0:
			value = rapid.Float64Range(-1000, 1000)
		case 1:
			value = rapid.Map(rapid.IntRange(0, 5), func(i int) float64 { return float64(i) })
		default:
			value = rapid.Float64Range(-1e300, 1e300)
		}
		return rapid.SliceOfN(value, minLen, maxLen).Draw(t, "values")
	})
}

// inputs are the samples of a judgement.
type inputs struct {
	baseline, canary map[string][]float64
}

// inputsGen draws the samples of up to four metrics, each sample of minLen
// to maxLen values; now and then a metric is missing from one side.
func inputsGen(minLen, maxLen int) *rapid.Generator[inputs] {
	return rapid.Custom(func(t *rapid.T) inputs {
		in := inputs{map[string][]float64{}, map[string][]float64{}}
		names := rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"cpu", "errors", "latency", "rps"}), 0, 4, rapid.ID[string]).Draw(t, "names")
		for _, name := range names {
			if rapid.IntRange(0, 9).Draw(t, "baseline missing "+name) > 0 {
				in.baseline[name] = sampleGen(minLen, maxLen, true).Draw(t, "baseline "+name)
			}
			if rapid.IntRange(0, 9).Draw(t, "canary missing "+name) > 0 {
				in.canary[name] = sampleGen(minLen, maxLen, true).Draw(t, "canary "+name)
			}
		}
		return in
	})
}

// configGen draws a configuration in which any change is bad and counts,
// with random weights and critical metrics.
func configGen() *rapid.Generator[Config] {
	return rapid.Custom(func(t *rapid.T) Config {
		cfg := Config{Metrics: map[string]MetricConfig{}}
		for _, name := range []string{"cpu", "errors", "latency", "rps"} {
			if rapid.Bool().Draw(t, "configured "+name) {
				cfg.Metrics[name] = MetricConfig{
					Critical: rapid.Bool().Draw(t, "critical "+name),
					Weight:   rapid.Float64Range(0, 5).Draw(t, "weight "+name),
				}
			}
		}
		return cfg
	})
}

var mirrored = map[Classification]Classification{High: Low, Low: High, Pass: Pass, NoData: NoData}

func TestSwappingSamplesMirrorsTheJudgement(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := inputsGen(1, 30).Draw(t, "samples")
		baseline, canary := in.baseline, in.canary
		cfg := configGen().Draw(t, "cfg")
		r := Judge(baseline, canary, cfg)
		s := Judge(canary, baseline, cfg)
		if r.Verdict != s.Verdict || r.Score != s.Score || len(r.Metrics) != len(s.Metrics) {
			t.Fatalf("verdicts differ:\n%+v\n%+v", r, s)
		}
		for i, m := range r.Metrics {
			w := s.Metrics[i]
			if w.Classification != mirrored[m.Classification] {
				t.Errorf("%s: %s, swapped %s", m.Name, m.Classification, w.Classification)
			}
			if !equalPtr(m.PValue, w.PValue) || !equalPtr(m.AdjustedPValue, w.AdjustedPValue) {
				t.Errorf("%s: p-values %v %v, swapped %v %v", m.Name, str(m.PValue), str(m.AdjustedPValue), str(w.PValue), str(w.AdjustedPValue))
			}
			if !equalPtr(m.Estimate, negate(w.Estimate)) {
				t.Errorf("%s: estimate %v, swapped %v", m.Name, str(m.Estimate), str(w.Estimate))
			}
		}
	})
}

func TestLargeIncreaseFails(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		baseline := sampleGen(8, 40, false).Draw(t, "baseline")
		canary := sampleGen(8, 40, false).Draw(t, "canary")
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range append(append([]float64(nil), baseline...), canary...) {
			lo, hi = min(lo, v), max(hi, v)
		}
		shift := 10*(hi-lo) + 1
		shifted := make([]float64, len(canary))
		for i, v := range canary {
			shifted[i] = v + shift
		}
		cfg := Config{Default: MetricConfig{Direction: Increase, EffectSize: rapid.Float64Range(0, 0.1).Draw(t, "effect size")}}
		b := map[string][]float64{"latency": baseline}
		c := map[string][]float64{"latency": shifted}
		if rapid.Bool().Draw(t, "with an unchanged metric") {
			b["cpu"], c["cpu"] = baseline, baseline
		}
		r := Judge(b, c, cfg)
		if r.Verdict != Failed {
			t.Fatalf("verdict %s (%s), want fail", r.Verdict, r.Reason)
		}
		for _, m := range r.Metrics {
			if m.Name == "latency" && m.Classification != High {
				t.Fatalf("latency is %s, want high: %+v", m.Classification, m)
			}
		}
	})
}

func TestJudgeIsDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := inputsGen(0, 60).Draw(t, "samples")
		baseline, canary := in.baseline, in.canary
		cfg := configGen().Draw(t, "cfg")
		r, s := Judge(baseline, canary, cfg), Judge(baseline, canary, cfg)
		if !reflect.DeepEqual(r, s) {
			t.Fatalf("two judgements differ:\n%+v\n%+v", r, s)
		}
		a, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("result does not encode (NaN or Inf?): %v", err)
		}
		b, _ := json.Marshal(s)
		if string(a) != string(b) {
			t.Fatalf("JSON differs:\n%s\n%s", a, b)
		}
	})
}

func TestHolmIsMonotoneAndConservative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := rapid.SliceOfN(rapid.OneOf(rapid.Float64Range(0, 1), rapid.SampledFrom([]float64{0, 0.01, 0.05, 1})), 0, 30).Draw(t, "p")
		adj := Holm(p)
		for i := range p {
			if adj[i] < p[i] || adj[i] > 1 {
				t.Fatalf("adjusted %v of %v is not in [p, 1]", adj[i], p[i])
			}
			for j := range p {
				if p[i] <= p[j] && adj[i] > adj[j] {
					t.Fatalf("p %v ≤ %v but adjusted %v > %v", p[i], p[j], adj[i], adj[j])
				}
			}
		}
	})
}

func equalPtr(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func negate(v *float64) *float64 {
	if v == nil {
		return nil
	}
	n := -*v
	return &n
}

func str(v *float64) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprint(*v)
}
