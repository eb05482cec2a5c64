package audit

import (
	"fmt"
	"strconv"
	"time"

	"github.com/mergeguard/guard/internal/calendar"
)

// ParseWeek parses an ISO 8601 week "YYYY-Www" (e.g. "2026-W53"). The week
// must exist in that ISO week-year (W53 only in long years).
func ParseWeek(s string) (year, week int, err error) {
	if len(s) != 8 || s[4] != '-' || s[5] != 'W' {
		return 0, 0, fmt.Errorf("week %q: want YYYY-Www, like 2026-W07", s)
	}
	year, err1 := strconv.Atoi(s[:4])
	week, err2 := strconv.Atoi(s[6:])
	if err1 != nil || err2 != nil || s[0] == '+' || s[0] == '-' || s[6] == '+' || s[6] == '-' {
		return 0, 0, fmt.Errorf("week %q: want YYYY-Www, like 2026-W07", s)
	}
	if year < 1 {
		return 0, 0, fmt.Errorf("week %q: year must be 0001 to 9999", s)
	}
	if n := weeksIn(year); week < 1 || week > n {
		return 0, 0, fmt.Errorf("week %q: ISO year %d has weeks 1 to %d", s, year, n)
	}
	return year, week, nil
}

// FormatWeek formats an ISO week as "YYYY-Www".
func FormatWeek(year, week int) string { return fmt.Sprintf("%04d-W%02d", year, week) }

// weeksIn is the number of ISO weeks of an ISO week-year (52 or 53): the
// week of December 28 is always the last one.
func weeksIn(year int) int {
	_, w := time.Date(year, 12, 28, 12, 0, 0, 0, time.UTC).ISOWeek()
	return w
}

// WeekBounds returns the ISO week as the instants [from, to): Monday 00:00
// local to the next Monday 00:00 local in loc (nil: UTC). A week is 167 or
// 169 hours long when a DST change falls inside it; a midnight in a DST gap
// means the end of the gap (SPEC §3, calendar.LocalTime).
func WeekBounds(year, week int, loc *time.Location) (from, to time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	// January 4 is always in week 1; its Monday starts week 1.
	jan4 := time.Date(year, 1, 4, 12, 0, 0, 0, time.UTC)
	back := (int(jan4.Weekday()) + 6) % 7 // days since Monday
	mon := jan4.AddDate(0, 0, 7*(week-1)-back)
	from = calendar.LocalTime(loc, mon.Year(), mon.Month(), mon.Day(), 0, 0)
	next := mon.AddDate(0, 0, 7)
	to = calendar.LocalTime(loc, next.Year(), next.Month(), next.Day(), 0, 0)
	return from, to
}

// LastCompleteWeek returns the ISO week before the one that contains now in
// loc (nil: UTC): at Monday 00:00 local the week that just ended is the last
// complete one.
func LastCompleteWeek(now time.Time, loc *time.Location) (year, week int) {
	if loc == nil {
		loc = time.UTC
	}
	l := now.In(loc)
	y, w := l.ISOWeek()
	if from, _ := WeekBounds(y, w, loc); now.Before(from) {
		// now is in the DST gap of a Monday midnight: the week has not
		// begun yet (cannot happen with the gap rule, kept for safety).
		y, w = prevWeek(y, w)
	}
	return prevWeek(y, w)
}

// nextWeek and prevWeek step ISO weeks across week-years.
func nextWeek(year, week int) (int, int) {
	if week >= weeksIn(year) {
		return year + 1, 1
	}
	return year, week + 1
}

func prevWeek(year, week int) (int, int) {
	if week <= 1 {
		return year - 1, weeksIn(year - 1)
	}
	return year, week - 1
}

// weekBefore reports whether ISO week (y1, w1) is before (y2, w2).
func weekBefore(y1, w1, y2, w2 int) bool { return y1 < y2 || (y1 == y2 && w1 < w2) }
