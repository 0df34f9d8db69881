package analysis

import (
	"fmt"
	"slices"
	"strings"
)

// variableNames are the names Interpolate knows, besides artifact.NAME.digest.
var variableNames = []string{"environment", "pipeline", "release", "promotion", "baseline"}

// Interpolate replaces each ${name} in template with vars[name], so that one
// query serves every environment and release:
//
//	sum(rate(http_errors_total{env="${environment}"}[5m]))
//
// The names are environment, pipeline, release, promotion, baseline (the
// version running before a promotion, for canary checks) and
// artifact.NAME.digest for each artifact NAME of the release. A name outside
// that set, or one that vars has no value for, is an error that names every
// such variable. $${ stands for a literal ${.
func Interpolate(template string, vars map[string]string) (string, error) {
	var b strings.Builder
	var unknown, missing []string
	s := template
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$${"):
			b.WriteString("${")
			s = s[3:]
			continue
		case !strings.HasPrefix(s, "${"):
			b.WriteByte('$')
			s = s[1:]
			continue
		}
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", fmt.Errorf("interpolate: unclosed ${ at offset %d", len(template)-len(s))
		}
		name := strings.TrimSpace(s[2:end])
		s = s[end+1:]
		v, ok := vars[name]
		switch {
		case !knownVariable(name):
			unknown = appendOnce(unknown, "${"+name+"}")
		case !ok:
			missing = appendOnce(missing, "${"+name+"}")
		default:
			b.WriteString(v)
		}
	}
	switch {
	case len(unknown) > 0:
		return "", fmt.Errorf("interpolate: unknown variable %s (known: ${%s}, ${artifact.NAME.digest}; $${ writes ${)",
			strings.Join(unknown, ", "), strings.Join(variableNames, "}, ${"))
	case len(missing) > 0:
		return "", fmt.Errorf("interpolate: no value for %s", strings.Join(missing, ", "))
	}
	return b.String(), nil
}

// knownVariable reports whether name is one Interpolate knows.
func knownVariable(name string) bool {
	if slices.Contains(variableNames, name) {
		return true
	}
	artifact, ok := strings.CutPrefix(name, "artifact.")
	if !ok {
		return false
	}
	artifact, ok = strings.CutSuffix(artifact, ".digest")
	return ok && artifact != "" && !strings.ContainsAny(artifact, " {}$")
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
