package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// wantProblem is a problem a test expects: its exact position and field,
// and a part of its message.
type wantProblem struct {
	line, column int
	field        string
	message      string
}

func TestParseInvalid(t *testing.T) {
	tests := map[string][]wantProblem{
		"unknown-field.yaml": {
			{8, 11, "environments[0].steps[0].exec.timout", `unknown field "timout" (did you mean "timeout"?)`},
		},
		"budget-objective.yaml": {
			{11, 20, "environments[1].gates.errorBudget.objective", "must be above 0 and below 100 (percent, such as 99.9), got 100"},
		},
		"budget-short-window.yaml": {
			{14, 32, "environments[1].gates.errorBudget.rules[1].short", "must be shorter than long (30m0s), got 30m0s"},
		},
		"budget-no-window.yaml": {
			{10, 16, "environments[1].gates.errorBudget.total", "must contain $window"},
		},
		"budget-prometheus-url.yaml": {
			{8, 21, "environments[1].gates.errorBudget.prometheus", `invalid URL "prometheus:9090/api": must be an absolute http or https URL`},
		},
		"bad-duration.yaml": {
			{10, 20, "environments[1].steps[0].exec.timeout", `invalid duration "5 minutes"`},
		},
		"duplicate-environment.yaml": {
			{6, 11, "environments[2].name", `duplicate environment "dev" (first defined at line 3)`},
		},
		"duplicate-step.yaml": {
			{8, 15, "environments[0].verify[0].name", `duplicate step "deploy" in environment "dev" (first defined at line 5)`},
		},
		"unknown-upstream.yaml": {
			{7, 9, "environments[1].after[1]", `unknown environment "staging"`},
		},
		"self-after.yaml": {
			{4, 13, "environments[0].after[0]", `environment "dev" cannot come after itself`},
		},
		"cycle-of-three.yaml": {
			{6, 13, "environments[1].after[0]", "cycle: dev -> staging -> prod -> dev"},
		},
		"exec-and-http.yaml": {
			{5, 9, "environments[0].verify[0]", "exec and http are mutually exclusive: set exactly one of exec, http, prometheus, web or canary"},
		},
		"neither-exec-nor-http.yaml": {
			{5, 9, "environments[0].steps[0]", "one of exec, http, prometheus, web or canary is required"},
		},
		"malformed.yaml": {
			{5, 3, "", "invalid YAML: "},
		},
		"wrong-type.yaml": {
			{4, 18, "environments[0].autoPromote", `expected true or false, got string "yes"`},
			{8, 20, "environments[0].steps[0].exec.command", `expected a list, got string "./deploy.sh"`},
			{9, 18, "environments[0].steps[0].retries", `expected an integer, got string "three"`},
		},
		"empty.yaml": {
			{1, 1, "", "empty document"},
		},
		"multiple-documents.yaml": {
			{4, 1, "", "more than one YAML document"},
		},
		"not-a-mapping.yaml": {
			{1, 1, "", "expected a mapping, got a list"},
		},
		"unknown-alias.yaml": {
			{3, 5, "environments[0]", "unknown alias *dev"},
		},
		"merge-into-itself.yaml": {
			{5, 9, "environments[0]", "a merge key refers to the mapping that contains it"},
		},
		"two-kinds.yaml": {
			{5, 9, "environments[0].verify[0]", "http and prometheus are mutually exclusive: set exactly one of exec, http, prometheus, web or canary"},
		},
		"condition-typo.yaml": {
			{9, 29, "environments[0].verify[0].prometheus.successCondition", "undeclared reference to 'reslut'"},
		},
		"bad-no-data.yaml": {
			{9, 19, "environments[0].verify[0].web.noData", `unknown value "ignore": use one of fail, inconclusive, pass, wait`},
		},
		"unknown-placeholder.yaml": {
			{8, 18, "environments[0].verify[0].prometheus.query", "unknown variable ${env}"},
		},
		"canary-values.yaml": {
			{7, 23, "environments[0].verify[0].canary.prometheus", `invalid URL "prometheus:9090"`},
			{9, 17, "environments[0].verify[0].canary.step", "step (10s) must be shorter than window (10s)"},
			{10, 18, "environments[0].verify[0].canary.delay", "must not be negative, got -1s"},
			{12, 30, "environments[0].verify[0].canary.marginalThreshold", "marginalThreshold (80) must not be above passThreshold (70)"},
			{13, 18, "environments[0].verify[0].canary.alpha", "must be between 0 and 1 (exclusive), got 1"},
			{17, 23, "environments[0].verify[0].canary.metrics[0].canary", "unknown variable ${artifact.api.digest} (a canary query may use ${environment}, ${pipeline}, ${release}, ${baseline} and ${promotion}"},
			{18, 26, "environments[0].verify[0].canary.metrics[0].direction", `unknown value "up": use one of increase, decrease, either`},
			{19, 23, "environments[0].verify[0].canary.metrics[0].weight", "must be a finite number ≥ 0, got -1"},
			{20, 27, "environments[0].verify[0].canary.metrics[0].effectSize", "must be a finite number ≥ 0, got -0.5"},
			{21, 21, "environments[0].verify[0].canary.metrics[1].name", `duplicate metric "errors" (first defined at line 15)`},
			{22, 25, "environments[0].verify[0].canary.metrics[1].baseline", "required"},
			{24, 15, "environments[0].verify[0].canary.metrics[2].name", "required"},
		},
		"canary-placement.yaml": {
			{8, 13, "environments[0].gates.preflight[0].canary", "put it under verify"},
			{14, 11, "environments[0].steps[0].canary", "put it under verify"},
			{15, 26, "environments[0].steps[0].canary.passThreshold", "must be a score from 0 to 100, got 120"},
			{16, 20, "environments[0].steps[0].canary.metrics", "at least one metric is required"},
			{21, 18, "environments[0].verify[0].prometheus.query", "unknown variable ${baseline} (${baseline} is known only in canary checks)"},
		},
		"check-under-steps.yaml": {
			{7, 11, "environments[0].steps[0].prometheus", "put it under verify or gates.preflight"},
		},
		"missing-fields.yaml": {
			{1, 1, "name", "required"},
			{2, 5, "environments[0].name", "required"},
			{3, 9, "environments[0].steps[0].name", "required"},
			{4, 11, "environments[0].steps[0].exec", "one of run or command is required"},
			{7, 11, "environments[0].steps[1].http.url", "required"},
		},
		"policy-typo.yaml": {
			{9, 25, "environments[1].gates.policies[0].expr", "undefined field 'versoin'"},
		},
		"policy-not-bool.yaml": {
			{9, 31, "environments[1].gates.policies[0].expr", "expression must evaluate to bool, not string"},
		},
		"bad-approver.yaml": {
			{7, 33, "environments[0].gates.approvals.from[1]", `unknown role "owner"`},
		},
		"bad-on-timeout.yaml": {
			{8, 20, "environments[0].gates.approvals.onTimeout", `unknown action "wait": use reject or escalate`},
		},
		"bad-timezone.yaml": {
			{10, 23, "environments[0].gates.windows.allow[0].timezone", `unknown time zone "Europe/Berlln"`},
		},
		"freeze-backwards.yaml": {
			{7, 46, "environments[0].gates.windows.freeze[0].to", "2026-12-20T00:00:00Z must be after from (2027-01-04T00:00:00Z)"},
		},
		"duplicate-policy.yaml": {
			{7, 18, "environments[0].gates.policies[1].name", `duplicate policy "low-risk" (first defined at line 6)`},
		},
		"escalate-without-webhook.yaml": {
			{10, 11, "environments[0].gates.approvals.escalate.webhook", "required"},
		},
		"bad-values.yaml": {
			{1, 7, "name", `invalid name "Shop"`},
			{5, 15, "environments[0].steps[0].name", `invalid name "Deploy"`},
			{7, 11, "environments[0].steps[0].exec", "run and command are mutually exclusive"},
			{10, 13, "environments[0].steps[0].exec.env.FERRY_RELEASE", `"FERRY_RELEASE" is reserved`},
			{11, 13, "environments[0].steps[0].exec.env.1BAD", `invalid environment variable name "1BAD"`},
			{12, 20, "environments[0].steps[0].exec.timeout", "must not be negative, got -1s"},
			{13, 18, "environments[0].steps[0].retries", "must be between 0 and 10, got 11"},
			{14, 18, "environments[0].steps[0].backoff", "must not be negative, got -2s"},
			{15, 28, "environments[0].steps[0].secretEnv[1]", `duplicate entry "TOKEN"`},
			{15, 35, "environments[0].steps[0].secretEnv[2]", `invalid environment variable name "bad-name"`},
			{19, 19, "environments[0].verify[0].http.method", `unknown method "FETCH"`},
			{20, 16, "environments[0].verify[0].http.url", `invalid URL "dev.example.com/healthz"`},
			{21, 25, "environments[0].verify[0].http.expectStatus", "got 99"},
			{22, 20, "environments[0].verify[0].http.timeout", "must not be negative, got -5s"},
			{25, 20, "environments[0].verify[1].exec.command", "must not be empty"},
			{26, 11, "environments[1].name", "required"},
		},
	}

	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := tests[filepath.Base(f)]; !ok {
			t.Errorf("%s has no expectations in TestParseInvalid", f)
		}
	}

	for file, want := range tests {
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "invalid", file))
			if err != nil {
				t.Fatal(err)
			}
			spec, err := Parse(file, data)
			if spec != nil {
				t.Errorf("Parse returned a spec along with an error")
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Parse error = %v (%T), want *ValidationError", err, err)
			}
			if len(verr.Problems) != len(want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(verr.Problems), len(want), err)
			}
			for i, w := range want {
				got := verr.Problems[i]
				if got.File != file || got.Line != w.line || got.Column != w.column || got.Field != w.field {
					t.Errorf("problem %d at %s:%d:%d field %q, want %s:%d:%d field %q (%s)",
						i, got.File, got.Line, got.Column, got.Field, file, w.line, w.column, w.field, got.Message)
				}
				if !strings.Contains(got.Message, w.message) {
					t.Errorf("problem %d message %q, want it to contain %q", i, got.Message, w.message)
				}
			}
			// Error prints one problem per line, each starting with file:line:column.
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(want) {
				t.Fatalf("Error() has %d lines, want %d", len(lines), len(want))
			}
			for i, w := range want {
				prefix := fmt.Sprintf("%s:%d:%d: ", file, w.line, w.column)
				if w.field != "" {
					prefix += w.field + ": "
				}
				if !strings.HasPrefix(lines[i], prefix) {
					t.Errorf("Error() line %d = %q, want prefix %q", i, lines[i], prefix)
				}
			}
		})
	}
}

func TestParseValidFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no valid test files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := Parse(f, data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if spec.Name == "" || len(spec.Environments) == 0 {
				t.Errorf("Parse returned an incomplete spec: %+v", spec)
			}
			if err := spec.Validate(); err != nil {
				t.Errorf("Validate of a parsed spec: %v", err)
			}
		})
	}
}

func TestParseFull(t *testing.T) {
	spec := parseFile(t, "testdata/valid/full.yaml")

	if spec.Name != "shop" {
		t.Errorf("Name = %q, want shop", spec.Name)
	}
	var names []string
	for _, e := range spec.Environments {
		names = append(names, e.Name)
	}
	if want := []string{"dev", "staging", "prod-eu", "prod-us"}; !slices.Equal(names, want) {
		t.Errorf("environments = %v, want %v", names, want)
	}

	dev, _ := spec.Environment("dev")
	if !dev.AutoPromote || !dev.AutoRollback() {
		t.Errorf("dev: AutoPromote = %v, AutoRollback = %v, want both true", dev.AutoPromote, dev.AutoRollback())
	}
	deploy := dev.Steps[0]
	if deploy.Kind() != "exec" || deploy.Timeout() != 5*time.Minute || deploy.Exec.Env["KUBE_CONTEXT"] != "dev" {
		t.Errorf("dev deploy = %+v, exec %+v", deploy, deploy.Exec)
	}
	smoke := dev.Verify[0]
	if smoke.Kind() != "http" || smoke.HTTP.ExpectStatus != 200 || smoke.Retries != 3 || smoke.Backoff.D() != 2*time.Second || smoke.Timeout() != 10*time.Second {
		t.Errorf("dev smoke = %+v, http %+v", smoke, smoke.HTTP)
	}

	staging, _ := spec.Environment("staging")
	if !slices.Equal(staging.After, []string{"dev"}) {
		t.Errorf("staging.After = %v, want [dev]", staging.After)
	}
	migrate := staging.Steps[0]
	if !slices.Equal(migrate.Exec.Command, []string{"./migrate", "--to", "latest"}) || migrate.Exec.Workdir != "db" ||
		!slices.Equal(migrate.SecretEnv, []string{"DATABASE_URL"}) {
		t.Errorf("staging migrate = %+v, exec %+v", migrate, migrate.Exec)
	}
	post := staging.Verify[0].HTTP
	if post.Method != "POST" || post.Headers["Content-Type"] != "application/json" || post.Body != `{"checkout": true}` || post.ExpectStatus != 202 {
		t.Errorf("staging smoke http = %+v", post)
	}

	us, _ := spec.Environment("prod-us")
	if us.AutoRollback() {
		t.Errorf("prod-us AutoRollback = true, want false (rollback.automatic: false)")
	}
	if got := spec.Downstream("staging"); len(got) != 2 || got[0].Name != "prod-eu" || got[1].Name != "prod-us" {
		t.Errorf("Downstream(staging) = %v, want prod-eu and prod-us", got)
	}
}

func TestParseMetricChecks(t *testing.T) {
	spec := parseFile(t, "testdata/valid/metrics.yaml")
	verify := spec.Environments[0].Verify

	rate := verify[0]
	if rate.Kind() != "prometheus" || rate.Prometheus == nil {
		t.Fatalf("error-rate = %+v, want a prometheus check", rate)
	}
	p := rate.Prometheus
	wantQuery := `sum(rate(http_requests_total{env="${environment}",code=~"5.."}[1m])) / sum(rate(http_requests_total{env="${environment}"}[1m]))`
	if p.Address != "http://127.0.0.1:9090" || p.Query != wantQuery || p.Timeout.D() != 15*time.Second {
		t.Errorf("prometheus = %+v", p)
	}
	wantMeasure := Measure{
		Interval:              Duration(30 * time.Second),
		Count:                 10,
		SuccessCondition:      "result < 0.01",
		FailureCondition:      "result > 0.05",
		FailureLimit:          1,
		InconclusiveLimit:     1,
		ConsecutiveErrorLimit: 4,
		NoData:                "inconclusive",
	}
	if p.Measure != wantMeasure {
		t.Errorf("prometheus measure = %+v, want %+v", p.Measure, wantMeasure)
	}

	vendor := verify[1]
	if vendor.Kind() != "web" || vendor.Web == nil {
		t.Fatalf("vendor-errors = %+v, want a web check", vendor)
	}
	w := vendor.Web
	if w.URL != "https://metrics.example/api?env=${environment}" || w.JSONPath != "$.errorRate" {
		t.Errorf("web = %+v", w)
	}
	if want := (Measure{Interval: Duration(10 * time.Second), Count: 3, SuccessCondition: "result < 0.01"}); w.Measure != want {
		t.Errorf("web measure = %+v, want %+v", w.Measure, want)
	}

	image := verify[2].Web
	if image.Method != "POST" || image.Headers["X-Release"] != "${release}" || !strings.Contains(image.Body, "$${kept}") ||
		image.FailureCondition != `result.status != "ok"` || image.SuccessCondition != "" {
		t.Errorf("image-served web = %+v", image)
	}
}

func TestParseMetricCheckUnknownField(t *testing.T) {
	_, err := Parse("p.yaml", []byte(`name: p
environments:
  - name: d
    verify:
      - name: v
        prometheus:
          address: http://prom:9090
          query: up
          successCondition: result < 1
          faliureLimit: 2
`))
	assertProblem(t, err, 10, 11, "environments[0].verify[0].prometheus.faliureLimit", `unknown field "faliureLimit" (did you mean "failureLimit"?)`)
}

func TestParseMergeKey(t *testing.T) {
	spec := parseFile(t, "testdata/valid/anchors.yaml")
	dev, prod := spec.Environments[0].Steps[0], spec.Environments[1].Steps[0]
	if prod.Name != "deploy" || prod.Exec == nil || prod.Exec.Run != "./deploy.sh" || prod.Timeout() != 2*time.Minute {
		t.Errorf("merged step = %+v, want the fields of the anchored one", prod)
	}
	if dev.Retries != 1 || prod.Retries != 3 {
		t.Errorf("retries = %d and %d, want 1 and 3 (the merging mapping wins)", dev.Retries, prod.Retries)
	}
}

func TestParseScalars(t *testing.T) {
	// Numbers and booleans written where a string is expected are taken
	// as written, so that env: {PORT: 8080} works without quotes.
	spec, err := Parse("p.yaml", []byte(`
name: p
environments:
  - name: "1"
    autoPromote: false
    steps:
      - name: s
        exec:
          run: |
            echo hi
          env: {PORT: 8080, DEBUG: true, RATIO: 0.5, EMPTY: ""}
          timeout: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	x := spec.Environments[0].Steps[0].Exec
	want := map[string]string{"PORT": "8080", "DEBUG": "true", "RATIO": "0.5", "EMPTY": ""}
	for k, v := range want {
		if got, ok := x.Env[k]; !ok || got != v {
			t.Errorf("env[%s] = %q, %v; want %q", k, got, ok, v)
		}
	}
	if x.Run != "echo hi\n" {
		t.Errorf("run = %q, want the block text", x.Run)
	}
	if spec.Environments[0].Name != "1" {
		t.Errorf("name = %q, want 1", spec.Environments[0].Name)
	}
}

func TestParseStringTagIsNotANumber(t *testing.T) {
	_, err := Parse("p.yaml", []byte("name: p\nenvironments:\n  - name: d\n    steps:\n      - name: s\n        exec: {run: x}\n        retries: !!str 3\n"))
	assertProblem(t, err, 7, 18, "environments[0].steps[0].retries", "expected an integer")
}

func TestParseInvalidUTF8(t *testing.T) {
	_, err := Parse("p.yaml", []byte("name: p\nenvironments:\n  - name: d\xff\n"))
	assertProblem(t, err, 3, 12, "", "invalid UTF-8")
}

func TestParseAliasExpansionIsBounded(t *testing.T) {
	// A step holding a 100-element command is aliased 100 times in each of
	// 100 environments: a 30 kB document that expands to a million values.
	list := func(item string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(item+", ", 100), ", ") + "]"
	}
	var b strings.Builder
	b.WriteString("name: p\nenvironments:\n")
	b.WriteString("  - {name: a, steps: [&s {name: s, exec: {command: " + list("x") + "}}]}\n")
	for i := range 100 {
		fmt.Fprintf(&b, "  - {name: e%d, steps: %s}\n", i, list("*s"))
	}
	data := []byte(b.String())

	start := time.Now()
	_, err := Parse("p.yaml", data)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Parse took %v", elapsed)
	}
	assertProblem(t, err, 13, 156, "environments[10].steps[33]", "document too large")
}

func parseFile(t *testing.T, path string) *Spec {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := Parse(filepath.Base(path), data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return spec
}

func assertProblem(t *testing.T, err error, line, column int, field, message string) {
	t.Helper()
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Problems) != 1 {
		t.Fatalf("error = %v, want one problem", err)
	}
	p := verr.Problems[0]
	if p.Line != line || p.Column != column || p.Field != field || !strings.Contains(p.Message, message) {
		t.Errorf("problem = %+v, want %d:%d %q containing %q", p, line, column, field, message)
	}
}

// TestReferenceExample keeps the complete example of docs/pipeline.md valid
// and equal to testdata/valid/full.yaml, which the other tests inspect.
func TestReferenceExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/pipeline.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	example, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal("docs/pipeline.md has no yaml example")
	}
	spec, err := Parse("docs/pipeline.md", []byte(example))
	if err != nil {
		t.Fatalf("the example does not parse:\n%v", err)
	}
	if want := parseFile(t, "testdata/valid/full.yaml").Digest(); spec.Digest() != want {
		t.Error("the example of docs/pipeline.md differs from testdata/valid/full.yaml")
	}
}
