package pipeline

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/gate/window"
)

func TestParseGates(t *testing.T) {
	spec := parseFile(t, "testdata/valid/gates.yaml")

	prod, _ := spec.Environment("prod")
	g := prod.Gates
	if g == nil {
		t.Fatal("prod has no gates")
	}
	if g.Soak.D() != 10*time.Minute {
		t.Errorf("Soak = %s, want 10m", g.Soak.D())
	}
	wantPolicies := []Policy{
		{Name: "low-risk", Expr: `release.labels["risk"] != "high"`, Message: "high-risk releases need a change ticket"},
		{Name: "built-by-ci", Expr: "release.createdBy == \"ci\" &&\n  history.exists(h, h.environment == \"staging\" && h.state == \"succeeded\")\n"},
	}
	if !slices.Equal(g.Policies, wantPolicies) {
		t.Errorf("Policies = %#v, want %#v", g.Policies, wantPolicies)
	}

	w := g.Windows
	if w == nil || len(w.Allow) != 1 || len(w.Freeze) != 1 {
		t.Fatalf("Windows = %+v, want one allow window and one freeze", w)
	}
	allow := w.Allow[0]
	if !slices.Equal(allow.Days, []string{"mon", "tue", "wed", "thu"}) || allow.From != "09:00" || allow.To != "16:00" || allow.Timezone != "Europe/Berlin" {
		t.Errorf("Allow[0] = %+v", allow)
	}
	freeze := w.Freeze[0]
	wantFrom := time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)
	wantTo := time.Date(2027, 1, 3, 23, 0, 0, 0, time.UTC)
	if !freeze.From.Equal(wantFrom) || !freeze.To.Equal(wantTo) || freeze.Reason != "holidays" {
		t.Errorf("Freeze[0] = %+v, want %s to %s for holidays", freeze, wantFrom, wantTo)
	}
	if _, offset := freeze.To.Zone(); offset != 3600 {
		t.Errorf("Freeze[0].To offset = %ds, want the written +01:00", offset)
	}

	a := g.Approvals
	if a == nil {
		t.Fatal("prod has no approvals")
	}
	if a.Required != "2" || !slices.Equal(a.From, []string{"role:approver", "user:alice"}) || a.AllowSelfApproval ||
		a.ExpiresAfter.D() != 24*time.Hour || a.Timeout.D() != 8*time.Hour || a.OnTimeout != "escalate" {
		t.Errorf("Approvals = %+v", a)
	}
	if a.Escalate == nil || a.Escalate.After.D() != 2*time.Hour || a.Escalate.Webhook != "https://hooks.example/ferry" {
		t.Errorf("Escalate = %+v", a.Escalate)
	}

	if len(g.Preflight) != 1 || g.Preflight[0].Name != "quota" || g.Preflight[0].Exec == nil || g.Preflight[0].Exec.Run != "./check-quota.sh" {
		t.Errorf("Preflight = %+v", g.Preflight)
	}
	if !slices.Equal(g.ExpediteRoles, []string{"admin", "promoter"}) || g.OverrideRole != "approver" {
		t.Errorf("ExpediteRoles = %v, OverrideRole = %q", g.ExpediteRoles, g.OverrideRole)
	}
	if g.Rollbacks == nil || g.Rollbacks.Soak || !g.Rollbacks.Windows {
		t.Errorf("Rollbacks = %+v, want soak off and windows on", g.Rollbacks)
	}

	us, _ := spec.Environment("prod-us")
	if us.Gates == nil || us.Gates.Approvals == nil || us.Gates.Approvals.Required != `release.labels["risk"] == "low" ? 0 : 2` {
		t.Errorf("prod-us approvals = %+v, want required as an expression", us.Gates)
	}
	staging, _ := spec.Environment("staging")
	if staging.Gates != nil {
		t.Errorf("staging gates = %+v, want none", staging.Gates)
	}
}

// gatesYAML wraps the lines of a gates mapping, indented by six spaces, in a
// pipeline whose prod environment (environments[1]) has them.
func gatesYAML(lines ...string) string {
	return "name: shop\nenvironments:\n  - name: staging\n  - name: prod\n    after: [staging]\n    gates:\n" +
		"      " + strings.Join(lines, "\n      ") + "\n"
}

func TestParseGatesProblems(t *testing.T) {
	tests := map[string]struct {
		yaml         string
		line, column int
		field        string
		message      string
	}{
		"plain expression": {
			gatesYAML("policies:", "  - name: p", "    expr: release.versoin == 'x'"),
			9, 24, "environments[1].gates.policies[0].expr", "undefined field 'versoin'",
		},
		"double-quoted expression": {
			gatesYAML("policies:", `  - {name: p, expr: "release.versoin == 'x'"}`),
			8, 35, "environments[1].gates.policies[0].expr", "undefined field 'versoin'",
		},
		"literal block expression": {
			gatesYAML("policies:", "  - name: p", "    expr: |", "", "      true &&", "        release.versoin == 'x'"),
			12, 22, "environments[1].gates.policies[0].expr", "undefined field 'versoin'",
		},
		"literal block with an indentation indicator": {
			gatesYAML("policies:", "  - name: p", "    expr: |2", "         release.versoin == 'x'"),
			10, 23, "environments[1].gates.policies[0].expr", "undefined field 'versoin'",
		},
		"folded block expression": {
			gatesYAML("policies:", "  - name: p", "    expr: >-", "      true &&", "      release.versoin == 'x'"),
			10, 13, "environments[1].gates.policies[0].expr", "undefined field 'versoin' (at 1:16 in the expression)",
		},
		"escaped expression": {
			gatesYAML("policies:", `  - {name: p, expr: "release.versoin == \"x\""}`),
			8, 28, "environments[1].gates.policies[0].expr", "undefined field 'versoin' (at 1:8 in the expression)",
		},
		"required as an integer expression": {
			gatesYAML("approvals:", `  required: 'release.labels["risk"] == "low"'`),
			8, 43, "environments[1].gates.approvals.required", "expression must evaluate to int, not bool",
		},
		"negative required": {
			gatesYAML("approvals: {required: -1}"),
			7, 29, "environments[1].gates.approvals.required", "must not be negative, got -1",
		},
		"missing required": {
			gatesYAML("approvals: {timeout: 1h}"),
			7, 18, "environments[1].gates.approvals.required", "required",
		},
		"bad timestamp": {
			gatesYAML("windows:", "  freeze: [{from: 2026-12-20, to: 2027-01-04T00:00:00Z}]"),
			8, 25, "environments[1].gates.windows.freeze[0].from", `invalid timestamp "2026-12-20"`,
		},
		"unknown window field": {
			gatesYAML("windows:", "  allow: [{from: '09:00', to: '16:00', zone: UTC}]"),
			8, 46, "environments[1].gates.windows.allow[0].zone", `unknown field "zone"`,
		},
		"negative soak": {
			gatesYAML("soak: -1m"),
			7, 13, "environments[1].gates.soak", "must not be negative, got -1m0s",
		},
		"bad expedite role": {
			gatesYAML("expediteRoles: [admin, root]"),
			7, 30, "environments[1].gates.expediteRoles[1]", `unknown role "root"`,
		},
		"bad override role": {
			gatesYAML("overrideRole: Admin"),
			7, 21, "environments[1].gates.overrideRole", `unknown role "Admin"`,
		},
		"preflight named like a step": {
			gatesYAML("preflight: [{name: deploy, exec: {run: ./check.sh}}]") + "    steps: [{name: deploy, exec: {run: ./deploy.sh}}]\n",
			8, 20, "environments[1].steps[0].name", `duplicate step "deploy" in environment "prod" (first defined at line 7)`,
		},
		"escalate on timeout without escalate": {
			gatesYAML("approvals: {required: 1, onTimeout: escalate}"),
			7, 43, "environments[1].gates.approvals.onTimeout", "escalate needs escalate.webhook",
		},
		"relative webhook": {
			gatesYAML("approvals: {required: 1, escalate: {webhook: /hook}}"),
			7, 52, "environments[1].gates.approvals.escalate.webhook", `invalid URL "/hook"`,
		},
		"user without a name": {
			gatesYAML("approvals: {required: 1, from: ['user:']}"),
			7, 39, "environments[1].gates.approvals.from[0]", `invalid user "user:"`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.yaml))
			assertProblem(t, err, tt.line, tt.column, tt.field, tt.message)
		})
	}
}

func TestValidateGates(t *testing.T) {
	spec := validSpec()
	spec.Environments[1].Gates = &Gates{
		Policies:  []Policy{{Name: "p", Expr: "release.versoin == 'x'"}, {Name: "q"}},
		Windows:   &window.Spec{Freeze: []window.Freeze{{From: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}}},
		Approvals: &Approvals{Required: "two", OnTimeout: "wait"},
	}
	err := spec.Validate()
	want := []string{
		"environments[1].gates.policies[0].expr: undefined field 'versoin' (at 1:8 in the expression)",
		"environments[1].gates.policies[1].expr: required",
		"environments[1].gates.windows.freeze[0].to: is required",
		"environments[1].gates.approvals.required: undeclared reference to 'two' (at 1:1 in the expression)",
		`environments[1].gates.approvals.onTimeout: unknown action "wait": use reject or escalate`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("Validate = %v, want\n%s", err, strings.Join(want, "\n"))
	}
}

// TestGatesReferenceExample keeps the example of the Gates section of
// docs/pipeline.md valid and equal to testdata/valid/gates.yaml.
func TestGatesReferenceExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/pipeline.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Gates\n")
	_, rest, found := strings.Cut(section, "```yaml\n")
	example, _, closed := strings.Cut(rest, "```")
	if !ok || !found || !closed {
		t.Fatal("docs/pipeline.md has no Gates section with a yaml example")
	}
	spec, err := Parse("docs/pipeline.md", []byte(example))
	if err != nil {
		t.Fatalf("the example does not parse:\n%v", err)
	}
	if want := parseFile(t, "testdata/valid/gates.yaml").Digest(); spec.Digest() != want {
		t.Error("the Gates example of docs/pipeline.md differs from testdata/valid/gates.yaml")
	}
}
