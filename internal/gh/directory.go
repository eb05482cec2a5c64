package gh

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mergeguard/guard/internal/pr"
)

// Directory answers team membership (state active only) and repo
// permission, cached with a size bound and TTL, shared across evaluations;
// safe for concurrent use. Only answers are cached, never failures.
func (c *Client) Directory() pr.Directory { return c.dir }

type directory struct {
	c   *Client
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	lru   *list.List // of *dirEntry, most recent first
	items map[string]*list.Element
}

type dirEntry struct {
	key     string
	value   string
	expires time.Time
}

var _ pr.Directory = (*directory)(nil)

func newDirectory(c *Client, ttl time.Duration, max int) *directory {
	return &directory{c: c, ttl: ttl, max: max, now: time.Now, lru: list.New(), items: map[string]*list.Element{}}
}

func (d *directory) get(key string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	el, ok := d.items[key]
	if !ok {
		return "", false
	}
	e := el.Value.(*dirEntry)
	if !d.now().Before(e.expires) {
		d.lru.Remove(el)
		delete(d.items, key)
		return "", false
	}
	d.lru.MoveToFront(el)
	return e.value, true
}

func (d *directory) put(key, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.items[key]; ok {
		d.lru.Remove(el)
	}
	d.items[key] = d.lru.PushFront(&dirEntry{key: key, value: value, expires: d.now().Add(d.ttl)})
	for d.lru.Len() > d.max {
		el := d.lru.Back()
		d.lru.Remove(el)
		delete(d.items, el.Value.(*dirEntry).key)
	}
}

// IsTeamMember reports whether login is an active member of org/team (a
// pending invitation is not membership; 404 means not a member).
func (d *directory) IsTeamMember(ctx context.Context, org, team, login string) (bool, error) {
	if org == "" || team == "" || login == "" {
		return false, errors.New("team membership: org, team and login are required")
	}
	key := strings.ToLower("team\x00" + org + "\x00" + team + "\x00" + login)
	if v, ok := d.get(key); ok {
		return v == "active", nil
	}
	m, resp, err := d.c.gh.Teams.GetTeamMembershipBySlug(ctx, org, team, login)
	state := m.GetState()
	if err != nil {
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			return false, wrap("team membership of "+login+" in "+org+"/"+team, err)
		}
		// GitHub answers 404 both for "not a member" and for a team that
		// does not exist (renamed, a typo, an account that is no
		// organisation): the latter must not make everyone a non-member.
		if err := d.teamExists(ctx, org, team); err != nil {
			return false, err
		}
		state = "none"
	}
	d.put(key, state)
	return state == "active", nil
}

// teamExists returns an error unless org/team is a team the app can see
// (cached like memberships).
func (d *directory) teamExists(ctx context.Context, org, team string) error {
	key := strings.ToLower("teamexists\x00" + org + "\x00" + team)
	v, ok := d.get(key)
	if !ok {
		_, resp, err := d.c.gh.Teams.GetTeamBySlug(ctx, org, team)
		switch {
		case err == nil:
			v = "yes"
		case resp != nil && resp.StatusCode == http.StatusNotFound:
			v = "no"
		default:
			return wrap("team "+org+"/"+team, err)
		}
		d.put(key, v)
	}
	if v != "yes" {
		return fmt.Errorf("team %s/%s does not exist or the app cannot see it (check the team slug in guard.yaml, and that the app has the Members: read permission)", org, team)
	}
	return nil
}

// Permission returns login's role on owner/repo: admin, maintain, write,
// triage, read or none (GitHub's role_name, which distinguishes maintain
// and triage; the legacy permission field when role_name is absent).
func (d *directory) Permission(ctx context.Context, owner, repo, login string) (string, error) {
	if owner == "" || repo == "" || login == "" {
		return "", errors.New("repository permission: owner, repo and login are required")
	}
	key := strings.ToLower("perm\x00" + owner + "/" + repo + "\x00" + login)
	if v, ok := d.get(key); ok {
		return v, nil
	}
	req, err := d.c.gh.NewRequest(http.MethodGet, "repos/"+pathEscape(owner)+"/"+pathEscape(repo)+"/collaborators/"+pathEscape(login)+"/permission", nil)
	if err != nil {
		return "", wrap("permission of "+login+" on "+owner+"/"+repo, err)
	}
	var body struct {
		Permission string `json:"permission"`
		RoleName   string `json:"role_name"`
	}
	resp, err := d.c.gh.Do(ctx, req, &body)
	role := body.RoleName
	if role == "" {
		role = body.Permission
	}
	if err != nil {
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			return "", wrap("permission of "+login+" on "+owner+"/"+repo, err)
		}
		role = "none"
	}
	if role == "" {
		role = "none"
	}
	d.put(key, role)
	return role, nil
}
