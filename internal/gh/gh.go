// Package gh is Merge Guard's GitHub client: go-github/v62 authenticated as
// a GitHub App (ghinstallation/v2) over a transport that makes GitHub's
// failure modes routine.
//
// Contract:
//
//   - Retries: 5xx answers and network errors are retried with exponential
//     backoff and jitter (at most MaxRetries times, each wait capped by
//     MaxWait) for requests that are safe to repeat: GET, HEAD, PUT, PATCH,
//     DELETE, and the POSTs that are idempotent in effect (installation
//     tokens, requested reviewers). Other POSTs (check runs, comments,
//     redeliveries, manifest conversions) are retried by the transport only
//     when GitHub certainly did not act on them: rate-limit answers and
//     connections that failed while dialling. PublishCheck and EnsureComment
//     make their POSTs safe themselves: after a 5xx or a lost answer they
//     look again (by name and SHA, by marker) before posting again, so a
//     POST that GitHub did apply is never duplicated.
//   - Rate limits: 429 and 403 secondary limits wait Retry-After (or a
//     minute when GitHub gives none); primary exhaustion (403/429 with
//     X-RateLimit-Remaining: 0) waits until X-RateLimit-Reset. A wait longer
//     than MaxWait is not attempted: the call fails at once with an error
//     that Is ErrRateLimited and says until when.
//   - Conditional requests: GET answers with an ETag are cached (bounded,
//     per installation); later GETs send If-None-Match and a 304 is served
//     from the cache and reported to OnCall with cached=true (GitHub does
//     not count it against the rate limit).
//   - Waits respect ctx: cancellation ends them at once with ctx's error.
//   - Errors are wrapped with short context and classify with errors.Is as
//     ErrNotFound, ErrRateLimited or ErrUnavailable (5xx or network after
//     retries). Neither errors nor logs ever contain tokens, JWTs or the
//     private key.
//
// App, Client and the Directory are safe for concurrent use; a Facts value
// is too, though it is meant for one evaluation.
package gh

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v62/github"
)

// Options configure an App.
type Options struct {
	BaseURL    string // https://api.github.com/ or https://HOST/api/v3/
	AppID      int64
	PrivateKey []byte            // PEM; a bad key is a clear error that never contains key material
	Transport  http.RoundTripper // base transport (tests); default http.DefaultTransport
	Logger     *slog.Logger
	MaxRetries int           // default 4
	MaxWait    time.Duration // cap for one backoff wait, default 60s
	// RequestTimeout bounds one attempt, its answer's body included
	// (default 30s; GitHub ends its own requests after 10 s): a connection
	// that never answers is a network error, not a worker held forever.
	RequestTimeout time.Duration
	// Sleep waits d or until ctx is done (then it returns ctx's error);
	// injectable for tests.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnCall is told about every answer GitHub gave (status 0: none, a
	// network error): route is a template like
	// "/repos/{owner}/{repo}/pulls/{number}", cached is true for a 304
	// served from the ETag cache, remaining is X-RateLimit-Remaining (-1
	// when absent). It must be fast and safe for concurrent use.
	OnCall func(method, route string, status int, cached bool, remaining int)
	// CacheEntries bounds the ETag cache (default 20,000 answers); its
	// bytes are bounded too (32 MiB, bodies compressed), which binds first
	// for typical answers: ~8,000 of them, enough for ~2,500 open agent PRs.
	CacheEntries int
	// DirectoryTTL is how long team memberships and permissions are cached
	// (default 5 minutes); DirectoryEntries bounds that cache (default 10000).
	DirectoryTTL     time.Duration
	DirectoryEntries int
}

// Defaults of Options.
const (
	DefaultBaseURL        = "https://api.github.com/"
	DefaultMaxRetries     = 4
	DefaultMaxWait        = 60 * time.Second
	DefaultRequestTimeout = 30 * time.Second
	DefaultCacheEntries   = 20000
	DefaultDirectoryTTL   = 5 * time.Minute
	defaultDirEntries     = 10000
	cacheBytes            = 32 << 20
)

// Errors a caller can classify with errors.Is.
var (
	// ErrNotFound: GitHub answered 404 or 410 (or the app cannot see it).
	ErrNotFound = errors.New("not found on GitHub")
	// ErrRateLimited: a rate limit would need a longer wait than allowed,
	// or retries ran out while limited.
	ErrRateLimited = errors.New("GitHub rate limit")
	// ErrUnavailable: GitHub answered 5xx or could not be reached, after
	// retries.
	ErrUnavailable = errors.New("GitHub unavailable")
)

// App is the GitHub App: its own JWT-authenticated client and one client
// per installation.
type App struct {
	o     Options
	key   *rsa.PrivateKey
	base  *url.URL
	tr    *transport
	app   *github.Client
	mu    sync.Mutex
	insts map[int64]*Client
}

// New checks o and returns the App. It does not contact GitHub.
func New(o Options) (*App, error) {
	if o.AppID <= 0 {
		return nil, errors.New("github app: app id must be a positive number (--app-id)")
	}
	key, err := parseKey(o.PrivateKey)
	if err != nil {
		return nil, err
	}
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if !strings.HasSuffix(o.BaseURL, "/") {
		o.BaseURL += "/"
	}
	base, err := url.Parse(o.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("github app: base URL %q is not an http(s) URL such as %s or https://HOST/api/v3/", o.BaseURL, DefaultBaseURL)
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.CacheEntries <= 0 {
		o.CacheEntries = DefaultCacheEntries
	}
	if o.DirectoryTTL <= 0 {
		o.DirectoryTTL = DefaultDirectoryTTL
	}
	if o.DirectoryEntries <= 0 {
		o.DirectoryEntries = defaultDirEntries
	}
	a := &App{o: o, key: key, base: base, insts: map[int64]*Client{}}
	a.tr = &transport{
		base: o.Transport, o: &a.o, log: o.Logger,
		prefix: strings.TrimSuffix(base.Path, "/"),
		cache:  newETagCache(o.CacheEntries, cacheBytes),
	}
	atr := ghinstallation.NewAppsTransportFromPrivateKey(a.tr.scope("app"), o.AppID, key)
	atr.BaseURL = strings.TrimSuffix(o.BaseURL, "/")
	a.app = a.newGitHub(atr)
	return a, nil
}

// parseKey parses a PEM RSA key (PKCS#1 or PKCS#8). Its errors never quote
// the key.
func parseKey(b []byte) (*rsa.PrivateKey, error) {
	const hint = "use the .pem file GitHub generated for the app (--private-key-file or GUARD_PRIVATE_KEY)"
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, errors.New("github app private key: empty; " + hint)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("github app private key: not PEM-encoded; " + hint)
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("github app private key: PEM block %q is not an RSA private key (PKCS#1 or PKCS#8); %s", block.Type, hint)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("github app private key: PEM block %q holds a %T, GitHub Apps use RSA keys; %s", block.Type, k, hint)
	}
	return rk, nil
}

func (a *App) newGitHub(rt http.RoundTripper) *github.Client {
	c := github.NewClient(&http.Client{Transport: rt})
	u := *a.base
	c.BaseURL = &u
	up := *a.base
	c.UploadURL = &up
	return c
}

// Client returns the client authenticated as the app itself (app JWT):
// installations, hook deliveries, the app's own settings.
func (a *App) Client() *github.Client { return a.app }

// Installation returns the client of installation id. Clients are cached
// per id; their tokens are minted and refreshed by ghinstallation.
func (a *App) Installation(id int64) *Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.insts[id]; ok {
		return c
	}
	atr := ghinstallation.NewAppsTransportFromPrivateKey(a.tr.scope(fmt.Sprintf("installation/%d", id)), a.o.AppID, a.key)
	atr.BaseURL = strings.TrimSuffix(a.o.BaseURL, "/")
	itr := ghinstallation.NewFromAppsTransport(atr, id)
	c := &Client{app: a, id: id, gh: a.newGitHub(itr)}
	c.dir = newDirectory(c, a.o.DirectoryTTL, a.o.DirectoryEntries)
	a.insts[id] = c
	return c
}

// Client is one installation's client.
type Client struct {
	app *App
	id  int64
	gh  *github.Client
	dir *directory
}

// GitHub returns the underlying go-github client (installation token).
func (c *Client) GitHub() *github.Client { return c.gh }

// InstallationID returns the installation the client acts for.
func (c *Client) InstallationID() int64 { return c.id }
