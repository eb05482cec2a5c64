package gh

import "github.com/google/go-github/v62/github"

// pages calls list for page 1, 2, … of a list (opt.PerPage items a page)
// until one is the last: one without a next link that is not full. A full
// page without a next link is followed all the same. A page answered 304
// comes from the ETag cache with the headers it was cached with, and its
// body, thus its ETag, stays the same when the list grows only past it:
// GitHub need not say that a next page has appeared since. Asking costs one
// request (an empty page) when a list holds a multiple of opt.PerPage.
func pages(opt *github.ListOptions, list func() (n int, resp *github.Response, err error)) error {
	for {
		n, resp, err := list()
		if err != nil {
			return err
		}
		switch {
		case resp.NextPage != 0:
			opt.Page = resp.NextPage
		case n > 0 && n >= opt.PerPage:
			opt.Page = max(opt.Page, 1) + 1
		default:
			return nil
		}
	}
}
