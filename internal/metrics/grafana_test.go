package metrics_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/ferry-dev/ferry/internal/promtest"
)

// dashboardDir holds the Grafana dashboards built on these metrics.
const dashboardDir = "../../examples/grafana"

// grafanaDashboard is the part of Grafana's dashboard JSON the test reads.
type grafanaDashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource map[string]any `json:"datasource"`
	} `json:"targets"`
	Options map[string]any `json:"options"`
}

// dashboards maps each dashboard file to words that panel titles must
// hold: what the seed document says each dashboard shows.
var dashboards = map[string][]string{
	"executive.json": {"success rate", "time to promote", "approval latency", "error budget", "deployment frequency", "change failure rate", "time to restore"},
	"on-call.json":   {"in flight", "canary", "rollbacks", "failed and rolled back", "logs"},
	"debug.json":     {"trace", "step duration", "store transaction latency", "cpu", "memory", "migration"},
}

// TestGrafanaDashboards checks that each dashboard is Grafana dashboard
// JSON with a Prometheus data-source variable, that every query uses only
// metrics Ferry exports and variables the dashboard defines, and that the
// real promtool parses every query.
func TestGrafanaDashboards(t *testing.T) {
	exported := exportedNames(t)
	files, err := filepath.Glob(filepath.Join(dashboardDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	sort.Strings(names)
	want := []string{"debug.json", "executive.json", "on-call.json"}
	if !slices.Equal(names, want) {
		t.Fatalf("%s holds %v, want %v", dashboardDir, names, want)
	}
	uids := map[string]string{}
	var exprs []string
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dashboardDir, name))
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		dec := json.NewDecoder(strings.NewReader(string(data)))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: not JSON: %v", name, err)
		}
		if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 || len(d.Panels) == 0 {
			t.Errorf("%s: uid %q, title %q, schemaVersion %d, %d panels: not a Grafana dashboard", name, d.UID, d.Title, d.SchemaVersion, len(d.Panels))
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %s", name, other, d.UID)
		}
		uids[d.UID] = name
		vars := map[string]bool{}
		for _, v := range d.Templating.List {
			vars[v.Name] = true
			if v.Name == "datasource" && (v.Type != "datasource" || v.Query != "prometheus") {
				t.Errorf("%s: variable datasource is %s %v, want a datasource variable of Prometheus", name, v.Type, v.Query)
			}
		}
		if !vars["datasource"] {
			t.Errorf("%s: no datasource variable", name)
		}
		exprs = append(exprs, checkPanels(t, name, d, vars, exported)...)
		var titles []string
		for _, p := range d.Panels {
			titles = append(titles, strings.ToLower(p.Title))
		}
		for _, word := range dashboards[name] {
			if !slices.ContainsFunc(titles, func(title string) bool { return strings.Contains(title, word) }) {
				t.Errorf("%s: no panel title mentions %q", name, word)
			}
		}
	}
	promtest.CheckExpressions(t, exprs)
}

// checkPanels checks the panels of dashboard d and returns its queries with
// Grafana's variables replaced by values Prometheus accepts.
func checkPanels(t *testing.T, name string, d grafanaDashboard, vars map[string]bool, exported map[string]bool) []string {
	t.Helper()
	var exprs []string
	ids := map[int]bool{}
	for _, p := range d.Panels {
		where := name + ": panel " + strings.TrimSpace(p.Type+" "+p.Title)
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("%s: id %d is zero or used twice", where, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%s: gridPos %+v does not fit Grafana's 24 columns", where, p.GridPos)
		}
		switch p.Type {
		case "row":
			continue
		case "text":
			if content, _ := p.Options["content"].(string); content == "" {
				t.Errorf("%s: no content", where)
			}
			continue
		case "stat", "timeseries", "table", "gauge", "bargauge":
		default:
			t.Errorf("%s: unexpected panel type", where)
			continue
		}
		if p.Datasource["uid"] != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("%s: data source %v with %d queries, want ${datasource} and at least one", where, p.Datasource, len(p.Targets))
		}
		for _, q := range p.Targets {
			if q.RefID == "" || q.Datasource["uid"] != "${datasource}" {
				t.Errorf("%s: query %q has refId %q and data source %v", where, q.Expr, q.RefID, q.Datasource)
			}
			for _, v := range grafanaVars.FindAllStringSubmatch(q.Expr, -1) {
				if !vars[v[1]] && !strings.HasPrefix(v[1], "__") {
					t.Errorf("%s: query %q uses $%s, which the dashboard does not define", where, q.Expr, v[1])
				}
			}
			expr := substitute(q.Expr)
			names := metricNames(expr)
			if len(names) == 0 {
				t.Errorf("%s: query %q reads no metric", where, q.Expr)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("%s: query %q reads %s, which Ferry does not export", where, q.Expr, n)
				}
			}
			exprs = append(exprs, expr)
		}
	}
	return exprs
}

// grafanaVars matches $name and ${name} in a query.
var grafanaVars = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// substitute replaces Grafana's variables by values Prometheus accepts:
// intervals by durations, template variables (used in regular-expression
// matchers) by ".*".
func substitute(expr string) string {
	return grafanaVars.ReplaceAllStringFunc(expr, func(v string) string {
		switch strings.Trim(v, "${}") {
		case "__rate_interval", "__interval":
			return "1m"
		case "__range":
			return "6h"
		}
		return ".*"
	})
}

var (
	stringLiteral = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	// labelLists are matchers {…}, ranges […], and the label lists of
	// by, without, on, ignoring, group_left and group_right.
	labelLists = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identifier = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`)
	keywords   = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// metricNames returns the metric names a PromQL expression reads: the
// identifiers left once strings, matchers, ranges and label lists are gone,
// that are neither calls of functions or aggregations nor keywords.
func metricNames(expr string) []string {
	rest := labelLists.ReplaceAllString(stringLiteral.ReplaceAllString(expr, `""`), " ")
	var out []string
	for _, m := range identifier.FindAllStringSubmatch(rest, -1) {
		name := m[0]
		if m[1] != "" || slices.Contains(keywords, strings.ToLower(name)) {
			continue // a call, or a keyword
		}
		out = append(out, name)
	}
	return out
}

// exportedNames returns every series name Ferry's registry exposes, with
// the _bucket, _sum and _count series of histograms.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	m, reg := newMetrics(t)
	exerciseAll(t, m, reg)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		out[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				out[f.GetName()+suffix] = true
			}
		}
	}
	for _, want := range []string{"ferry_promotions_total", "ferry_promotions_in_flight", "ferry_approval_wait_seconds_bucket",
		"ferry_store_transaction_duration_seconds_count", "go_goroutines", "process_cpu_seconds_total"} {
		if !out[want] {
			t.Fatalf("the registry does not expose %s: exerciseAll misses a metric", want)
		}
	}
	return out
}

// TestMetricNames checks the extraction of metric names from queries.
func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (environment) (increase(ferry_promotions_total{kind="promote",result=~"a|b"}[7d])) / 30`: {"ferry_promotions_total"},
		`histogram_quantile(0.9, sum by (le) (rate(x_bucket{a="rate(y)"}[1d])))`:                         {"x_bucket"},
		`rate(cpu_total[1m]) and on (instance) build_info`:                                               {"cpu_total", "build_info"},
		`(sum(increase(a_total[30d])) or vector(0)) / sum (b_total) > bool 0`:                            {"a_total", "b_total"},
		`max by (instance, version) (info{instance=~".*"})`:                                              {"info"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %v, want %v", expr, got, want)
		}
	}
}
