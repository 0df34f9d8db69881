package window_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // IANA zones without the host's zone database

	"github.com/ferry-dev/ferry/internal/gate/window"
)

// at parses an RFC 3339 instant.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

var (
	berlinWeekdays = window.Allow{Days: []string{"mon", "tue", "wed", "thu"}, From: "09:00", To: "16:00", Timezone: "Europe/Berlin"}
	berlinDaily    = window.Allow{From: "09:00", To: "16:00", Timezone: "Europe/Berlin"}
	newYorkOffice  = window.Allow{Days: []string{"Monday", "TUE", "wed", "thu", "fri"}, From: "09:00", To: "17:00", Timezone: "America/New_York"}
	fridayNight    = window.Allow{Days: []string{"fri"}, From: "22:00", To: "02:00"}
)

func holidays(t *testing.T, to string) window.Freeze {
	return window.Freeze{From: at(t, "2026-12-20T00:00:00Z"), To: at(t, to), Reason: "holidays"}
}

func TestEvaluate(t *testing.T) {
	multiple := window.Spec{Allow: []window.Allow{
		{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "09:00", To: "12:00"},
		{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "11:00", To: "14:00"},
		{Days: []string{"sat"}, From: "10:00", To: "11:00", Timezone: "UTC"},
	}}
	tests := []struct {
		name   string
		spec   window.Spec
		now    string
		open   bool
		next   string // RFC 3339; empty for zero
		until  string // RFC 3339; empty for zero
		reason string // the whole reason when it starts with "=", else a part of it
	}{
		// A simple window.
		{
			name: "inside simple window", spec: window.Spec{Allow: []window.Allow{berlinWeekdays}},
			now: "2026-11-26T10:00:00Z", open: true, until: "2026-11-26T15:00:00Z",
			reason: "=inside window mon–thu 09:00–16:00 Europe/Berlin until 16:00 CET",
		},
		{
			name: "window end is exclusive", spec: window.Spec{Allow: []window.Allow{berlinWeekdays}},
			now: "2026-11-26T15:00:00Z", next: "2026-11-30T08:00:00Z",
			reason: "=outside deployment windows (mon–thu 09:00–16:00 Europe/Berlin); next window opens Mon 2026-11-30 09:00 CET (2026-11-30T08:00:00Z)",
		},
		{
			name: "just before the window", spec: window.Spec{Allow: []window.Allow{berlinWeekdays}},
			now: "2026-11-30T07:59:00Z", next: "2026-11-30T08:00:00Z",
		},
		{
			name: "window start is inclusive", spec: window.Spec{Allow: []window.Allow{berlinWeekdays}},
			now: "2026-11-30T08:00:00Z", open: true, until: "2026-11-30T15:00:00Z",
		},
		{
			name: "weekend", spec: window.Spec{Allow: []window.Allow{berlinWeekdays}},
			now: "2026-11-28T12:00:00Z", next: "2026-11-30T08:00:00Z",
			reason: "next window opens Mon 2026-11-30 09:00 CET",
		},
		{
			name: "friday is not a window day", spec: window.Spec{Allow: []window.Allow{berlinWeekdays}},
			now: "2026-11-27T10:00:00Z", next: "2026-11-30T08:00:00Z",
		},

		// An overnight window belongs to the day it starts on.
		{
			name: "overnight before midnight", spec: window.Spec{Allow: []window.Allow{fridayNight}},
			now: "2026-11-27T23:00:00Z", open: true, until: "2026-11-28T02:00:00Z",
			reason: "=inside window fri 22:00–02:00 UTC until Sat 2026-11-28 02:00 UTC",
		},
		{
			name: "overnight after midnight", spec: window.Spec{Allow: []window.Allow{fridayNight}},
			now: "2026-11-28T01:59:00Z", open: true, until: "2026-11-28T02:00:00Z",
			reason: "until 02:00 UTC",
		},
		{
			name: "no period starts on saturday", spec: window.Spec{Allow: []window.Allow{fridayNight}},
			now: "2026-11-28T23:00:00Z", next: "2026-12-04T22:00:00Z",
		},
		{
			name: "thursday night is not friday's", spec: window.Spec{Allow: []window.Allow{fridayNight}},
			now: "2026-11-27T01:00:00Z", next: "2026-11-27T22:00:00Z",
		},

		// Several windows.
		{
			name: "overlapping windows run on", spec: multiple,
			now: "2026-11-30T10:00:00Z", open: true, until: "2026-11-30T14:00:00Z",
			reason: "=inside window mon–fri 09:00–12:00 UTC until 14:00 UTC",
		},
		{
			name: "inside the second window", spec: multiple,
			now: "2026-11-30T13:00:00Z", open: true, until: "2026-11-30T14:00:00Z",
			reason: "inside window mon–fri 11:00–14:00 UTC",
		},
		{
			name: "between days", spec: multiple,
			now: "2026-11-30T14:30:00Z", next: "2026-12-01T09:00:00Z",
			reason: "outside deployment windows (mon–fri 09:00–12:00 UTC, mon–fri 11:00–14:00 UTC, sat 10:00–11:00 UTC)",
		},
		{
			name: "friday evening opens on saturday", spec: multiple,
			now: "2026-12-04T15:00:00Z", next: "2026-12-05T10:00:00Z",
		},
		{
			name: "saturday window", spec: multiple,
			now: "2026-12-05T10:30:00Z", open: true, until: "2026-12-05T11:00:00Z",
		},

		// No allow windows: only freezes restrict.
		{
			name: "nothing configured", now: "2026-11-26T10:00:00Z", open: true,
			reason: "=no deployment windows configured and no freeze ahead",
		},
		{
			name: "before a freeze", spec: window.Spec{Freeze: []window.Freeze{holidays(t, "2027-01-04T00:00:00Z")}},
			now: "2026-12-01T00:00:00Z", open: true, until: "2026-12-20T00:00:00Z",
			reason: "=no deployment windows configured; open until freeze starts at 2026-12-20T00:00:00Z: holidays",
		},
		{
			name: "inside a freeze", spec: window.Spec{Freeze: []window.Freeze{holidays(t, "2027-01-04T00:00:00Z")}},
			now: "2026-12-24T12:00:00Z", next: "2027-01-04T00:00:00Z",
			reason: "=frozen until 2027-01-04T00:00:00Z: holidays",
		},
		{
			name: "freeze end is exclusive", spec: window.Spec{Freeze: []window.Freeze{holidays(t, "2027-01-04T00:00:00Z")}},
			now: "2027-01-04T00:00:00Z", open: true,
		},
		{
			name: "back-to-back freezes", spec: window.Spec{Freeze: []window.Freeze{
				holidays(t, "2027-01-04T00:00:00Z"),
				{From: at(t, "2027-01-04T00:00:00Z"), To: at(t, "2027-01-06T00:00:00Z"), Reason: "inventory"},
			}},
			now: "2026-12-24T12:00:00Z", next: "2027-01-06T00:00:00Z",
			reason: "=frozen until 2027-01-06T00:00:00Z: holidays",
		},

		// Freezes take precedence over windows.
		{
			name: "freeze inside window hours", spec: window.Spec{
				Allow:  []window.Allow{berlinWeekdays},
				Freeze: []window.Freeze{holidays(t, "2027-01-04T00:00:00Z")},
			},
			now: "2026-12-21T10:00:00Z", next: "2027-01-04T08:00:00Z",
			reason: "=frozen until 2027-01-04T00:00:00Z: holidays; next window opens Mon 2027-01-04 09:00 CET (2027-01-04T08:00:00Z)",
		},
		{
			name: "freeze ends inside a window", spec: window.Spec{
				Allow:  []window.Allow{berlinWeekdays},
				Freeze: []window.Freeze{holidays(t, "2027-01-04T10:00:00Z")},
			},
			now: "2026-12-21T10:00:00Z", next: "2027-01-04T10:00:00Z",
			reason: "=frozen until 2027-01-04T10:00:00Z: holidays",
		},
		{
			name: "outside, and the next window is frozen", spec: window.Spec{
				Allow:  []window.Allow{berlinWeekdays},
				Freeze: []window.Freeze{holidays(t, "2027-01-04T10:00:00Z")},
			},
			now: "2026-12-18T12:00:00Z", next: "2027-01-04T10:00:00Z",
			reason: "=outside deployment windows (mon–thu 09:00–16:00 Europe/Berlin); opens Mon 2027-01-04 11:00 CET (2027-01-04T10:00:00Z) when freeze ends: holidays",
		},
		{
			name: "window closes at a freeze", spec: window.Spec{
				Allow:  []window.Allow{berlinWeekdays},
				Freeze: []window.Freeze{{From: at(t, "2026-12-17T12:00:00Z"), To: at(t, "2027-01-04T00:00:00Z"), Reason: "holidays"}},
			},
			now: "2026-12-17T10:00:00Z", open: true, until: "2026-12-17T12:00:00Z",
			reason: "=inside window mon–thu 09:00–16:00 Europe/Berlin until freeze starts at 2026-12-17T12:00:00Z: holidays",
		},
		{
			name: "window closes before a freeze", spec: window.Spec{
				Allow:  []window.Allow{berlinWeekdays},
				Freeze: []window.Freeze{holidays(t, "2027-01-04T00:00:00Z")},
			},
			now: "2026-12-17T10:00:00Z", open: true, until: "2026-12-17T15:00:00Z",
		},

		// Europe/Berlin: spring forward on 2026-03-29, fall back on 2026-10-25.
		{
			name: "berlin before spring forward", spec: window.Spec{Allow: []window.Allow{berlinDaily}},
			now: "2026-03-27T16:00:00Z", next: "2026-03-28T08:00:00Z",
			reason: "next window opens Sat 2026-03-28 09:00 CET (2026-03-28T08:00:00Z)",
		},
		{
			name: "berlin across spring forward", spec: window.Spec{Allow: []window.Allow{berlinDaily}},
			now: "2026-03-28T16:00:00Z", next: "2026-03-29T07:00:00Z",
			reason: "next window opens Sun 2026-03-29 09:00 CEST (2026-03-29T07:00:00Z)",
		},
		{
			name: "berlin on spring forward day", spec: window.Spec{Allow: []window.Allow{berlinDaily}},
			now: "2026-03-29T08:00:00Z", open: true, until: "2026-03-29T14:00:00Z",
			reason: "until 16:00 CEST",
		},
		{
			name: "berlin weekdays across spring forward", spec: window.Spec{Allow: []window.Allow{berlinWeekdays}},
			now: "2026-03-27T16:00:00Z", next: "2026-03-30T07:00:00Z",
		},
		{
			name: "berlin before fall back", spec: window.Spec{Allow: []window.Allow{berlinDaily}},
			now: "2026-10-23T15:00:00Z", next: "2026-10-24T07:00:00Z",
			reason: "next window opens Sat 2026-10-24 09:00 CEST (2026-10-24T07:00:00Z)",
		},
		{
			name: "berlin across fall back", spec: window.Spec{Allow: []window.Allow{berlinDaily}},
			now: "2026-10-24T15:00:00Z", next: "2026-10-25T08:00:00Z",
			reason: "next window opens Sun 2026-10-25 09:00 CET (2026-10-25T08:00:00Z)",
		},
		{
			name: "berlin weekdays across fall back", spec: window.Spec{Allow: []window.Allow{berlinWeekdays}},
			now: "2026-10-23T15:00:00Z", next: "2026-10-26T08:00:00Z",
		},
		{
			name: "berlin overnight window spanning fall back lasts 7 hours",
			spec: window.Spec{Allow: []window.Allow{{Days: []string{"sat"}, From: "22:00", To: "04:00", Timezone: "Europe/Berlin"}}},
			now:  "2026-10-24T21:00:00Z", open: true, until: "2026-10-25T03:00:00Z",
			reason: "until Sun 2026-10-25 04:00 CET",
		},

		// America/New_York: spring forward on 2026-03-08, fall back on 2026-11-01.
		{
			name: "new york across spring forward", spec: window.Spec{Allow: []window.Allow{newYorkOffice}},
			now: "2026-03-06T23:00:00Z", next: "2026-03-09T13:00:00Z",
			reason: "next window opens Mon 2026-03-09 09:00 EDT (2026-03-09T13:00:00Z)",
		},
		{
			name: "new york after spring forward", spec: window.Spec{Allow: []window.Allow{newYorkOffice}},
			now: "2026-03-09T14:00:00Z", open: true, until: "2026-03-09T21:00:00Z",
			reason: "=inside window mon–fri 09:00–17:00 America/New_York until 17:00 EDT",
		},
		{
			name: "new york across fall back", spec: window.Spec{Allow: []window.Allow{newYorkOffice}},
			now: "2026-10-30T22:00:00Z", next: "2026-11-02T14:00:00Z",
			reason: "next window opens Mon 2026-11-02 09:00 EST (2026-11-02T14:00:00Z)",
		},

		// Wall-clock times that do not exist or exist twice.
		{
			name: "berlin 02:30 on spring forward starts at 03:30 CEST",
			spec: window.Spec{Allow: []window.Allow{{From: "02:30", To: "04:00", Timezone: "Europe/Berlin"}}},
			now:  "2026-03-29T00:30:00Z", next: "2026-03-29T01:30:00Z",
			reason: "next window opens Sun 2026-03-29 03:30 CEST (2026-03-29T01:30:00Z)",
		},
		{
			name: "berlin 02:30 window on spring forward ends at 04:00 CEST",
			spec: window.Spec{Allow: []window.Allow{{From: "02:30", To: "04:00", Timezone: "Europe/Berlin"}}},
			now:  "2026-03-29T01:45:00Z", open: true, until: "2026-03-29T02:00:00Z",
		},
		{
			name: "new york 02:30 on spring forward starts at 03:30 EDT",
			spec: window.Spec{Allow: []window.Allow{{From: "02:30", To: "04:00", Timezone: "America/New_York"}}},
			now:  "2026-03-08T06:00:00Z", next: "2026-03-08T07:30:00Z",
			reason: "next window opens Sun 2026-03-08 03:30 EDT (2026-03-08T07:30:00Z)",
		},
		{
			name: "window entirely in the gap is empty that day",
			spec: window.Spec{Allow: []window.Allow{{From: "02:30", To: "03:00", Timezone: "Europe/Berlin"}}},
			now:  "2026-03-28T02:00:00Z", next: "2026-03-30T00:30:00Z",
		},
		{
			name: "repeated wall time is its first occurrence",
			spec: window.Spec{Allow: []window.Allow{{From: "02:30", To: "05:00", Timezone: "Europe/Berlin"}}},
			now:  "2026-10-25T00:00:00Z", next: "2026-10-25T00:30:00Z",
			reason: "next window opens Sun 2026-10-25 02:30 CEST (2026-10-25T00:30:00Z)",
		},

		// Never opens within the lookahead.
		{
			name: "freeze longer than the lookahead", spec: window.Spec{
				Allow:  []window.Allow{{From: "09:00", To: "16:00"}},
				Freeze: []window.Freeze{{From: at(t, "2026-01-01T00:00:00Z"), To: at(t, "2027-06-01T00:00:00Z"), Reason: "migration"}},
			},
			now:    "2026-01-05T10:00:00Z",
			reason: "=frozen until 2027-06-01T00:00:00Z: migration; does not open within the next 366 days",
		},
		{
			name: "every window day frozen for over a year", spec: window.Spec{
				Allow:  []window.Allow{berlinWeekdays},
				Freeze: []window.Freeze{{From: at(t, "2026-01-01T00:00:00Z"), To: at(t, "2027-01-08T00:00:00Z"), Reason: "migration"}},
			},
			now:    "2026-01-03T10:00:00Z",
			reason: "does not open within the next 366 days",
		},

		// An invalid spec is never open.
		{
			name: "invalid spec", spec: window.Spec{Allow: []window.Allow{{Days: []string{"funday"}, From: "09:00", To: "16:00"}}},
			now:    "2026-11-26T10:00:00Z",
			reason: `=invalid deployment windows: allow[0].days[0]: unknown day "funday"; want mon..sun or monday..sunday`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.spec.Evaluate(at(t, tt.now))
			if got.Open != tt.open {
				t.Errorf("Open = %v, want %v (reason %q)", got.Open, tt.open, got.Reason)
			}
			checkInstant(t, "Next", got.Next, tt.next)
			checkInstant(t, "Until", got.Until, tt.until)
			if want, whole := strings.CutPrefix(tt.reason, "="); whole {
				if got.Reason != want {
					t.Errorf("Reason =\n\t%q\nwant\n\t%q", got.Reason, want)
				}
			} else if !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to contain %q", got.Reason, tt.reason)
			}
		})
	}
}

func checkInstant(t *testing.T, name string, got time.Time, want string) {
	t.Helper()
	if want == "" {
		if !got.IsZero() {
			t.Errorf("%s = %s, want zero", name, got.UTC().Format(time.RFC3339))
		}
		return
	}
	if w := at(t, want); !got.Equal(w) {
		t.Errorf("%s = %s, want %s", name, got.UTC().Format(time.RFC3339), want)
	}
}

func TestValidate(t *testing.T) {
	valid := window.Spec{
		Allow: []window.Allow{
			berlinWeekdays,
			fridayNight,
			{Days: []string{"Saturday", "SUN"}, From: "00:00", To: "23:59", Timezone: "UTC"},
		},
		Freeze: []window.Freeze{holidays(t, "2027-01-04T00:00:00Z")},
	}
	if problems := valid.Validate(); problems != nil {
		t.Errorf("Validate() = %v, want nil", problems)
	}
	if problems := (window.Spec{}).Validate(); problems != nil {
		t.Errorf("Validate() of the empty spec = %v, want nil", problems)
	}

	invalid := window.Spec{
		Allow: []window.Allow{
			{Days: []string{"mon", "Tuesday", "funday", "SUN"}, From: "9:00", To: "16:00", Timezone: "Mars/Olympus_Mons"},
			{From: "25:00", To: "10:60"},
			{From: "09:00", To: "09:00"},
			{From: "22:00", To: "02:00", Timezone: "Local"},
			{To: "10:00"},
		},
		Freeze: []window.Freeze{
			holidays(t, "2027-01-04T00:00:00Z"),
			{From: at(t, "2026-12-20T00:00:00Z"), To: at(t, "2026-12-20T00:00:00Z")},
			{From: at(t, "2026-12-20T00:00:00Z"), To: at(t, "2026-12-19T00:00:00Z")},
			{To: at(t, "2026-12-19T00:00:00Z")},
		},
	}
	problems := invalid.Validate()
	var fields []string
	for _, p := range problems {
		fields = append(fields, p.Field)
		if p.Message == "" {
			t.Errorf("problem %s has no message", p.Field)
		}
	}
	want := []string{
		"allow[0].days[2]", "allow[0].from", "allow[0].timezone",
		"allow[1].from", "allow[1].to",
		"allow[2].to",
		"allow[3].timezone",
		"allow[4].from",
		"freeze[1].to", "freeze[2].to", "freeze[3].from",
	}
	if !slices.Equal(fields, want) {
		t.Errorf("Validate() fields =\n\t%q\nwant\n\t%q\nproblems: %v", fields, want, problems)
	}
	messages := map[string]string{}
	for _, p := range problems {
		messages[p.Field] += p.Message
	}
	for field, part := range map[string]string{
		"allow[0].days[2]":  `unknown day "funday"`,
		"allow[0].from":     `"9:00" is not a time of day`,
		"allow[0].timezone": `unknown time zone "Mars/Olympus_Mons"`,
		"allow[2].to":       "must differ from from",
		"freeze[2].to":      "2026-12-19T00:00:00Z must be after from (2026-12-20T00:00:00Z)",
		"freeze[3].from":    "is required",
	} {
		if !strings.Contains(messages[field], part) {
			t.Errorf("%s message = %q, want it to contain %q", field, messages[field], part)
		}
	}
}

// TestDecodeJSON checks the field names of the JSON form, which mirror the
// YAML form used in pipelines.
func TestDecodeJSON(t *testing.T) {
	const doc = `{
		"allow": [{"days": ["mon", "tue", "wed", "thu"], "from": "09:00", "to": "16:00", "timezone": "Europe/Berlin"}],
		"freeze": [{"from": "2026-12-20T00:00:00Z", "to": "2027-01-04T00:00:00Z", "reason": "holidays"}]
	}`
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	var got window.Spec
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := window.Spec{
		Allow:  []window.Allow{berlinWeekdays},
		Freeze: []window.Freeze{holidays(t, "2027-01-04T00:00:00Z")},
	}
	if !slices.EqualFunc(got.Allow, want.Allow, func(a, b window.Allow) bool {
		return slices.Equal(a.Days, b.Days) && a.From == b.From && a.To == b.To && a.Timezone == b.Timezone
	}) || !slices.EqualFunc(got.Freeze, want.Freeze, func(a, b window.Freeze) bool {
		return a.From.Equal(b.From) && a.To.Equal(b.To) && a.Reason == b.Reason
	}) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
	if problems := got.Validate(); problems != nil {
		t.Errorf("Validate() = %v", problems)
	}
}
