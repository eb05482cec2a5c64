package calendar

import (
	"reflect"
	"testing"
	"time"
)

func mustLoad(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestLocalTime(t *testing.T) {
	tests := []struct {
		name            string
		zone            string
		y               int
		m               time.Month
		d, hour, minute int
		want            string
	}{
		{"new york winter", "America/New_York", 2026, time.January, 15, 9, 0, "2026-01-15T14:00:00Z"},
		{"new york summer", "America/New_York", 2026, time.July, 15, 9, 0, "2026-07-15T13:00:00Z"},
		{"new york just before the gap", "America/New_York", 2026, time.March, 8, 1, 59, "2026-03-08T06:59:00Z"},
		{"new york gap start is the end of the gap", "America/New_York", 2026, time.March, 8, 2, 0, "2026-03-08T07:00:00Z"},
		{"new york inside the gap is the end of the gap", "America/New_York", 2026, time.March, 8, 2, 30, "2026-03-08T07:00:00Z"},
		{"new york end of the gap", "America/New_York", 2026, time.March, 8, 3, 0, "2026-03-08T07:00:00Z"},
		{"new york repeated hour is the first occurrence", "America/New_York", 2026, time.November, 1, 1, 30, "2026-11-01T05:30:00Z"},
		{"new york after the repeated hour", "America/New_York", 2026, time.November, 1, 2, 0, "2026-11-01T07:00:00Z"},
		{"new york gap far in the future (zone rule)", "America/New_York", 2040, time.March, 11, 2, 30, "2040-03-11T07:00:00Z"},
		{"berlin gap", "Europe/Berlin", 2026, time.March, 29, 2, 30, "2026-03-29T01:00:00Z"},
		{"berlin repeated hour", "Europe/Berlin", 2026, time.October, 25, 2, 30, "2026-10-25T00:30:00Z"},
		{"berlin after the repeated hour", "Europe/Berlin", 2026, time.October, 25, 3, 0, "2026-10-25T02:00:00Z"},
		{"auckland gap", "Pacific/Auckland", 2026, time.September, 27, 2, 30, "2026-09-26T14:00:00Z"},
		{"auckland repeated hour", "Pacific/Auckland", 2026, time.April, 5, 2, 30, "2026-04-04T13:30:00Z"},
		{"kolkata half-hour offset", "Asia/Kolkata", 2026, time.June, 1, 9, 0, "2026-06-01T03:30:00Z"},
		{"hour 24 is next midnight", "Europe/Berlin", 2026, time.December, 31, 24, 0, "2026-12-31T23:00:00Z"},
		{"utc", "UTC", 2026, time.March, 8, 2, 30, "2026-03-08T02:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustLoad(t, tt.zone)
			got := LocalTime(loc, tt.y, tt.m, tt.d, tt.hour, tt.minute)
			if !got.Equal(utc(tt.want)) {
				t.Errorf("LocalTime = %s (%s), want %s", got.UTC().Format(time.RFC3339), got, tt.want)
			}
			if got.Location() != loc {
				t.Errorf("location = %v, want %v", got.Location(), loc)
			}
		})
	}
	t.Run("nil location is UTC", func(t *testing.T) {
		if got := LocalTime(nil, 2026, 1, 2, 3, 4); !got.Equal(utc("2026-01-02T03:04:00Z")) {
			t.Errorf("got %s", got)
		}
	})
}

// newYork is the SPEC §3 example calendar.
func newYork(tb testing.TB) *Calendar {
	return &Calendar{
		Loc: mustLoad(tb, "America/New_York"),
		Hours: Hours{
			Days:     [7]bool{time.Monday: true, time.Tuesday: true, time.Wednesday: true, time.Thursday: true, time.Friday: true},
			StartMin: 9 * 60,
			EndMin:   18 * 60,
			Holidays: []string{"2026-12-25"},
		},
		Windows: []Window{
			{Name: "friday-deploys", Weekly: &Weekly{FromDay: time.Friday, FromMin: 16 * 60, ToDay: time.Monday, ToMin: 8 * 60}, Branches: []string{"main", "release/*"}, AppliesTo: AppliesToAgents},
			{Name: "year-end", From: utc("2026-12-20T05:00:00Z"), To: utc("2027-01-04T14:00:00Z"), AppliesTo: AppliesToEveryone},
		},
	}
}

func weekdays() [7]bool {
	return [7]bool{time.Monday: true, time.Tuesday: true, time.Wednesday: true, time.Thursday: true, time.Friday: true}
}

func TestBusinessHours(t *testing.T) {
	ny := newYork(t)
	kolkata := &Calendar{Loc: mustLoad(t, "Asia/Kolkata"), Hours: Hours{Days: weekdays(), StartMin: 9 * 60, EndMin: 18 * 60}}
	auckland := &Calendar{Loc: mustLoad(t, "Pacific/Auckland"), Hours: Hours{Days: weekdays(), StartMin: 9 * 60, EndMin: 18 * 60}}
	allDay := &Calendar{Hours: Hours{Days: weekdays(), StartMin: 0, EndMin: 24 * 60}}
	tests := []struct {
		name        string
		cal         *Calendar
		at          string
		wantHours   bool
		wantHoliday bool
	}{
		{"start is inclusive", ny, "2026-01-05T14:00:00Z", true, false},
		{"a second before start", ny, "2026-01-05T13:59:59Z", false, false},
		{"a minute before end", ny, "2026-01-05T22:59:00Z", true, false},
		{"end is exclusive", ny, "2026-01-05T23:00:00Z", false, false},
		{"saturday", ny, "2026-01-10T16:00:00Z", false, false},
		{"sunday", ny, "2026-01-11T16:00:00Z", false, false},
		{"monday after spring forward uses EDT", ny, "2026-03-09T13:00:00Z", true, false},
		{"friday before spring forward uses EST", ny, "2026-03-06T13:00:00Z", false, false},
		{"holiday has no business hours", ny, "2026-12-25T17:00:00Z", false, true},
		{"holiday is a local date: evening before in UTC terms", ny, "2026-12-25T02:00:00Z", false, false},
		{"holiday is a local date: late evening local", ny, "2026-12-26T03:00:00Z", false, true},
		{"day after holiday", ny, "2026-12-28T15:00:00Z", true, false},
		{"kolkata start", kolkata, "2026-06-01T03:30:00Z", true, false},
		{"kolkata before start", kolkata, "2026-06-01T03:29:00Z", false, false},
		{"kolkata sunday evening utc is monday night local", kolkata, "2026-05-31T20:00:00Z", false, false},
		{"kolkata last minute", kolkata, "2026-06-05T12:29:00Z", true, false},
		{"kolkata end", kolkata, "2026-06-05T12:30:00Z", false, false},
		{"auckland monday morning is sunday in utc", auckland, "2026-06-07T21:00:00Z", true, false},
		{"auckland after dst start", auckland, "2026-09-27T20:00:00Z", true, false},
		{"auckland before start after dst start", auckland, "2026-09-27T19:59:00Z", false, false},
		{"all day until 24:00 includes 23:59", allDay, "2026-01-05T23:59:59Z", true, false},
		{"all day starts at midnight", allDay, "2026-01-05T00:00:00Z", true, false},
		{"empty calendar has no business hours", &Calendar{}, "2026-01-05T12:00:00Z", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := utc(tt.at)
			if got := tt.cal.BusinessHours(at); got != tt.wantHours {
				t.Errorf("BusinessHours(%s) = %v, want %v", at.In(tt.cal.loc()), got, tt.wantHours)
			}
			if got := tt.cal.Holiday(at); got != tt.wantHoliday {
				t.Errorf("Holiday(%s) = %v, want %v", at.In(tt.cal.loc()), got, tt.wantHoliday)
			}
		})
	}
}

type span struct{ name, start, end string }

func spans(as []Active) []span {
	var out []span
	for _, a := range as {
		out = append(out, span{a.Window.Name, a.Start.UTC().Format(time.RFC3339), a.End.UTC().Format(time.RFC3339)})
	}
	return out
}

func TestFrozen(t *testing.T) {
	ny := newYork(t)
	berlin := &Calendar{Loc: mustLoad(t, "Europe/Berlin"), Windows: []Window{
		{Name: "ends-in-gap", Weekly: &Weekly{FromDay: time.Saturday, FromMin: 22 * 60, ToDay: time.Sunday, ToMin: 2*60 + 30}},
		{Name: "starts-in-gap", Weekly: &Weekly{FromDay: time.Sunday, FromMin: 2*60 + 30, ToDay: time.Sunday, ToMin: 4 * 60}},
	}}
	wrap := &Calendar{Loc: mustLoad(t, "Asia/Kolkata"), Windows: []Window{
		{Name: "all-but-sunday", Weekly: &Weekly{FromDay: time.Sunday, FromMin: 20 * 60, ToDay: time.Sunday, ToMin: 8 * 60}},
	}}
	auckland := &Calendar{Loc: mustLoad(t, "Pacific/Auckland"), Windows: []Window{
		{Name: "weekend", Weekly: &Weekly{FromDay: time.Friday, FromMin: 16 * 60, ToDay: time.Monday, ToMin: 8 * 60}},
	}}
	weekend := span{"friday-deploys", "2026-01-09T21:00:00Z", "2026-01-12T13:00:00Z"}
	dst := span{"friday-deploys", "2026-10-30T20:00:00Z", "2026-11-02T13:00:00Z"}
	yearEnd := span{"year-end", "2026-12-20T05:00:00Z", "2027-01-04T14:00:00Z"}
	tests := []struct {
		name   string
		cal    *Calendar
		at     string
		branch string
		want   []span
	}{
		{"weekly start is inclusive", ny, "2026-01-09T21:00:00Z", "main", []span{weekend}},
		{"a minute before the weekly start", ny, "2026-01-09T20:59:00Z", "main", nil},
		{"over the weekend", ny, "2026-01-11T03:00:00Z", "main", []span{weekend}},
		{"a second before the weekly end", ny, "2026-01-12T12:59:59Z", "main", []span{weekend}},
		{"weekly end is exclusive", ny, "2026-01-12T13:00:00Z", "main", nil},
		{"midweek", ny, "2026-01-07T15:00:00Z", "main", nil},
		{"branch glob matches", ny, "2026-01-10T15:00:00Z", "release/1.2", []span{weekend}},
		{"branch glob does not cross slashes", ny, "2026-01-10T15:00:00Z", "release/1.2/hotfix", nil},
		{"other branch", ny, "2026-01-10T15:00:00Z", "feature/x", nil},
		{"freeze spanning fall back: first 01:30", ny, "2026-11-01T05:30:00Z", "main", []span{dst}},
		{"freeze spanning fall back: second 01:30", ny, "2026-11-01T06:30:00Z", "main", []span{dst}},
		{"freeze spanning fall back ends at 08:00 EST", ny, "2026-11-02T12:30:00Z", "main", []span{dst}},
		{"absolute window start is inclusive, any branch", ny, "2026-12-20T05:00:00Z", "feature/x", []span{yearEnd}},
		{"a second before absolute window", ny, "2026-12-20T04:59:59Z", "feature/x", nil},
		{"absolute window end is exclusive", ny, "2027-01-04T14:00:00Z", "main", nil},
		{"two freezes at once, in config order", ny, "2026-12-26T15:00:00Z", "main", []span{
			{"friday-deploys", "2026-12-25T21:00:00Z", "2026-12-28T13:00:00Z"}, yearEnd}},
		{"weekly end in the spring gap is the end of the gap", berlin, "2026-03-29T00:59:00Z", "main", []span{
			{"ends-in-gap", "2026-03-28T21:00:00Z", "2026-03-29T01:00:00Z"}}},
		{"weekly start in the spring gap is the end of the gap", berlin, "2026-03-29T01:00:00Z", "main", []span{
			{"starts-in-gap", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}}},
		{"week wrap: midweek is frozen", wrap, "2026-06-03T06:30:00Z", "main", []span{
			{"all-but-sunday", "2026-05-31T14:30:00Z", "2026-06-07T02:30:00Z"}}},
		{"week wrap: sunday day is open", wrap, "2026-06-07T06:30:00Z", "main", nil},
		{"week wrap: sunday evening starts the next", wrap, "2026-06-07T14:30:00Z", "main", []span{
			{"all-but-sunday", "2026-06-07T14:30:00Z", "2026-06-14T02:30:00Z"}}},
		{"auckland freeze across dst end", auckland, "2026-04-05T12:00:00Z", "main", []span{
			{"weekend", "2026-04-03T03:00:00Z", "2026-04-05T20:00:00Z"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := spans(tt.cal.Frozen(utc(tt.at), tt.branch))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Frozen(%s, %q) = %v, want %v", tt.at, tt.branch, got, tt.want)
			}
		})
	}
}

func TestNextBoundary(t *testing.T) {
	ny := newYork(t)
	kolkata := &Calendar{Loc: mustLoad(t, "Asia/Kolkata"), Hours: Hours{Days: weekdays(), StartMin: 9 * 60, EndMin: 18 * 60}}
	berlin := &Calendar{Loc: mustLoad(t, "Europe/Berlin"), Windows: []Window{
		{Name: "starts-in-gap", Weekly: &Weekly{FromDay: time.Sunday, FromMin: 2*60 + 30, ToDay: time.Sunday, ToMin: 4 * 60}},
	}}
	absolute := &Calendar{Windows: []Window{{Name: "w", From: utc("2030-01-01T00:00:00Z"), To: utc("2030-01-02T00:00:00Z")}}}
	tests := []struct {
		name string
		cal  *Calendar
		at   string
		want string // "" means the zero time
	}{
		{"monday before the freeze ends", ny, "2026-01-05T12:00:00Z", "2026-01-05T13:00:00Z"},
		{"exactly at the freeze end: next is business start", ny, "2026-01-05T13:00:00Z", "2026-01-05T14:00:00Z"},
		{"exactly at business start: next is its end", ny, "2026-01-05T14:00:00Z", "2026-01-05T23:00:00Z"},
		{"friday noon: freeze starts at 16:00", ny, "2026-01-09T17:00:00Z", "2026-01-09T21:00:00Z"},
		{"friday 16:00: business hours end at 18:00", ny, "2026-01-09T21:00:00Z", "2026-01-09T23:00:00Z"},
		{"friday evening: freeze ends monday", ny, "2026-01-09T23:00:00Z", "2026-01-12T13:00:00Z"},
		{"weekend across spring forward", ny, "2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z"},
		{"weekend across fall back", ny, "2026-10-31T12:00:00Z", "2026-11-02T13:00:00Z"},
		{"holiday skips business hours, not the freeze", ny, "2026-12-24T23:00:00Z", "2026-12-25T21:00:00Z"},
		{"absolute window end", ny, "2027-01-02T12:00:00Z", "2027-01-04T13:00:00Z"},
		{"kolkata friday close to monday open", kolkata, "2026-06-05T12:30:00Z", "2026-06-08T03:30:00Z"},
		{"berlin boundary in the gap", berlin, "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"},
		{"absolute only: before", absolute, "2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z"},
		{"absolute only: inside", absolute, "2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z"},
		{"absolute only: after", absolute, "2030-01-02T00:00:00Z", ""},
		{"empty calendar", &Calendar{}, "2026-01-01T00:00:00Z", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cal.NextBoundary(utc(tt.at))
			var want time.Time
			if tt.want != "" {
				want = utc(tt.want)
			}
			if !got.Equal(want) {
				t.Errorf("NextBoundary(%s) = %s, want %s", tt.at, got.UTC().Format(time.RFC3339), tt.want)
			}
		})
	}
}

// TestNextBoundaryIsComplete walks a year in 20-minute steps and checks that
// whenever business hours or the active freezes change within a step,
// NextBoundary reported a boundary within it, and never one where nothing
// could have changed before it.
func TestNextBoundaryIsComplete(t *testing.T) {
	for _, zone := range []string{"America/New_York", "Europe/Berlin", "Pacific/Auckland"} {
		t.Run(zone, func(t *testing.T) {
			cal := newYork(t)
			cal.Loc = mustLoad(t, zone)
			cal.Windows = append(cal.Windows, Window{Name: "night", Weekly: &Weekly{FromDay: time.Sunday, FromMin: 2*60 + 30, ToDay: time.Sunday, ToMin: 3 * 60}})
			state := func(at time.Time) string {
				s := "closed"
				if cal.BusinessHours(at) {
					s = "open"
				}
				for _, a := range cal.Frozen(at, "main") {
					s += " " + a.Window.Name
				}
				return s
			}
			step := 20 * time.Minute
			start := utc("2026-01-01T00:00:00Z")
			for at := start; at.Before(start.AddDate(1, 0, 0)); at = at.Add(step) {
				nb := cal.NextBoundary(at)
				if nb.IsZero() || !nb.After(at) {
					t.Fatalf("NextBoundary(%s) = %s", at, nb)
				}
				if before := nb.Add(-time.Second); before.After(at) && state(before) != state(at) {
					t.Fatalf("state changed before the boundary: %s %q, %s %q (boundary %s)", at, state(at), before, state(before), nb)
				}
				if next := at.Add(step); state(next) != state(at) && nb.After(next) {
					t.Fatalf("missed a boundary between %s (%s) and %s (%s): got %s", at, state(at), next, state(next), nb)
				}
			}
		})
	}
}

func TestClockAndFreeze(t *testing.T) {
	ny := newYork(t)
	got := ny.Clock(utc("2026-12-26T15:00:00Z"), "main")
	if got.Now != "2026-12-26T15:00:00Z" || got.Local != "2026-12-26T10:00:00-05:00" || got.Timezone != "America/New_York" || got.Weekday != "sat" {
		t.Errorf("clock time fields = %+v", got)
	}
	if got.BusinessHours || got.Holiday {
		t.Errorf("business hours %v holiday %v, want false false", got.BusinessHours, got.Holiday)
	}
	if got.NextBoundary != "2026-12-28T13:00:00Z" {
		t.Errorf("next boundary = %q", got.NextBoundary)
	}
	if len(got.Freezes) != 2 {
		t.Fatalf("freezes = %+v, want 2", got.Freezes)
	}
	if f := got.Freezes[0]; f.Name != "friday-deploys" || f.Kind != "weekly" || f.AppliesTo != "agents" || f.From != "2026-12-25T21:00:00Z" || f.Until != "2026-12-28T13:00:00Z" {
		t.Errorf("weekly freeze = %+v", f)
	}
	if f := got.Freezes[1]; f.Name != "year-end" || f.Kind != "window" || f.AppliesTo != "everyone" {
		t.Errorf("window freeze = %+v", f)
	}
	empty := (&Calendar{}).Clock(utc("2026-01-01T00:00:00Z"), "main")
	if empty.Freezes == nil || len(empty.Freezes) != 0 || empty.NextBoundary != "" || empty.Timezone != "UTC" {
		t.Errorf("empty calendar clock = %+v, want no freezes (non-nil) and no boundary", empty)
	}
}

func TestMatchBranch(t *testing.T) {
	tests := []struct {
		name   string
		globs  []string
		branch string
		want   bool
	}{
		{"no globs match every branch", nil, "anything", true},
		{"exact", []string{"main"}, "main", true},
		{"exact mismatch", []string{"main"}, "maint", false},
		{"star within a segment", []string{"release/*"}, "release/2.0", true},
		{"star does not cross slash", []string{"release/*"}, "release/2.0/rc", false},
		{"second glob", []string{"main", "hotfix-*"}, "hotfix-1", true},
		{"case sensitive", []string{"main"}, "Main", false},
		{"malformed glob matches nothing", []string{"release/["}, "release/[", false},
		{"double star crosses slashes", []string{"release/**"}, "release/1.2/hotfix", true},
		{"double star one level", []string{"release/**"}, "release/1.2", true},
		{"double star not the prefix itself", []string{"release/**"}, "releases/1", false},
		{"alternatives", []string{"{main,develop}"}, "develop", true},
		{"a ref never matches (refused by config)", []string{"refs/heads/main"}, "main", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchBranch(tt.globs, tt.branch); got != tt.want {
				t.Errorf("MatchBranch(%q, %q) = %v, want %v", tt.globs, tt.branch, got, tt.want)
			}
		})
	}
}

func TestParseClock(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"09:00", 540, false},
		{"9:00", 540, false},
		{"00:00", 0, false},
		{"23:59", 1439, false},
		{"24:00", 1440, false},
		{"24:01", 0, true},
		{"25:00", 0, true},
		{"09:60", 0, true},
		{"09:0", 0, true},
		{"9", 0, true},
		{"", 0, true},
		{"ab:cd", 0, true},
		{"-1:00", 0, true},
		{" 09:00", 0, true},
		{"009:00", 0, true},
	}
	for _, tt := range tests {
		t.Run("clock "+tt.in, func(t *testing.T) {
			got, err := ParseClock(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseClock(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseWeekly(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		want     Weekly
		wantErr  string
	}{
		{"spec example", "fri 16:00", "mon 08:00", Weekly{time.Friday, 960, time.Monday, 480}, ""},
		{"long names any case", "Friday 16:00", "MONDAY 8:00", Weekly{time.Friday, 960, time.Monday, 480}, ""},
		{"same day", "sat 10:00", "sat 12:00", Weekly{time.Saturday, 600, time.Saturday, 720}, ""},
		{"missing time", "fri", "mon 08:00", Weekly{}, `from: "fri" must be a day and a time like "fri 16:00"`},
		{"bad day", "fry 16:00", "mon 08:00", Weekly{}, `from: unknown day "fry": use one of mon, tue, wed, thu, fri, sat, sun`},
		{"bad time", "fri 16:00", "mon 25:00", Weekly{}, `to: bad time "25:00": use HH:MM from 00:00 to 24:00`},
		{"equal", "fri 16:00", "fri 16:00", Weekly{}, `to "fri 16:00" is the same time of the week as from "fri 16:00"`},
		{"equal after normalising 24:00", "fri 24:00", "sat 00:00", Weekly{}, `to "sat 00:00" is the same time of the week as from "fri 24:00"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWeekly(tt.from, tt.to)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseWeekly = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func BenchmarkNextBoundary(b *testing.B) {
	cal := newYork(b)
	cal.Hours.Holidays = []string{"2026-01-01", "2026-05-25", "2026-07-03", "2026-09-07", "2026-11-26", "2026-12-25"}
	start := utc("2026-01-05T00:00:00Z")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Walk a week in 7-minute steps so every kind of boundary is hit.
		cal.NextBoundary(start.Add(time.Duration(i%1440) * 7 * time.Minute))
		i++
	}
}

func BenchmarkFrozen(b *testing.B) {
	cal := newYork(b)
	at := utc("2026-01-10T15:00:00Z")
	b.ReportAllocs()
	for b.Loop() {
		cal.Frozen(at, "main")
	}
}
