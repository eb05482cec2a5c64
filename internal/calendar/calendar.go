// Package calendar answers the time questions of Merge Guard in one IANA
// zone: is an instant within business hours, is it a holiday, which freezes
// are active for a branch, and when does the next of these change.
//
// Contract:
//   - Business hours are [start, end) on the configured weekdays, evaluated
//     on the local date of the instant; holidays (local dates "YYYY-MM-DD")
//     remove business hours for that date and affect nothing else.
//   - A freeze is either weekly (a local weekday and time to a later local
//     weekday and time, wrapping the week, e.g. "fri 16:00" to "mon 08:00")
//     or an absolute window of two instants. Every occurrence is [start, end):
//     start inclusive, end exclusive.
//   - Local times are turned into instants by LocalTime, and only by it: a
//     local time in a DST gap means the end of the gap, a repeated local time
//     means its first occurrence (SPEC §3).
//   - Branch globs read as GitHub's branch rules do: "release/*" matches
//     "release/1.2", not "release/1.2/hotfix"; "release/**" matches both;
//     no globs means every branch (see CheckBranchGlob).
//
// A Calendar is a plain value; its methods do not modify it and are safe for
// concurrent use as long as nobody mutates it.
package calendar

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/glob"

	"github.com/mergeguard/guard/internal/pr"
)

// Weekly is a freeze that recurs every week, from a local weekday and time
// (minutes after midnight) to the next following local weekday and time. When
// To is not after From within the same week it wraps into the next week;
// To equal to From means the whole week.
type Weekly struct {
	FromDay time.Weekday
	FromMin int
	ToDay   time.Weekday
	ToMin   int
}

// The values of Window.AppliesTo.
const (
	AppliesToAgents   = "agents"
	AppliesToEveryone = "everyone"
)

// Window is a configured freeze: Weekly when set, otherwise the absolute
// window [From, To).
type Window struct {
	Name   string
	Weekly *Weekly
	From   time.Time
	To     time.Time
	// Branches are path.Match globs of base branches; empty: every branch.
	Branches []string
	// AppliesTo is AppliesToAgents or AppliesToEveryone; the calendar
	// reports active windows regardless, the policy decides.
	AppliesTo string
}

// Kind is "weekly" for a weekly freeze and "window" for an absolute one, as in
// pr.Freeze.Kind.
func (w Window) Kind() string {
	if w.Weekly != nil {
		return "weekly"
	}
	return "window"
}

// Hours are the business hours: on Days (indexed by time.Weekday), from
// StartMin to EndMin minutes after local midnight (EndMin may be 1440), except
// on Holidays (local dates "YYYY-MM-DD").
type Hours struct {
	Days     [7]bool
	StartMin int
	EndMin   int
	Holidays []string
}

// Calendar is business hours and freezes in a zone. A nil Loc means UTC.
type Calendar struct {
	Loc     *time.Location
	Hours   Hours
	Windows []Window
}

// Active is one occurrence of a freeze window: [Start, End).
type Active struct {
	Window Window
	Start  time.Time
	End    time.Time
}

// Freeze returns the occurrence as the policy input sees it (times RFC 3339
// UTC).
func (a Active) Freeze() pr.Freeze {
	applies := a.Window.AppliesTo
	if applies == "" {
		applies = AppliesToAgents
	}
	return pr.Freeze{
		Name:      a.Window.Name,
		Kind:      a.Window.Kind(),
		AppliesTo: applies,
		From:      a.Start.UTC().Format(time.RFC3339),
		Until:     a.End.UTC().Format(time.RFC3339),
	}
}

// horizonDays bounds NextBoundary's search for recurring boundaries: a
// little over a year, so that every weekly freeze is always found.
const horizonDays = 371

func (c *Calendar) loc() *time.Location {
	if c.Loc == nil {
		return time.UTC
	}
	return c.Loc
}

// LocalTime returns the instant of the local wall time y-m-d hour:minute in
// loc (nil: UTC). Out-of-range values are normalised like time.Date (hour 24
// is midnight of the next day). A wall time in a DST gap yields the end of
// the gap (the first instant after it); a wall time that occurs twice yields
// its first occurrence.
func LocalTime(loc *time.Location, y int, m time.Month, d, hour, minute int) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	naive := time.Date(y, m, d, hour, minute, 0, 0, time.UTC).Unix()
	// The offsets in effect around the wall time: the instant lies within
	// ±14h of naive, so a day either side covers every candidate.
	offsets := [3]int{
		offsetAt(loc, naive-86400),
		offsetAt(loc, naive),
		offsetAt(loc, naive+86400),
	}
	var best int64
	found := false
	lo := offsets[0]
	for _, o := range offsets {
		lo = min(lo, o)
		u := naive - int64(o)
		if offsetAt(loc, u) == o && (!found || u < best) {
			best, found = u, true
		}
	}
	if found {
		return time.Unix(best, 0).In(loc)
	}
	// In a gap the clock jumped forward from the smaller offset to the
	// larger: read with the smaller offset the wall time lands after the
	// jump, in the zone period that starts at the end of the gap.
	t := time.Unix(naive-int64(lo), 0).In(loc)
	if start, _ := t.ZoneBounds(); !start.IsZero() && !start.After(t) {
		return start
	}
	return t
}

func offsetAt(loc *time.Location, unix int64) int {
	_, o := time.Unix(unix, 0).In(loc).Zone()
	return o
}

// date is a civil (local) date; arithmetic is done in UTC where every day
// has 24 hours.
type date struct {
	y int
	m time.Month
	d int
}

func dateOf(t time.Time) date {
	y, m, d := t.Date()
	return date{y, m, d}
}

func (d date) add(days int) date {
	return dateOf(time.Date(d.y, d.m, d.d+days, 0, 0, 0, 0, time.UTC))
}

func (d date) weekday() time.Weekday {
	return time.Date(d.y, d.m, d.d, 0, 0, 0, 0, time.UTC).Weekday()
}

func (d date) before(e date) bool {
	if d.y != e.y {
		return d.y < e.y
	}
	if d.m != e.m {
		return d.m < e.m
	}
	return d.d < e.d
}

func (d date) at(loc *time.Location, minutes int) time.Time {
	return LocalTime(loc, d.y, d.m, d.d, minutes/60, minutes%60)
}

func (c *Calendar) isHoliday(d date) bool {
	if len(c.Hours.Holidays) == 0 {
		return false
	}
	var b [10]byte
	s := time.Date(d.y, d.m, d.d, 0, 0, 0, 0, time.UTC).AppendFormat(b[:0], time.DateOnly)
	for _, h := range c.Hours.Holidays {
		if h == string(s) {
			return true
		}
	}
	return false
}

// Holiday reports whether t's local date is one of the holidays.
func (c *Calendar) Holiday(t time.Time) bool {
	return c.isHoliday(dateOf(t.In(c.loc())))
}

// BusinessHours reports whether t is within business hours: its local date
// is a business day and not a holiday, and start <= t < end on that date.
func (c *Calendar) BusinessHours(t time.Time) bool {
	loc := c.loc()
	lt := t.In(loc)
	d := dateOf(lt)
	if !c.Hours.Days[lt.Weekday()] || c.Hours.StartMin >= c.Hours.EndMin || c.isHoliday(d) {
		return false
	}
	return !t.Before(d.at(loc, c.Hours.StartMin)) && t.Before(d.at(loc, c.Hours.EndMin))
}

// Frozen returns the freeze occurrences active at t (start <= t < end) whose
// branch globs match branch, in configuration order. It reports windows for
// agents and for everyone alike.
func (c *Calendar) Frozen(t time.Time, branch string) []Active {
	return c.active(t, func(w Window) bool { return MatchBranch(w.Branches, branch) })
}

// Active returns the freeze occurrences active at t on any branch, in
// configuration order.
func (c *Calendar) Active(t time.Time) []Active {
	return c.active(t, func(Window) bool { return true })
}

func (c *Calendar) active(t time.Time, keep func(Window) bool) []Active {
	var out []Active
	for _, w := range c.Windows {
		if !keep(w) {
			continue
		}
		if w.Weekly == nil {
			if !t.Before(w.From) && t.Before(w.To) {
				out = append(out, Active{Window: w, Start: w.From, End: w.To})
			}
			continue
		}
		if start, end := c.weeklyOccurrence(*w.Weekly, t); !t.Before(start) && t.Before(end) {
			out = append(out, Active{Window: w, Start: start, End: end})
		}
	}
	return out
}

// weeklyOccurrence returns the occurrence of w that started last at or
// before t; t is within it when t < end.
func (c *Calendar) weeklyOccurrence(w Weekly, t time.Time) (start, end time.Time) {
	loc := c.loc()
	lt := t.In(loc)
	sd := dateOf(lt).add(-((int(lt.Weekday()) - int(w.FromDay) + 7) % 7))
	start = sd.at(loc, w.FromMin)
	if start.After(t) {
		sd = sd.add(-7)
		start = sd.at(loc, w.FromMin)
	}
	span := (int(w.ToDay) - int(w.FromDay) + 7) % 7
	if span == 0 && w.ToMin <= w.FromMin {
		span = 7
	}
	return start, sd.add(span).at(loc, w.ToMin)
}

// NextBoundary returns the earliest instant after t at which business hours
// start or end or any freeze (of any branch) starts or ends, so that a
// scheduler can re-evaluate then. Recurring boundaries are searched about a
// year ahead; it returns the zero time when there is none. A boundary may
// change nothing (business hours ending at 24:00 and starting at 00:00);
// re-evaluating then is harmless.
func (c *Calendar) NextBoundary(t time.Time) time.Time {
	var best time.Time
	var bestDate date
	loc := c.loc()
	consider := func(b time.Time) {
		if b.After(t) && (best.IsZero() || b.Before(best)) {
			best = b
			bestDate = dateOf(b.In(loc))
		}
	}
	recurring := c.Hours.StartMin < c.Hours.EndMin && c.Hours.Days != [7]bool{}
	for _, w := range c.Windows {
		if w.Weekly != nil {
			recurring = true
			continue
		}
		consider(w.From)
		consider(w.To)
	}
	if !recurring {
		return best
	}
	first := dateOf(t.In(loc))
	for i := 0; i <= horizonDays; i++ {
		d := first.add(i)
		// Boundaries of later dates are all later than any boundary
		// falling on an earlier local date.
		if !best.IsZero() && bestDate.before(d) {
			break
		}
		wd := d.weekday()
		if c.Hours.Days[wd] && c.Hours.StartMin < c.Hours.EndMin && !c.isHoliday(d) {
			consider(d.at(loc, c.Hours.StartMin))
			consider(d.at(loc, c.Hours.EndMin))
		}
		for _, w := range c.Windows {
			if w.Weekly == nil {
				continue
			}
			if w.Weekly.FromDay == wd {
				consider(d.at(loc, w.Weekly.FromMin))
			}
			if w.Weekly.ToDay == wd {
				consider(d.at(loc, w.Weekly.ToMin))
			}
		}
	}
	return best
}

// Clock returns the time facts of the policy input at t for a PR whose base
// branch is branch: business hours, holiday, the calendar's active freezes
// (incident freezes are the caller's to append) and the next boundary.
func (c *Calendar) Clock(t time.Time, branch string) pr.Clock {
	loc := c.loc()
	lt := t.In(loc)
	clk := pr.Clock{
		Now:           t.UTC().Format(time.RFC3339),
		Local:         lt.Format(time.RFC3339),
		Timezone:      loc.String(),
		Weekday:       dayNames[lt.Weekday()],
		BusinessHours: c.BusinessHours(t),
		Holiday:       c.Holiday(t),
		Freezes:       []pr.Freeze{},
	}
	for _, a := range c.Frozen(t, branch) {
		clk.Freezes = append(clk.Freezes, a.Freeze())
	}
	if nb := c.NextBoundary(t); !nb.IsZero() {
		clk.NextBoundary = nb.UTC().Format(time.RFC3339)
	}
	return clk
}

// MatchBranch reports whether branch matches one of globs (see
// CheckBranchGlob); empty globs match every branch. A malformed glob
// matches nothing.
func MatchBranch(globs []string, branch string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if m := branchGlob(g); m != nil && m.Match(branch) {
			return true
		}
	}
	return false
}

// CheckBranchGlob validates a branch pattern as GitHub's branch rules read
// them: `*` and `?` within one path segment, `**` across segments
// (release/** matches release/1.2/hotfix), [...] classes and {a,b}
// alternatives, matched against the short branch name GitHub sends as a
// pull request's base (main, not refs/heads/main).
func CheckBranchGlob(g string) error {
	_, err := compileBranchGlob(g)
	return err
}

func compileBranchGlob(g string) (*glob.Pattern, error) {
	if strings.HasPrefix(g, "refs/") {
		return nil, fmt.Errorf("%q starts with refs/: patterns match short branch names such as main or release/*; drop the refs/heads/", g)
	}
	return glob.Compile(g, '/')
}

// branchGlobs caches compiled branch patterns (a config holds few).
var branchGlobs sync.Map // string -> *glob.Pattern (nil: malformed)

func branchGlob(g string) *glob.Pattern {
	if v, ok := branchGlobs.Load(g); ok {
		return v.(*glob.Pattern)
	}
	m, err := compileBranchGlob(g)
	if err != nil {
		m = nil
	}
	branchGlobs.Store(g, m)
	return m
}

// dayNames are the short day names, indexed by time.Weekday.
var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// DayNames lists the accepted short day names, Monday first, for messages.
const DayNames = "mon, tue, wed, thu, fri, sat, sun"

// ParseDay parses a day name, short ("fri") or long ("friday"), in any case.
func ParseDay(s string) (time.Weekday, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for i, n := range dayNames {
		long := time.Weekday(i).String()
		if l == n || l == strings.ToLower(long) {
			return time.Weekday(i), nil
		}
	}
	return 0, fmt.Errorf("unknown day %q: use one of %s", s, DayNames)
}

// ParseClock parses a local time of day "HH:MM" (00:00 to 24:00; a one-digit
// hour is accepted) into minutes after midnight.
func ParseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	bad := fmt.Errorf("bad time %q: use HH:MM from 00:00 to 24:00", s)
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !digits(h) || !digits(m) {
		return 0, bad
	}
	hh, _ := strconv.Atoi(h)
	mm, _ := strconv.Atoi(m)
	if hh > 24 || mm > 59 || (hh == 24 && mm != 0) {
		return 0, bad
	}
	return hh*60 + mm, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// ParseWeekly parses a weekly freeze from "fri 16:00" to "mon 08:00". It
// refuses equal ends (a freeze must have a length; freeze the whole week
// with an absolute window instead).
func ParseWeekly(from, to string) (Weekly, error) {
	fd, fm, err := ParseDayTime(from)
	if err != nil {
		return Weekly{}, fmt.Errorf("from: %w", err)
	}
	td, tm, err := ParseDayTime(to)
	if err != nil {
		return Weekly{}, fmt.Errorf("to: %w", err)
	}
	w := Weekly{FromDay: fd, FromMin: fm, ToDay: td, ToMin: tm}
	if SameWeekMinute(fd, fm, td, tm) {
		return Weekly{}, fmt.Errorf("to %q is the same time of the week as from %q", to, from)
	}
	return w, nil
}

// SameWeekMinute reports whether two day-and-minute pairs are the same time
// of the week ("fri 24:00" is "sat 00:00").
func SameWeekMinute(d1 time.Weekday, m1 int, d2 time.Weekday, m2 int) bool {
	week := 7 * 1440
	return (int(d1)*1440+m1)%week == (int(d2)*1440+m2)%week
}

// ParseDayTime parses a day of the week and a local time, "fri 16:00",
// into the weekday and minutes after midnight.
func ParseDayTime(s string) (time.Weekday, int, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("%q must be a day and a time like \"fri 16:00\"", s)
	}
	d, err := ParseDay(f[0])
	if err != nil {
		return 0, 0, err
	}
	m, err := ParseClock(f[1])
	if err != nil {
		return 0, 0, err
	}
	return d, m, nil
}
