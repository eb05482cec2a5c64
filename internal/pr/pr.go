// Package pr holds the facts about a pull request that policies decide on and
// the decision types they produce. It imports nothing of this module, so every
// other package may depend on it.
//
// The JSON shape of Input is the policy input document (version 1) documented
// in policies/README.md; it is a public interface: fields may be added, never
// renamed or removed without bumping InputVersion.
package pr

import (
	"context"
	"time"
)

// Outcome is what the guard decides for a pull request.
type Outcome string

// The outcomes, from least to most severe. Error is never produced by a
// policy: it records that the guard could not decide (and so fails closed).
const (
	Allow    Outcome = "allow"
	Escalate Outcome = "escalate"
	Block    Outcome = "block"
	Error    Outcome = "error"
)

// Severity orders outcomes: allow < escalate < block < error. Unknown
// outcomes rank as error so that nothing unknown is ever reported as success.
func (o Outcome) Severity() int {
	switch o {
	case Allow:
		return 0
	case Escalate:
		return 1
	case Block:
		return 2
	default:
		return 3
	}
}

// Valid reports whether o is one of the four outcomes.
func (o Outcome) Valid() bool {
	switch o {
	case Allow, Escalate, Block, Error:
		return true
	}
	return false
}

// Worst returns the more severe of a and b.
func Worst(a, b Outcome) Outcome {
	if b.Severity() > a.Severity() {
		return b
	}
	return a
}

// Reason is one rule's finding.
type Reason struct {
	Rule    string  `json:"rule"`
	Outcome Outcome `json:"outcome"`
	Message string  `json:"message"`
	// Freeze names the freeze a block reason stems from (merge_freeze,
	// incident_freeze), so that an override can be bound to it.
	Freeze string `json:"freeze,omitempty"`
	// Until is when the condition behind the reason ends by itself, if known
	// (a freeze's end), RFC 3339.
	Until string `json:"until,omitempty"`
	// Matches are the added lines a rule matched (file, line, text). They are
	// the only patch text the audit trail keeps.
	Matches []Match `json:"matches,omitempty"`
}

// Match is an added line that a rule matched.
type Match struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Text string `json:"text"`
}

// Decision is the result of data.guard.decision: the most severe reason wins.
type Decision struct {
	Outcome Outcome  `json:"outcome"`
	Reasons []Reason `json:"reasons"`
}

// Rules returns the rule ids of the reasons, in order, without duplicates.
func (d Decision) Rules() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range d.Reasons {
		if !seen[r.Rule] {
			seen[r.Rule] = true
			out = append(out, r.Rule)
		}
	}
	return out
}

// InputVersion is the version of the policy input document.
const InputVersion = 1

// Account is a GitHub account as the policies see it.
type Account struct {
	Login string `json:"login"`
	// Type is GitHub's account type: "User", "Bot" or "Organization".
	Type string `json:"type"`
	// Agent is true when the configuration classifies the account as an
	// agent (agents.logins, agents.teams, agents.all_bots, minus agents.exclude).
	Agent bool `json:"agent"`
}

// Repository names a repository.
type Repository struct {
	Owner         string `json:"owner"`
	Name          string `json:"name"`
	FullName      string `json:"full_name"`
	DefaultBranch string `json:"default_branch"`
	Private       bool   `json:"private"`
}

// AutoMerge is set when auto-merge is enabled on the pull request.
type AutoMerge struct {
	EnabledBy   Account `json:"enabled_by"`
	MergeMethod string  `json:"merge_method"`
}

// PullRequest is the pull request's current state.
type PullRequest struct {
	Number    int        `json:"number"`
	Title     string     `json:"title"`
	State     string     `json:"state"` // open, closed
	Draft     bool       `json:"draft"`
	Merged    bool       `json:"merged"`
	Author    Account    `json:"author"`
	HeadSHA   string     `json:"head_sha"`
	HeadRef   string     `json:"head_ref"`
	HeadRepo  string     `json:"head_repo"` // owner/name of the head; differs from the base repo for forks
	BaseRef   string     `json:"base_ref"`
	BaseSHA   string     `json:"base_sha"`
	Labels    []string   `json:"labels"`
	AutoMerge *AutoMerge `json:"auto_merge"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	// How many commits and changed files GitHub counts for the PR (0:
	// unknown, as in PR lists): its commit and file lists stop at 250 and
	// 3,000, and facts cut short are an error, not a smaller PR.
	CommitCount      int `json:"-"`
	ChangedFileCount int `json:"-"`
}

// Person is a commit's author or committer: the git identity and, when GitHub
// could map it, the account.
type Person struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	// Account is empty (Login "") when GitHub could not map the identity.
	Account Account   `json:"account"`
	Date    time.Time `json:"date"`
}

// Commit is a commit of the pull request.
type Commit struct {
	SHA       string `json:"sha"`
	Message   string `json:"message"`
	Author    Person `json:"author"`
	Committer Person `json:"committer"`
	// Parents are the SHAs of the commit's parents (two or more for a
	// merge commit); the guard tells by them which commits a human's
	// approval of a later commit includes.
	Parents []string `json:"parents"`
}

// Review is a pull request review.
type Review struct {
	ID          int64     `json:"id"`
	User        Account   `json:"user"`
	State       string    `json:"state"` // APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
	CommitID    string    `json:"commit_id"`
	SubmittedAt time.Time `json:"submitted_at"`
	// Approver is true when escalation.approvers is empty, or the reviewer is
	// one of its users or an active member of one of its teams.
	Approver bool `json:"approver"`
}

// Line is an added line of a patch, numbered in the new file.
type Line struct {
	Number int    `json:"number"`
	Text   string `json:"text"`
}

// File is a changed file of the pull request.
type File struct {
	Filename string `json:"filename"`
	Status   string `json:"status"` // added, modified, removed, renamed, ...
	// PreviousFilename is the path before a rename (not in the policy input:
	// quarantine.Annotate marks a test renamed to a non-test name).
	PreviousFilename string `json:"-"`
	Additions        int    `json:"additions"`
	Deletions        int    `json:"deletions"`
	// Patch is the unified diff GitHub returned (may be empty for binary or
	// very large files). It is not part of the policy input: AddedLines is.
	Patch string `json:"-"`
	// AddedLines are the lines the patch adds. After quarantine.Annotate
	// they are kept only for test and quarantine-list files; other files
	// have an empty list (Additions and Deletions still count them).
	AddedLines []Line `json:"added_lines"`
	// Test is true when the path is a test file (set by quarantine.Annotate).
	Test bool `json:"test"`
	// QuarantineList is true when the path matches one of
	// Input.QuarantineFiles (set by quarantine.Annotate).
	QuarantineList bool `json:"quarantine_list"`
	// Markers are the added lines that skip or quarantine tests, in line
	// order, at most one per line (set by quarantine.Annotate).
	Markers []Marker `json:"markers"`
}

// Marker is an added line that skips or quarantines tests.
type Marker struct {
	Line int    `json:"line"`
	Text string `json:"text"`
	// Kind names what was found: "<language>:<marker>" for a skip marker in
	// a test file ("go:t.Skip", "python:pytest.mark.skip", "js:it.skip",
	// "java:@Disabled", "rust:#[ignore]", ...), or "quarantine-list" for a
	// non-blank added line of a quarantine-list file, or, with line 0, a
	// whole file: "removed-test" (a test file deleted), "renamed-test" (a
	// test file renamed to a name that is no test), "unreadable-patch" (a
	// test or quarantine-list file with added lines GitHub sent no patch
	// for, so they cannot be checked).
	Kind string `json:"kind"`
}

// Override is a human's approval or override recorded for this PR.
type Override struct {
	Kind    string    `json:"kind"` // approve, override
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason"`
	HeadSHA string    `json:"head_sha"`
	BaseRef string    `json:"base_ref"`
	Rules   []string  `json:"rules"`   // for override: the block rules it clears
	Freezes []string  `json:"freezes"` // for override: the freezes it clears
	At      time.Time `json:"at"`
}

// Freeze is a freeze active at the evaluation time for the PR's base branch.
type Freeze struct {
	Name string `json:"name"`
	// Kind: "weekly", "window" (absolute from/to) or "incident" (declared).
	Kind      string `json:"kind"`
	AppliesTo string `json:"applies_to"` // agents, everyone
	From      string `json:"from,omitempty"`
	Until     string `json:"until,omitempty"` // RFC 3339; empty: until ended by hand
	Reason    string `json:"reason,omitempty"`
	By        string `json:"by,omitempty"`
}

// Clock is the time facts of the evaluation, computed on the Go side so that
// policies stay deterministic.
type Clock struct {
	Now           string   `json:"now"`   // RFC 3339 UTC
	Local         string   `json:"local"` // RFC 3339 in the configured zone
	Timezone      string   `json:"timezone"`
	Weekday       string   `json:"weekday"` // mon..sun
	BusinessHours bool     `json:"business_hours"`
	Holiday       bool     `json:"holiday"`
	Freezes       []Freeze `json:"freezes"`
	NextBoundary  string   `json:"next_boundary,omitempty"`
}

// Event is the trigger of the evaluation.
type Event struct {
	Name   string  `json:"name"`   // webhook event name, or "schedule"
	Action string  `json:"action"` // webhook action
	Sender Account `json:"sender"`
}

// Input is the policy input document.
type Input struct {
	Version     int         `json:"version"`
	Event       Event       `json:"event"`
	Repository  Repository  `json:"repository"`
	PullRequest PullRequest `json:"pull_request"`
	// AgentPR is true when the author is an agent, or an agent pushed to the
	// PR since the last human approval; AgentReasons says why.
	AgentPR      bool       `json:"agent_pr"`
	AgentReasons []string   `json:"agent_reasons"`
	Commits      []Commit   `json:"commits"`
	Reviews      []Review   `json:"reviews"`
	Files        []File     `json:"files"`
	Overrides    []Override `json:"overrides"`
	Time         Clock      `json:"time"`
	// QuarantineFiles are globs of files whose added entries quarantine tests.
	QuarantineFiles []string `json:"quarantine_files"`
	// MarkedFiles are the indices into Files of the files with at least one
	// marker, ascending (set by quarantine.Annotate), so that policies need
	// not walk every changed file to find them.
	MarkedFiles []int `json:"marked_files"`
}

// Facts are what the guard knows about one pull request during one
// evaluation. Implementations fetch each fact at most once per value
// (GitHub-backed) or serve plain structs (tests, guard eval). They are not
// safe for concurrent use unless documented otherwise.
type Facts interface {
	PullRequest(ctx context.Context) (*PullRequest, error)
	Repository(ctx context.Context) (*Repository, error)
	Reviews(ctx context.Context) ([]Review, error)
	Commits(ctx context.Context) ([]Commit, error)
	Files(ctx context.Context) ([]File, error)
}

// Directory answers questions about people: team membership (active only)
// and repository permission. Implementations cache with a bound.
type Directory interface {
	// IsTeamMember reports whether login is an active member of org/team.
	IsTeamMember(ctx context.Context, org, team, login string) (bool, error)
	// Permission returns login's permission on owner/repo: admin, maintain,
	// write, triage, read or none.
	Permission(ctx context.Context, owner, repo, login string) (string, error)
}

// AddedLines returns the lines a unified diff adds, numbered in the new file.
// Lines of "\ No newline at end of file" and malformed hunks are skipped.
func AddedLines(patch string) []Line {
	var out []Line
	n := 0
	last := 0 // the highest new-file line number passed so far
	inHunk := false
	for len(patch) > 0 {
		line := patch
		if i := indexByte(patch, '\n'); i >= 0 {
			line, patch = patch[:i], patch[i+1:]
		} else {
			patch = ""
		}
		switch {
		case len(line) >= 2 && line[0] == '@' && line[1] == '@':
			n, inHunk = hunkStart(line)
			if n == 0 {
				n = 1 // "+0,0": an empty side; its lines, if any, start at 1
			}
			// Hunks run forward; one that starts before the lines already
			// passed is malformed and skipped, so line numbers stay unique.
			if n <= last {
				inHunk = false
			}
		case !inHunk:
		case len(line) > 0 && line[0] == '+':
			out = append(out, Line{Number: n, Text: line[1:]})
			last = n
			n++
		case len(line) > 0 && line[0] == '-':
		case len(line) > 0 && line[0] == '\\':
		default:
			last = n
			n++
		}
	}
	return out
}

// ValidOrgLogin reports whether s is an organization login as GitHub allows
// one: letters and digits, single hyphens between them, at most 39.
func ValidOrgLogin(s string) bool {
	if s == "" || len(s) > 39 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' && s[i-1] != '-':
		default:
			return false
		}
	}
	return true
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// hunkStart parses "@@ -a,b +c,d @@" and returns c.
func hunkStart(h string) (int, bool) {
	i := 0
	for i < len(h) && h[i] != '+' {
		i++
	}
	if i == len(h) {
		return 0, false
	}
	i++
	n := 0
	digits := 0
	for i < len(h) && h[i] >= '0' && h[i] <= '9' {
		n = n*10 + int(h[i]-'0')
		if n > 1<<30 {
			return 0, false
		}
		i++
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	return n, true
}
