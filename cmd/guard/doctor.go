package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/mergeguard/guard/internal/doctor"
	"github.com/mergeguard/guard/internal/gh"
)

// doctorConfig is what `guard doctor` is configured with.
type doctorConfig struct {
	cred       *appCredentials
	configPath string
	policyDir  string
	policies   fs.FS // policyDir, or the embedded policies
	json       bool
}

// doctorFailed is a report that found problems: exit 1.
type doctorFailed struct {
	code int
	msg  string
}

func (e *doctorFailed) Error() string { return e.msg }
func (e *doctorFailed) ExitCode() int { return e.code }

// runDoctor checks an installed guard (SPEC §2): exit 0 when every
// repository the guard acts on requires the check pinned to this app and
// nothing else is wrong (configuration, configured teams, the policy set of
// --policy-dir or the embedded one), 1 when the guard would be advisory only
// somewhere, something else is wrong, the credentials fail or --policy-dir
// is no directory, 2 for usage errors.
func runDoctor(ctx context.Context, args []string, s stdio) error {
	c, err := parseDoctor(args, s)
	if err != nil {
		return err
	}
	app, err := gh.New(gh.Options{BaseURL: c.cred.GitHubURL, AppID: c.cred.AppID, PrivateKey: c.cred.PrivateKey})
	if err != nil {
		return err
	}
	rep, err := doctor.Run(ctx, doctor.FromApp(app), doctor.Options{
		ConfigPath: c.configPath, Policies: c.policies, PolicyDir: c.policyDir,
	})
	if err != nil {
		err = fmt.Errorf("%w (app id %d on %s)", err, c.cred.AppID, c.cred.GitHubURL)
		if c.json && rep != nil {
			// Scripts get a report on stdout whatever happened.
			rep.Error = err.Error()
			if werr := rep.WriteJSON(s.out); werr != nil {
				return errors.Join(err, fmt.Errorf("write report: %w", werr))
			}
		}
		return err
	}
	if c.json {
		err = rep.WriteJSON(s.out)
	} else {
		err = rep.WriteText(s.out)
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if rep.OK() {
		return nil
	}
	sum := rep.Summary
	var why []string
	fix := "fix what the report lists and run guard doctor again"
	if n := len(sum.AdvisoryOnly); n > 0 {
		why = append(why, fmt.Sprintf("the guard is advisory only in %d %s", n, plural(n, "repository", "repositories")))
		fix = "require " + rep.CheckName + " pinned to this app (Settings → Rules → Rulesets, or Settings → Branches; docs/install.md section 4) and " + fix
	}
	if n := sum.OtherProblems; n > 0 {
		why = append(why, fmt.Sprintf("%d installation, configuration or policy %s", n, plural(n, "problem", "problems")))
	}
	return &doctorFailed{code: 1, msg: strings.Join(why, " and ") + ": " + fix}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// parseDoctor reads the flags and environment; the credentials resolve as
// for serve.
func parseDoctor(args []string, s stdio) (*doctorConfig, error) {
	fl := newFlagSet("doctor", "doctor [--config FILE] [--policy-dir DIR] [--json] [flags]   (credentials as for 'guard serve': flags, environment or the credentials file)", s)
	cf := addCredentialFlags(fl)
	c := &doctorConfig{}
	fl.StringVar(&c.configPath, "config", envOr("GUARD_CONFIG", ""), "policy settings `file` (GUARD_CONFIG; default guard.yaml if present, else built-in defaults)")
	fl.StringVar(&c.policyDir, "policy-dir", envOr("GUARD_POLICY_DIR", ""), "`dir` of Rego policies to check instead of the embedded ones, as 'guard serve --policy-dir' loads them: compiled and their tests run (GUARD_POLICY_DIR)")
	fl.BoolVar(&c.json, "json", false, "write the report as JSON")
	if err := parseFlags(fl, args); err != nil {
		return nil, err
	}
	if fl.NArg() > 0 {
		return nil, usageErr("unexpected argument %q", fl.Arg(0))
	}
	if c.configPath == "" {
		if _, err := os.Stat("guard.yaml"); err == nil {
			c.configPath = "guard.yaml"
		}
	}
	var err error
	if c.policies, err = policyFS(c.policyDir); err != nil {
		return nil, err
	}
	if c.cred, err = cf.resolve(""); err != nil {
		return nil, err
	}
	return c, nil
}
