// Package config loads guard.yaml, the policy settings of Merge Guard
// (SPEC §3), into a typed, validated Config.
//
// Contract:
//   - Parse reads exactly the keys below through yaml.Node; every mistake is
//     reported as "FILE:LINE:COL: reason" (YAML syntax errors as
//     "FILE:LINE: reason", the parser gives no column), all of them at once
//     (errors.Join of *Error). A Config is returned only when there is no
//     mistake: nothing falls back silently.
//   - A missing file (Load("")) or an omitted key takes the default listed
//     below. A key written with an empty value (null) means an empty list for
//     lists and the defaults for mappings; a scalar key must have a value.
//   - A Config is immutable after Parse; its methods are safe for concurrent
//     use.
//
// Keys (default in brackets):
//
//	timezone          IANA zone for business hours, freezes and weeks [UTC]
//	check_name        name of the check run [merge-guard]
//	mode              enforce | advisory [enforce]
//	repos             {include, exclude}: owner/name globs; exclude wins; a
//	                  glob without "/" matches the repository name in any
//	                  owner, so "*" is every repository [include: ["*"]]
//	agents            logins: exact logins that are agents; teams: "slug"
//	                  (org of the repository) or "org/slug"; all_bots: any
//	                  Bot account or login ending in "[bot]" [true];
//	                  exclude: logins never agents
//	business_hours    days (mon..sun) [mon-fri], start, end ("HH:MM", end
//	                  may be "24:00") [09:00-18:00], holidays ("YYYY-MM-DD",
//	                  business hours only)
//	freezes           list of {name, weekly: {from: "fri 16:00", to: "mon 08:00"}
//	                  | from, to (RFC 3339), branches (GitHub-style: * one
//	                  level, ** any depth, short names, no refs/heads/;
//	                  omitted: every branch), applies_to: agents | everyone
//	                  [agents]} [none]
//	escalation        reviewers {teams, users}: asked to review an escalated
//	                  PR; approvers {teams, users}: who may approve or
//	                  override (empty: maintain or admin on the repo) [none]
//	quarantine_files  globs of quarantine-list files whose added lines
//	                  quarantine tests, in OPA glob.match syntax with "/" as
//	                  the separator (* within a path segment, ** across
//	                  segments, ?, [abc], {a,b}); at most MaxWildcards * or
//	                  ? besides **; an empty list disables them
//	                  [DefaultQuarantineFiles]
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	// The zone database is embedded so that a static binary on a minimal
	// image resolves every IANA zone the same way.
	_ "time/tzdata"

	"go.yaml.in/yaml/v3"

	"github.com/mergeguard/guard/internal/calendar"
)

// Mode says whether the check enforces its outcome.
type Mode string

// The modes.
const (
	// Enforce publishes the outcome as the check's conclusion.
	Enforce Mode = "enforce"
	// Advisory always passes; the check's title says what enforce would do.
	Advisory Mode = "advisory"
)

// Config is the effective policy configuration.
type Config struct {
	Timezone        string        `json:"timezone"`
	CheckName       string        `json:"check_name"`
	Mode            Mode          `json:"mode"`
	Repos           Repos         `json:"repos"`
	Agents          Agents        `json:"agents"`
	BusinessHours   BusinessHours `json:"business_hours"`
	Freezes         []Freeze      `json:"freezes"`
	Escalation      Escalation    `json:"escalation"`
	QuarantineFiles []string      `json:"quarantine_files"`

	// Location is Timezone loaded.
	Location *time.Location `json:"-"`
	// Calendar holds the business hours and freezes in Location.
	Calendar *calendar.Calendar `json:"-"`
	// Digest is the hex SHA-256 of the effective configuration (canonical
	// JSON of the fields above, times in UTC): equal for equal settings
	// however they were written, and part of the policy revision.
	Digest string `json:"-"`
	// Source is the file the configuration came from, or "built-in defaults".
	Source string `json:"-"`
}

// Repos selects the repositories the guard acts on.
type Repos struct {
	Include []string `json:"include"`
	Exclude []string `json:"exclude"`
}

// Agents classifies accounts as agents.
type Agents struct {
	Logins  []string `json:"logins"`
	Teams   []string `json:"teams"`
	AllBots bool     `json:"all_bots"`
	Exclude []string `json:"exclude"`
}

// BusinessHours are the hours during which quarantining tests is allowed.
type BusinessHours struct {
	Days     []time.Weekday `json:"days"`
	Start    string         `json:"start"` // HH:MM
	End      string         `json:"end"`   // HH:MM, up to 24:00
	Holidays []string       `json:"holidays"`
}

// Freeze is a configured freeze: Weekly, or the absolute window [From, To).
type Freeze struct {
	Name      string        `json:"name"`
	Weekly    *WeeklyFreeze `json:"weekly,omitempty"`
	From      time.Time     `json:"from,omitzero"`
	To        time.Time     `json:"to,omitzero"`
	Branches  []string      `json:"branches"`
	AppliesTo string        `json:"applies_to"` // calendar.AppliesToAgents or AppliesToEveryone
}

// WeeklyFreeze is a weekly freeze as written, "fri 16:00" to "mon 08:00".
type WeeklyFreeze struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Escalation says who is asked to review and who may approve or override.
type Escalation struct {
	Reviewers People `json:"reviewers"`
	Approvers People `json:"approvers"`
}

// People are teams ("slug" or "org/slug") and user logins.
type People struct {
	Teams []string `json:"teams"`
	Users []string `json:"users"`
}

// DefaultQuarantineFiles returns the default quarantine_files: files named
// quarantine*.{txt,yml,yaml,json}, .quarantine* and
// flaky-tests*/flaky_tests*.{txt,yml,yaml,json}, at the root or in any
// directory.
func DefaultQuarantineFiles() []string {
	return []string{
		"{**/,}quarantine*.{txt,yml,yaml,json}",
		"{**/,}.quarantine*",
		"{**/,}flaky{-,_}tests*.{txt,yml,yaml,json}",
	}
}

// Default returns the built-in configuration used when there is no file.
func Default() *Config {
	c := defaults()
	c.Source = "built-in defaults"
	c.finish()
	return c
}

func defaults() *Config {
	return &Config{
		Timezone:  "UTC",
		CheckName: "merge-guard",
		Mode:      Enforce,
		Repos:     Repos{Include: []string{"*"}, Exclude: []string{}},
		Agents:    Agents{Logins: []string{}, Teams: []string{}, AllBots: true, Exclude: []string{}},
		BusinessHours: BusinessHours{
			Days:     []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
			Start:    "09:00",
			End:      "18:00",
			Holidays: []string{},
		},
		Freezes: []Freeze{},
		Escalation: Escalation{
			Reviewers: People{Teams: []string{}, Users: []string{}},
			Approvers: People{Teams: []string{}, Users: []string{}},
		},
		QuarantineFiles: DefaultQuarantineFiles(),
		Location:        time.UTC,
	}
}

// Load reads and parses the file at path; path "" means Default().
func Load(path string) (*Config, error) {
	if path == "" {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Error is one mistake in a configuration file. Line and Column are 1-based;
// 0 when unknown.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *Error) Error() string {
	switch {
	case e.Line == 0:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Column == 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses the configuration in data; name is the file name used in
// messages. It returns every mistake at once, joined, each an *Error.
func Parse(name string, data []byte) (*Config, error) {
	p := &parser{name: name}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	c := defaults()
	c.Source = name
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		c.finish()
		return c, nil
	case err != nil:
		return nil, p.syntax(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, p.syntax(err)
	default:
		p.errorf(&extra, "only one YAML document is allowed; remove the second one (after ---)")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	p.config(root, c)
	if len(p.errs) > 0 {
		// Report in file order, so that users can fix them top to bottom.
		slices.SortStableFunc(p.errs, func(a, b error) int {
			ea, eb := a.(*Error), b.(*Error)
			if ea.Line != eb.Line {
				return ea.Line - eb.Line
			}
			return ea.Column - eb.Column
		})
		return nil, errors.Join(p.errs...)
	}
	c.finish()
	return c, nil
}

// finish derives Location, Calendar and Digest from validated fields.
func (c *Config) finish() {
	if c.Location == nil {
		c.Location = time.UTC
	}
	cal := &calendar.Calendar{Loc: c.Location}
	for _, d := range c.BusinessHours.Days {
		cal.Hours.Days[d] = true
	}
	// Validated by parse: the defaults and parsed values are good clocks.
	cal.Hours.StartMin, _ = calendar.ParseClock(c.BusinessHours.Start)
	cal.Hours.EndMin, _ = calendar.ParseClock(c.BusinessHours.End)
	cal.Hours.Holidays = slices.Clone(c.BusinessHours.Holidays)
	for _, f := range c.Freezes {
		w := calendar.Window{Name: f.Name, From: f.From, To: f.To, Branches: slices.Clone(f.Branches), AppliesTo: f.AppliesTo}
		if f.Weekly != nil {
			wk, _ := calendar.ParseWeekly(f.Weekly.From, f.Weekly.To)
			w.Weekly = &wk
		}
		cal.Windows = append(cal.Windows, w)
	}
	c.Calendar = cal

	canon := *c
	canon.Freezes = make([]Freeze, len(c.Freezes))
	for i, f := range c.Freezes {
		f.From, f.To = f.From.UTC(), f.To.UTC()
		canon.Freezes[i] = f
	}
	b, err := json.Marshal(&canon)
	if err != nil {
		panic(fmt.Sprintf("config: marshal for digest: %v", err)) // plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	c.Digest = hex.EncodeToString(sum[:])
}

// RepoIncluded reports whether the guard acts on the repository fullName
// ("owner/name"): it matches an include glob and no exclude glob. Matching
// is case-insensitive (GitHub names are); a glob without "/" is matched
// against the name in any owner.
func (c *Config) RepoIncluded(fullName string) bool {
	return matchRepo(c.Repos.Include, fullName) && !matchRepo(c.Repos.Exclude, fullName)
}

func matchRepo(globs []string, fullName string) bool {
	full := strings.ToLower(fullName)
	_, name, ok := strings.Cut(full, "/")
	if !ok {
		name = full
	}
	for _, g := range globs {
		g = strings.ToLower(g)
		subject := full
		if !strings.Contains(g, "/") {
			subject = name
		}
		if m, err := path.Match(g, subject); err == nil && m {
			return true
		}
	}
	return false
}

// StaticAgent classifies an account from the configuration alone (logins
// compare case-insensitively): an excluded login is not an agent; a listed
// login is; with all_bots, an account of type "Bot" or a login ending in
// "[bot]" is. Otherwise the account is not an agent, and that is decided
// only when no agent teams are configured; else the caller must check team
// membership (decided false).
func (c *Config) StaticAgent(login, accountType string) (agent, decided bool) {
	if containsFold(c.Agents.Exclude, login) {
		return false, true
	}
	if containsFold(c.Agents.Logins, login) {
		return true, true
	}
	if c.Agents.AllBots && (strings.EqualFold(accountType, "Bot") || strings.HasSuffix(strings.ToLower(login), "[bot]")) {
		return true, true
	}
	return false, len(c.Agents.Teams) == 0
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// SplitTeam splits a configured team into organisation and team slug:
// "org/slug" names its organisation, a bare "slug" belongs to defaultOrg
// (the organisation owning the repository).
func SplitTeam(team, defaultOrg string) (org, slug string) {
	if o, s, ok := strings.Cut(team, "/"); ok {
		return o, s
	}
	return defaultOrg, team
}

// parser walks the YAML tree and collects mistakes.
type parser struct {
	name string
	errs []error // each an *Error
}

func (p *parser) errorf(n *yaml.Node, format string, a ...any) {
	p.errs = append(p.errs, &Error{File: p.name, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, a...)})
}

// syntax turns a yaml.v3 syntax error into an *Error with its line.
// yaml.v3 numbers lines from 1 for scanner errors but from 0 for parser
// errors (and then omits line 0), so parser errors are shifted by one; the
// line is where the unfinished construct starts.
func (p *parser) syntax(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if isParserError(msg) {
		line++
	}
	return &Error{File: p.name, Line: line, Msg: "invalid YAML: " + msg}
}

func isParserError(msg string) bool {
	for _, prefix := range []string{"did not find expected ", "found duplicate %", "found incompatible YAML document", "found undefined tag handle"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "empty"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "not a value"
}

// mapping calls fn for each key of the mapping n, in order, after checking
// that n is a mapping (null: no keys), that keys are strings, unique and
// among known. what names the mapping in messages ("" for the top level).
func (p *parser) mapping(n *yaml.Node, what string, known []string, fn func(key string, k, v *yaml.Node)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		if what == "" {
			p.errorf(n, "the file must be a mapping of settings (keys: %s), not %s", strings.Join(known, ", "), kindName(n))
		} else {
			p.errorf(n, "%s must be a mapping with keys %s, not %s", what, strings.Join(known, ", "), kindName(n))
		}
		return
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "keys must be plain names, not %s", kindName(k))
			continue
		}
		key := k.Value
		if first, dup := seen[key]; dup {
			p.errorf(k, "duplicate key %q (first at line %d)", p.qualify(what, key), first.Line)
			continue
		}
		seen[key] = k
		if !slices.Contains(known, key) {
			if what == "" {
				p.errorf(k, "unknown key %q (known keys: %s)", key, strings.Join(known, ", "))
			} else {
				p.errorf(k, "unknown key %q in %s (known keys: %s)", key, what, strings.Join(known, ", "))
			}
			continue
		}
		fn(key, k, v)
	}
}

func (p *parser) qualify(what, key string) string {
	if what == "" {
		return key
	}
	return what + "." + key
}

// str returns a scalar's text; booleans, null and collections are refused.
func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" || n.ShortTag() == "!!bool" {
		p.errorf(n, "%s must be a string, not %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) boolean(n *yaml.Node, what string) (bool, bool) {
	n = resolve(n)
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.errorf(n, "%s must be true or false, not %s", what, kindName(n))
		return false, false
	}
	return b, true
}

// list returns the items of a list of non-empty strings (null: empty list),
// calling check, when not nil, on each item.
func (p *parser) list(n *yaml.Node, what string, check func(item *yaml.Node, s string) bool) ([]string, bool) {
	n = resolve(n)
	out := []string{}
	if isNull(n) {
		return out, true
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s must be a list of strings, not %s", what, kindName(n))
		return nil, false
	}
	ok := true
	for _, item := range n.Content {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode || item.ShortTag() == "!!null" || item.ShortTag() == "!!bool" {
			p.errorf(item, "%s must be a list of strings; this item is %s", what, kindName(item))
			ok = false
			continue
		}
		if strings.TrimSpace(item.Value) == "" {
			p.errorf(item, "%s has an empty entry", what)
			ok = false
			continue
		}
		if check != nil && !check(item, item.Value) {
			ok = false
			continue
		}
		out = append(out, item.Value)
	}
	return out, ok
}

var topKeys = []string{"timezone", "check_name", "mode", "repos", "agents", "business_hours", "freezes", "escalation", "quarantine_files"}

func (p *parser) config(root *yaml.Node, c *Config) {
	var hours, freezes *yaml.Node
	p.mapping(root, "", topKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "timezone":
			if s, ok := p.str(v, key); ok {
				if loc, err := loadZone(s); err != nil {
					p.errorf(resolve(v), "%v", err)
				} else {
					c.Timezone, c.Location = s, loc
				}
			}
		case "check_name":
			if s, ok := p.str(v, key); ok {
				if strings.TrimSpace(s) == "" {
					p.errorf(resolve(v), "check_name must not be empty (the default is merge-guard)")
				} else {
					c.CheckName = s
				}
			}
		case "mode":
			if s, ok := p.str(v, key); ok {
				switch Mode(s) {
				case Enforce, Advisory:
					c.Mode = Mode(s)
				default:
					p.errorf(resolve(v), "mode %q is not valid: use enforce or advisory", s)
				}
			}
		case "repos":
			p.mapping(v, "repos", []string{"include", "exclude"}, func(key string, _, v *yaml.Node) {
				globs, ok := p.list(v, "repos."+key, p.pathGlob("repos."+key))
				if !ok {
					return
				}
				if key == "include" {
					c.Repos.Include = globs
				} else {
					c.Repos.Exclude = globs
				}
			})
		case "agents":
			p.agents(v, &c.Agents)
		case "business_hours":
			hours = v
		case "freezes":
			freezes = v
		case "escalation":
			p.mapping(v, "escalation", []string{"reviewers", "approvers"}, func(key string, _, v *yaml.Node) {
				if key == "reviewers" {
					p.people(v, "escalation.reviewers", &c.Escalation.Reviewers)
				} else {
					p.people(v, "escalation.approvers", &c.Escalation.Approvers)
				}
			})
		case "quarantine_files":
			if globs, ok := p.list(v, key, p.fileGlob(key)); ok {
				c.QuarantineFiles = globs
			}
		}
	})
	if hours != nil {
		p.businessHours(hours, &c.BusinessHours)
	}
	if freezes != nil {
		c.Freezes = p.freezes(freezes)
	}
}

// zoneCase returns name with IANA's usual capitalisation (each word of each
// path segment capitalised, the particles of, es and au lower-case:
// america/new_york → America/New_York, africa/dar_es_salaam →
// Africa/Dar_es_Salaam) when that loads and name does not; else "".
func zoneCase(name string) string {
	parts := strings.Split(name, "/")
	for i, part := range parts {
		words := strings.Split(part, "_")
		for j, w := range words {
			if w != "" && !slices.Contains([]string{"of", "es", "au"}, strings.ToLower(w)) {
				words[j] = strings.ToUpper(w[:1]) + strings.ToLower(w[1:])
			}
		}
		parts[i] = strings.Join(words, "_")
	}
	fixed := strings.Join(parts, "/")
	if strings.EqualFold(fixed, "utc") {
		fixed = "UTC"
	}
	if fixed == name {
		return ""
	}
	if _, err := time.LoadLocation(fixed); err != nil {
		return ""
	}
	return fixed
}

func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("timezone %q is not an IANA zone: use a name like \"America/New_York\" or \"UTC\"", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		if fixed := zoneCase(name); fixed != "" {
			return nil, fmt.Errorf("unknown time zone %q: zone names are case-sensitive; did you mean %q?", name, fixed)
		}
		return nil, fmt.Errorf("unknown time zone %q: use an IANA name like \"America/New_York\" or \"UTC\"", name)
	}
	return loc, nil
}

func (p *parser) agents(n *yaml.Node, a *Agents) {
	p.mapping(n, "agents", []string{"logins", "teams", "all_bots", "exclude"}, func(key string, _, v *yaml.Node) {
		what := "agents." + key
		switch key {
		case "logins":
			if l, ok := p.list(v, what, p.login(what)); ok {
				a.Logins = l
			}
		case "teams":
			if l, ok := p.list(v, what, p.team(what)); ok {
				a.Teams = l
			}
		case "all_bots":
			if b, ok := p.boolean(v, what); ok {
				a.AllBots = b
			}
		case "exclude":
			if l, ok := p.list(v, what, p.login(what)); ok {
				a.Exclude = l
			}
		}
	})
}

func (p *parser) people(n *yaml.Node, what string, out *People) {
	p.mapping(n, what, []string{"teams", "users"}, func(key string, _, v *yaml.Node) {
		if key == "teams" {
			if l, ok := p.list(v, what+".teams", p.team(what+".teams")); ok {
				out.Teams = l
			}
		} else if l, ok := p.list(v, what+".users", p.login(what+".users")); ok {
			out.Users = l
		}
	})
}

func (p *parser) login(what string) func(*yaml.Node, string) bool {
	return func(n *yaml.Node, s string) bool {
		if strings.ContainsAny(s, " \t\r\n/@") {
			p.errorf(n, "%s: %q is not a GitHub login (write it without @, spaces or /)", what, s)
			return false
		}
		return true
	}
}

func (p *parser) team(what string) func(*yaml.Node, string) bool {
	return func(n *yaml.Node, s string) bool {
		parts := strings.Split(s, "/")
		bad := len(parts) > 2 || strings.ContainsAny(s, " \t\r\n@")
		for _, part := range parts {
			bad = bad || part == ""
		}
		if bad {
			p.errorf(n, "%s: %q is not a team: use \"team-slug\" (the repository's organisation) or \"org/team-slug\"", what, s)
			return false
		}
		return true
	}
}

func (p *parser) pathGlob(what string) func(*yaml.Node, string) bool {
	return func(n *yaml.Node, s string) bool {
		if _, err := path.Match(s, ""); err != nil {
			p.errorf(n, "%s: bad glob %q: %v", what, s, err)
			return false
		}
		return true
	}
}

func (p *parser) branchGlob(what string) func(*yaml.Node, string) bool {
	return func(n *yaml.Node, s string) bool {
		err := checkGlob(s) // its messages say what is wrong
		if err == nil {
			err = calendar.CheckBranchGlob(s)
		}
		if err != nil {
			p.errorf(n, "%s: bad branch pattern %q: %v", what, s, err)
			return false
		}
		return true
	}
}

func (p *parser) fileGlob(what string) func(*yaml.Node, string) bool {
	return func(n *yaml.Node, s string) bool {
		if err := checkGlob(s); err != nil {
			p.errorf(n, "%s: bad glob %q: %v", what, s, err)
			return false
		}
		if w := Wildcards(s); w > MaxWildcards {
			p.errorf(n, "%s: glob %q has %d wildcards (* or ?, not counting **); at most %d: matching one against a long file name an agent chose grows with each", what, s, w, MaxWildcards)
			return false
		}
		return true
	}
}

// MaxWildcards bounds the single wildcards (* or ?) of a quarantine_files
// glob. A backtracking glob matcher's cost grows polynomially with them, and
// the file names it is matched against are written by the agents the guard
// watches. (The guard itself matches these globs as regular expressions, in
// time linear in the file name; the bound keeps them simple all the same.)
const MaxWildcards = 3

// Wildcards counts the * and ? of a glob that are not part of ** and not
// escaped.
func Wildcards(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '?':
			n++
		case '*':
			if i+1 < len(s) && s[i+1] == '*' {
				i++
				continue
			}
			n++
		}
	}
	return n
}

// checkGlob checks the syntax of an OPA glob.match pattern: balanced
// brackets and braces, no empty class, no trailing backslash.
func checkGlob(s string) error {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return errors.New("trailing backslash")
			}
			i++
		case '[':
			j := i + 1
			if j < len(s) && (s[j] == '!' || s[j] == '^') {
				j++
			}
			end := strings.IndexByte(s[j:], ']')
			if end < 0 {
				return errors.New("unclosed [")
			}
			if end == 0 {
				return errors.New("empty character class []")
			}
			i = j + end
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
			}
		}
	}
	if depth > 0 {
		return errors.New("unclosed {")
	}
	return nil
}

func (p *parser) businessHours(n *yaml.Node, bh *BusinessHours) {
	var startNode, endNode *yaml.Node
	startOK, endOK := true, true
	p.mapping(n, "business_hours", []string{"days", "start", "end", "holidays"}, func(key string, _, v *yaml.Node) {
		what := "business_hours." + key
		switch key {
		case "days":
			var days []time.Weekday
			if _, ok := p.list(v, what, func(item *yaml.Node, s string) bool {
				d, err := calendar.ParseDay(s)
				if err != nil {
					p.errorf(item, "%s: %v", what, err)
					return false
				}
				if !slices.Contains(days, d) {
					days = append(days, d)
				}
				return true
			}); ok {
				slices.Sort(days)
				bh.Days = append([]time.Weekday{}, days...)
			}
		case "start", "end":
			s, ok := p.str(v, what)
			if ok {
				if _, err := calendar.ParseClock(s); err != nil {
					p.errorf(resolve(v), "%s: %v", what, err)
					ok = false
				}
			}
			if key == "start" {
				startNode, startOK = resolve(v), ok
				if ok {
					bh.Start = s
				}
			} else {
				endNode, endOK = resolve(v), ok
				if ok {
					bh.End = s
				}
			}
		case "holidays":
			if l, ok := p.list(v, what, func(item *yaml.Node, s string) bool {
				if _, err := time.Parse(time.DateOnly, s); err != nil {
					p.errorf(item, "%s: %q is not a date: use YYYY-MM-DD", what, s)
					return false
				}
				return true
			}); ok {
				bh.Holidays = l
			}
		}
	})
	if !startOK || !endOK {
		return
	}
	start, _ := calendar.ParseClock(bh.Start)
	end, _ := calendar.ParseClock(bh.End)
	if start >= end {
		at := startNode
		if at == nil {
			at = endNode
		}
		p.errorf(at, "business_hours.start %q must be before end %q", bh.Start, bh.End)
	}
}

func (p *parser) freezes(n *yaml.Node) []Freeze {
	n = resolve(n)
	out := []Freeze{}
	if isNull(n) {
		return out
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "freezes must be a list of freezes, not %s", kindName(n))
		return out
	}
	names := map[string]int{}
	for i, item := range n.Content {
		item = resolve(item)
		what := fmt.Sprintf("freezes[%d]", i)
		f, nameNode, ok := p.freeze(item, what)
		if nameNode != nil {
			if first, dup := names[f.Name]; dup {
				p.errorf(nameNode, "duplicate freeze name %q (first at line %d)", f.Name, first)
				ok = false
			} else {
				names[f.Name] = nameNode.Line
			}
		}
		if ok {
			out = append(out, f)
		}
	}
	return out
}

func (p *parser) freeze(n *yaml.Node, what string) (f Freeze, nameNode *yaml.Node, ok bool) {
	errs := len(p.errs)
	f = Freeze{Branches: []string{}, AppliesTo: calendar.AppliesToAgents}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping with name and weekly or from/to, not %s", what, kindName(n))
		return f, nil, false
	}
	var weekly, from, to *yaml.Node
	nameSeen := false
	p.mapping(n, what, []string{"name", "weekly", "from", "to", "branches", "applies_to"}, func(key string, _, v *yaml.Node) {
		switch key {
		case "name":
			nameSeen = true
			if s, ok := p.str(v, what+".name"); ok {
				if strings.TrimSpace(s) == "" {
					p.errorf(resolve(v), "%s.name must not be empty", what)
				} else {
					f.Name, nameNode = s, resolve(v)
				}
			}
		case "weekly":
			weekly = v
		case "from":
			from = v
		case "to":
			to = v
		case "branches":
			if l, ok := p.list(v, what+".branches", p.branchGlob(what+".branches")); ok {
				f.Branches = l
			}
		case "applies_to":
			if s, ok := p.str(v, what+".applies_to"); ok {
				switch s {
				case calendar.AppliesToAgents, calendar.AppliesToEveryone:
					f.AppliesTo = s
				default:
					p.errorf(resolve(v), "%s.applies_to %q is not valid: use agents or everyone", what, s)
				}
			}
		}
	})
	label := what
	if f.Name != "" {
		label = fmt.Sprintf("%s (%s)", what, f.Name)
	} else if !nameSeen {
		p.errorf(n, "%s needs a name", what)
	}
	switch {
	case weekly != nil && (from != nil || to != nil):
		p.errorf(n, "%s has both weekly and from/to: use one of them", label)
	case weekly != nil:
		f.Weekly = p.weekly(weekly, what+".weekly")
	case from == nil && to == nil:
		p.errorf(n, "%s needs either weekly: {from, to} or from: and to: (RFC 3339)", label)
	case from == nil || to == nil:
		p.errorf(n, "%s needs both from and to", label)
	default:
		var okFrom, okTo bool
		f.From, okFrom = p.instant(from, what+".from")
		f.To, okTo = p.instant(to, what+".to")
		if okFrom && okTo && !f.To.After(f.From) {
			p.errorf(resolve(to), "%s.to %s must be after from %s", what, f.To.Format(time.RFC3339), f.From.Format(time.RFC3339))
		}
	}
	return f, nameNode, len(p.errs) == errs
}

func (p *parser) instant(n *yaml.Node, what string) (time.Time, bool) {
	s, ok := p.str(n, what)
	if !ok {
		return time.Time{}, false
	}
	// RFC 3339 allows a lower-case t and z; Go's layout does not.
	t, err := time.Parse(time.RFC3339, strings.ToUpper(s))
	if err != nil {
		p.errorf(resolve(n), "%s %q is not an RFC 3339 time like \"2026-12-20T00:00:00-05:00\"", what, s)
		return time.Time{}, false
	}
	return t, true
}

func (p *parser) weekly(n *yaml.Node, what string) *WeeklyFreeze {
	var w WeeklyFreeze
	var toNode *yaml.Node
	seen := map[string]bool{}
	valid := 0
	if rn := resolve(n); rn.Kind != yaml.MappingNode && !isNull(rn) {
		p.errorf(rn, "%s must be a mapping like {from: \"fri 16:00\", to: \"mon 08:00\"}, not %s", what, kindName(rn))
		return nil
	}
	p.mapping(n, what, []string{"from", "to"}, func(key string, _, v *yaml.Node) {
		seen[key] = true
		s, ok := p.str(v, what+"."+key)
		if !ok {
			return
		}
		if _, _, err := calendar.ParseDayTime(s); err != nil {
			p.errorf(resolve(v), "%s.%s: %v", what, key, err)
			return
		}
		valid++
		if key == "from" {
			w.From = s
		} else {
			w.To, toNode = s, resolve(v)
		}
	})
	if !seen["from"] || !seen["to"] {
		p.errorf(resolve(n), "%s needs both from and to, like {from: \"fri 16:00\", to: \"mon 08:00\"}", what)
		return nil
	}
	if valid != 2 {
		return nil
	}
	fd, fm, _ := calendar.ParseDayTime(w.From)
	td, tm, _ := calendar.ParseDayTime(w.To)
	if calendar.SameWeekMinute(fd, fm, td, tm) {
		p.errorf(toNode, "%s.to %q must differ from from %q", what, w.To, w.From)
		return nil
	}
	return &w
}
