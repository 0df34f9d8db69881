package window

import (
	"fmt"
	"testing"
	"time"
	_ "time/tzdata" // IANA zones without the host's zone database

	"pgregory.net/rapid"
)

// propertyZones mixes zones with whole-hour, half-hour and 45-minute offsets,
// a half-hour DST shift (Lord Howe) and transitions at midnight (Santiago).
var propertyZones = []string{
	"", "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
	"Asia/Kolkata", "Asia/Kathmandu", "Pacific/Chatham", "America/Santiago",
}

var propertyDays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// propertyBase is the earliest instant the property tests use; they stay
// within a few years of it, where every zone above has whole-minute offsets
// so that every boundary falls on a whole minute.
var propertyBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func genClock(t *rapid.T, label string) int {
	// Bias towards the small hours, where DST transitions happen.
	return rapid.OneOf(rapid.IntRange(0, 24*60-1), rapid.IntRange(0, 4*60)).Draw(t, label)
}

func genSpec(t *rapid.T) Spec {
	var s Spec
	for i := range rapid.IntRange(0, 3).Draw(t, "allows") {
		from := genClock(t, fmt.Sprintf("from%d", i))
		to := genClock(t, fmt.Sprintf("to%d", i))
		if to == from {
			to = (to + 1) % (24 * 60)
		}
		s.Allow = append(s.Allow, Allow{
			Days:     rapid.SliceOfDistinct(rapid.SampledFrom(propertyDays), rapid.ID[string]).Draw(t, fmt.Sprintf("days%d", i)),
			From:     fmt.Sprintf("%02d:%02d", from/60, from%60),
			To:       fmt.Sprintf("%02d:%02d", to/60, to%60),
			Timezone: rapid.SampledFrom(propertyZones).Draw(t, fmt.Sprintf("tz%d", i)),
		})
	}
	for i := range rapid.IntRange(0, 3).Draw(t, "freezes") {
		from := propertyBase.Add(time.Duration(rapid.IntRange(0, 2*366*24*60).Draw(t, fmt.Sprintf("freezeFrom%d", i))) * time.Minute)
		length := time.Duration(rapid.IntRange(1, 40*24*60).Draw(t, fmt.Sprintf("freezeLength%d", i))) * time.Minute
		s.Freeze = append(s.Freeze, Freeze{From: from, To: from.Add(length), Reason: fmt.Sprintf("freeze %d", i)})
	}
	return s
}

func genNow(t *rapid.T) time.Time {
	seconds := rapid.Int64Range(0, 2*366*24*3600).Draw(t, "now")
	return propertyBase.Add(time.Duration(seconds) * time.Second)
}

// TestEvaluateProperties checks Evaluate against its own definition for
// random specs and instants.
func TestEvaluateProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSpec(t)
		if problems := s.Validate(); problems != nil {
			t.Fatalf("generated an invalid spec: %v", problems)
		}
		now := genNow(t)
		d := s.Evaluate(now)
		if d.Reason == "" {
			t.Fatalf("no reason")
		}
		if d.Open {
			for _, f := range s.Freeze {
				if !now.Before(f.From) && now.Before(f.To) {
					t.Fatalf("open at %s inside freeze %s–%s", now, f.From, f.To)
				}
			}
			if !d.Next.IsZero() {
				t.Fatalf("open with Next %s", d.Next)
			}
			if !d.Until.IsZero() {
				if !d.Until.After(now) || d.Until.After(now.Add(Lookahead)) {
					t.Fatalf("Until %s not within the lookahead after %s", d.Until, now)
				}
				if s.Evaluate(d.Until).Open {
					t.Fatalf("still open at Until %s", d.Until)
				}
				if !s.Evaluate(d.Until.Add(-time.Nanosecond)).Open {
					t.Fatalf("closed just before Until %s", d.Until)
				}
			}
			return
		}
		if !d.Until.IsZero() {
			t.Fatalf("closed with Until %s", d.Until)
		}
		if d.Next.IsZero() {
			return
		}
		if !d.Next.After(now) || d.Next.After(now.Add(Lookahead)) {
			t.Fatalf("Next %s not within the lookahead after %s", d.Next, now)
		}
		if !s.Evaluate(d.Next).Open {
			t.Fatalf("not open at Next %s: %s", d.Next, s.Evaluate(d.Next).Reason)
		}
		// Boundaries fall on whole minutes, so the minute before Next is
		// closed unless it is not after now (Next is the first minute
		// after now).
		if before := d.Next.Add(-time.Minute); before.After(now) && s.Evaluate(before).Open {
			t.Fatalf("already open at %s, a minute before Next %s", before, d.Next)
		}
		if s.Evaluate(d.Next.Add(-time.Nanosecond)).Open {
			t.Fatalf("already open just before Next %s", d.Next)
		}
	})
}

// TestEvaluateMatchesScan compares Next and Until with a minute-by-minute
// scan of the allowed instants over the following days.
func TestEvaluateMatchesScan(t *testing.T) {
	const span = 3 * 24 * 60 // minutes
	rapid.Check(t, func(t *rapid.T) {
		s := genSpec(t)
		now := genNow(t)
		sc, problems := compile(s)
		if problems != nil {
			t.Fatalf("generated an invalid spec: %v", problems)
		}
		d := s.Evaluate(now)
		if d.Open != sc.allowedAt(now) {
			t.Fatalf("Open = %v, allowedAt = %v", d.Open, !d.Open)
		}
		want := d.Next
		if d.Open {
			want = d.Until
		}
		start := now.Truncate(time.Minute)
		for i := 1; i <= span; i++ {
			m := start.Add(time.Duration(i) * time.Minute)
			if sc.allowedAt(m) != d.Open {
				if !want.Equal(m) {
					t.Fatalf("open=%v at %s: scan changes at %s, Evaluate says %s (%s)", d.Open, now, m, want, d.Reason)
				}
				return
			}
		}
		if !want.IsZero() && !want.After(start.Add(span*time.Minute)) {
			t.Fatalf("open=%v at %s: scan sees no change, Evaluate says %s", d.Open, now, want)
		}
	})
}

func TestWallTime(t *testing.T) {
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	berlin, newYork, lordHowe := load("Europe/Berlin"), load("America/New_York"), load("Australia/Lord_Howe")
	tests := []struct {
		name  string
		y     int
		m     time.Month
		d     int
		clock int
		loc   *time.Location
		want  string
	}{
		{"berlin winter", 2026, time.January, 15, 9 * 60, berlin, "2026-01-15T08:00:00Z"},
		{"berlin summer", 2026, time.July, 15, 9 * 60, berlin, "2026-07-15T07:00:00Z"},
		{"berlin gap moves forward", 2026, time.March, 29, 2*60 + 30, berlin, "2026-03-29T01:30:00Z"},
		{"berlin repeated takes first", 2026, time.October, 25, 2*60 + 30, berlin, "2026-10-25T00:30:00Z"},
		{"new york gap moves forward", 2026, time.March, 8, 2*60 + 30, newYork, "2026-03-08T07:30:00Z"},
		{"new york repeated takes first", 2026, time.November, 1, 60 + 30, newYork, "2026-11-01T05:30:00Z"},
		// Lord Howe moves its clocks by half an hour: 02:00 → 02:30 on
		// 2026-10-04 (+10:30 → +11), 02:00 → 01:30 on 2026-04-05.
		{"lord howe gap", 2026, time.October, 4, 2*60 + 15, lordHowe, "2026-10-03T15:45:00Z"},
		{"lord howe repeated", 2026, time.April, 5, 60 + 45, lordHowe, "2026-04-04T14:45:00Z"},
		{"denormalised day", 2026, time.March, 32, 9 * 60, berlin, "2026-04-01T07:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wallTime(tt.y, tt.m, tt.d, tt.clock, tt.loc)
			want, err := time.Parse(time.RFC3339, tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want) {
				t.Errorf("wallTime = %s (%s), want %s", got.UTC().Format(time.RFC3339), got, tt.want)
			}
		})
	}
}

func TestDayList(t *testing.T) {
	set := func(days ...time.Weekday) [7]bool {
		var s [7]bool
		for _, d := range days {
			s[d] = true
		}
		return s
	}
	tests := []struct {
		days [7]bool
		want string
	}{
		{set(time.Monday, time.Tuesday, time.Wednesday, time.Thursday), "mon–thu"},
		{set(time.Monday, time.Wednesday, time.Friday), "mon,wed,fri"},
		{set(time.Saturday, time.Sunday), "sat,sun"},
		{set(time.Sunday, time.Monday, time.Friday, time.Saturday), "mon,fri–sun"},
		{set(time.Sunday, time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday), "daily"},
	}
	for _, tt := range tests {
		if got := dayList(tt.days); got != tt.want {
			t.Errorf("dayList(%v) = %q, want %q", tt.days, got, tt.want)
		}
	}
}
