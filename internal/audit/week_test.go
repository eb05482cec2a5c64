package audit

import (
	"testing"
	"time"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s not available: %v", name, err)
	}
	return loc
}

func TestParseWeek(t *testing.T) {
	for _, tc := range []struct {
		in         string
		year, week int
	}{
		{"2026-W53", 2026, 53},
		{"2027-W01", 2027, 1},
		{"2026-W13", 2026, 13},
	} {
		t.Run("accepts "+tc.in, func(t *testing.T) {
			y, w, err := ParseWeek(tc.in)
			if err != nil || y != tc.year || w != tc.week {
				t.Fatalf("ParseWeek(%q) = %d, %d, %v", tc.in, y, w, err)
			}
			if got := FormatWeek(y, w); got != tc.in {
				t.Fatalf("FormatWeek = %s", got)
			}
		})
	}
	for _, in := range []string{"2027-W53", "2026-W54", "2026-W00", "2026W01", "2026-w01", "26-W01", "2026-W1",
		"abcd-W01", "0000-W01", "+026-W01", "2026-W+1", "2026-W01 ", "", "last"} {
		t.Run("refuses "+in, func(t *testing.T) {
			if y, w, err := ParseWeek(in); err == nil {
				t.Fatalf("ParseWeek(%q) = %d, %d, nil", in, y, w)
			}
		})
	}
}

func TestWeekBounds(t *testing.T) {
	for _, tc := range []struct {
		name       string
		zone       string
		year, week int
		from, to   string
		hours      float64
	}{
		{"2026-W53 in UTC holds 2027-01-01", "UTC", 2026, 53, "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z", 168},
		{"2027-W01 starts after 2026-W53", "UTC", 2027, 1, "2027-01-04T00:00:00Z", "2027-01-11T00:00:00Z", 168},
		{"2020-W01 starts in the previous calendar year", "UTC", 2020, 1, "2019-12-30T00:00:00Z", "2020-01-06T00:00:00Z", 168},
		{"Berlin 2026-W13 loses an hour to summer time", "Europe/Berlin", 2026, 13, "2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 167},
		{"New York 2026-W44 gains an hour back", "America/New_York", 2026, 44, "2026-10-26T00:00:00-04:00", "2026-11-02T00:00:00-05:00", 169},
		{"New York 2026-W45 is all standard time", "America/New_York", 2026, 45, "2026-11-02T00:00:00-05:00", "2026-11-09T00:00:00-05:00", 168},
		{"a Monday midnight in a DST gap starts at the end of the gap", "Asia/Tehran", 2021, 12, "2021-03-22T01:00:00+04:30", "2021-03-29T00:00:00+04:30", 167},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc := mustZone(t, tc.zone)
			from, to := WeekBounds(tc.year, tc.week, loc)
			if got := from.Format(time.RFC3339); got != tc.from {
				t.Errorf("from = %s, want %s", got, tc.from)
			}
			if got := to.Format(time.RFC3339); got != tc.to {
				t.Errorf("to = %s, want %s", got, tc.to)
			}
			if h := to.Sub(from).Hours(); h != tc.hours {
				t.Errorf("week is %vh long, want %vh", h, tc.hours)
			}
		})
	}
	t.Run("2027-01-01 is in 2026-W53", func(t *testing.T) {
		from, to := WeekBounds(2026, 53, time.UTC)
		d := time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)
		if d.Before(from) || !d.Before(to) {
			t.Fatalf("2027-01-01 not in [%s, %s)", from, to)
		}
	})
	t.Run("nil location means UTC", func(t *testing.T) {
		from, _ := WeekBounds(2026, 1, nil)
		if from.Location() != time.UTC {
			t.Fatalf("location %v", from.Location())
		}
	})
}

func TestLastCompleteWeek(t *testing.T) {
	for _, tc := range []struct {
		name       string
		zone       string
		now        string
		year, week int
	}{
		{"New York just before Monday 00:00 local", "America/New_York", "2026-11-01T23:59:59.999999999-05:00", 2026, 43},
		{"New York at Monday 00:00 local", "America/New_York", "2026-11-02T00:00:00-05:00", 2026, 44},
		{"New York Monday 04:59 UTC is still Sunday local", "America/New_York", "2026-11-02T04:59:59Z", 2026, 43},
		{"Berlin just before Monday 00:00 local", "Europe/Berlin", "2026-03-29T23:59:59+02:00", 2026, 12},
		{"Berlin at Monday 00:00 local (Sunday 22:00 UTC)", "Europe/Berlin", "2026-03-29T22:00:00Z", 2026, 13},
		{"UTC across the ISO year", "UTC", "2027-01-04T00:00:00Z", 2026, 53},
		{"UTC the Sunday before", "UTC", "2027-01-03T23:59:59Z", 2026, 52},
		{"UTC in week 1 of 2026", "UTC", "2026-01-01T12:00:00Z", 2025, 52},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc := mustZone(t, tc.zone)
			now, err := time.Parse(time.RFC3339Nano, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			y, w := LastCompleteWeek(now, loc)
			if y != tc.year || w != tc.week {
				t.Fatalf("LastCompleteWeek(%s) = %s, want %s", tc.now, FormatWeek(y, w), FormatWeek(tc.year, tc.week))
			}
		})
	}
}
