package web

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis/judge"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/step/metric"
	"github.com/ferry-dev/ferry/internal/view"
)

// point is one measurement of a metric check.
type point struct {
	At time.Time
	// Value is the measured number; nil when the measurement had no data,
	// erred, or measured something other than a number.
	Value   *float64
	Raw     string
	Verdict string
	Error   string
}

// threshold is a numeric comparison a condition makes, such as
// "result < 0.01".
type threshold struct {
	Op    string
	Value float64
	// Text is the whole condition.
	Text string
}

// series is the measurements of one attempt of one metric check, with the
// thresholds of its conditions where they compare the result with a number.
type series struct {
	Check   string
	Phase   promotion.Phase
	Index   int
	Attempt int
	Points  []point
	Success *threshold
	Failure *threshold
	// Conditions are the check's conditions as written.
	Conditions []string
	// Judgement is a canary check's verdict, when it reached one.
	Judgement *judge.Result
}

// Chart draws the series.
func (s series) Chart() chartSVG { return measurementChart(s) }

// measurements reads the measurements metric checks wrote in a promotion's
// output, keeping each check's latest attempt, in output order.
func measurements(chunks []view.LogChunk, env pipeline.Environment) []series {
	type key struct {
		phase promotion.Phase
		index int
	}
	partial := map[key]string{}
	byKey := map[key]*series{}
	var order []key
	for _, c := range chunks {
		k := key{c.Phase, c.Index}
		s := byKey[k]
		if s == nil || s.Attempt != c.Attempt {
			if s == nil {
				order = append(order, k)
			}
			s = newSeries(c, env)
			byKey[k] = s
			partial[k] = ""
		}
		text := partial[k] + c.Text
		lines := strings.Split(text, "\n")
		partial[k] = lines[len(lines)-1]
		for _, l := range lines[:len(lines)-1] {
			if m, ok := metric.ParseMeasurement(l); ok {
				s.Points = append(s.Points, toPoint(m))
			} else if j, ok := metric.ParseJudgement(l); ok {
				s.Judgement = &j
			}
		}
	}
	var out []series
	for _, k := range order {
		if s := byKey[k]; len(s.Points) > 0 || s.Judgement != nil {
			out = append(out, *s)
		}
	}
	return out
}

func newSeries(c view.LogChunk, env pipeline.Environment) *series {
	s := &series{Check: c.Step, Phase: c.Phase, Index: c.Index, Attempt: c.Attempt}
	st, ok := stepOf(env, c.Phase, c.Index)
	if !ok {
		return s
	}
	var m *pipeline.Measure
	switch {
	case st.Prometheus != nil:
		m = &st.Prometheus.Measure
	case st.Web != nil:
		m = &st.Web.Measure
	}
	if m != nil {
		if m.SuccessCondition != "" {
			s.Conditions = append(s.Conditions, "success: "+m.SuccessCondition)
			s.Success = parseThreshold(m.SuccessCondition)
		}
		if m.FailureCondition != "" {
			s.Conditions = append(s.Conditions, "failure: "+m.FailureCondition)
			s.Failure = parseThreshold(m.FailureCondition)
		}
	}
	return s
}

// stepOf returns the step of an environment at a phase and index, as the
// engine numbers them.
func stepOf(env pipeline.Environment, phase promotion.Phase, index int) (pipeline.Step, bool) {
	var steps []pipeline.Step
	switch phase {
	case promotion.PhasePreflight:
		if env.Gates != nil {
			steps = env.Gates.Preflight
		}
	case promotion.PhaseDeploy:
		steps = env.Steps
	case promotion.PhaseVerify:
		steps = env.Verify
	case promotion.PhaseCanary:
		if env.Strategy != nil && env.Strategy.Canary != nil {
			items := env.Strategy.Canary.CanaryItems()
			if index >= 0 && index < len(items) && items[index].Step != nil {
				return *items[index].Step, true
			}
		}
		return pipeline.Step{}, false
	case promotion.PhaseRollback:
		// A rollback runs the canary's set-weight steps (at weight 0) first,
		// then the deploy steps and the checks.
		if env.Strategy != nil && env.Strategy.Canary != nil {
			steps = append(steps, env.Strategy.Canary.SetWeight...)
		}
		steps = append(append(steps, env.Steps...), env.Verify...)
	}
	if index < 0 || index >= len(steps) {
		return pipeline.Step{}, false
	}
	return steps[index], true
}

func toPoint(m metric.Measurement) point {
	p := point{At: m.At, Verdict: string(m.Verdict), Error: m.Error}
	switch v := m.Value.(type) {
	case nil:
		p.Raw = "no data"
	case float64:
		p.Value = &v
		p.Raw = strconv.FormatFloat(v, 'g', 6, 64)
	case []any:
		// A vector: chart its largest element, show them all.
		parts := make([]string, 0, len(v))
		for _, x := range v {
			if f, ok := x.(float64); ok {
				if p.Value == nil || f > *p.Value {
					f := f
					p.Value = &f
				}
			}
			parts = append(parts, fmt.Sprint(x))
		}
		p.Raw = "[" + strings.Join(parts, ", ") + "]"
	default:
		p.Raw = fmt.Sprint(v)
	}
	return p
}

// comparison matches "result OP NUMBER" and "NUMBER OP result".
var (
	resultFirst = regexp.MustCompile(`^\s*result\s*(<=|>=|<|>)\s*(-?[0-9][0-9._eE+-]*)\s*$`)
	numberFirst = regexp.MustCompile(`^\s*(-?[0-9][0-9._eE+-]*)\s*(<=|>=|<|>)\s*result\s*$`)
)

// parseThreshold returns the threshold of a condition that compares the
// result with a number, or nil for any other condition.
func parseThreshold(cond string) *threshold {
	if m := resultFirst.FindStringSubmatch(cond); m != nil {
		if v, err := strconv.ParseFloat(strings.ReplaceAll(m[2], "_", ""), 64); err == nil {
			return &threshold{Op: m[1], Value: v, Text: strings.TrimSpace(cond)}
		}
	}
	if m := numberFirst.FindStringSubmatch(cond); m != nil {
		if v, err := strconv.ParseFloat(strings.ReplaceAll(m[1], "_", ""), 64); err == nil {
			flip := map[string]string{"<": ">", ">": "<", "<=": ">=", ">=": "<="}
			return &threshold{Op: flip[m[2]], Value: v, Text: strings.TrimSpace(cond)}
		}
	}
	return nil
}
