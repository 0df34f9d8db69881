package alert

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MatchType is the operator of a Matcher.
type MatchType string

// The operators a Matcher supports, as Alertmanager writes them.
const (
	MatchEqual     MatchType = "="
	MatchNotEqual  MatchType = "!="
	MatchRegexp    MatchType = "=~"
	MatchNotRegexp MatchType = "!~"
)

// Matcher tests one label of an alert, as an Alertmanager matcher does:
// a missing label reads as the empty string, and regular expressions are
// anchored at both ends, so severity=~"crit" does not match "critical".
// Build one with ParseMatcher or NewMatcher.
type Matcher struct {
	Name  string
	Type  MatchType
	Value string

	re *regexp.Regexp // compiled, anchored Value for the regexp types
}

// NewMatcher returns a matcher for label name with operator t and value v,
// compiling v when t is a regexp operator.
func NewMatcher(t MatchType, name, v string) (Matcher, error) {
	m := Matcher{Name: name, Type: t, Value: v}
	if !validLabelName(name) {
		return Matcher{}, fmt.Errorf("matcher %s: invalid label name %q", m, name)
	}
	switch t {
	case MatchEqual, MatchNotEqual:
	case MatchRegexp, MatchNotRegexp:
		re, err := regexp.Compile("^(?:" + v + ")$")
		if err != nil {
			return Matcher{}, fmt.Errorf("matcher %s: %w", m, err)
		}
		m.re = re
	default:
		return Matcher{}, fmt.Errorf("matcher %s: unknown operator %q", m, string(t))
	}
	return m, nil
}

// ParseMatcher parses a matcher written as Alertmanager writes one:
// a label name, an operator (=, !=, =~ or !~) and a value that is either
// double-quoted with Go escapes or taken as-is, for example
// severity=~"critical|page" or env!=staging.
func ParseMatcher(s string) (Matcher, error) {
	in := strings.TrimSpace(s)
	i := 0
	for i < len(in) && isLabelChar(in[i], i == 0) {
		i++
	}
	name := in[:i]
	if name == "" {
		return Matcher{}, fmt.Errorf("matcher %q: missing label name", s)
	}
	rest := strings.TrimLeft(in[i:], " \t")
	var t MatchType
	for _, op := range []MatchType{MatchRegexp, MatchNotRegexp, MatchNotEqual, MatchEqual} {
		if strings.HasPrefix(rest, string(op)) {
			t = op
			break
		}
	}
	if t == "" {
		return Matcher{}, fmt.Errorf("matcher %q: want =, !=, =~ or !~ after label %q", s, name)
	}
	v := strings.TrimSpace(rest[len(t):])
	if strings.HasPrefix(v, `"`) {
		u, err := strconv.Unquote(v)
		if err != nil {
			return Matcher{}, fmt.Errorf("matcher %q: badly quoted value %s", s, v)
		}
		v = u
	}
	m, err := NewMatcher(t, name, v)
	if err != nil {
		return Matcher{}, fmt.Errorf("matcher %q: %w", s, unwrapOnce(err))
	}
	return m, nil
}

// unwrapOnce drops the "matcher ...:" prefix NewMatcher adds, so ParseMatcher
// names the matcher as it was written.
func unwrapOnce(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}

// Matches reports whether labels satisfy m.
func (m Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Name]
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp, MatchNotRegexp:
		re := m.re
		if re == nil {
			var err error
			if re, err = regexp.Compile("^(?:" + m.Value + ")$"); err != nil {
				return false
			}
		}
		return re.MatchString(v) == (m.Type == MatchRegexp)
	}
	return false
}

// String returns m as ParseMatcher reads it, with the value quoted.
func (m Matcher) String() string {
	return m.Name + string(m.Type) + strconv.Quote(m.Value)
}

// MarshalText returns m.String, so matchers round-trip through configuration.
func (m Matcher) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses text with ParseMatcher.
func (m *Matcher) UnmarshalText(text []byte) error {
	p, err := ParseMatcher(string(text))
	if err != nil {
		return err
	}
	*m = p
	return nil
}

// validLabelName reports whether s is a Prometheus label name.
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLabelChar(s[i], i == 0) {
			return false
		}
	}
	return true
}

func isLabelChar(c byte, first bool) bool {
	switch {
	case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		return true
	case '0' <= c && c <= '9':
		return !first
	}
	return false
}
