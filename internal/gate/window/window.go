// Package window decides whether a promotion may deploy at a given instant
// under an environment's deployment windows and freezes, and when it may
// deploy otherwise.
//
// The package is pure: it reads no clock and does no I/O of its own (time
// zones are loaded with [time.LoadLocation]; a binary that must not depend on
// the host's zone database imports time/tzdata). The instant to decide for is
// always passed in.
//
// # Semantics
//
// An instant is allowed when it falls in at least one allow window (or no
// allow window is configured) and in no freeze; freezes take precedence.
// Periods are half-open: an allow window 09:00–16:00 contains 09:00 and not
// 16:00, and a freeze contains its From and not its To.
//
// An allow window is a daily period in local wall-clock time of its time
// zone. When To is earlier than From the period wraps midnight and ends on
// the next local day. Days restrict the local days on which a period starts:
// an overnight window on fri 22:00–02:00 runs from Friday 22:00 to Saturday
// 02:00, and no period starts on Saturday. A window without days applies
// every day.
//
// # Daylight-saving time
//
// Period bounds are computed afresh for every local date from its wall-clock
// time, never by adding 24 hours to an instant, so 09:00 in Europe/Berlin is
// 08:00Z in winter and 07:00Z in summer. Wall-clock times that do not exist
// or exist twice on a transition day are resolved as RFC 5545 (iCalendar)
// does, independently of how [time.Date] happens to normalise them:
//
//   - a time skipped by a spring-forward transition is read with the offset
//     in effect before the transition, which moves it forward by the length
//     of the gap (02:30 in Europe/Berlin on 2026-03-29 becomes 03:30 CEST);
//   - a time repeated by a fall-back transition is its first occurrence
//     (02:30 in Europe/Berlin on 2026-10-25 is 02:30 CEST, 00:30Z).
//
// A period whose end resolves to an instant not after its start (02:30–03:00
// on a day when 02:00–03:00 does not exist) is empty that day.
//
// # Looking ahead
//
// When an instant is not allowed, [Decision.Next] is the earliest later
// instant that is; when it is allowed, [Decision.Until] is the earliest later
// instant that is not. Both are searched for at most [Lookahead] ahead and
// are zero when none is found in that span.
package window

import (
	"slices"
	"strings"
	"time"
)

// Lookahead is how far ahead Evaluate searches for the next opening or the
// end of the current one. A window that opens only later is reported as
// never opening.
const Lookahead = 366 * 24 * time.Hour

// Spec is an environment's deployment windows and freezes, as written in a
// pipeline under "windows".
type Spec struct {
	// Allow lists the periods in which deploying is allowed. When empty,
	// deploying is allowed at any time that no freeze covers.
	Allow []Allow `yaml:"allow,omitempty" json:"allow,omitempty"`
	// Freeze lists the periods in which deploying is refused, whatever
	// Allow says.
	Freeze []Freeze `yaml:"freeze,omitempty" json:"freeze,omitempty"`
}

// Allow is a recurring daily period in which deploying is allowed.
type Allow struct {
	// Days are the local days on which a period starts, such as "mon" or
	// "Monday" (case-insensitive). When empty, a period starts every day.
	Days []string `yaml:"days,omitempty" json:"days,omitempty"`
	// From is the local start time as "HH:MM" on a 24-hour clock.
	From string `yaml:"from" json:"from"`
	// To is the local end time as "HH:MM" on a 24-hour clock. When it is
	// earlier than From, the period ends on the next day.
	To string `yaml:"to" json:"to"`
	// Timezone is the IANA name of the zone From and To are read in, such
	// as "Europe/Berlin". Defaults to UTC.
	Timezone string `yaml:"timezone,omitempty" json:"timezone,omitempty"`
}

// Freeze is a one-off period in which deploying is refused.
type Freeze struct {
	// From is the instant the freeze starts (inclusive).
	From time.Time `yaml:"from" json:"from"`
	// To is the instant the freeze ends (exclusive).
	To time.Time `yaml:"to" json:"to"`
	// Reason says why deploying is frozen; it is shown to people.
	Reason string `yaml:"reason,omitempty" json:"reason,omitempty"`
}

// Problem is one thing wrong with a Spec.
type Problem struct {
	// Field is the path of the offending field relative to the spec, such
	// as "allow[0].days[2]" or "freeze[1].to".
	Field string `json:"field"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// String formats p as "field: message".
func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// Decision is the outcome of evaluating a Spec at an instant.
type Decision struct {
	// Open reports whether deploying is allowed at the instant.
	Open bool `json:"open"`
	// Reason explains the decision to a person.
	Reason string `json:"reason"`
	// Next is, when not Open, the earliest later instant at which deploying
	// is allowed; zero when Open or when it does not open within Lookahead.
	Next time.Time `json:"next,omitzero"`
	// Until is, when Open, the earliest later instant at which deploying is
	// no longer allowed: the end of the current allowed period or the start
	// of the next freeze. Zero when not Open or when nothing closes it
	// within Lookahead.
	Until time.Time `json:"until,omitzero"`
}

// Validate reports everything wrong with s, or nil when s is valid.
func (s Spec) Validate() []Problem {
	_, problems := compile(s)
	return problems
}

// Evaluate decides whether deploying is allowed at now and, if not, when it
// will be. An invalid spec is never open: its Reason lists the problems.
func (s Spec) Evaluate(now time.Time) Decision {
	sc, problems := compile(s)
	if len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.String()
		}
		return Decision{Reason: "invalid deployment windows: " + strings.Join(msgs, "; ")}
	}
	return sc.evaluate(now)
}

// schedule is a validated Spec with its times parsed and zones loaded.
type schedule struct {
	windows []window
	freezes []Freeze
}

// window is a validated Allow.
type window struct {
	days     [7]bool // indexed by time.Weekday
	from, to int     // minutes after local midnight
	loc      *time.Location
	label    string // such as "mon–thu 09:00–16:00 Europe/Berlin"
}

// period is one occurrence of a window: [start, end).
type period struct {
	start, end time.Time
}

// kind is what a boundary is the edge of.
type kind int

const (
	windowStart kind = iota
	windowEnd
	freezeStart
	freezeEnd
)

// boundary is an instant at which being allowed may change.
type boundary struct {
	at     time.Time
	kind   kind
	window *window // for windowStart and windowEnd
	freeze *Freeze // for freezeStart and freezeEnd
}

func (sc *schedule) evaluate(now time.Time) Decision {
	if sc.allowedAt(now) {
		return sc.open(now)
	}
	return sc.closed(now)
}

// frozen returns the freeze containing t with the latest end, or nil.
func (sc *schedule) frozen(t time.Time) *Freeze {
	var found *Freeze
	for i := range sc.freezes {
		f := &sc.freezes[i]
		if !t.Before(f.From) && t.Before(f.To) && (found == nil || f.To.After(found.To)) {
			found = f
		}
	}
	return found
}

// inWindow returns the first window with a period containing t, or nil.
func (sc *schedule) inWindow(t time.Time) *window {
	for i := range sc.windows {
		if sc.windows[i].contains(t) {
			return &sc.windows[i]
		}
	}
	return nil
}

func (sc *schedule) allowedAt(t time.Time) bool {
	if sc.frozen(t) != nil {
		return false
	}
	return len(sc.windows) == 0 || sc.inWindow(t) != nil
}

// boundaries returns, in order, the boundaries in (now, now+Lookahead] at
// which deploying may open (opening) or close (!opening).
func (sc *schedule) boundaries(now time.Time, opening bool) []boundary {
	horizon := now.Add(Lookahead)
	within := func(t time.Time) bool { return t.After(now) && !t.After(horizon) }
	var bs []boundary
	for i := range sc.windows {
		w := &sc.windows[i]
		y, m, d := now.In(w.loc).Date()
		// A period starting the day before may still be running; the last
		// local date that can start within the horizon is at most
		// Lookahead/24h+1 days on.
		for off := -1; off <= int(Lookahead/(24*time.Hour))+1; off++ {
			p, ok := w.periodOn(y, m, d+off)
			if !ok {
				continue
			}
			if opening && within(p.start) {
				bs = append(bs, boundary{at: p.start, kind: windowStart, window: w})
			}
			if !opening && within(p.end) {
				bs = append(bs, boundary{at: p.end, kind: windowEnd, window: w})
			}
		}
	}
	for i := range sc.freezes {
		f := &sc.freezes[i]
		if opening && within(f.To) {
			bs = append(bs, boundary{at: f.To, kind: freezeEnd, freeze: f})
		}
		if !opening && within(f.From) {
			bs = append(bs, boundary{at: f.From, kind: freezeStart, freeze: f})
		}
	}
	slices.SortStableFunc(bs, func(a, b boundary) int { return a.at.Compare(b.at) })
	return bs
}

// nextOpening returns the earliest boundary after now at which deploying is
// allowed.
func (sc *schedule) nextOpening(now time.Time) (boundary, bool) {
	for _, b := range sc.boundaries(now, true) {
		if sc.allowedAt(b.at) {
			return b, true
		}
	}
	return boundary{}, false
}

// nextClosing returns the earliest boundary after now at which deploying is
// not allowed.
func (sc *schedule) nextClosing(now time.Time) (boundary, bool) {
	for _, b := range sc.boundaries(now, false) {
		if !sc.allowedAt(b.at) {
			return b, true
		}
	}
	return boundary{}, false
}

func (sc *schedule) open(now time.Time) Decision {
	d := Decision{Open: true}
	end, bounded := sc.nextClosing(now)
	if bounded {
		d.Until = end.at
	}
	w := sc.inWindow(now)
	var b strings.Builder
	switch {
	case w != nil:
		b.WriteString("inside window ")
		b.WriteString(w.label)
	case bounded:
		b.WriteString("no deployment windows configured; open")
	default:
		b.WriteString("no deployment windows configured and no freeze ahead")
	}
	if !bounded {
		return Decision{Open: true, Reason: b.String()}
	}
	switch end.kind {
	case freezeStart:
		b.WriteString(" until freeze starts at ")
		b.WriteString(utc(end.at))
		if end.freeze.Reason != "" {
			b.WriteString(": ")
			b.WriteString(end.freeze.Reason)
		}
	default:
		loc := time.UTC
		if w != nil {
			loc = w.loc
		}
		b.WriteString(" until ")
		if sameDay(now, end.at, loc) {
			b.WriteString(end.at.In(loc).Format("15:04 MST"))
		} else {
			b.WriteString(local(end.at, loc))
		}
	}
	d.Reason = b.String()
	return d
}

func (sc *schedule) closed(now time.Time) Decision {
	var d Decision
	next, opens := sc.nextOpening(now)
	if opens {
		d.Next = next.at
	}
	var b strings.Builder
	frozenUntil := now
	if f := sc.frozen(now); f != nil {
		// Follow overlapping and back-to-back freezes to the end of the
		// whole frozen span.
		for g := f; g != nil; g = sc.frozen(frozenUntil) {
			frozenUntil = g.To
		}
		b.WriteString("frozen until ")
		b.WriteString(utc(frozenUntil))
		if f.Reason != "" {
			b.WriteString(": ")
			b.WriteString(f.Reason)
		}
		if opens && next.at.Equal(frozenUntil) {
			d.Reason = b.String()
			return d
		}
	} else {
		labels := make([]string, len(sc.windows))
		for i, w := range sc.windows {
			labels[i] = w.label
		}
		b.WriteString("outside deployment windows (")
		b.WriteString(strings.Join(labels, ", "))
		b.WriteString(")")
	}
	switch {
	case !opens:
		b.WriteString("; does not open within the next 366 days")
	case next.kind == windowStart:
		b.WriteString("; next window opens ")
		b.WriteString(local(next.at, next.window.loc))
		b.WriteString(" (" + utc(next.at) + ")")
	default:
		loc := time.UTC
		if w := sc.inWindow(next.at); w != nil {
			loc = w.loc
		}
		b.WriteString("; opens ")
		b.WriteString(local(next.at, loc))
		b.WriteString(" (" + utc(next.at) + ") when freeze ends")
		if next.freeze.Reason != "" {
			b.WriteString(": ")
			b.WriteString(next.freeze.Reason)
		}
	}
	d.Reason = b.String()
	return d
}

// periodOn returns the period of w starting on the local date y-m-d, which
// may be denormalised (day 0, day 32). It reports false when w does not
// start a period that day or the period is empty.
func (w *window) periodOn(y int, m time.Month, d int) (period, bool) {
	date := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	if !w.days[date.Weekday()] {
		return period{}, false
	}
	y, m, d = date.Date()
	start := wallTime(y, m, d, w.from, w.loc)
	endDay := d
	if w.to < w.from {
		endDay++
	}
	end := wallTime(y, m, endDay, w.to, w.loc)
	if !end.After(start) {
		return period{}, false
	}
	return period{start: start, end: end}, true
}

// contains reports whether a period of w contains t.
func (w *window) contains(t time.Time) bool {
	y, m, d := t.In(w.loc).Date()
	// A period containing t starts on t's local date or the day before; the
	// day after is checked too in case a transition moved a bound across
	// midnight.
	for off := -1; off <= 1; off++ {
		if p, ok := w.periodOn(y, m, d+off); ok && !t.Before(p.start) && t.Before(p.end) {
			return true
		}
	}
	return false
}

// wallTime returns the instant at which the wall clock in loc shows clock
// minutes after midnight of the date y-m-d, resolving nonexistent and
// repeated wall-clock times as the package documentation describes. time.Date alone does not
// do this: it documents no choice, and in practice reads 02:30 on a
// spring-forward day as 03:30 in Europe/Berlin but as 01:30 in
// America/New_York.
func wallTime(y int, m time.Month, d, clock int, loc *time.Location) time.Time {
	wall := time.Date(y, m, d, clock/60, clock%60, 0, 0, time.UTC)
	// Every UTC offset in use lies within [-12h, +14h], so the instants
	// that can show this wall time lie within [wall-14h, wall+12h]. The
	// offsets just outside that span are the ones before and after any
	// transition inside it.
	before := offsetAt(wall.Add(-15*time.Hour), loc)
	after := offsetAt(wall.Add(13*time.Hour), loc)
	ub := wall.Add(-before)
	ua := wall.Add(-after)
	okb := offsetAt(ub, loc) == before
	oka := offsetAt(ua, loc) == after
	switch {
	case okb && oka:
		// Repeated wall time (or no transition): the first occurrence.
		if ua.Before(ub) {
			return ua.In(loc)
		}
		return ub.In(loc)
	case okb:
		return ub.In(loc)
	case oka:
		return ua.In(loc)
	case before != after:
		// Skipped wall time: read with the offset before the transition.
		return ub.In(loc)
	default:
		// More than one transition within a day; no zone in use does
		// this, so let time.Date decide.
		return time.Date(y, m, d, clock/60, clock%60, 0, 0, loc)
	}
}

func offsetAt(t time.Time, loc *time.Location) time.Duration {
	_, off := t.In(loc).Zone()
	return time.Duration(off) * time.Second
}

func sameDay(a, b time.Time, loc *time.Location) bool {
	ay, am, ad := a.In(loc).Date()
	by, bm, bd := b.In(loc).Date()
	return ay == by && am == bm && ad == bd
}

// local formats t as "Mon 2026-11-30 09:00 CET" in loc.
func local(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Mon 2006-01-02 15:04 MST")
}

// utc formats t as RFC 3339 in UTC.
func utc(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}
