package window

import (
	"fmt"
	"strings"
	"time"
)

// parseDay parses a day name, "mon".."sun" or "monday".."sunday" in any case.
func parseDay(name string) (time.Weekday, bool) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "mon", "monday":
		return time.Monday, true
	case "tue", "tuesday":
		return time.Tuesday, true
	case "wed", "wednesday":
		return time.Wednesday, true
	case "thu", "thursday":
		return time.Thursday, true
	case "fri", "friday":
		return time.Friday, true
	case "sat", "saturday":
		return time.Saturday, true
	case "sun", "sunday":
		return time.Sunday, true
	}
	return 0, false
}

// weekday returns the i-th day of a week that starts on Monday, the order
// labels show days in.
func weekday(i int) time.Weekday {
	return time.Weekday((i + 1) % 7)
}

// compile validates s and returns its schedule, or the problems found.
func compile(s Spec) (schedule, []Problem) {
	var problems []Problem
	add := func(field, format string, args ...any) {
		problems = append(problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	sc := schedule{freezes: s.Freeze}
	for i, a := range s.Allow {
		path := fmt.Sprintf("allow[%d]", i)
		w := window{}
		if len(a.Days) == 0 {
			w.days = [7]bool{true, true, true, true, true, true, true}
		}
		for j, name := range a.Days {
			wd, ok := parseDay(name)
			if !ok {
				add(fmt.Sprintf("%s.days[%d]", path, j), "unknown day %q; want mon..sun or monday..sunday", name)
				continue
			}
			w.days[wd] = true
		}
		var okFrom, okTo bool
		w.from, okFrom = parseClock(a.From)
		if !okFrom {
			add(path+".from", `%q is not a time of day; want "HH:MM" on a 24-hour clock, such as "09:00"`, a.From)
		}
		w.to, okTo = parseClock(a.To)
		if !okTo {
			add(path+".to", `%q is not a time of day; want "HH:MM" on a 24-hour clock, such as "16:00"`, a.To)
		}
		if okFrom && okTo && w.from == w.to {
			add(path+".to", "must differ from from (%s): the window would be empty", a.From)
		}
		loc, err := loadLocation(a.Timezone)
		if err != nil {
			add(path+".timezone", "%v", err)
		}
		w.loc = loc
		w.label = label(w, a)
		sc.windows = append(sc.windows, w)
	}
	for i, f := range s.Freeze {
		path := fmt.Sprintf("freeze[%d]", i)
		if f.From.IsZero() {
			add(path+".from", "is required")
		}
		if f.To.IsZero() {
			add(path+".to", "is required")
		}
		if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
			add(path+".to", "%s must be after from (%s)", utc(f.To), utc(f.From))
		}
	}
	if len(problems) > 0 {
		return schedule{}, problems
	}
	return sc, nil
}

// parseClock parses "HH:MM" on a 24-hour clock into minutes after midnight.
func parseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	digit := func(c byte) (int, bool) { return int(c - '0'), c >= '0' && c <= '9' }
	h1, ok1 := digit(s[0])
	h2, ok2 := digit(s[1])
	m1, ok3 := digit(s[3])
	m2, ok4 := digit(s[4])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, false
	}
	h, m := h1*10+h2, m1*10+m2
	if h > 23 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

// loadLocation loads the IANA zone name, UTC when empty. "Local" is refused:
// a window must mean the same on every host.
func loadLocation(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" {
		return time.UTC, fmt.Errorf(`"Local" depends on the host; name an IANA time zone such as "Europe/Berlin"`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC, fmt.Errorf("unknown time zone %q; want an IANA name such as \"Europe/Berlin\"", name)
	}
	return loc, nil
}

// label describes a window as "mon–thu 09:00–16:00 Europe/Berlin".
func label(w window, a Allow) string {
	tz := a.Timezone
	if tz == "" {
		tz = "UTC"
	}
	return fmt.Sprintf("%s %s–%s %s", dayList(w.days), a.From, a.To, tz)
}

// dayList describes a set of weekdays in week order from Monday, folding
// runs of three or more days into a range: "mon–thu", "mon,wed,fri",
// "daily".
func dayList(days [7]bool) string {
	var parts []string
	for i := 0; i < 7; {
		if !days[weekday(i)] {
			i++
			continue
		}
		j := i
		for j+1 < 7 && days[weekday(j+1)] {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, abbrev(weekday(i))+"–"+abbrev(weekday(j)))
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, abbrev(weekday(k)))
			}
		}
		i = j + 1
	}
	if len(parts) == 1 && parts[0] == "mon–sun" {
		return "daily"
	}
	return strings.Join(parts, ",")
}

func abbrev(d time.Weekday) string {
	return strings.ToLower(d.String()[:3])
}
