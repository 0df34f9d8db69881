package pipeline

import (
	"strings"
	"testing"
	"time"
)

func TestParseErrorBudget(t *testing.T) {
	spec := parseFile(t, "testdata/valid/error-budget.yaml")
	prod, _ := spec.Environment("prod")
	if prod.Gates == nil || prod.Gates.ErrorBudget == nil {
		t.Fatal("prod has no error-budget gate")
	}
	b := prod.Gates.ErrorBudget
	if b.Prometheus != "http://127.0.0.1:9090" {
		t.Errorf("prometheus = %q", b.Prometheus)
	}
	if want := `sum(rate(http_requests_total{env="${environment}",code=~"5.."}[$window]))`; b.Errors != want {
		t.Errorf("errors = %q, want %q", b.Errors, want)
	}
	if want := `sum(rate(http_requests_total{env="${environment}"}[$window]))`; b.Total != want {
		t.Errorf("total = %q, want %q", b.Total, want)
	}
	if b.Objective != 99.9 {
		t.Errorf("objective = %v, want 99.9", b.Objective)
	}
	if b.Period.D() != 30*24*time.Hour {
		t.Errorf("period = %v, want 720h", b.Period.D())
	}
	want := []BurnRule{
		{Long: Duration(time.Hour), Short: Duration(5 * time.Minute), Factor: 14.4},
		{Long: Duration(6 * time.Hour), Short: Duration(30 * time.Minute), Factor: 6},
	}
	if len(b.Rules) != len(want) {
		t.Fatalf("rules = %+v, want %+v", b.Rules, want)
	}
	for i := range want {
		if b.Rules[i] != want[i] {
			t.Errorf("rules[%d] = %+v, want %+v", i, b.Rules[i], want[i])
		}
	}
	if err := burnSpec(b).Validate(); err != nil {
		t.Errorf("burn.Spec.Validate: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30d":    30 * 24 * time.Hour,
		"1d12h":  36 * time.Hour,
		"-2d":    -48 * time.Hour,
		"0d":     0,
		"90s":    90 * time.Second,
		"1h30m":  90 * time.Minute,
		"1d0.5h": 24*time.Hour + 30*time.Minute,
	} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"d", "1.5d", "1d-1h", "1d+1h", "1dd", "30 d", "99999999999999d", "1d5"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func budgetYAML(lines ...string) string {
	return gatesYAML(append([]string{"errorBudget:"}, lines...)...)
}

const (
	budgetErrors = `  errors: 'sum(rate(x{code=~"5.."}[$window]))'`
	budgetTotal  = `  total: 'sum(rate(x[$window]))'`
	budgetURL    = "  prometheus: http://prom:9090"
)

func TestParseErrorBudgetProblems(t *testing.T) {
	tests := map[string]struct {
		yaml         string
		line, column int
		field        string
		message      string
	}{
		"objective as a string": {
			budgetYAML(budgetURL, budgetErrors, budgetTotal, "  objective: '99.9'"),
			11, 20, "environments[1].gates.errorBudget.objective", `expected a number, got string "99.9"`,
		},
		"objective as a string tag": {
			budgetYAML(budgetURL, budgetErrors, budgetTotal, "  objective: !!str 99"),
			11, 20, "environments[1].gates.errorBudget.objective", "expected a number",
		},
		"objective zero": {
			budgetYAML(budgetURL, budgetErrors, budgetTotal, "  objective: 0"),
			11, 20, "environments[1].gates.errorBudget.objective", "must be above 0 and below 100",
		},
		"objective missing": {
			budgetYAML(budgetURL, budgetErrors, budgetTotal),
			8, 9, "environments[1].gates.errorBudget.objective", "must be above 0 and below 100",
		},
		"objective infinite": {
			budgetYAML(budgetURL, budgetErrors, budgetTotal, "  objective: .inf"),
			11, 20, "environments[1].gates.errorBudget.objective", "out of range",
		},
		"missing prometheus": {
			budgetYAML(budgetErrors, budgetTotal, "  objective: 99"),
			8, 9, "environments[1].gates.errorBudget.prometheus", "required",
		},
		"missing errors": {
			budgetYAML(budgetURL, budgetTotal, "  objective: 99"),
			8, 9, "environments[1].gates.errorBudget.errors", "required",
		},
		"unknown placeholder": {
			budgetYAML(budgetURL, budgetErrors, `  total: 'sum(rate(x{r="${release}"}[$window]))'`, "  objective: 99"),
			10, 16, "environments[1].gates.errorBudget.total", "unknown variable ${release} (an error-budget query may use ${environment} and ${pipeline}",
		},
		"braced window": {
			budgetYAML(budgetURL, budgetErrors, `  total: 'sum(rate(x[${window}]))'`, "  objective: 99"),
			10, 16, "environments[1].gates.errorBudget.total", "must contain $window",
		},
		"negative period": {
			budgetYAML(budgetURL, budgetErrors, budgetTotal, "  objective: 99", "  period: -1d"),
			12, 17, "environments[1].gates.errorBudget.period", "must not be negative, got -24h0m0s",
		},
		"bad period": {
			budgetYAML(budgetURL, budgetErrors, budgetTotal, "  objective: 99", "  period: 1 month"),
			12, 17, "environments[1].gates.errorBudget.period", `invalid duration "1 month"`,
		},
		"zero factor": {
			budgetYAML(budgetURL, budgetErrors, budgetTotal, "  objective: 99", "  rules: [{long: 1h, short: 5m, factor: 0}]"),
			12, 47, "environments[1].gates.errorBudget.rules[0].factor", "must be positive, got 0",
		},
		"missing short": {
			budgetYAML(budgetURL, budgetErrors, budgetTotal, "  objective: 99", "  rules: [{long: 1h, factor: 2}]"),
			12, 17, "environments[1].gates.errorBudget.rules[0].short", "must be positive, got 0s",
		},
		"factor as a string": {
			budgetYAML(budgetURL, budgetErrors, budgetTotal, "  objective: 99", "  rules: [{long: 1h, short: 5m, factor: fast}]"),
			12, 47, "environments[1].gates.errorBudget.rules[0].factor", `expected a number, got string "fast"`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.yaml))
			assertProblem(t, err, tt.line, tt.column, tt.field, tt.message)
		})
	}
}

func TestValidateErrorBudget(t *testing.T) {
	spec := validSpec()
	spec.Environments[1].Gates = &Gates{ErrorBudget: &ErrorBudget{
		Prometheus: "ftp://prom",
		Errors:     "sum(rate(x[5m]))",
		Total:      "sum(rate(x[$window]))",
		Objective:  100,
		Rules:      []BurnRule{{Long: Duration(time.Hour), Short: Duration(time.Hour), Factor: 2}},
	}}
	err := spec.Validate()
	want := []string{
		`environments[1].gates.errorBudget.prometheus: invalid URL "ftp://prom": must be an absolute http or https URL`,
		"environments[1].gates.errorBudget.errors: must contain $window, which stands for each window of the rules, as in rate(http_requests_total[$window])",
		"environments[1].gates.errorBudget.objective: must be above 0 and below 100 (percent, such as 99.9), got 100",
		"environments[1].gates.errorBudget.rules[0].short: must be shorter than long (1h0m0s), got 1h0m0s",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("Validate = %v, want\n%s", err, strings.Join(want, "\n"))
	}
}
