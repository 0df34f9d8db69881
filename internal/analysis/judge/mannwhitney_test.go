package judge

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

// reference is testdata/reference.json: results of R's wilcox.test, made by
// testdata/reference.R.
type reference struct {
	Source string `json:"source"`
	Cases  []struct {
		Name      string    `json:"name"`
		Method    string    `json:"method"`
		Baseline  []float64 `json:"baseline"`
		Canary    []float64 `json:"canary"`
		Statistic float64   `json:"statistic"`
		PValue    float64   `json:"pValue"`
		Estimate  float64   `json:"estimate"`
		CILow     float64   `json:"ciLow"`
		CIHigh    float64   `json:"ciHigh"`
	} `json:"cases"`
}

// Tolerances of the comparison with R.
const (
	// pRelTol and pAbsTol bound the difference of p-values: relative, or
	// absolute for p-values near 0.
	pRelTol = 1e-6
	pAbsTol = 1e-9
	// exactTol bounds the difference of the estimate and interval from the
	// exact distribution, which are pairwise differences (or the mean of
	// two): both sides compute them the same way.
	exactTol = 1e-12
	// rootTol bounds the difference of a bound of the interval from the
	// normal approximation: R finds it with uniroot to a tolerance of 1e-4,
	// MannWhitney returns the pairwise difference uniroot converges to.
	rootTol = 1e-3
)

func loadReference(t *testing.T) reference {
	t.Helper()
	data, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ref.Source, "R version") || !strings.Contains(ref.Source, "wilcox.test(canary, baseline") {
		t.Fatalf("reference source %q does not name R and the call", ref.Source)
	}
	if len(ref.Cases) < 10 {
		t.Fatalf("reference has %d cases, want at least 10", len(ref.Cases))
	}
	return ref
}

func TestMannWhitneyMatchesR(t *testing.T) {
	for _, c := range loadReference(t).Cases {
		t.Run(c.Name, func(t *testing.T) {
			got, err := MannWhitney(c.Canary, c.Baseline, 0.05)
			if err != nil {
				t.Fatal(err)
			}
			wantExact := strings.Contains(c.Method, "exact")
			if got.Exact != wantExact {
				t.Errorf("Exact = %v, R used %q", got.Exact, c.Method)
			}
			if got.U != c.Statistic {
				t.Errorf("U = %v, R's W = %v", got.U, c.Statistic)
			}
			if d := math.Abs(got.PValue - c.PValue); d > pAbsTol && d > pRelTol*math.Abs(c.PValue) {
				t.Errorf("p-value = %.17g, R: %.17g", got.PValue, c.PValue)
			}
			t.Logf("%s: |Δp| = %.2g, |Δci| = %.2g, %.2g", c.Method, math.Abs(got.PValue-c.PValue),
				math.Abs(got.CILow-c.CILow), math.Abs(got.CIHigh-c.CIHigh))
			ciTol := rootTol
			if wantExact {
				ciTol = exactTol
			}
			if math.Abs(got.CILow-c.CILow) > ciTol || math.Abs(got.CIHigh-c.CIHigh) > ciTol {
				t.Errorf("interval = [%.17g, %.17g], R: [%.17g, %.17g] (tolerance %g)", got.CILow, got.CIHigh, c.CILow, c.CIHigh, ciTol)
			}

			diffs := pairwiseDifferences(c.Canary, c.Baseline)
			if hl := sortedMedian(diffs); math.Abs(got.Estimate-hl) > exactTol {
				t.Errorf("estimate = %.17g, median of the pairwise differences = %.17g", got.Estimate, hl)
			}
			if wantExact {
				if math.Abs(got.Estimate-c.Estimate) > exactTol {
					t.Errorf("estimate = %.17g, R: %.17g", got.Estimate, c.Estimate)
				}
				return
			}
			// R's estimate is a root found by uniroot: some point between the
			// two middle pairwise differences (the median, when their number
			// is odd), to within its tolerance.
			k := len(diffs)
			lo, hi := diffs[(k-1)/2], diffs[k/2]
			if c.Estimate < lo-rootTol || c.Estimate > hi+rootTol {
				t.Errorf("R's estimate %.17g is not within [%v, %v] (estimate %v)", c.Estimate, lo, hi, got.Estimate)
			}
		})
	}
}

// pairwiseDifferences returns the sorted differences x[i] − y[j].
func pairwiseDifferences(x, y []float64) []float64 {
	var d []float64
	for _, a := range x {
		for _, b := range y {
			d = append(d, a-b)
		}
	}
	slices.Sort(d)
	return d
}

// sortedMedian returns the median of the sorted values s.
func sortedMedian(s []float64) float64 {
	k := len(s)
	if k%2 == 1 {
		return s[k/2]
	}
	return s[k/2-1]/2 + s[k/2]/2
}

func TestNullDistribution(t *testing.T) {
	// For m = n = 3 the 20 arrangements give U = 0..9 with counts
	// 1 1 2 3 3 3 3 2 1 1.
	counts := []float64{1, 1, 2, 3, 3, 3, 3, 2, 1, 1}
	got := nullDistribution(3, 3)
	if len(got) != len(counts) {
		t.Fatalf("len = %d, want %d", len(got), len(counts))
	}
	for u, c := range counts {
		if math.Abs(got[u]-c/20) > 1e-15 {
			t.Errorf("P(U = %d) = %v, want %v", u, got[u], c/20)
		}
	}
	for _, size := range [][2]int{{1, 1}, {5, 9}, {9, 5}, {49, 49}, {3, 40}} {
		d := nullDistribution(size[0], size[1])
		var sum float64
		for u := range d {
			sum += d[u]
			if math.Abs(d[u]-d[len(d)-1-u]) > 1e-15 {
				t.Errorf("%v: P(U = %d) = %v is not symmetric", size, u, d[u])
			}
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("%v: probabilities sum to %v", size, sum)
		}
	}
}

func TestDifferencesKth(t *testing.T) {
	x := []float64{-3.5, -1, 0, 0, 2.25, 7}
	y := []float64{-2, 0, 0.5, 0.5, 1e-300, 9}
	slices.Sort(x)
	slices.Sort(y)
	want := pairwiseDifferences(x, y)
	d := differences{x: x, y: y}
	for k := 1; k <= len(want); k++ {
		if got := d.kth(k); got != want[k-1] {
			t.Errorf("kth(%d) = %v, want %v", k, got, want[k-1])
		}
	}
}

func TestMannWhitneyEdgeCases(t *testing.T) {
	if _, err := MannWhitney(nil, []float64{1}, 0.05); err == nil {
		t.Error("empty sample: no error")
	}
	if _, err := MannWhitney([]float64{1, math.NaN()}, []float64{1}, 0.05); err == nil {
		t.Error("NaN: no error")
	}
	if _, err := MannWhitney([]float64{1}, []float64{1}, 1); err == nil {
		t.Error("alpha 1: no error")
	}
	// All observations equal: nothing to tell apart.
	got, err := MannWhitney([]float64{2, 2, 2}, []float64{2, 2, 2, 2}, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if got.PValue != 1 || got.Estimate != 0 || got.CILow != 0 || got.CIHigh != 0 {
		t.Errorf("all tied: %+v", got)
	}
	// Each sample constant, different: every difference is 1.
	got, err = MannWhitney([]float64{3, 3, 3, 3, 3}, []float64{2, 2, 2, 2, 2}, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if got.Estimate != 1 || got.CILow != 1 || got.CIHigh != 1 || !(got.PValue < 0.01) {
		t.Errorf("constant samples: %+v", got)
	}
}
