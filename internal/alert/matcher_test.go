package alert

import (
	"strings"
	"testing"
)

func mustParse(tb testing.TB, s string) Matcher {
	tb.Helper()
	m, err := ParseMatcher(s)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestParseMatcher(t *testing.T) {
	tests := []struct {
		in   string
		want Matcher
	}{
		{`severity=~"critical|page"`, Matcher{Name: "severity", Type: MatchRegexp, Value: "critical|page"}},
		{`env="prod"`, Matcher{Name: "env", Type: MatchEqual, Value: "prod"}},
		{`env!="prod"`, Matcher{Name: "env", Type: MatchNotEqual, Value: "prod"}},
		{`team!~"a.*"`, Matcher{Name: "team", Type: MatchNotRegexp, Value: "a.*"}},
		{`env=prod`, Matcher{Name: "env", Type: MatchEqual, Value: "prod"}},
		{`  job = "api server"  `, Matcher{Name: "job", Type: MatchEqual, Value: "api server"}},
		{`msg="say \"hi\"\n"`, Matcher{Name: "msg", Type: MatchEqual, Value: "say \"hi\"\n"}},
		{`env=""`, Matcher{Name: "env", Type: MatchEqual, Value: ""}},
		{`env=`, Matcher{Name: "env", Type: MatchEqual, Value: ""}},
		{`_x1=~a=b`, Matcher{Name: "_x1", Type: MatchRegexp, Value: "a=b"}},
	}
	for _, tt := range tests {
		got, err := ParseMatcher(tt.in)
		if err != nil {
			t.Errorf("ParseMatcher(%q): %v", tt.in, err)
			continue
		}
		if got.Name != tt.want.Name || got.Type != tt.want.Type || got.Value != tt.want.Value {
			t.Errorf("ParseMatcher(%q) = %s, want %s", tt.in, got, tt.want)
		}
		// String must parse back to the same matcher.
		again, err := ParseMatcher(got.String())
		if err != nil || again.String() != got.String() {
			t.Errorf("round trip of %s = %s, %v", got, again, err)
		}
	}
}

func TestParseMatcherErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "missing label name"},
		{`="x"`, "missing label name"},
		{`1abc="x"`, "missing label name"},
		{`severity`, `want =, !=, =~ or !~ after label "severity"`},
		{`severity~"x"`, "want =, !=, =~ or !~"},
		{`sev-erity="x"`, "want =, !=, =~ or !~"},
		{`severity="critical`, "badly quoted value"},
		{`severity="a" extra`, "badly quoted value"},
		{`severity=~"(crit"`, "missing closing )"},
		{`severity!~"[z-a]"`, "invalid character class range"},
	}
	for _, tt := range tests {
		_, err := ParseMatcher(tt.in)
		if err == nil {
			t.Errorf("ParseMatcher(%q) succeeded, want error", tt.in)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.want) {
			t.Errorf("ParseMatcher(%q) = %q, want it to contain %q", tt.in, msg, tt.want)
		}
		if tt.in != "" && !strings.Contains(msg, tt.in) && !strings.Contains(msg, strings.ReplaceAll(tt.in, `"`, `\"`)) {
			t.Errorf("ParseMatcher(%q) = %q, want it to name the matcher", tt.in, msg)
		}
	}
}

func TestNewMatcherErrors(t *testing.T) {
	if _, err := NewMatcher(MatchEqual, "bad name", "x"); err == nil || !strings.Contains(err.Error(), "invalid label name") {
		t.Errorf("bad name: %v", err)
	}
	if _, err := NewMatcher("==", "a", "x"); err == nil || !strings.Contains(err.Error(), "unknown operator") {
		t.Errorf("bad operator: %v", err)
	}
}

func TestMatcherMatches(t *testing.T) {
	labels := map[string]string{"severity": "critical", "team": "payments", "empty": ""}
	tests := []struct {
		matcher string
		want    bool
	}{
		{`severity="critical"`, true},
		{`severity="crit"`, false},
		{`severity!="critical"`, false},
		{`severity!="page"`, true},
		{`severity=~"critical|page"`, true},
		{`severity=~"page|critical"`, true},
		// Regexps are anchored at both ends.
		{`severity=~"crit"`, false},
		{`severity=~"ritical"`, false},
		{`severity=~"crit.*"`, true},
		{`severity=~"critical|pag"`, true},
		{`severity=~"x|critica"`, false},
		{`severity!~"crit"`, true},
		{`severity!~"crit.*"`, false},
		{`severity!~"page|warning"`, true},
		{`severity!~"critical|page"`, false},
		// A missing label reads as the empty string.
		{`missing=""`, true},
		{`missing!="x"`, true},
		{`missing="x"`, false},
		{`missing=~".*"`, true},
		{`missing=~".+"`, false},
		{`missing!~".+"`, true},
		{`empty=""`, true},
	}
	for _, tt := range tests {
		m := mustParse(t, tt.matcher)
		if got := m.Matches(labels); got != tt.want {
			t.Errorf("%s.Matches(%v) = %v, want %v", m, labels, got, tt.want)
		}
		// A literal without the compiled regexp behaves the same.
		lit := Matcher{Name: m.Name, Type: m.Type, Value: m.Value}
		if got := lit.Matches(labels); got != tt.want {
			t.Errorf("literal %s.Matches = %v, want %v", lit, got, tt.want)
		}
	}
	if (Matcher{}).Matches(labels) {
		t.Error("zero Matcher matched")
	}
	if (Matcher{Name: "a", Type: MatchRegexp, Value: "("}).Matches(map[string]string{"a": "("}) {
		t.Error("literal matcher with an invalid regexp matched")
	}
}

func TestMatcherText(t *testing.T) {
	var m Matcher
	if err := m.UnmarshalText([]byte(`severity=~"critical|page"`)); err != nil {
		t.Fatal(err)
	}
	if !m.Matches(map[string]string{"severity": "page"}) {
		t.Error("unmarshalled matcher does not match")
	}
	b, _ := m.MarshalText()
	if string(b) != `severity=~"critical|page"` {
		t.Errorf("MarshalText = %s", b)
	}
	if err := m.UnmarshalText([]byte(`severity`)); err == nil {
		t.Error("UnmarshalText accepted a matcher without an operator")
	}
}
