package alert

import (
	"slices"
	"testing"
)

func firing(fp string, labels map[string]string) Alert {
	return Alert{Status: StatusFiring, Fingerprint: fp, Labels: labels}
}

// render writes targets as "pipeline/environment: fingerprints..." for comparison.
func render(targets []Target) []string {
	var out []string
	for _, t := range targets {
		s := t.Pipeline + "/" + t.Environment + ":"
		for _, a := range t.Alerts {
			s += " " + a.Fingerprint
		}
		out = append(out, s)
	}
	return out
}

func TestTargetsFromPayload(t *testing.T) {
	m := decodeFile(t, "mixed_ferry_labels.json")
	routes := []Route{
		{Pipeline: "payments", Environment: "staging", Matchers: []Matcher{
			mustParse(t, `job="payments"`), mustParse(t, `severity=~"critical|page"`),
		}},
		{Pipeline: "payments", Environment: "canary", Matchers: []Matcher{mustParse(t, `severity="warning"`)}},
	}
	got := render(Targets(m, routes))
	want := []string{
		// LatencyP99 names production directly; HighErrorRate is routed by
		// matchers; the resolved DiskAlmostFull (severity=warning) goes nowhere.
		"payments/production: 5f1e2d3c4b5a6978",
		"payments/staging: 1a2b3c4d5e6f7081",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Targets = %q, want %q", got, want)
	}
}

func TestTargets(t *testing.T) {
	sevRoute := func(p, e, sev string) Route {
		return Route{Pipeline: p, Environment: e, Matchers: []Matcher{mustParse(t, `severity=~"`+sev+`"`)}}
	}
	routes := []Route{
		sevRoute("shop", "prod", "critical|page"),
		sevRoute("shop", "staging", "critical"),
		sevRoute("billing", "prod", "page"),
		{Pipeline: "catchall", Environment: "prod"}, // no matchers: receives nothing
	}
	tests := []struct {
		name   string
		alerts []Alert
		want   []string
	}{
		{
			name: "matchers fan out and group in fingerprint order",
			alerts: []Alert{
				firing("ff", map[string]string{"severity": "critical"}),
				firing("0a", map[string]string{"severity": "page"}),
				firing("5c", map[string]string{"severity": "critical"}),
			},
			want: []string{"billing/prod: 0a", "shop/prod: 0a 5c ff", "shop/staging: 5c ff"},
		},
		{
			name: "ferry labels override matchers",
			alerts: []Alert{
				firing("01", map[string]string{"severity": "critical", LabelPipeline: "billing", LabelEnvironment: "qa"}),
			},
			want: []string{"billing/qa: 01"},
		},
		{
			name: "ferry labels need no route or matchers",
			alerts: []Alert{
				firing("01", map[string]string{LabelPipeline: "unknown", LabelEnvironment: "dev"}),
			},
			want: []string{"unknown/dev: 01"},
		},
		{
			name: "ferry_pipeline alone narrows the routes",
			alerts: []Alert{
				firing("01", map[string]string{"severity": "critical", LabelPipeline: "shop"}),
				firing("02", map[string]string{"severity": "page", LabelPipeline: "billing"}),
			},
			want: []string{"billing/prod: 02", "shop/prod: 01", "shop/staging: 01"},
		},
		{
			name: "ferry_environment alone narrows the routes",
			alerts: []Alert{
				firing("01", map[string]string{"severity": "critical", LabelEnvironment: "staging"}),
			},
			want: []string{"shop/staging: 01"},
		},
		{
			name: "empty ferry labels count as absent",
			alerts: []Alert{
				firing("01", map[string]string{"severity": "page", LabelPipeline: "", LabelEnvironment: ""}),
			},
			want: []string{"billing/prod: 01", "shop/prod: 01"},
		},
		{
			name: "resolved alerts are not targets",
			alerts: []Alert{
				{Status: StatusResolved, Fingerprint: "01", Labels: map[string]string{"severity": "critical"}},
				{Status: StatusResolved, Fingerprint: "02", Labels: map[string]string{LabelPipeline: "shop", LabelEnvironment: "prod"}},
				{Status: "", Fingerprint: "03", Labels: map[string]string{"severity": "critical"}},
			},
			want: nil,
		},
		{
			name:   "unmatched alerts go nowhere",
			alerts: []Alert{firing("01", map[string]string{"severity": "warning"}), firing("02", nil)},
			want:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render(Targets(&Message{Alerts: tt.alerts}, routes))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Targets = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTargetsDuplicateRoutes(t *testing.T) {
	r := Route{Pipeline: "shop", Environment: "prod", Matchers: []Matcher{mustParse(t, `a="1"`)}}
	m := &Message{Alerts: []Alert{firing("01", map[string]string{"a": "1"})}}
	got := render(Targets(m, []Route{r, r}))
	if want := []string{"shop/prod: 01"}; !slices.Equal(got, want) {
		t.Errorf("Targets = %q, want %q", got, want)
	}
}

func TestTargetsNil(t *testing.T) {
	if got := Targets(nil, nil); got != nil {
		t.Errorf("Targets(nil) = %v", got)
	}
	if got := Targets(decodeFile(t, "resolved.json"), []Route{{Pipeline: "p", Environment: "e", Matchers: []Matcher{mustParse(t, `job="checkout"`)}}}); len(got) != 0 {
		t.Errorf("Targets(resolved) = %v", render(got))
	}
}
