package web

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/analysis"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/step/metric"
	"github.com/ferry-dev/ferry/internal/traceid"
	"github.com/ferry-dev/ferry/internal/view"
)

func TestSessionCookieIsSealed(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	key := []byte(strings.Repeat("k", 32))
	ss, err := newSessions(key, time.Hour, clock)
	if err != nil {
		t.Fatal(err)
	}
	s := session{ID: "abc", TokenHash: strings.Repeat("f", 64), Expires: now.Add(time.Hour).Unix()}
	sealed := ss.seal(s)
	if strings.Contains(sealed, s.TokenHash) || strings.Contains(sealed, "abc") {
		t.Fatal("the sealed cookie shows its content")
	}
	got, err := ss.open(sealed)
	if err != nil || got != s {
		t.Fatalf("open(seal(s)) = %+v, %v", got, err)
	}
	if ss.seal(s) == sealed {
		t.Fatal("sealing twice gives the same cookie: the nonce is not random")
	}
	tampered := []byte(sealed)
	tampered[len(tampered)/2] ^= 1
	if _, err := ss.open(string(tampered)); err == nil {
		t.Fatal("a tampered cookie opened")
	}
	other, _ := newSessions([]byte(strings.Repeat("x", 32)), time.Hour, clock)
	if _, err := other.open(sealed); err == nil {
		t.Fatal("a cookie opened under another key")
	}
	now = now.Add(2 * time.Hour)
	if _, err := ss.open(sealed); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired cookie: %v", err)
	}
	if ss.csrf(session{ID: "a"}) == ss.csrf(session{ID: "b"}) || ss.csrf(s) != ss.csrf(s) {
		t.Fatal("CSRF tokens must be per session and stable")
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/inbox": "/inbox", "/promotions/x?y=1": "/promotions/x?y=1",
		"": "/", "//evil.example": "/", "/\\evil.example": "/", "https://evil.example/": "/", "javascript:alert(1)": "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseThreshold(t *testing.T) {
	for cond, want := range map[string]*threshold{
		"result < 0.01":            {Op: "<", Value: 0.01},
		" result>=5 ":              {Op: ">=", Value: 5},
		"0.05 < result":            {Op: ">", Value: 0.05},
		"1e-3 >= result":           {Op: "<=", Value: 0.001},
		"result[0] < 1":            nil,
		"result < 1 && result > 0": nil,
		"size(result) > 0":         nil,
	} {
		got := parseThreshold(cond)
		if (got == nil) != (want == nil) || got != nil && (got.Op != want.Op || got.Value != want.Value) {
			t.Errorf("parseThreshold(%q) = %+v, want %+v", cond, got, want)
		}
	}
}

func TestMeasurementsChartedWithThresholds(t *testing.T) {
	env := pipeline.Environment{Name: "prod", Verify: []pipeline.Step{
		{Name: "smoke"},
		{Name: "error-rate", Prometheus: &pipeline.PrometheusCheck{Measure: pipeline.Measure{
			SuccessCondition: "result < 0.01", FailureCondition: "result > 0.05"}}},
	}}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	line := func(i int, v any, verdict analysis.Verdict) string {
		return metric.Measurement{At: at.Add(time.Duration(i) * time.Minute), Value: v, Verdict: verdict}.Line() + "\n"
	}
	out := "measuring … every 1m0s, 4 times\n" + line(0, 0.002, analysis.Successful) + line(1, 0.09, analysis.Failed)
	// A measurement split across chunks, and one without data.
	chunks := []view.LogChunk{
		{Phase: promotion.PhaseVerify, Index: 1, Step: "error-rate", Attempt: 1, Text: out[:len(out)-10]},
		{Phase: promotion.PhaseVerify, Index: 1, Step: "error-rate", Attempt: 1, Text: out[len(out)-10:] + line(2, nil, analysis.Inconclusive)},
		{Phase: promotion.PhaseVerify, Index: 0, Step: "smoke", Attempt: 1, Text: "ok\n"},
	}
	got := measurements(chunks, env)
	if len(got) != 1 {
		t.Fatalf("series = %+v, want one for error-rate", got)
	}
	s := got[0]
	if len(s.Points) != 3 || *s.Points[0].Value != 0.002 || *s.Points[1].Value != 0.09 || s.Points[2].Value != nil {
		t.Fatalf("points = %+v", s.Points)
	}
	if s.Success == nil || s.Success.Value != 0.01 || s.Failure == nil || s.Failure.Value != 0.05 {
		t.Fatalf("thresholds = %+v %+v", s.Success, s.Failure)
	}
	svg := string(s.Chart())
	for _, want := range []string{`class="thr-ok"`, `class="thr-bad"`, "success: result &lt; 0.01", "failure: result &gt; 0.05",
		`<circle`, `class="pt bad"`, "3 measurements: 1 successful, 1 failed, 1 other."} {
		if !strings.Contains(svg, want) {
			t.Fatalf("chart lacks %q:\n%s", want, svg)
		}
	}
	// A later attempt replaces the earlier one.
	chunks = append(chunks, view.LogChunk{Phase: promotion.PhaseVerify, Index: 1, Step: "error-rate", Attempt: 2, Text: line(5, 0.001, analysis.Successful)})
	if got := measurements(chunks, env); len(got) != 1 || got[0].Attempt != 2 || len(got[0].Points) != 1 {
		t.Fatalf("after attempt 2: %+v", got)
	}
}

func TestChartsEscapeText(t *testing.T) {
	s := series{Check: `<script>x</script>`, Phase: promotion.PhaseVerify, Points: []point{{At: time.Now(), Raw: "<b>", Verdict: "successful"}}}
	svg := string(measurementChart(s))
	if strings.Contains(svg, "<script>") || strings.Contains(svg, "<b>") {
		t.Fatalf("chart text not escaped:\n%s", svg)
	}
	envs := []view.Environment{{Name: "dev"}, {Name: "prod", After: []string{"dev"}, Current: &view.ReleaseRef{Version: `1.0"><script>`}}}
	dag := string(dagSVG(`shop`, envs, nil))
	if strings.Contains(dag, "<script>") || !strings.Contains(dag, "prod comes after dev") {
		t.Fatalf("graph:\n%s", dag)
	}
}

func TestLevelsFollowTheLongestPath(t *testing.T) {
	envs := []view.Environment{
		{Name: "dev"}, {Name: "staging", After: []string{"dev"}}, {Name: "eu", After: []string{"staging"}},
		{Name: "us", After: []string{"staging"}}, {Name: "prod", After: []string{"eu", "dev"}},
	}
	got := levels(envs)
	want := map[string]int{"dev": 0, "staging": 1, "eu": 2, "us": 2, "prod": 3}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("levels = %v, want %v", got, want)
		}
	}
	cols := columns(envs)
	if len(cols) != 4 || len(cols[2]) != 2 || cols[2][0].Name != "eu" {
		t.Fatalf("columns = %+v", cols)
	}
}

func TestDiffArtifacts(t *testing.T) {
	a := func(name, d string) release.Artifact {
		return release.Artifact{Name: name, URI: "r/" + name, Digest: "sha256:" + strings.Repeat(d, 64)}
	}
	cur := &release.Release{Artifacts: []release.Artifact{a("api", "1"), a("web", "2"), a("worker", "3")}}
	next := &release.Release{Artifacts: []release.Artifact{a("api", "1"), a("web", "4"), a("cron", "5")}}
	got := diffArtifacts(cur, next)
	want := map[string]string{"api": "unchanged", "web": "changed", "worker": "removed", "cron": "added"}
	if len(got) != len(want) {
		t.Fatalf("diff = %+v", got)
	}
	for _, d := range got {
		if want[d.Name] != d.Change {
			t.Fatalf("%s: %s, want %s", d.Name, d.Change, want[d.Name])
		}
	}
	if got := diffArtifacts(nil, next); len(got) != 3 || got[0].Change != "added" {
		t.Fatalf("diff against nothing: %+v", got)
	}
}

func TestTraceIDIsThePromotionsTrace(t *testing.T) {
	const id = "0193a8c2-7d3e-4a4b-9c1d-2e3f4a5b6c7d"
	if got, want := traceID(id), traceid.FromPromotion(id).String(); got != want || len(got) != 32 {
		t.Fatalf("traceID = %s, want the engine's %s", got, want)
	}
	if traceID("p1") == traceID("p2") {
		t.Fatal("two promotions share a trace ID")
	}
}

func TestHiddenEnvironmentsShowTheirNameOnly(t *testing.T) {
	envs := []view.Environment{{Name: "dev", Current: &view.ReleaseRef{Version: "9.9.9"}}, {Name: "prod", After: []string{"dev"}}}
	dag := string(dagSVG("shop", envs, map[string]bool{"dev": true}))
	if strings.Contains(dag, "9.9.9") || !strings.Contains(dag, `aria-label="dev: not visible to you"`) {
		t.Fatalf("graph of a hidden environment:\n%s", dag)
	}
}
