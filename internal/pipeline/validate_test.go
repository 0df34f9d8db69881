package pipeline

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validSpec returns a small valid specification to break in tests.
func validSpec() *Spec {
	return &Spec{
		Name: "shop",
		Environments: []Environment{
			{
				Name: "dev",
				Steps: []Step{{
					Name: "deploy",
					Exec: &Exec{Command: []string{"./deploy.sh"}, Env: map[string]string{"REGION": "eu"}, Timeout: Duration(time.Minute)},
				}},
				Verify: []Step{{
					Name:      "smoke",
					HTTP:      &HTTP{URL: "https://dev.example.com/healthz", ExpectStatus: 204},
					Retries:   10,
					SecretEnv: []string{"TOKEN"},
				}},
			},
			{Name: "prod", After: []string{"dev"}},
		},
	}
}

func TestValidateValid(t *testing.T) {
	if err := validSpec().Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		change func(s *Spec)
		want   []string // the lines of Error(), in order
	}{
		"no name": {
			func(s *Spec) { s.Name = "" },
			[]string{"name: required"},
		},
		"name too long": {
			func(s *Spec) { s.Name = strings.Repeat("a", 64) },
			[]string{`name: invalid name "` + strings.Repeat("a", 64) + `": use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit`},
		},
		"name ending with a dash": {
			func(s *Spec) { s.Environments[1].Name = "prod-"; s.Environments[1].After = nil },
			[]string{`environments[1].name: invalid name "prod-": use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit`},
		},
		"no environments": {
			func(s *Spec) { s.Environments = nil },
			[]string{"environments: at least one environment is required"},
		},
		"duplicate environment": {
			func(s *Spec) { s.Environments[1].Name = "dev"; s.Environments[1].After = nil },
			[]string{`environments[1].name: duplicate environment "dev" (first defined at environments[0].name)`},
		},
		"duplicate after": {
			func(s *Spec) { s.Environments[1].After = []string{"dev", "dev"} },
			[]string{`environments[1].after[1]: duplicate entry "dev"`},
		},
		"cycle of two": {
			func(s *Spec) { s.Environments[0].After = []string{"prod"} },
			[]string{"environments[1].after[0]: cycle: dev -> prod -> dev"},
		},
		"duplicate step across steps and verify": {
			func(s *Spec) { s.Environments[0].Verify[0].Name = "deploy" },
			[]string{`environments[0].verify[0].name: duplicate step "deploy" in environment "dev" (first defined at environments[0].steps[0].name)`},
		},
		"empty program": {
			func(s *Spec) { s.Environments[0].Steps[0].Exec.Command = []string{"", "x"} },
			[]string{"environments[0].steps[0].exec.command[0]: the program to run must not be empty"},
		},
		"reserved variable in lower case": {
			func(s *Spec) { s.Environments[0].Steps[0].Exec.Env["ferry_step"] = "x" },
			[]string{`environments[0].steps[0].exec.env.ferry_step: environment variable "ferry_step" is reserved: names starting with FERRY_ are set by Ferry`},
		},
		"variable name with a dot": {
			func(s *Spec) { s.Environments[0].Steps[0].Exec.Env["A.B"] = "x" },
			[]string{`environments[0].steps[0].exec.env["A.B"]: invalid environment variable name "A.B": use letters, digits and '_', not starting with a digit`},
		},
		"secret also in env": {
			func(s *Spec) { s.Environments[0].Steps[0].SecretEnv = []string{"REGION"} },
			[]string{`environments[0].steps[0].secretEnv[0]: "REGION" is also set in exec.env: a variable is either a secret or not`},
		},
		"reserved secret": {
			func(s *Spec) { s.Environments[0].Verify[0].SecretEnv = []string{"FERRY_TOKEN"} },
			[]string{`environments[0].verify[0].secretEnv[0]: environment variable "FERRY_TOKEN" is reserved: names starting with FERRY_ are set by Ferry`},
		},
		"negative retries": {
			func(s *Spec) { s.Environments[0].Verify[0].Retries = -1 },
			[]string{"environments[0].verify[0].retries: must be between 0 and 10, got -1"},
		},
		"metric check without conditions": {
			func(s *Spec) {
				s.Environments[0].Verify[0] = Step{Name: "smoke", Prometheus: &PrometheusCheck{Address: "http://prom:9090", Query: "up"}}
			},
			[]string{"environments[0].verify[0].prometheus: at least one of successCondition or failureCondition is required"},
		},
		"metric check with bad fields": {
			func(s *Spec) {
				s.Environments[0].Verify[0] = Step{Name: "smoke", Prometheus: &PrometheusCheck{
					Address: "prom:9090",
					Measure: Measure{Interval: Duration(-time.Second), Count: -1, FailureCondition: `"high"`, ConsecutiveErrorLimit: -2},
				}}
			},
			[]string{
				`environments[0].verify[0].prometheus.address: invalid URL "prom:9090": must be an absolute http or https URL`,
				"environments[0].verify[0].prometheus.query: required",
				"environments[0].verify[0].prometheus.interval: must not be negative, got -1s",
				"environments[0].verify[0].prometheus.count: must not be negative, got -1",
				"environments[0].verify[0].prometheus.consecutiveErrorLimit: must not be negative, got -2",
				"environments[0].verify[0].prometheus.failureCondition: condition must evaluate to bool, not string (at 1:1 in the condition)",
			},
		},
		"web check with bad url and method": {
			func(s *Spec) {
				s.Environments[0].Verify[0] = Step{Name: "smoke", Web: &WebCheck{
					URL: "${environment}.example.com/api", Method: "FETCH",
					Headers: map[string]string{"X-Env": "${artifact..digest}"},
					Measure: Measure{SuccessCondition: "result < 1"},
				}}
			},
			[]string{
				`environments[0].verify[0].web.url: invalid URL "${environment}.example.com/api": must be an absolute http or https URL`,
				`environments[0].verify[0].web.method: unknown method "FETCH": use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS`,
				"environments[0].verify[0].web.headers.X-Env: unknown variable ${artifact..digest} (known: ${environment}, ${pipeline}, ${release}, ${promotion}, ${baseline}, ${artifact.NAME.digest}; $${ writes ${)",
			},
		},
		"web check under steps": {
			func(s *Spec) {
				s.Environments[0].Steps[0] = Step{Name: "deploy", Web: &WebCheck{URL: "https://${environment}.example.com/api", Measure: Measure{SuccessCondition: "result < 1"}}}
			},
			[]string{"environments[0].steps[0].web: a web check measures and changes nothing: put it under verify or gates.preflight; a deploy step must act (exec or http)"},
		},
		"lower-case method": {
			func(s *Spec) { s.Environments[0].Verify[0].HTTP.Method = "get" },
			[]string{`environments[0].verify[0].http.method: unknown method "get": use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS`},
		},
		"url without host": {
			func(s *Spec) { s.Environments[0].Verify[0].HTTP.URL = "https:///healthz" },
			[]string{`environments[0].verify[0].http.url: invalid URL "https:///healthz": must be an absolute http or https URL`},
		},
		"status 600": {
			func(s *Spec) { s.Environments[0].Verify[0].HTTP.ExpectStatus = 600 },
			[]string{"environments[0].verify[0].http.expectStatus: must be 0 (any 2xx) or between 100 and 599, got 600"},
		},
		"bad header": {
			func(s *Spec) {
				s.Environments[0].Verify[0].HTTP.Headers = map[string]string{"X Team": "a", "X-Trace": "a\r\nInjected: 1"}
			},
			[]string{
				`environments[0].verify[0].http.headers["X Team"]: invalid header name "X Team"`,
				`environments[0].verify[0].http.headers.X-Trace: header value must not contain CR, LF or NUL`,
			},
		},
		"many problems at once": {
			func(s *Spec) {
				s.Name = "Shop"
				s.Environments[0].Steps[0].Exec = nil
				s.Environments[1].After = []string{"qa"}
			},
			[]string{
				`name: invalid name "Shop": use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit`,
				`environments[0].steps[0]: one of exec, http, prometheus, web or canary is required`,
				`environments[1].after[0]: unknown environment "qa"`,
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := validSpec()
			tt.change(s)
			err := s.Validate()
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate = %v, want *ValidationError", err)
			}
			for _, p := range verr.Problems {
				if p.File != "" || p.Line != 0 || p.Column != 0 {
					t.Errorf("problem %+v has a position; a spec built in code has none", p)
				}
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("Validate error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "p.yaml", Line: 3, Column: 5, Field: "name", Message: "required"}, "p.yaml:3:5: name: required"},
		{Problem{File: "p.yaml", Line: 1, Column: 1, Message: "empty document"}, "p.yaml:1:1: empty document"},
		{Problem{File: "p.yaml", Field: "name", Message: "required"}, "p.yaml: name: required"},
		{Problem{Field: "name", Message: "required"}, "name: required"},
		{Problem{Line: 2, Column: 7, Field: "name", Message: "required"}, "2:7: name: required"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"name", "after", "autoPromote", "steps", "verify", "rollback"}
	tests := map[string]string{
		"autopromote": "autoPromote", // case differs
		"stpes":       "steps",       // transposition
		"verfy":       "verify",      // deletion
		"rolback":     "rollback",
		"base":        "", // two edits from "name" is too far for a short word
		"environment": "",
	}
	for in, want := range tests {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseCanary(t *testing.T) {
	spec := parseFile(t, "testdata/valid/canary.yaml")
	st := spec.Environments[0].Verify[0]
	c := st.Canary
	if st.Kind() != "canary" || c == nil || len(c.Metrics) != 3 || c.Window.D() != 10*time.Minute ||
		c.Step.D() != 30*time.Second || c.Delay.D() != 2*time.Minute || c.PassThreshold != 90 ||
		c.MarginalThreshold != 70 || c.Alpha != 0.01 {
		t.Fatalf("canary %+v", c)
	}
	if m := c.Metrics[1]; m.Name != "latency" || m.Direction != "increase" || m.Weight != 2 || m.EffectSize != 0.1 || m.Critical {
		t.Errorf("metric %+v", m)
	}
	if !c.Metrics[0].Critical {
		t.Errorf("metric %+v: not critical", c.Metrics[0])
	}
}

func TestCanaryStrategy(t *testing.T) {
	src := `name: shop
environments:
  - name: prod
    steps: [{name: deploy, exec: {run: "true"}}]
    strategy:
      canary:
        setWeight: [{name: route, exec: {run: "true"}}]
        phases:
          - {weight: 5, pause: 5m, analysis: [{name: smoke, http: {url: "http://127.0.0.1/healthz"}}]}
          - {weight: 50, pause: manual}
          - {weight: 100}
`
	spec, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	items := spec.Environments[0].Strategy.Canary.CanaryItems()
	var names []string
	for _, it := range items {
		names = append(names, it.Name)
	}
	want := "phase 1 (5%): route|phase 1 (5%): pause|phase 1 (5%): smoke|phase 2 (50%): route|phase 2 (50%): pause|phase 3 (100%): route"
	if got := strings.Join(names, "|"); got != want {
		t.Fatalf("items = %s", got)
	}
	if items[1].Pause != 5*time.Minute || !items[4].Manual || items[3].Weight != 50 {
		t.Fatalf("items = %+v", items)
	}

	bad := strings.NewReplacer("weight: 50", "weight: 150", "pause: 5m", "pause: soon").Replace(src)
	_, err = Parse("p.yaml", []byte(bad))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("bad strategy: %v", err)
	}
	msg := ve.Error()
	for _, w := range []string{"strategy.canary.phases[0].pause", "strategy.canary.phases[1].weight: must be between 0 and 100, got 150"} {
		if !strings.Contains(msg, w) {
			t.Errorf("errors lack %q:\n%s", w, msg)
		}
	}
	checkUnder := strings.Replace(src, `setWeight: [{name: route, exec: {run: "true"}}]`, `setWeight: [{name: route, prometheus: {address: "http://p", query: "up", successCondition: "result > 0"}}]`, 1)
	if _, err := Parse("p.yaml", []byte(checkUnder)); err == nil || !strings.Contains(err.Error(), "strategy.canary.setWeight[0].prometheus") {
		t.Fatalf("a check as a set-weight step: %v", err)
	}
}

func TestWatchAndAlerts(t *testing.T) {
	const src = `name: shop
environments:
  - name: prod
    steps: [{name: deploy, exec: {run: "true"}}]
    watch:
      for: 30m
      every: 30s
      checks:
        - name: error-rate
          prometheus:
            address: http://127.0.0.1:9090
            query: 'sum(rate(errors_total[1m]))'
            interval: 30s
            failureCondition: result > 0.05
    alerts:
      matchers: ['alertname=~"HighErrorRate|Latency"', 'team="shop"']
      rollback: true
`
	s, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	env := s.Environments[0]
	if env.Watch.For.D() != 30*time.Minute || env.Watch.EveryOrDefault() != 30*time.Second || env.Watch.Checks[0].Kind() != "prometheus" {
		t.Errorf("watch = %+v", env.Watch)
	}
	if !env.Alerts.Rollback || len(env.Alerts.Matchers) != 2 {
		t.Errorf("alerts = %+v", env.Alerts)
	}

	for name, c := range map[string]struct{ from, to, want string }{
		"no window":     {"for: 30m", "# no for", "environments[0].watch.for: a positive duration is required"},
		"no checks":     {"checks:\n        - name: error-rate", "checks: []\n      other:\n        - name: error-rate", "environments[0].watch.checks: at least one check is required"},
		"bad matcher":   {`'team="shop"'`, `'team'`, `environments[0].alerts.matchers[1]:`},
		"canary watch":  {"prometheus:\n            address", "canary:\n            address", "environments[0].watch.checks[0].canary"},
		"duplicate key": {"rollback: true", "rollback: true\n      rollback: false", "rollback"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(strings.Replace(src, c.from, c.to, 1)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}
