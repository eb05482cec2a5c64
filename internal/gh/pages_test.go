package gh

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/pr"
)

// pages follows next links, and a full page without one; it stops at a
// page that is not full and has no next link.
func TestPages(t *testing.T) {
	for _, tt := range []struct {
		name  string
		sizes []int // items on page 1, 2, …
		next  bool  // pages carry next links (all but the last)
		want  []int // pages asked for
	}{
		{"one short page", []int{2}, false, []int{1}},
		{"empty", []int{0}, false, []int{1}},
		{"next links", []int{3, 3, 1}, true, []int{1, 2, 3}},
		{"a full page without a next link is followed", []int{3, 3, 0}, false, []int{1, 2, 3}},
		{"and so is a full one after it", []int{3, 3, 2}, false, []int{1, 2, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opt := &github.ListOptions{PerPage: 3}
			var asked []int
			err := pages(opt, func() (int, *github.Response, error) {
				p := max(opt.Page, 1)
				asked = append(asked, p)
				if p > len(tt.sizes) {
					t.Fatalf("asked for page %d of %d", p, len(tt.sizes))
				}
				resp := &github.Response{}
				if tt.next && p < len(tt.sizes) {
					resp.NextPage = p + 1
				}
				return tt.sizes[p-1], resp, nil
			})
			if err != nil || !slices.Equal(asked, tt.want) {
				t.Fatalf("asked %v, %v; want %v", asked, err, tt.want)
			}
		})
	}
	boom := errors.New("boom")
	if err := pages(&github.ListOptions{PerPage: 3}, func() (int, *github.Response, error) { return 0, nil, boom }); err != boom {
		t.Fatalf("err %v", err)
	}
}

// A list whose first page is full and cached (ETag) grows past it: the
// page's body is unchanged, so GitHub answers 304, yet the new items are
// listed.
func TestListsGrowPastACachedFullPage(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	person := pr.Person{Name: "Alice", Account: pr.Account{Login: "alice", Type: "User"}}
	for i := 2; i <= perPage; i++ { // the harness's PR has one commit and one file
		h.s.AddCommit(repo, 1, pr.Commit{SHA: fmt.Sprintf("%040x", i), Message: "more", Author: person, Committer: person})
		h.s.AddFile(repo, 1, pr.File{Filename: fmt.Sprintf("a%03d.go", i), Status: "modified"})
	}
	cs, err := h.c.Facts("acme", "widgets", 1, nil).Commits(ctx)
	fs, ferr := h.c.Facts("acme", "widgets", 1, nil).Files(ctx)
	if err != nil || ferr != nil || len(cs) != perPage || len(fs) != perPage {
		t.Fatalf("%d commits (%v), %d files (%v); want %d of each", len(cs), err, len(fs), ferr, perPage)
	}
	agent := pr.Person{Name: "Bot", Account: pr.Account{Login: "helper[bot]", Type: "Bot"}}
	h.s.AddCommit(repo, 1, pr.Commit{SHA: fmt.Sprintf("%040x", 0xfff), Message: "sneak", Author: agent, Committer: agent})
	h.s.AddFile(repo, 1, pr.File{Filename: "zz_test.go", Status: "added", Patch: "@@ -0,0 +1,1 @@\n+t.Skip()"})

	cs, err = h.c.Facts("acme", "widgets", 1, nil).Commits(ctx)
	fs, ferr = h.c.Facts("acme", "widgets", 1, nil).Files(ctx)
	if err != nil || ferr != nil || len(cs) != perPage+1 || len(fs) != perPage+1 {
		t.Fatalf("after growing: %d commits (%v), %d files (%v); want %d of each", len(cs), err, len(fs), ferr, perPage+1)
	}
	if cs[perPage].Author.Account.Login != "helper[bot]" || fs[perPage].Filename != "zz_test.go" {
		t.Fatalf("last commit %+v, last file %+v", cs[perPage], fs[perPage])
	}
}

// GitHub lists at most 3,000 files of a pull request. With more, and a PR
// that carries no count (a review payload's), the count is read and the
// list refused as cut short.
func TestFilesCutShortAtTheCap(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	for i := 2; i <= MaxListedFiles+1; i++ {
		h.s.AddFile(repo, 1, pr.File{Filename: fmt.Sprintf("f%04d.go", i), Status: "added"})
	}
	known := &pr.PullRequest{Number: 1, HeadSHA: head} // no counts
	_, err := h.c.Facts("acme", "widgets", 1, known).Files(ctx)
	if !errors.Is(err, ErrListCut) {
		t.Fatalf("err %v, want ErrListCut", err)
	}
}

// EnsureComment posts once also when the first page of comments
// was full and cached before its own comment went to the second page.
func TestEnsureCommentAfterAFullCachedPage(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	for i := 1; i < perPage; i++ {
		h.s.AddComment(repo, 1, pr.Account{Login: "alice", Type: "User"}, fmt.Sprintf("comment %d", i))
	}
	if _, err := h.c.EnsureComment(ctx, "acme", "widgets", 1, "other", "another marker"); err != nil {
		t.Fatal(err) // 100 comments now: page 1 is full and cached
	}
	for range 2 {
		if _, err := h.c.EnsureComment(ctx, "acme", "widgets", 1, "escalation-1", "held for a human"); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, c := range h.s.Comments(repo, 1) {
		if strings.Contains(c.Body, Marker("escalation-1")) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d comments with the marker, want 1", n)
	}
}
