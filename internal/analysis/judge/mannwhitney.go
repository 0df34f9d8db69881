package judge

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// exactLimit bounds the sample sizes for which MannWhitney uses the exact
// null distribution: both samples must have fewer observations than this,
// as in R's wilcox.test.
const exactLimit = 50

// Test is the outcome of a two-sided Mann–Whitney U (Wilcoxon rank-sum) test
// of a sample x against a sample y, with the Hodges–Lehmann estimate of the
// shift of x relative to y and its confidence interval.
type Test struct {
	// U is the Mann–Whitney statistic of x: the number of pairs (xi, yj)
	// with xi > yj plus half the number with xi = yj. R reports it as W.
	U float64
	// PValue is the two-sided p-value of the hypothesis that x and y come
	// from the same distribution.
	PValue float64
	// Estimate is the Hodges–Lehmann estimate of the shift: the median of
	// the pairwise differences xi − yj.
	Estimate float64
	// CILow and CIHigh bound the confidence interval of the shift.
	CILow, CIHigh float64
	// Exact reports whether the p-value and interval come from the exact
	// null distribution of U rather than from the normal approximation.
	Exact bool
}

// MannWhitney tests whether x and y come from the same distribution against
// the alternative that one is shifted relative to the other, and estimates
// the shift of x relative to y with a 1 − alpha confidence interval. It
// follows R's wilcox.test(x, y, conf.int = TRUE, conf.level = 1 − alpha,
// correct = TRUE):
//
//   - When both samples have fewer than 50 observations and no value occurs
//     twice in the pooled sample, the p-value and interval come from the
//     exact null distribution of U: the interval is [D(k), D(mn+1−k)], where
//     D(1) ≤ … ≤ D(mn) are the sorted pairwise differences and k is the
//     alpha/2 quantile of U (at least 1), as R computes it.
//   - Otherwise the p-value uses the normal approximation of U with the tie
//     correction of its variance and a continuity correction of 0.5. The
//     interval bounds are the shifts d at which the standardised statistic
//     of (x − d, y), computed the same way, crosses ∓z(alpha/2). R finds them
//     with uniroot to a tolerance of 1e-4; since the statistic is a step
//     function of d that changes only at pairwise differences, MannWhitney
//     returns the pairwise difference at which it crosses, which is the
//     point uniroot converges to.
//
// The estimate is always the median of the pairwise differences. (In the
// normal case R instead returns a root of the uncorrected statistic found by
// uniroot, which is that median when mn is odd and some point between the
// two middle differences when mn is even.)
//
// When every observation in the pooled sample is equal, the p-value is 1 and
// the estimate and interval are 0 (R reports no p-value). MannWhitney returns
// an error when a sample is empty or holds a value that is not finite, or
// when alpha is not between 0 and 1.
func MannWhitney(x, y []float64, alpha float64) (Test, error) {
	if len(x) == 0 || len(y) == 0 {
		return Test{}, errors.New("mann-whitney: each sample needs at least one observation")
	}
	if !(alpha > 0 && alpha < 1) {
		return Test{}, fmt.Errorf("mann-whitney: alpha %v is not between 0 and 1", alpha)
	}
	xs, err := sortedCopy(x)
	if err != nil {
		return Test{}, err
	}
	ys, err := sortedCopy(y)
	if err != nil {
		return Test{}, err
	}
	m, n := float64(len(xs)), float64(len(ys))
	mn := m * n
	u, ties := rankStatistic(xs, ys, 0)
	d := differences{x: xs, y: ys}
	t := Test{U: u, Estimate: d.median()}

	if len(xs) < exactLimit && len(ys) < exactLimit && ties == 0 {
		t.Exact = true
		dist := nullDistribution(len(xs), len(ys))
		t.PValue = min(1, 2*dist.tail(u))
		k := dist.quantile(alpha / 2)
		if k == 0 {
			k = 1
		}
		t.CILow, t.CIHigh = d.kth(k), d.kth(d.count()+1-k)
		return t, nil
	}

	sigma := sigmaU(m, n, ties)
	if sigma == 0 {
		// Every observation is the same value: nothing tells the samples apart.
		t.PValue = 1
		return t, nil
	}
	t.PValue = math.Erfc(math.Abs(corrected(u-mn/2)/sigma) / math.Sqrt2)
	zq := math.Sqrt2 * math.Erfcinv(alpha) // the upper alpha/2 quantile of N(0, 1)
	tiesOpen := tieSum(xs) + tieSum(ys)
	t.CILow, t.CIHigh = d.root(zq, tiesOpen), d.root(-zq, tiesOpen)
	return t, nil
}

// sortedCopy returns the values in increasing order, with −0 made +0, or an
// error when one is not finite.
func sortedCopy(v []float64) ([]float64, error) {
	s := make([]float64, len(v))
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("mann-whitney: observation %d is %v", i+1, x)
		}
		s[i] = x + 0
	}
	slices.Sort(s)
	return s, nil
}

// corrected applies the continuity correction to a centred statistic v:
// it moves v half a unit towards 0.
func corrected(v float64) float64 {
	switch {
	case v > 0:
		return v - 0.5
	case v < 0:
		return v + 0.5
	}
	return 0
}

// sigmaU is the standard deviation of U under the null hypothesis for samples
// of sizes m and n whose pooled sample has tie sum ties (the sum of t³ − t
// over groups of t equal values).
func sigmaU(m, n, ties float64) float64 {
	N := m + n
	v := m * n / 12 * ((N + 1) - ties/(N*(N-1)))
	if v <= 0 {
		return 0
	}
	return math.Sqrt(v)
}

// rankStatistic returns the statistic U of the sample x − shift against y
// (the rank sum of x − shift in the pooled sample minus m(m+1)/2, with tied
// values sharing their mean rank) and the tie sum of the pooled sample.
func rankStatistic(x, y []float64, shift float64) (u, ties float64) {
	type obs struct {
		v     float64
		fromX bool
	}
	pooled := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		pooled = append(pooled, obs{v - shift, true})
	}
	for _, v := range y {
		pooled = append(pooled, obs{v, false})
	}
	slices.SortFunc(pooled, func(a, b obs) int { return cmp.Compare(a.v, b.v) })
	var rankSum float64
	for i := 0; i < len(pooled); {
		j, fromX := i, 0
		for ; j < len(pooled) && pooled[j].v == pooled[i].v; j++ {
			if pooled[j].fromX {
				fromX++
			}
		}
		rankSum += float64(fromX) * float64(i+1+j) / 2
		if t := float64(j - i); t > 1 {
			ties += t*t*t - t
		}
		i = j
	}
	m := float64(len(x))
	return rankSum - m*(m+1)/2, ties
}

// tieSum returns the sum of t³ − t over the groups of t equal values of the
// sorted sample s.
func tieSum(s []float64) float64 {
	var sum float64
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		if t := float64(j - i); t > 1 {
			sum += t*t*t - t
		}
		i = j
	}
	return sum
}

// distribution is the exact null distribution of U: p[u] is P(U = u).
type distribution []float64

// nullDistribution returns the distribution of U for samples of sizes m and
// n without ties. It applies the recurrence
//
//	P(m,n)(U = u) = m/(m+n) · P(m−1,n)(U = u−n) + n/(m+n) · P(m,n−1)(U = u)
//
// (the largest observation comes from x with probability m/(m+n), and then
// exceeds all n observations of y), which only adds positive terms and so
// neither overflows nor cancels.
func nullDistribution(m, n int) distribution {
	if m > n {
		m, n = n, m // U has the same distribution either way
	}
	prev := make([][]float64, n+1) // prev[j] is the distribution for (i−1, j)
	for j := range prev {
		prev[j] = []float64{1}
	}
	for i := 1; i <= m; i++ {
		cur := make([][]float64, n+1)
		cur[0] = []float64{1}
		for j := 1; j <= n; j++ {
			p := make([]float64, i*j+1)
			a, b := float64(i)/float64(i+j), float64(j)/float64(i+j)
			for u, q := range prev[j] {
				p[u+j] += a * q
			}
			for u, q := range cur[j-1] {
				p[u] += b * q
			}
			cur[j] = p
		}
		prev = cur
	}
	return prev[n]
}

// tail returns the probability of a value of U at least as far from the
// centre as u, on u's side: P(U ≤ u) when u is below the centre, else
// P(U ≥ u). It sums the shorter tail, using the symmetry of the distribution.
func (d distribution) tail(u float64) float64 {
	top := float64(len(d) - 1)
	k := int(math.Min(u, top-u))
	var p float64
	for i := 0; i <= k; i++ {
		p += d[i]
	}
	return p
}

// quantile returns the smallest q with P(U ≤ q) ≥ p, for p ≤ 1/2, allowing
// for rounding as R's qwilcox does.
func (d distribution) quantile(p float64) int {
	target := p - 10*epsilon
	var cum float64
	for q, pq := range d {
		cum += pq
		if cum >= target {
			return q
		}
	}
	return len(d) - 1
}

// epsilon is the difference between 1 and the next float64.
const epsilon = 0x1p-52

// differences stands for the pairwise differences x[i] − y[j] of two sorted
// samples without materialising them: their order statistics are found by
// searching the values for counts.
type differences struct {
	x, y []float64
}

// count returns the number of pairwise differences.
func (d differences) count() int { return len(d.x) * len(d.y) }

// countAtMost returns the number of pairwise differences ≤ v.
func (d differences) countAtMost(v float64) int {
	count, j := 0, 0
	for _, xi := range d.x {
		for j < len(d.y) && xi-d.y[j] > v {
			j++
		}
		count += len(d.y) - j
	}
	return count
}

// kth returns the k-th smallest pairwise difference, 1 ≤ k ≤ count(). It
// searches the float64 values between the smallest and largest difference
// in their order, which takes at most 64 counts.
func (d differences) kth(k int) float64 {
	lo := orderedBits(d.x[0] - d.y[len(d.y)-1])
	hi := orderedBits(d.x[len(d.x)-1] - d.y[0])
	for lo < hi {
		mid := lo + (hi-lo)/2
		if d.countAtMost(fromOrderedBits(mid)) >= k {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return fromOrderedBits(lo)
}

// median returns the median of the pairwise differences.
func (d differences) median() float64 {
	c := d.count()
	if c%2 == 1 {
		return d.kth(c/2 + 1)
	}
	return d.kth(c/2)/2 + d.kth(c/2+1)/2
}

// root returns the shift s at which the standardised, continuity-corrected
// statistic z(s) of (x − s, y) falls through zq, as R's wilcox.test finds
// it for its confidence interval. Like R it first evaluates z at the
// smallest and largest pairwise difference, returning the smallest when
// z ≤ zq there and the largest when z ≥ zq there. Between pairwise
// differences z is constant, with variance tie sum tiesOpen (ties within
// the samples only), and does not increase with s; the root is the pairwise
// difference at which it passes from above zq to below.
func (d differences) root(zq, tiesOpen float64) float64 {
	m, n := float64(len(d.x)), float64(len(d.y))
	mn := m * n
	lo, hi := d.x[0]-d.y[len(d.y)-1], d.x[len(d.x)-1]-d.y[0]
	at := func(s float64) float64 {
		u, ties := rankStatistic(d.x, d.y, s)
		return corrected(u-mn/2) / sigmaU(m, n, ties)
	}
	if z := at(lo); !(z-zq > 0) { // also when z is NaN, as when all values are tied
		return lo
	}
	if at(hi)-zq >= 0 {
		return hi
	}
	sigma := sigmaU(m, n, tiesOpen)
	// between reports whether z < zq where c differences exceed the shift.
	between := func(c int) bool { return corrected(float64(c)-mn/2)/sigma-zq < 0 }
	total := d.count()
	if !between(0) {
		return hi
	}
	// Find the largest c with between(c): between(a) holds, and b is past it.
	a, b := 0, total+1
	for b-a > 1 {
		mid := a + (b-a)/2
		if mid <= total && between(mid) {
			a = mid
		} else {
			b = mid
		}
	}
	if a >= total {
		return lo
	}
	return d.kth(total - a)
}

// orderedBits maps a float64 to a uint64 such that the order of the integers
// is the order of the floats.
func orderedBits(f float64) uint64 {
	b := math.Float64bits(f)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

// fromOrderedBits inverts orderedBits.
func fromOrderedBits(b uint64) float64 {
	if b>>63 == 1 {
		return math.Float64frombits(b &^ (1 << 63))
	}
	return math.Float64frombits(^b)
}
