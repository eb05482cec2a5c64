package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/config/*.golden")

func TestParseMistakes(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"yaml scanner error", "a: 1\nb: 2\nc 2\n", "guard.yaml:3: invalid YAML: could not find expected ':'"},
		{"yaml parser error", "- a\nb: 1\n", "guard.yaml:2: invalid YAML: did not find expected '-' indicator"},
		{"yaml parser error at the end of the file", "{a: 1\n", "guard.yaml:2: invalid YAML: did not find expected ',' or '}'"},
		{"yaml unknown anchor", "a: *nope\n", "guard.yaml: invalid YAML: unknown anchor 'nope' referenced"},
		{"yaml syntax error", "mode: enforce\nagents: {logins: [a\n", "guard.yaml:2: invalid YAML: did not find expected ',' or ']'"},
		{"top level is a list", "- mode\n", "guard.yaml:1:1: the file must be a mapping of settings (keys: timezone, check_name, mode, repos, agents, business_hours, freezes, escalation, quarantine_files), not a list"},
		{"top level is a string", "enforce\n", `guard.yaml:1:1: the file must be a mapping of settings (keys: timezone, check_name, mode, repos, agents, business_hours, freezes, escalation, quarantine_files), not the string "enforce"`},
		{"two documents", "mode: enforce\n---\nmode: advisory\n", "guard.yaml:2:1: only one YAML document is allowed"},
		{"unknown key", "mode: enforce\ntimezon: UTC\n", `guard.yaml:2:1: unknown key "timezon" (known keys: timezone, check_name, mode, repos, agents, business_hours, freezes, escalation, quarantine_files)`},
		{"unknown nested key", "agents:\n  login: [a]\n", `guard.yaml:2:3: unknown key "login" in agents (known keys: logins, teams, all_bots, exclude)`},
		{"duplicate key", "mode: enforce\nmode: advisory\n", `guard.yaml:2:1: duplicate key "mode" (first at line 1)`},
		{"duplicate nested key", "agents:\n  all_bots: true\n  all_bots: false\n", `guard.yaml:3:3: duplicate key "agents.all_bots" (first at line 2)`},
		{"unknown zone", "timezone: America/New_Yrok\n", `guard.yaml:1:11: unknown time zone "America/New_Yrok": use an IANA name like "America/New_York" or "UTC"`},
		{"zone in the wrong case", "timezone: america/new_york\n", `guard.yaml:1:11: unknown time zone "america/new_york": zone names are case-sensitive; did you mean "America/New_York"?`},
		{"zone in the wrong case with a particle", "timezone: africa/dar_es_salaam\n", `did you mean "Africa/Dar_es_Salaam"?`},
		{"local zone", "timezone: Local\n", `guard.yaml:1:11: timezone "Local" is not an IANA zone`},
		{"empty zone", "timezone: \"\"\n", `guard.yaml:1:11: timezone "" is not an IANA zone`},
		{"zone is a list", "timezone: [UTC]\n", "guard.yaml:1:11: timezone must be a string, not a list"},
		{"empty check_name", "check_name: \"  \"\n", "guard.yaml:1:13: check_name must not be empty"},
		{"null check_name", "check_name:\n", "guard.yaml:1:12: check_name must be a string, not empty"},
		{"bad mode", "mode: strict\n", `guard.yaml:1:7: mode "strict" is not valid: use enforce or advisory`},
		{"mode is a boolean", "mode: true\n", "guard.yaml:1:7: mode must be a string, not a boolean"},
		{"repos is a list", "repos: [\"*\"]\n", "guard.yaml:1:8: repos must be a mapping with keys include, exclude, not a list"},
		{"repos.include is a string", "repos: {include: \"*\"}\n", `guard.yaml:1:18: repos.include must be a list of strings, not the string "*"`},
		{"bad repo glob", "repos:\n  exclude: [\"acme/[\"]\n", `guard.yaml:2:13: repos.exclude: bad glob "acme/[": syntax error in pattern`},
		{"agents.logins is a string", "agents:\n  logins: ci-bot\n", `guard.yaml:2:11: agents.logins must be a list of strings, not the string "ci-bot"`},
		{"agents.logins item is a mapping", "agents:\n  logins: [ci-bot, {x: 1}]\n", "guard.yaml:2:20: agents.logins must be a list of strings; this item is a mapping"},
		{"agents.logins item is empty", "agents:\n  logins: [\"\"]\n", "guard.yaml:2:12: agents.logins has an empty entry"},
		{"login with @", "agents:\n  exclude: [\"@alice\"]\n", `guard.yaml:2:13: agents.exclude: "@alice" is not a GitHub login`},
		{"team with two slashes", "agents:\n  teams: [a/b/c]\n", `guard.yaml:2:11: agents.teams: "a/b/c" is not a team: use "team-slug" (the repository's organisation) or "org/team-slug"`},
		{"team with empty org", "agents:\n  teams: [/bots]\n", `guard.yaml:2:11: agents.teams: "/bots" is not a team`},
		{"all_bots not a boolean", "agents:\n  all_bots: yes\n", `guard.yaml:2:13: agents.all_bots must be true or false, not the string "yes"`},
		{"bad day name", "business_hours:\n  days: [mon, funday]\n", `guard.yaml:2:15: business_hours.days: unknown day "funday": use one of mon, tue, wed, thu, fri, sat, sun`},
		{"bad start time", "business_hours:\n  start: \"9am\"\n", `guard.yaml:2:10: business_hours.start: bad time "9am": use HH:MM from 00:00 to 24:00`},
		{"bad end time", "business_hours:\n  end: \"18:60\"\n", `guard.yaml:2:8: business_hours.end: bad time "18:60"`},
		{"start after end", "business_hours:\n  start: \"18:00\"\n  end: \"09:00\"\n", `guard.yaml:2:10: business_hours.start "18:00" must be before end "09:00"`},
		{"start equal to end", "business_hours:\n  start: \"09:00\"\n  end: \"09:00\"\n", `guard.yaml:2:10: business_hours.start "09:00" must be before end "09:00"`},
		{"end before default start", "business_hours:\n  end: \"08:00\"\n", `guard.yaml:2:8: business_hours.start "09:00" must be before end "08:00"`},
		{"holiday not a date", "business_hours:\n  holidays: [\"12/25/2026\"]\n", `guard.yaml:2:14: business_hours.holidays: "12/25/2026" is not a date: use YYYY-MM-DD`},
		{"holiday with a time", "business_hours:\n  holidays: [2026-12-25T00:00:00Z]\n", `guard.yaml:2:14: business_hours.holidays: "2026-12-25T00:00:00Z" is not a date`},
		{"holiday not a day", "business_hours:\n  holidays: [2026-02-30]\n", `guard.yaml:2:14: business_hours.holidays: "2026-02-30" is not a date`},
		{"freezes is a mapping", "freezes: {name: x}\n", "guard.yaml:1:10: freezes must be a list of freezes, not a mapping"},
		{"freeze is a string", "freezes: [weekend]\n", `guard.yaml:1:11: freezes[0] must be a mapping with name and weekly or from/to, not the string "weekend"`},
		{"freeze without name", "freezes:\n  - weekly: {from: \"fri 16:00\", to: \"mon 08:00\"}\n", "guard.yaml:2:5: freezes[0] needs a name"},
		{"freeze with neither weekly nor from/to", "freezes:\n  - name: x\n", "guard.yaml:2:5: freezes[0] (x) needs either weekly: {from, to} or from: and to: (RFC 3339)"},
		{"freeze with both weekly and from/to", "freezes:\n  - name: x\n    weekly: {from: \"fri 16:00\", to: \"mon 08:00\"}\n    from: \"2026-12-20T00:00:00Z\"\n", "guard.yaml:2:5: freezes[0] (x) has both weekly and from/to: use one of them"},
		{"freeze with from only", "freezes:\n  - name: x\n    from: \"2026-12-20T00:00:00Z\"\n", "guard.yaml:2:5: freezes[0] (x) needs both from and to"},
		{"freeze to before from", "freezes:\n  - name: x\n    from: \"2026-12-20T00:00:00-05:00\"\n    to: \"2026-12-19T00:00:00-05:00\"\n", "guard.yaml:4:9: freezes[0].to 2026-12-19T00:00:00-05:00 must be after from 2026-12-20T00:00:00-05:00"},
		{"freeze to equal to from in another offset", "freezes:\n  - name: x\n    from: \"2026-12-20T05:00:00Z\"\n    to: \"2026-12-20T00:00:00-05:00\"\n", "guard.yaml:4:9: freezes[0].to 2026-12-20T00:00:00-05:00 must be after from 2026-12-20T05:00:00Z"},
		{"freeze from not RFC 3339", "freezes:\n  - name: x\n    from: \"2026-12-20\"\n    to: \"2026-12-21T00:00:00Z\"\n", `guard.yaml:3:11: freezes[0].from "2026-12-20" is not an RFC 3339 time like "2026-12-20T00:00:00-05:00"`},
		{"weekly with a bad day", "freezes:\n  - name: x\n    weekly: {from: \"fry 16:00\", to: \"mon 08:00\"}\n", `guard.yaml:3:20: freezes[0].weekly.from: unknown day "fry"`},
		{"weekly with a bad time", "freezes:\n  - name: x\n    weekly: {from: \"fri 16:00\", to: \"mon 8\"}\n", `guard.yaml:3:37: freezes[0].weekly.to: bad time "8"`},
		{"weekly without a time", "freezes:\n  - name: x\n    weekly: {from: \"fri\", to: \"mon 08:00\"}\n", `guard.yaml:3:20: freezes[0].weekly.from: "fri" must be a day and a time like "fri 16:00"`},
		{"weekly to equal to from", "freezes:\n  - name: x\n    weekly: {from: \"fri 16:00\", to: \"fri 16:00\"}\n", `guard.yaml:3:37: freezes[0].weekly.to "fri 16:00" must differ from from "fri 16:00"`},
		{"weekly without to", "freezes:\n  - name: x\n    weekly: {from: \"fri 16:00\"}\n", `guard.yaml:3:13: freezes[0].weekly needs both from and to`},
		{"weekly is a string", "freezes:\n  - name: x\n    weekly: \"fri 16:00 - mon 08:00\"\n", `guard.yaml:3:13: freezes[0].weekly must be a mapping like {from: "fri 16:00", to: "mon 08:00"}, not the string`},
		{"weekly unknown key", "freezes:\n  - name: x\n    weekly: {from: \"fri 16:00\", to: \"mon 08:00\", until: x}\n", `guard.yaml:3:50: unknown key "until" in freezes[0].weekly (known keys: from, to)`},
		{"duplicate freeze name", "freezes:\n  - {name: x, weekly: {from: \"fri 16:00\", to: \"mon 08:00\"}}\n  - {name: x, weekly: {from: \"sat 16:00\", to: \"mon 08:00\"}}\n", `guard.yaml:3:12: duplicate freeze name "x" (first at line 2)`},
		{"bad applies_to", "freezes:\n  - name: x\n    weekly: {from: \"fri 16:00\", to: \"mon 08:00\"}\n    applies_to: all\n", `guard.yaml:4:17: freezes[0].applies_to "all" is not valid: use agents or everyone`},
		{"bad branch glob", "freezes:\n  - name: x\n    weekly: {from: \"fri 16:00\", to: \"mon 08:00\"}\n    branches: [\"release/[\"]\n", `guard.yaml:4:16: freezes[0].branches: bad branch pattern "release/[": unclosed [`},
		{"branch pattern with refs/", "freezes:\n  - name: x\n    weekly: {from: \"fri 16:00\", to: \"mon 08:00\"}\n    branches: [refs/heads/main]\n", `guard.yaml:4:16: freezes[0].branches: bad branch pattern "refs/heads/main": "refs/heads/main" starts with refs/: patterns match short branch names such as main or release/*; drop the refs/heads/`},
		{"escalation unknown key", "escalation:\n  approver: {users: [a]}\n", `guard.yaml:2:3: unknown key "approver" in escalation (known keys: reviewers, approvers)`},
		{"escalation users is a string", "escalation:\n  approvers: {users: alice}\n", `guard.yaml:2:22: escalation.approvers.users must be a list of strings, not the string "alice"`},
		{"escalation bad team", "escalation:\n  reviewers: {teams: [\"a b\"]}\n", `guard.yaml:2:23: escalation.reviewers.teams: "a b" is not a team`},
		{"quarantine glob with too many wildcards", "quarantine_files: [\"?*?*?*?\"]\n", `guard.yaml:1:20: quarantine_files: glob "?*?*?*?" has 7 wildcards`},
		{"quarantine glob unclosed brace", "quarantine_files: [\"{a,b\"]\n", `guard.yaml:1:20: quarantine_files: bad glob "{a,b": unclosed {`},
		{"quarantine glob unclosed bracket", "quarantine_files: [\"a[bc\"]\n", `guard.yaml:1:20: quarantine_files: bad glob "a[bc": unclosed [`},
		{"quarantine glob empty class", "quarantine_files: [\"a[]\"]\n", `guard.yaml:1:20: quarantine_files: bad glob "a[]": empty character class []`},
		{"quarantine glob trailing backslash", "quarantine_files: [\"a\\\\\"]\n", `guard.yaml:1:20: quarantine_files: bad glob "a\\": trailing backslash`},
		{"key is not a string", "? [a]\n: b\n", "guard.yaml:1:3: keys must be plain names, not a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("guard.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want error containing %q", c, tt.want)
			}
			if c != nil {
				t.Errorf("Parse returned a config with an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error =\n%v\nwant it to contain\n%s", err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %v does not wrap *Error", err)
			}
		})
	}
}

func TestParseReportsEveryMistakeInFileOrder(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "config", "broken.yaml")
	_, err := Load(path)
	if err == nil {
		t.Fatal("broken.yaml loaded without error")
	}
	got := strings.ReplaceAll(err.Error(), filepath.ToSlash(path), "broken.yaml") + "\n"
	golden := filepath.Join("..", "..", "testdata", "config", "broken.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run go test -update): %v", err)
	}
	if got != string(want) {
		t.Errorf("errors =\n%s\nwant (%s)\n%s", got, golden, want)
	}
	if n := strings.Count(got, "\n"); n < 20 {
		t.Errorf("got %d mistakes, want every one of broken.yaml (>= 20)", n)
	}
}

func TestSpecExample(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "guard.example.yaml"))
	if err != nil {
		t.Fatalf("load the SPEC example: %v", err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	want := &Config{
		Timezone:  "America/New_York",
		CheckName: "merge-guard",
		Mode:      Enforce,
		Repos:     Repos{Include: []string{"*"}, Exclude: []string{}},
		Agents:    Agents{Logins: []string{"ci-bot", "release-agent"}, Teams: []string{"automation"}, AllBots: true, Exclude: []string{}},
		BusinessHours: BusinessHours{
			Days:     []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
			Start:    "09:00",
			End:      "18:00",
			Holidays: []string{"2026-12-25"},
		},
		Freezes: []Freeze{
			{Name: "friday-deploys", Weekly: &WeeklyFreeze{From: "fri 16:00", To: "mon 08:00"}, Branches: []string{"main", "release/*"}, AppliesTo: "agents"},
			{Name: "year-end", From: time.Date(2026, 12, 20, 5, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 4, 14, 0, 0, 0, time.UTC), Branches: []string{}, AppliesTo: "everyone"},
		},
		Escalation: Escalation{
			Reviewers: People{Teams: []string{"release-managers"}, Users: []string{}},
			Approvers: People{Teams: []string{"release-managers"}, Users: []string{}},
		},
		QuarantineFiles: DefaultQuarantineFiles(),
	}
	got := *c
	got.Location, got.Calendar, got.Digest, got.Source = nil, nil, "", ""
	for i := range got.Freezes {
		got.Freezes[i].From, got.Freezes[i].To = got.Freezes[i].From.UTC(), got.Freezes[i].To.UTC()
	}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("config =\n%+v\nwant\n%+v", &got, want)
	}
	if c.Location.String() != ny.String() || c.Source != filepath.Join("..", "..", "guard.example.yaml") || len(c.Digest) != 64 {
		t.Errorf("location %v source %q digest %q", c.Location, c.Source, c.Digest)
	}

	// The calendar is the one the settings describe.
	cal := c.Calendar
	if cal.Loc != c.Location || cal.Hours.StartMin != 540 || cal.Hours.EndMin != 1080 || !cal.Hours.Days[time.Friday] || cal.Hours.Days[time.Saturday] {
		t.Errorf("calendar hours = %+v", cal.Hours)
	}
	at := time.Date(2026, 12, 26, 15, 0, 0, 0, time.UTC) // Saturday: both freezes
	active := cal.Frozen(at, "main")
	if len(active) != 2 || active[0].Window.Name != "friday-deploys" || active[1].Window.AppliesTo != "everyone" {
		t.Errorf("active freezes on %s = %+v", at, active)
	}
	if a := cal.Frozen(at, "feature/x"); len(a) != 1 || a[0].Window.Name != "year-end" {
		t.Errorf("active freezes on feature/x = %+v, want year-end only", a)
	}
	if !cal.Holiday(time.Date(2026, 12, 25, 17, 0, 0, 0, time.UTC)) {
		t.Error("2026-12-25 is not a holiday")
	}
}

func TestTestdataConfigs(t *testing.T) {
	t.Run("advisory in Berlin", func(t *testing.T) {
		c, err := Load(filepath.Join("..", "..", "testdata", "config", "advisory-berlin.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Mode != Advisory || c.Location.String() != "Europe/Berlin" || c.Agents.AllBots {
			t.Errorf("mode %q zone %v all_bots %v", c.Mode, c.Location, c.Agents.AllBots)
		}
		if want := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday}; !reflect.DeepEqual(c.BusinessHours.Days, want) {
			t.Errorf("days = %v, want %v", c.BusinessHours.Days, want)
		}
		if c.Calendar.Hours.StartMin != 8*60+30 || c.Calendar.Hours.EndMin != 24*60 {
			t.Errorf("hours = %d-%d", c.Calendar.Hours.StartMin, c.Calendar.Hours.EndMin)
		}
		if want := []string{"2026-10-03", "2026-12-24"}; !reflect.DeepEqual(c.BusinessHours.Holidays, want) {
			t.Errorf("holidays = %v, want %v", c.BusinessHours.Holidays, want)
		}
		if want := []string{"ci/quarantine.txt", "{**/,}flaky.json"}; !reflect.DeepEqual(c.QuarantineFiles, want) {
			t.Errorf("quarantine_files = %v, want %v", c.QuarantineFiles, want)
		}
		if !reflect.DeepEqual(c.Escalation.Approvers.Users, []string{"alice", "bob"}) || len(c.Escalation.Reviewers.Teams) != 0 {
			t.Errorf("escalation = %+v", c.Escalation)
		}
	})
	t.Run("comments only is the defaults", func(t *testing.T) {
		c, err := Load(filepath.Join("..", "..", "testdata", "config", "empty.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Digest != Default().Digest {
			t.Errorf("digest %s differs from the defaults' %s", c.Digest, Default().Digest)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := Load(filepath.Join(t.TempDir(), "guard.yaml"))
		if err == nil || !strings.Contains(err.Error(), "read config: ") || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error = %v, want a wrapped not-exist error", err)
		}
	})
}

func TestDefault(t *testing.T) {
	for _, load := range []struct {
		name string
		get  func() (*Config, error)
	}{
		{"Default", func() (*Config, error) { return Default(), nil }},
		{"Load empty path", func() (*Config, error) { return Load("") }},
		{"Parse empty file", func() (*Config, error) { return Parse("guard.yaml", nil) }},
		{"Parse null document", func() (*Config, error) { return Parse("guard.yaml", []byte("~\n")) }},
		{"Parse empty mappings", func() (*Config, error) {
			return Parse("guard.yaml", []byte("agents:\nbusiness_hours:\nescalation:\nrepos:\n"))
		}},
	} {
		t.Run(load.name, func(t *testing.T) {
			c, err := load.get()
			if err != nil {
				t.Fatal(err)
			}
			if c.Timezone != "UTC" || c.Location != time.UTC || c.CheckName != "merge-guard" || c.Mode != Enforce {
				t.Errorf("zone %q %v check %q mode %q", c.Timezone, c.Location, c.CheckName, c.Mode)
			}
			if !reflect.DeepEqual(c.Repos.Include, []string{"*"}) || !c.Agents.AllBots || len(c.Freezes) != 0 {
				t.Errorf("repos %v all_bots %v freezes %v", c.Repos, c.Agents.AllBots, c.Freezes)
			}
			if c.BusinessHours.Start != "09:00" || c.BusinessHours.End != "18:00" || len(c.BusinessHours.Days) != 5 {
				t.Errorf("business hours %+v", c.BusinessHours)
			}
			if len(c.Escalation.Reviewers.Teams)+len(c.Escalation.Approvers.Users) != 0 {
				t.Errorf("escalation %+v", c.Escalation)
			}
			if !reflect.DeepEqual(c.QuarantineFiles, DefaultQuarantineFiles()) {
				t.Errorf("quarantine_files %v", c.QuarantineFiles)
			}
			if c.Calendar == nil || c.Digest != Default().Digest {
				t.Errorf("calendar %v digest %q", c.Calendar, c.Digest)
			}
			monday := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
			if !c.Calendar.BusinessHours(monday) || c.Calendar.BusinessHours(monday.Add(9*time.Hour)) {
				t.Error("default business hours are not mon-fri 09:00-18:00 UTC")
			}
		})
	}
}

func TestDigest(t *testing.T) {
	parse := func(s string) string {
		t.Helper()
		c, err := Parse("guard.yaml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c.Digest
	}
	base := "freezes:\n  - {name: x, from: \"2026-12-20T05:00:00Z\", to: \"2026-12-21T05:00:00Z\"}\n"
	same := "# a comment\nfreezes:\n  - name: x\n    from: \"2026-12-20T00:00:00-05:00\"\n    to: \"2026-12-21T00:00:00-05:00\"\n    applies_to: agents\nmode: enforce\n"
	if parse(base) != parse(same) {
		t.Error("equal settings written differently have different digests")
	}
	if parse(base) == parse(base+"mode: advisory\n") {
		t.Error("different settings have the same digest")
	}
}

func TestRepoIncluded(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		repo             string
		want             bool
	}{
		{"star is every repository", []string{"*"}, nil, "acme/api", true},
		{"owner glob", []string{"acme/*"}, nil, "acme/api", true},
		{"other owner", []string{"acme/*"}, nil, "other/api", false},
		{"name glob in any owner", []string{"api-*"}, nil, "acme/api-gateway", true},
		{"exact name", []string{"acme/api"}, nil, "acme/api", true},
		{"case-insensitive", []string{"Acme/API"}, nil, "acme/api", true},
		{"exclude wins", []string{"*"}, []string{"acme/sandbox-*"}, "acme/sandbox-1", false},
		{"exclude by name", []string{"acme/*"}, []string{"legacy"}, "acme/legacy", false},
		{"not excluded", []string{"*"}, []string{"acme/sandbox-*"}, "acme/api", true},
		{"empty include is nothing", []string{}, nil, "acme/api", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Repos = Repos{Include: tt.include, Exclude: tt.exclude}
			if got := c.RepoIncluded(tt.repo); got != tt.want {
				t.Errorf("RepoIncluded(%q) with include %v exclude %v = %v, want %v", tt.repo, tt.include, tt.exclude, got, tt.want)
			}
		})
	}
}

func TestStaticAgent(t *testing.T) {
	withTeams := Default()
	withTeams.Agents = Agents{Logins: []string{"ci-bot"}, Teams: []string{"automation"}, AllBots: true, Exclude: []string{"dependabot[bot]", "Trusted-Bot"}}
	noTeams := Default()
	noTeams.Agents = Agents{Logins: []string{"release-agent"}, AllBots: true}
	noBots := Default()
	noBots.Agents = Agents{AllBots: false}
	tests := []struct {
		name         string
		c            *Config
		login, typ   string
		agent, known bool
	}{
		{"excluded bot is not an agent", withTeams, "dependabot[bot]", "Bot", false, true},
		{"exclude is case-insensitive", withTeams, "trusted-bot", "Bot", false, true},
		{"listed login is an agent even as a User", withTeams, "CI-Bot", "User", true, true},
		{"bot type is an agent", withTeams, "renovate", "Bot", true, true},
		{"login ending in [bot] is an agent", withTeams, "copilot[bot]", "User", true, true},
		{"human with agent teams configured is undecided", withTeams, "alice", "User", false, false},
		{"human without agent teams is decided", noTeams, "alice", "User", false, true},
		{"listed login without teams", noTeams, "release-agent", "User", true, true},
		{"bot without all_bots is not an agent", noBots, "renovate[bot]", "Bot", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent, known := tt.c.StaticAgent(tt.login, tt.typ)
			if agent != tt.agent || known != tt.known {
				t.Errorf("StaticAgent(%q, %q) = %v, %v; want %v, %v", tt.login, tt.typ, agent, known, tt.agent, tt.known)
			}
		})
	}
}

func TestSplitTeam(t *testing.T) {
	tests := []struct {
		team, org, wantOrg, wantSlug string
	}{
		{"automation", "acme", "acme", "automation"},
		{"platform/automation", "acme", "platform", "automation"},
	}
	for _, tt := range tests {
		t.Run(tt.team, func(t *testing.T) {
			org, slug := SplitTeam(tt.team, tt.org)
			if org != tt.wantOrg || slug != tt.wantSlug {
				t.Errorf("SplitTeam(%q, %q) = %q, %q; want %q, %q", tt.team, tt.org, org, slug, tt.wantOrg, tt.wantSlug)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "g.yaml", Line: 3, Column: 7, Msg: "m"}, "g.yaml:3:7: m"},
		{Error{File: "g.yaml", Line: 3, Msg: "m"}, "g.yaml:3: m"},
		{Error{File: "g.yaml", Msg: "m"}, "g.yaml: m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"guard.example.yaml", "testdata/config/advisory-berlin.yaml", "testdata/config/broken.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &x [1]\nb: *x\nfreezes: [{name: *x}]\n"))
	f.Add([]byte("freezes:\n  - {name: a, weekly: {from: \"sun 02:30\", to: \"sun 24:00\"}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("guard.yaml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one of config and error", c, err)
		}
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "guard.yaml:") {
					t.Fatalf("error line %q does not name the file", line)
				}
			}
			return
		}
		if c.Calendar == nil || c.Location == nil || len(c.Digest) != 64 {
			t.Fatalf("incomplete config %+v", c)
		}
		c.Calendar.NextBoundary(time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC))
	})
}

// RFC 3339 allows a lower-case t and z.
func TestLowerCaseRFC3339(t *testing.T) {
	c, err := Parse("guard.yaml", []byte("freezes:\n  - name: x\n    from: \"2026-12-20t00:00:00z\"\n    to: \"2026-12-21T00:00:00-05:00\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC); !c.Freezes[0].From.Equal(want) {
		t.Fatalf("from %v, want %v", c.Freezes[0].From, want)
	}
}
