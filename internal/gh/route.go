package gh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v62/github"
)

// routes are the route templates reported to OnCall; a path that matches
// none is reported as "other" so that metrics stay bounded.
var routes = splitRoutes([]string{
	"/app",
	"/app/installations",
	"/app/installations/{id}/access_tokens",
	"/app/hook/deliveries",
	"/app/hook/deliveries/{id}/attempts",
	"/app-manifests/{code}/conversions",
	"/installation/repositories",
	"/repos/{owner}/{repo}",
	"/repos/{owner}/{repo}/pulls",
	"/repos/{owner}/{repo}/pulls/{number}",
	"/repos/{owner}/{repo}/pulls/{number}/reviews",
	"/repos/{owner}/{repo}/pulls/{number}/commits",
	"/repos/{owner}/{repo}/pulls/{number}/files",
	"/repos/{owner}/{repo}/pulls/{number}/requested_reviewers",
	"/repos/{owner}/{repo}/issues/{number}/comments",
	"/repos/{owner}/{repo}/check-runs",
	"/repos/{owner}/{repo}/check-runs/{id}",
	"/repos/{owner}/{repo}/commits/{ref}/check-runs",
	"/repos/{owner}/{repo}/commits/{ref}/pulls",
	"/repos/{owner}/{repo}/compare/{basehead}",
	"/repos/{owner}/{repo}/collaborators/{user}/permission",
	"/repos/{owner}/{repo}/branches/{branch}/protection",
	"/repos/{owner}/{repo}/rules/branches/{branch}",
	"/orgs/{org}/teams/{team}/memberships/{user}",
})

type routeTemplate struct {
	text string
	segs []string
}

func splitRoutes(rs []string) []routeTemplate {
	out := make([]routeTemplate, len(rs))
	for i, r := range rs {
		out[i] = routeTemplate{text: r, segs: strings.Split(strings.TrimPrefix(r, "/"), "/")}
	}
	return out
}

// routeOf returns the template of an escaped request path under prefix.
func routeOf(escapedPath, prefix string) string {
	p := strings.TrimPrefix(escapedPath, prefix)
	segs := strings.Split(strings.Trim(p, "/"), "/")
next:
	for _, r := range routes {
		if len(r.segs) != len(segs) {
			continue
		}
		for i, s := range r.segs {
			if !strings.HasPrefix(s, "{") && s != segs[i] {
				continue next
			}
		}
		return r.text
	}
	return "other"
}

// classify wraps err (from go-github, ghinstallation or the transport) so
// that errors.Is answers ErrNotFound, ErrRateLimited or ErrUnavailable.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var rl *github.RateLimitError
	var ab *github.AbuseRateLimitError
	if errors.As(err, &rl) || errors.As(err, &ab) {
		return &Error{Kind: ErrRateLimited, Status: http.StatusForbidden, Err: err}
	}
	status := 0
	var er *github.ErrorResponse
	var he *ghinstallation.HTTPError
	switch {
	case errors.As(err, &er) && er.Response != nil:
		status = er.Response.StatusCode
	case errors.As(err, &he):
		if he.Response == nil {
			return &Error{Kind: ErrUnavailable, Err: err}
		}
		status = he.Response.StatusCode
	}
	switch {
	case status == http.StatusNotFound || status == http.StatusGone:
		return &Error{Kind: ErrNotFound, Status: status, Err: err}
	case status >= 500:
		return &Error{Kind: ErrUnavailable, Status: status, Err: err}
	case status == 0:
		var ue *url.Error
		if errors.As(err, &ue) {
			return &Error{Kind: ErrUnavailable, Err: err}
		}
	}
	return err
}

// wrap classifies err and adds context ("list reviews: ...").
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, classify(err))
}
