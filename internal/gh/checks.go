package gh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/google/go-github/v62/github"
)

// CheckRun is the check run to publish.
type CheckRun struct {
	ID                                                                              int64
	Name, HeadSHA, ExternalID, Status, Conclusion, Title, Summary, Text, DetailsURL string
	Actions                                                                         []Action
}

// Action is a requested action (button) of a check run.
type Action struct{ Label, Description, Identifier string }

// GitHub's limits on check runs.
const (
	maxCheckText   = 65535
	maxActions     = 3
	maxActionLabel = 20
	maxActionDesc  = 40
	maxActionIdent = 20
	truncated      = "\n\n… (truncated)"
)

// checkRunBody is the JSON of POST and PATCH check-runs. Actions is always
// sent (an empty list removes the buttons of an earlier decision).
type checkRunBody struct {
	Name       string        `json:"name"`
	HeadSHA    string        `json:"head_sha,omitempty"`
	DetailsURL string        `json:"details_url,omitempty"`
	ExternalID string        `json:"external_id,omitempty"`
	Status     string        `json:"status,omitempty"`
	Conclusion string        `json:"conclusion,omitempty"`
	Output     *checkRunOut  `json:"output,omitempty"`
	Actions    []checkAction `json:"actions"`
}

type checkRunOut struct {
	Title   string `json:"title"`
	Summary string `json:"summary"`
	Text    string `json:"text,omitempty"`
}

type checkAction struct {
	Label       string `json:"label"`
	Description string `json:"description"`
	Identifier  string `json:"identifier"`
}

// clip cuts s to GitHub's limit on output text, in characters.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= maxCheckText {
		return s
	}
	r := []rune(s)
	return string(r[:maxCheckText-utf8.RuneCountInString(truncated)]) + truncated
}

func (run CheckRun) body(create bool) (*checkRunBody, error) {
	if run.Name == "" {
		return nil, errors.New("check run: name is required")
	}
	if run.HeadSHA == "" && create {
		return nil, errors.New("check run: head SHA is required")
	}
	if len(run.Actions) > maxActions {
		return nil, fmt.Errorf("check run: %d actions, GitHub allows %d", len(run.Actions), maxActions)
	}
	b := &checkRunBody{Name: run.Name, DetailsURL: run.DetailsURL, ExternalID: run.ExternalID, Status: run.Status, Conclusion: run.Conclusion, Actions: []checkAction{}}
	if create {
		b.HeadSHA = run.HeadSHA
	}
	if b.Conclusion != "" {
		b.Status = "completed"
	}
	if b.Status == "completed" && b.Conclusion == "" {
		return nil, errors.New("check run: a completed run needs a conclusion")
	}
	if run.Title != "" || run.Summary != "" || run.Text != "" {
		out := &checkRunOut{Title: run.Title, Summary: run.Summary, Text: clip(run.Text)}
		if out.Title == "" {
			out.Title = run.Name
		}
		if out.Summary == "" {
			out.Summary = out.Title
		}
		out.Summary = clip(out.Summary)
		b.Output = out
	}
	for _, a := range run.Actions {
		if a.Label == "" || utf8.RuneCountInString(a.Label) > maxActionLabel ||
			a.Description == "" || utf8.RuneCountInString(a.Description) > maxActionDesc ||
			a.Identifier == "" || utf8.RuneCountInString(a.Identifier) > maxActionIdent {
			return nil, fmt.Errorf("check run: action %q: label (1-%d), description (1-%d) and identifier (1-%d characters) are required", a.Label, maxActionLabel, maxActionDesc, maxActionIdent)
		}
		b.Actions = append(b.Actions, checkAction(a))
	}
	return b, nil
}

// PublishCheck creates or updates the check run: with ID != 0 it PATCHes it; otherwise it looks
// for a run by name on HeadSHA made by this app (GET commits/{sha}/check-runs?check_name=…&app_id=…)
// and PATCHes it, else POSTs a new one. fresh=true always POSTs (check_run rerequested).
//
// A given ID that GitHub no longer knows (404) falls back to the lookup. A
// POST that fails without a clear answer (5xx, lost connection) is retried
// only after looking again (by name and SHA; for fresh runs, by
// ExternalID), so a run is never created twice.
func (c *Client) PublishCheck(ctx context.Context, owner, repo string, run CheckRun, fresh bool) (id int64, err error) {
	what := fmt.Sprintf("publish check run %q on %s/%s@%s", run.Name, owner, repo, run.HeadSHA)
	if _, err := run.body(true); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if run.ID != 0 && !fresh {
		err := c.updateCheck(ctx, owner, repo, run.ID, run)
		if err == nil {
			return run.ID, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
	}
	if !fresh {
		id, err := c.findCheck(ctx, owner, repo, run.Name, run.HeadSHA, "")
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		if id != 0 {
			if err := c.updateCheck(ctx, owner, repo, id, run); err != nil {
				return 0, fmt.Errorf("%s: %w", what, err)
			}
			return id, nil
		}
	}
	id, err = c.createCheck(ctx, owner, repo, run, fresh)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return id, nil
}

// findCheck returns the newest run named name on sha made by this app (and,
// when externalID is set, carrying it), or 0.
func (c *Client) findCheck(ctx context.Context, owner, repo, name, sha, externalID string) (int64, error) {
	appID := c.app.o.AppID
	opt := &github.ListCheckRunsOptions{CheckName: &name, AppID: &appID, Filter: github.String("latest"), ListOptions: github.ListOptions{PerPage: perPage}}
	if externalID != "" {
		opt.Filter = github.String("all")
	}
	for {
		res, resp, err := c.gh.Checks.ListCheckRunsForRef(ctx, owner, repo, sha, opt)
		if err != nil {
			return 0, wrap("find check run", err)
		}
		for _, r := range res.CheckRuns {
			if r.GetApp().GetID() != 0 && r.GetApp().GetID() != appID {
				continue
			}
			if externalID == "" || r.GetExternalID() == externalID {
				return r.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opt.Page = resp.NextPage
	}
}

func (c *Client) updateCheck(ctx context.Context, owner, repo string, id int64, run CheckRun) error {
	body, err := run.body(false)
	if err != nil {
		return err
	}
	u := "repos/" + pathEscape(owner) + "/" + pathEscape(repo) + "/check-runs/" + strconv.FormatInt(id, 10)
	req, err := c.gh.NewRequest(http.MethodPatch, u, body)
	if err != nil {
		return wrap("update check run", err)
	}
	if _, err := c.gh.Do(ctx, req, nil); err != nil {
		return wrap("update check run "+strconv.FormatInt(id, 10), err)
	}
	return nil
}

func (c *Client) createCheck(ctx context.Context, owner, repo string, run CheckRun, fresh bool) (int64, error) {
	body, err := run.body(true)
	if err != nil {
		return 0, err
	}
	u := "repos/" + pathEscape(owner) + "/" + pathEscape(repo) + "/check-runs"
	for attempt := 0; ; attempt++ {
		req, err := c.gh.NewRequest(http.MethodPost, u, body)
		if err != nil {
			return 0, wrap("create check run", err)
		}
		var created github.CheckRun
		_, err = c.gh.Do(ctx, req, &created)
		if err == nil {
			return created.GetID(), nil
		}
		err = wrap("create check run", err)
		if !errors.Is(err, ErrUnavailable) || attempt >= c.app.o.MaxRetries {
			return 0, err
		}
		// The POST may have landed: look before posting again.
		if err := c.app.tr.wait(ctx, http.MethodPost, "/repos/{owner}/{repo}/check-runs", 0, attempt, c.app.tr.backoff(attempt), "create check run: unknown outcome"); err != nil {
			return 0, err
		}
		if fresh && run.ExternalID == "" {
			continue // nothing identifies this run: a duplicate is the lesser evil than none
		}
		ext := ""
		if fresh {
			ext = run.ExternalID
		}
		id, ferr := c.findCheck(ctx, owner, repo, run.Name, run.HeadSHA, ext)
		if ferr != nil {
			return 0, ferr
		}
		if id != 0 {
			if err := c.updateCheck(ctx, owner, repo, id, run); err != nil {
				return 0, err
			}
			return id, nil
		}
	}
}
