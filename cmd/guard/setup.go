package main

import (
	"context"
	"os"

	"github.com/mergeguard/guard/internal/setup"
)

// runSetup creates the GitHub App with the manifest flow (internal/setup)
// and writes its credentials file.
func runSetup(ctx context.Context, args []string, s stdio) error {
	fs := newFlagSet("setup", "setup --public-url URL [--org ORG] [--github-url URL] [--listen ADDR] [--out FILE] [--force]", s)
	publicURL := fs.String("public-url", os.Getenv("GUARD_PUBLIC_URL"), "base `URL` at which GitHub reaches the guard, e.g. your tunnel's; webhooks go to URL/webhook (env GUARD_PUBLIC_URL)")
	org := fs.String("org", "", "create the app owned by this `organization` (default: your personal account)")
	githubURL := fs.String("github-url", setupEnvOr("GUARD_GITHUB_URL", setup.DefaultGitHubURL), "GitHub REST API `URL`; GitHub Enterprise Server: https://HOST/api/v3/ (env GUARD_GITHUB_URL)")
	listen := fs.String("listen", setup.DefaultListen, "loopback `address` of the local setup page")
	out := fs.String("out", setupEnvOr("GUARD_CREDENTIALS", setup.DefaultCredentialsFile), "credentials `file` to write, mode 0600 (env GUARD_CREDENTIALS)")
	force := fs.Bool("force", false, "replace an existing credentials file")
	name := fs.String("name", "", "app `name` (default: the manifest's; GitHub App names are unique, and can also be edited on GitHub's page)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (see 'guard setup --help')", fs.Arg(0))
	}
	if *publicURL == "" {
		return usageErr("--public-url is required: pass the https URL at which GitHub can reach the guard (your tunnel or public address; see docs/install.md)")
	}
	_, err := setup.Run(ctx, setup.Options{
		PublicURL:       *publicURL,
		Org:             *org,
		Name:            *name,
		GitHubURL:       *githubURL,
		Listen:          *listen,
		Out:             s.out,
		CredentialsPath: *out,
		Force:           *force,
	})
	return err
}

// setupEnvOr returns the environment variable key, or def when it is unset
// or empty.
func setupEnvOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
