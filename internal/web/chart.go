package web

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// chartSVG is an SVG drawing, every text in it escaped.
type chartSVG = template.HTML

// esc escapes text for SVG content and attribute values.
func esc(s string) string { return template.HTMLEscapeString(s) }

// frame is a chart's geometry in SVG user units; the drawing scales to its
// container.
type frame struct {
	w, h, left, right, top, bottom float64
}

var (
	// wideFrame is a measurement chart's, shown across the page.
	wideFrame = frame{w: 640, h: 220, left: 64, right: 20, top: 16, bottom: 40}
	// smallFrame is a daily figure's, shown two or three across.
	smallFrame = frame{w: 380, h: 190, left: 58, right: 14, top: 12, bottom: 32}
)

// axis maps values onto a span of pixels.
type axis struct {
	lo, hi     float64
	from, to   float64
	descending bool
}

func (a axis) at(v float64) float64 {
	if a.hi == a.lo {
		return (a.from + a.to) / 2
	}
	return a.from + (v-a.lo)/(a.hi-a.lo)*(a.to-a.from)
}

// span returns a range that includes every value, padded.
func span(values []float64, zero bool) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range values {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if math.IsInf(lo, 1) {
		return 0, 1
	}
	if zero {
		lo = math.Min(lo, 0)
	}
	if hi == lo {
		pad := math.Abs(hi) * 0.1
		if pad == 0 {
			pad = 1
		}
		return lo - pad, hi + pad
	}
	pad := (hi - lo) * 0.08
	if zero && lo == 0 {
		return 0, hi + pad
	}
	return lo - pad, hi + pad
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func px(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// yGrid draws horizontal grid lines with labels.
func yGrid(b *strings.Builder, f frame, y axis, label func(float64) string) {
	for i := 0; i <= 4; i++ {
		v := y.lo + (y.hi-y.lo)*float64(i)/4
		py := y.at(v)
		fmt.Fprintf(b, `<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/>`, px(f.left), px(f.w-f.right), px(py), px(py))
		fmt.Fprintf(b, `<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>`, px(f.left-6), px(py+4), esc(label(v)))
	}
}

// measurementChart draws a check's measurements over time with its
// thresholds: successful points as circles, failed ones as crosses, others
// as triangles, each with a tooltip; a dashed line per threshold.
func measurementChart(s series) chartSVG {
	f := wideFrame
	var vals []float64
	var times []time.Time
	for _, p := range s.Points {
		times = append(times, p.At)
		if p.Value != nil {
			vals = append(vals, *p.Value)
		}
	}
	for _, t := range []*threshold{s.Success, s.Failure} {
		if t != nil {
			vals = append(vals, t.Value)
		}
	}
	lo, hi := span(vals, false)
	y := axis{lo: lo, hi: hi, from: f.h - f.bottom, to: f.top}
	t0, t1 := timeSpan(times)
	x := axis{lo: 0, hi: t1.Sub(t0).Seconds(), from: f.left + 10, to: f.w - f.right - 10}
	xAt := func(t time.Time) float64 { return x.at(t.Sub(t0).Seconds()) }

	counts := map[string]int{}
	for _, p := range s.Points {
		counts[p.Verdict]++
	}
	title := fmt.Sprintf("Measurements of %s (attempt %d)", s.Check, s.Attempt)
	desc := fmt.Sprintf("%d measurements: %d successful, %d failed, %d other.", len(s.Points),
		counts["successful"], counts["failed"], len(s.Points)-counts["successful"]-counts["failed"])
	for _, c := range s.Conditions {
		desc += " Condition " + c + "."
	}
	var b strings.Builder
	id := fmt.Sprintf("m-%s-%d", s.Phase, s.Index)
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-t %s-d" xmlns="http://www.w3.org/2000/svg">`, int(f.w), int(f.h), id, id)
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, id, esc(title), id, esc(desc))
	yGrid(&b, f, y, num)
	fmt.Fprintf(&b, `<text class="tick" x="%s" y="%s">%s</text>`, px(f.left), px(f.h-12), esc(t0.UTC().Format("15:04:05")))
	fmt.Fprintf(&b, `<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>`, px(f.w-f.right), px(f.h-12), esc(t1.UTC().Format("15:04:05 UTC")))
	for _, th := range []struct {
		t     *threshold
		class string
		what  string
	}{{s.Success, "thr-ok", "success"}, {s.Failure, "thr-bad", "failure"}} {
		if th.t == nil {
			continue
		}
		py := y.at(th.t.Value)
		fmt.Fprintf(&b, `<g class="%s"><title>%s threshold: %s</title><line x1="%s" x2="%s" y1="%s" y2="%s"/>`,
			th.class, th.what, esc(th.t.Text), px(f.left), px(f.w-f.right), px(py), px(py))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end">%s: %s</text></g>`, px(f.w-f.right-4), px(py-5), th.what, esc(th.t.Text))
	}
	var line []string
	for _, p := range s.Points {
		if p.Value != nil {
			line = append(line, px(xAt(p.At))+","+px(y.at(*p.Value)))
		}
	}
	if len(line) > 1 {
		fmt.Fprintf(&b, `<polyline class="series" points="%s"/>`, strings.Join(line, " "))
	}
	for _, p := range s.Points {
		tip := fmt.Sprintf("%s: %s, %s", p.At.UTC().Format("15:04:05"), p.Raw, p.Verdict)
		if p.Error != "" {
			tip += ": " + p.Error
		}
		cx := xAt(p.At)
		cy := f.h - f.bottom - 4
		if p.Value != nil {
			cy = y.at(*p.Value)
		}
		fmt.Fprintf(&b, `<g class="pt %s"><title>%s</title>%s</g>`, stateLook(p.Verdict).Class, esc(tip), marker(p.Verdict, cx, cy))
	}
	b.WriteString(`</svg>`)
	return chartSVG(b.String())
}

// marker draws a point's shape by verdict, so that shape tells what colour does.
func marker(verdict string, x, y float64) string {
	switch verdict {
	case "successful":
		return fmt.Sprintf(`<circle cx="%s" cy="%s" r="4.5"/>`, px(x), px(y))
	case "failed":
		return fmt.Sprintf(`<path d="M%s %sL%s %sM%s %sL%s %s"/>`, px(x-4.5), px(y-4.5), px(x+4.5), px(y+4.5), px(x-4.5), px(y+4.5), px(x+4.5), px(y-4.5))
	}
	return fmt.Sprintf(`<path d="M%s %sL%s %sL%s %sZ"/>`, px(x), px(y-5), px(x+5), px(y+4), px(x-5), px(y+4))
}

func timeSpan(ts []time.Time) (time.Time, time.Time) {
	if len(ts) == 0 {
		now := time.Now()
		return now, now.Add(time.Minute)
	}
	lo, hi := ts[0], ts[0]
	for _, t := range ts {
		if t.Before(lo) {
			lo = t
		}
		if t.After(hi) {
			hi = t
		}
	}
	if !hi.After(lo) {
		hi = lo.Add(time.Second)
	}
	return lo, hi
}

// dailyChart draws one figure per day as a line with a point per day that
// has a value; days without one leave a gap.
// A fraction (a rate) is drawn from 0 to 100%.
func dailyChart(id, title string, days []time.Time, values []*float64, fraction bool, label func(float64) string) chartSVG {
	f := smallFrame
	var vals []float64
	known := 0
	for _, v := range values {
		if v != nil {
			vals = append(vals, *v)
			known++
		}
	}
	lo, hi := span(vals, true)
	if fraction {
		lo, hi = 0, 1
	} else if hi <= 0 {
		hi = 1
	}
	y := axis{lo: lo, hi: hi, from: f.h - f.bottom, to: f.top}
	x := axis{lo: 0, hi: float64(max(len(days)-1, 1)), from: f.left + 10, to: f.w - f.right - 10}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-t %s-d" xmlns="http://www.w3.org/2000/svg">`, int(f.w), int(f.h), id, id)
	desc := fmt.Sprintf("%d of %d days have a value.", known, len(days))
	if len(days) > 0 {
		desc = fmt.Sprintf("From %s to %s: ", days[0].Format("2006-01-02"), days[len(days)-1].Format("2006-01-02")) + desc
	}
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, esc(id), esc(title), esc(id), esc(desc))
	yGrid(&b, f, y, label)
	if len(days) > 0 {
		for _, i := range []int{0, len(days) / 2, len(days) - 1} {
			anchor := "middle"
			if i == 0 {
				anchor = "start"
			} else if i == len(days)-1 {
				anchor = "end"
			}
			fmt.Fprintf(&b, `<text class="tick" x="%s" y="%s" text-anchor="%s">%s</text>`, px(x.at(float64(i))), px(f.h-12), anchor, esc(days[i].Format("Jan 2")))
		}
	}
	var run []string
	flush := func() {
		if len(run) > 1 {
			fmt.Fprintf(&b, `<polyline class="series" points="%s"/>`, strings.Join(run, " "))
		}
		run = nil
	}
	for i, v := range values {
		if v == nil {
			flush()
			continue
		}
		run = append(run, px(x.at(float64(i)))+","+px(y.at(*v)))
	}
	flush()
	for i, v := range values {
		if v != nil {
			fmt.Fprintf(&b, `<g class="pt run"><title>%s: %s</title><circle cx="%s" cy="%s" r="3.5"/></g>`,
				esc(days[i].Format("2006-01-02")), esc(label(*v)), px(x.at(float64(i))), px(y.at(*v)))
		}
	}
	if known == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%s" y="%s" text-anchor="middle">no data in this period</text>`, px(f.w/2), px(f.h/2))
	}
	b.WriteString(`</svg>`)
	return chartSVG(b.String())
}
