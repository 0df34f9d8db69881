package alert

import (
	"cmp"
	"slices"
	"strings"
)

// The labels with which an alert names the pipeline and environment it
// concerns directly, bypassing routes.
const (
	LabelPipeline    = "ferry_pipeline"
	LabelEnvironment = "ferry_environment"
)

// Route sends the alerts whose labels satisfy all of Matchers to
// Environment of Pipeline. A route without matchers receives nothing: an
// environment must say which alerts concern it.
type Route struct {
	Pipeline    string
	Environment string
	Matchers    []Matcher
}

// Matches reports whether labels satisfy every matcher of r.
func (r Route) Matches(labels map[string]string) bool {
	if len(r.Matchers) == 0 {
		return false
	}
	for _, m := range r.Matchers {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}

// Target is a pipeline environment together with the firing alerts of one
// message that concern it.
type Target struct {
	Pipeline    string
	Environment string
	// Alerts are firing, ordered by fingerprint.
	Alerts []Alert
}

// Targets decides which pipeline environments the firing alerts of m
// concern. An alert labelled with both ferry_pipeline and ferry_environment
// goes to that environment whether or not a route names it; an alert with
// only one of them goes to the routes that agree with it and match; any other
// alert goes to every route it matches. Resolved alerts go nowhere. Targets
// are ordered by pipeline then environment, and an alert appears at most once
// per target.
func Targets(m *Message, routes []Route) []Target {
	if m == nil {
		return nil
	}
	type dest struct{ pipeline, environment string }
	byDest := map[dest][]int{}
	add := func(d dest, i int) {
		if !slices.Contains(byDest[d], i) {
			byDest[d] = append(byDest[d], i)
		}
	}
	for i, a := range m.Alerts {
		if !a.Firing() {
			continue
		}
		p, e := a.Labels[LabelPipeline], a.Labels[LabelEnvironment]
		if p != "" && e != "" {
			add(dest{p, e}, i)
			continue
		}
		for _, r := range routes {
			if (p == "" || p == r.Pipeline) && (e == "" || e == r.Environment) && r.Matches(a.Labels) {
				add(dest{r.Pipeline, r.Environment}, i)
			}
		}
	}

	targets := make([]Target, 0, len(byDest))
	for d, idx := range byDest {
		t := Target{Pipeline: d.pipeline, Environment: d.environment}
		for _, i := range idx {
			t.Alerts = append(t.Alerts, m.Alerts[i])
		}
		slices.SortStableFunc(t.Alerts, func(a, b Alert) int {
			return cmp.Or(
				strings.Compare(a.Fingerprint, b.Fingerprint),
				a.StartsAt.Compare(b.StartsAt),
			)
		})
		targets = append(targets, t)
	}
	slices.SortFunc(targets, func(a, b Target) int {
		return cmp.Or(
			strings.Compare(a.Pipeline, b.Pipeline),
			strings.Compare(a.Environment, b.Environment),
		)
	})
	return targets
}
