package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mergeguard/guard/internal/setup"
)

// credentialFlags are the flags that name the GitHub App's identity (SPEC
// §3): --credentials, --app-id, --private-key-file and --github-url, each
// with its environment variable. Commands that talk to GitHub as the app
// register them with addCredentialFlags and resolve them with resolve, so
// that every command finds the credentials the same way.
type credentialFlags struct {
	credentials, appID, keyFile, githubURL string
}

// appCredentials is the resolved identity of the GitHub App.
type appCredentials struct {
	AppID         int64
	PrivateKey    []byte // PEM
	WebhookSecret string // "" unless given or read from the credentials file
	GitHubURL     string // ends with "/"
	File          string // the credentials file used, "" for none
}

// addCredentialFlags registers the credential flags on fs.
func addCredentialFlags(fs *flag.FlagSet) *credentialFlags {
	f := &credentialFlags{}
	fs.StringVar(&f.credentials, "credentials", envOr("GUARD_CREDENTIALS", ""), "credentials `file` written by 'guard setup' (GUARD_CREDENTIALS; default "+credentialsDefault+" if present)")
	fs.StringVar(&f.appID, "app-id", envOr("GUARD_APP_ID", ""), "GitHub App `id` (GUARD_APP_ID)")
	fs.StringVar(&f.keyFile, "private-key-file", envOr("GUARD_PRIVATE_KEY_FILE", ""), "GitHub App private key PEM `file` (GUARD_PRIVATE_KEY_FILE, or the PEM itself in GUARD_PRIVATE_KEY)")
	fs.StringVar(&f.githubURL, "github-url", envOr("GUARD_GITHUB_URL", ""), "GitHub REST API `URL` (GUARD_GITHUB_URL; default https://api.github.com/, GHES: https://HOST/api/v3/)")
	return f
}

// resolve fills in the app's identity as serve does: explicit flags and
// environment variables win; the credentials file (--credentials, or
// guard-credentials.json in the working directory if present) supplies what
// they leave out. webhookSecret is the --webhook-secret value, if the
// command has that flag ("" otherwise). Errors never contain key material.
func (f *credentialFlags) resolve(webhookSecret string) (*appCredentials, error) {
	c := &appCredentials{WebhookSecret: webhookSecret, GitHubURL: f.githubURL}
	appID := f.appID
	c.File = f.credentials
	if c.File == "" {
		if _, err := os.Stat(credentialsDefault); err == nil {
			c.File = credentialsDefault
		}
	}
	if c.File != "" {
		cred, err := setup.LoadCredentials(c.File)
		if err != nil {
			return nil, err
		}
		if appID == "" {
			appID = strconv.FormatInt(cred.AppID, 10)
		}
		if f.keyFile == "" && os.Getenv("GUARD_PRIVATE_KEY") == "" {
			c.PrivateKey = []byte(cred.PEM)
		}
		if c.WebhookSecret == "" {
			c.WebhookSecret = cred.WebhookSecret
		}
		if c.GitHubURL == "" {
			c.GitHubURL = cred.GitHubURL
		}
	}
	if c.GitHubURL == "" {
		c.GitHubURL = "https://api.github.com/"
	}
	if !strings.HasSuffix(c.GitHubURL, "/") {
		c.GitHubURL += "/"
	}
	if appID == "" {
		return nil, usageErr("the GitHub App id is required: pass --app-id or GUARD_APP_ID, or run 'guard setup' and pass --credentials")
	}
	var err error
	if c.AppID, err = strconv.ParseInt(appID, 10, 64); err != nil || c.AppID <= 0 {
		return nil, usageErr("--app-id %q is not a GitHub App id (a positive number)", appID)
	}
	switch {
	case c.PrivateKey != nil:
	case f.keyFile != "":
		if c.PrivateKey, err = os.ReadFile(f.keyFile); err != nil {
			return nil, fmt.Errorf("read --private-key-file: %w", err)
		}
	case os.Getenv("GUARD_PRIVATE_KEY") != "":
		c.PrivateKey = []byte(os.Getenv("GUARD_PRIVATE_KEY"))
	default:
		return nil, usageErr("the GitHub App private key is required: pass --private-key-file, GUARD_PRIVATE_KEY_FILE or GUARD_PRIVATE_KEY")
	}
	return c, nil
}
