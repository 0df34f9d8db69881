package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// maxSummaryEntries is how many distinct alerts Summary names before it
// counts the rest.
const maxSummaryEntries = 5

// maxAnnotationRunes is how much of a summary annotation Summary keeps.
const maxAnnotationRunes = 120

// Key returns the key under which the alerts of group groupKey are recorded
// for target's environment. It depends only on the group and the
// environment, not on which alerts are firing, so the notifications
// Alertmanager repeats for a group land on the same entry, while different
// groups, and one group's different environments, never share one.
func Key(groupKey string, target Target) string {
	h := sha256.New()
	for _, s := range []string{groupKey, target.Pipeline, target.Environment} {
		// Length-prefixed so that no two distinct triples hash the same input.
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	return "am-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Summary describes alerts on one line, for example
// "2 firing: HighErrorRate (severity=critical), LatencyP99 (severity=page)".
// Each alert is named by its alertname label (its fingerprint when it has
// none), followed by its severity label and its summary annotation when
// present; alerts that read the same are counted once with "×n", and
// after five distinct entries the rest are counted. When any entry carries
// a summary annotation, entries are separated by "; " rather than ", ".
func Summary(alerts []Alert) string {
	if len(alerts) == 0 {
		return "no alerts"
	}
	var firing, resolved int
	var order []string
	count := map[string]int{}
	withText := false
	for _, a := range alerts {
		if a.Firing() {
			firing++
		} else {
			resolved++
		}
		e, hasText := entry(a)
		withText = withText || hasText
		if count[e] == 0 {
			order = append(order, e)
		}
		count[e]++
	}

	var b strings.Builder
	switch {
	case resolved == 0:
		fmt.Fprintf(&b, "%d firing: ", firing)
	case firing == 0:
		fmt.Fprintf(&b, "%d resolved: ", resolved)
	default:
		fmt.Fprintf(&b, "%d firing, %d resolved: ", firing, resolved)
	}
	sep := ", "
	if withText {
		sep = "; "
	}
	for i, e := range order {
		if i == maxSummaryEntries {
			fmt.Fprintf(&b, "%sand %d more", sep, len(order)-i)
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(e)
		if n := count[e]; n > 1 {
			fmt.Fprintf(&b, " ×%d", n)
		}
	}
	return b.String()
}

// entry renders one alert for Summary and reports whether it carries a
// summary annotation.
func entry(a Alert) (string, bool) {
	name := oneLine(a.Labels["alertname"])
	if name == "" {
		name = "alert " + oneLine(a.Fingerprint)
		if a.Fingerprint == "" {
			name = "unnamed alert"
		}
	}
	if sev := oneLine(a.Labels["severity"]); sev != "" {
		name += " (severity=" + sev + ")"
	}
	text := oneLine(a.Annotations["summary"])
	if text == "" {
		return name, false
	}
	if r := []rune(text); len(r) > maxAnnotationRunes {
		text = string(r[:maxAnnotationRunes-1]) + "…"
	}
	return name + ": " + text, true
}

// oneLine collapses all runs of white space in s, newlines included, to
// single spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
