package alert

import (
	"strings"
	"testing"
)

func TestKeyStableAcrossResends(t *testing.T) {
	routes := []Route{{Pipeline: "shop", Environment: "prod", Matchers: []Matcher{mustParse(t, `job="checkout"`)}}}
	first := decodeFile(t, "firing.json")
	// Alertmanager repeats the group with a changed set of alerts.
	again := decodeFile(t, "firing.json")
	again.Alerts = again.Alerts[:1]
	again.Alerts[0].Annotations = map[string]string{"summary": "now 9%"}

	t1, t2 := Targets(first, routes), Targets(again, routes)
	if len(t1) != 1 || len(t2) != 1 {
		t.Fatalf("targets = %d, %d, want 1 each", len(t1), len(t2))
	}
	k1, k2 := Key(first.GroupKey, t1[0]), Key(again.GroupKey, t2[0])
	if k1 != k2 {
		t.Errorf("re-send keys differ: %s, %s", k1, k2)
	}
	if !strings.HasPrefix(k1, "am-") || len(k1) != len("am-")+32 {
		t.Errorf("key %q has an unexpected shape", k1)
	}
	// The key is a fixed function of its inputs, so it survives restarts.
	if want := Key(first.GroupKey, Target{Pipeline: "shop", Environment: "prod"}); k1 != want {
		t.Errorf("key depends on alerts: %s != %s", k1, want)
	}
}

func TestKeyDistinct(t *testing.T) {
	keys := map[string]string{}
	for _, c := range []struct{ group, pipeline, env string }{
		{"{}:{alertname=\"A\"}", "shop", "prod"},
		{"{}:{alertname=\"B\"}", "shop", "prod"},
		{"{}:{alertname=\"A\"}", "shop", "staging"},
		{"{}:{alertname=\"A\"}", "billing", "prod"},
		// Concatenations that would collide without length prefixes.
		{"ab", "c", "d"},
		{"a", "bc", "d"},
		{"a", "b", "cd"},
		{"", "", ""},
	} {
		name := c.group + "|" + c.pipeline + "|" + c.env
		k := Key(c.group, Target{Pipeline: c.pipeline, Environment: c.env})
		if other, ok := keys[k]; ok {
			t.Errorf("%s and %s share key %s", name, other, k)
		}
		keys[k] = name
	}
}

func TestSummary(t *testing.T) {
	alert := func(status, name, sev, summary string) Alert {
		a := Alert{Status: status, Labels: map[string]string{}, Annotations: map[string]string{}}
		if name != "" {
			a.Labels["alertname"] = name
		}
		if sev != "" {
			a.Labels["severity"] = sev
		}
		if summary != "" {
			a.Annotations["summary"] = summary
		}
		return a
	}
	tests := []struct {
		name   string
		alerts []Alert
		want   string
	}{
		{"none", nil, "no alerts"},
		{
			"labels only",
			[]Alert{alert(StatusFiring, "HighErrorRate", "critical", ""), alert(StatusFiring, "LatencyP99", "page", "")},
			"2 firing: HighErrorRate (severity=critical), LatencyP99 (severity=page)",
		},
		{
			"with summary annotations",
			[]Alert{alert(StatusFiring, "HighErrorRate", "critical", "5xx above 5%, rising"), alert(StatusFiring, "LatencyP99", "", "")},
			"2 firing: HighErrorRate (severity=critical): 5xx above 5%, rising; LatencyP99",
		},
		{
			"repeats counted",
			[]Alert{alert(StatusFiring, "PodCrash", "page", ""), alert(StatusFiring, "PodCrash", "page", ""), alert(StatusFiring, "Other", "", "")},
			"3 firing: PodCrash (severity=page) ×2, Other",
		},
		{
			"mixed statuses",
			[]Alert{alert(StatusFiring, "A", "", ""), alert(StatusResolved, "B", "", "")},
			"1 firing, 1 resolved: A, B",
		},
		{"all resolved", []Alert{alert(StatusResolved, "A", "", "")}, "1 resolved: A"},
		{
			"no alertname",
			[]Alert{{Status: StatusFiring, Fingerprint: "c3a1f2b4d5e60718"}, {Status: StatusFiring}},
			"2 firing: alert c3a1f2b4d5e60718, unnamed alert",
		},
		{
			"kept on one line",
			[]Alert{alert(StatusFiring, "Multi\nLine", "", "first line\n\tsecond   line")},
			"1 firing: Multi Line: first line second line",
		},
		{
			"long list shortened",
			[]Alert{
				alert(StatusFiring, "A", "", ""), alert(StatusFiring, "B", "", ""), alert(StatusFiring, "C", "", ""),
				alert(StatusFiring, "D", "", ""), alert(StatusFiring, "E", "", ""), alert(StatusFiring, "F", "", ""),
				alert(StatusFiring, "G", "", ""),
			},
			"7 firing: A, B, C, D, E, and 2 more",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summary(tt.alerts); got != tt.want {
				t.Errorf("Summary = %q\n want %q", got, tt.want)
			}
		})
	}
}

func TestSummaryLongAnnotation(t *testing.T) {
	long := strings.Repeat("é", 500)
	got := Summary([]Alert{{Status: StatusFiring, Labels: map[string]string{"alertname": "X"}, Annotations: map[string]string{"summary": long}}})
	if n := len([]rune(got)); n > 150 || !strings.HasSuffix(got, "…") {
		t.Errorf("Summary of a long annotation = %d runes: %q", n, got)
	}
}

func TestSummaryOfPayload(t *testing.T) {
	m := decodeFile(t, "firing.json")
	targets := Targets(m, []Route{{Pipeline: "shop", Environment: "prod", Matchers: []Matcher{mustParse(t, `severity=~"critical|page"`)}}})
	if len(targets) != 1 {
		t.Fatalf("targets = %d", len(targets))
	}
	want := "2 firing: HighErrorRate (severity=critical): Checkout 5xx rate above 5% ×2"
	if got := Summary(targets[0].Alerts); got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
}
