package setup

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// DefaultCredentialsFile is where setup writes the credentials when no path
// is given, relative to the current directory.
const DefaultCredentialsFile = "guard-credentials.json"

// maxCredentialsSize bounds what LoadCredentials reads; a real file is ~3 KiB.
const maxCredentialsSize = 1 << 20

// Credentials are what GitHub returns when a GitHub App is created from a
// manifest, as stored in the credentials file (JSON, mode 0600).
//
// String, GoString and LogValue show only the app's id and slug, so that
// printing or logging a Credentials value never leaks a secret. Marshal it to
// JSON only to write the credentials file.
type Credentials struct {
	AppID   int64  `json:"id"`
	Slug    string `json:"slug"`
	Name    string `json:"name"`
	HTMLURL string `json:"html_url"`
	// Owner is the login of the account or organization that owns the app.
	Owner string `json:"owner"`
	// GitHubURL is the REST API base the app was created on
	// (https://api.github.com/ or https://HOST/api/v3/).
	GitHubURL     string `json:"github_url,omitempty"`
	ClientID      string `json:"client_id"`
	ClientSecret  string `json:"client_secret"`
	WebhookSecret string `json:"webhook_secret"`
	// PEM is the app's private key, PEM-encoded (PKCS #1 as GitHub issues it).
	PEM string `json:"pem"`
}

// String describes the app without any secret.
func (c Credentials) String() string {
	return fmt.Sprintf("GitHub App %s (id %d)", strconv.Quote(c.Slug), c.AppID)
}

// GoString is String, so %#v does not print secrets either.
func (c Credentials) GoString() string { return c.String() }

// LogValue logs the app's id and slug only.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.Int64("app_id", c.AppID), slog.String("slug", c.Slug))
}

var _ slog.LogValuer = Credentials{}

// Validate reports every field that serve needs and is missing or malformed.
// Its errors never contain a secret.
func (c Credentials) Validate() error {
	var errs []error
	if c.AppID <= 0 {
		errs = append(errs, errors.New(`"id" (the app id) is missing`))
	}
	if c.PEM == "" {
		errs = append(errs, errors.New(`"pem" (the private key) is missing`))
	} else if _, err := ParsePrivateKey([]byte(c.PEM)); err != nil {
		errs = append(errs, fmt.Errorf(`"pem": %w`, err))
	}
	if c.WebhookSecret == "" {
		errs = append(errs, errors.New(`"webhook_secret" is missing: set a webhook secret in the app's settings on GitHub and add it here`))
	}
	return errors.Join(errs...)
}

// ParsePrivateKey parses a GitHub App private key: an RSA key in a PEM block,
// PKCS #1 ("RSA PRIVATE KEY", what GitHub issues) or PKCS #8 ("PRIVATE KEY").
// Errors never contain key material.
func ParsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found: expected a -----BEGIN RSA PRIVATE KEY----- block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("the RSA PRIVATE KEY block does not parse as a PKCS #1 key")
		}
		return key, nil
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("the PRIVATE KEY block does not parse as a PKCS #8 key")
		}
		rsaKey, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("the private key is not an RSA key (GitHub Apps use RSA)")
		}
		return rsaKey, nil
	default:
		return nil, fmt.Errorf("PEM block is %q, want RSA PRIVATE KEY", block.Type)
	}
}

// LoadCredentials reads and validates a credentials file written by setup.
// It refuses a file that group or others may read (the private key must
// stay private; the fix is chmod 600) and reports every missing field. Its
// errors name the file and never contain a secret.
func LoadCredentials(path string) (Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Credentials{}, fmt.Errorf("credentials file %s does not exist: run 'guard setup' to create the app and its credentials", path)
		}
		return Credentials{}, fmt.Errorf("open credentials: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Credentials{}, fmt.Errorf("stat credentials: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Credentials{}, fmt.Errorf("credentials file %s is not a regular file", path)
	}
	if err := checkPrivate(path, fi.Mode()); err != nil {
		return Credentials{}, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCredentialsSize+1))
	if err != nil {
		return Credentials{}, fmt.Errorf("read credentials: %w", err)
	}
	if len(data) > maxCredentialsSize {
		return Credentials{}, fmt.Errorf("credentials file %s is larger than %d bytes: not a file written by guard setup", path, maxCredentialsSize)
	}
	var c Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		return Credentials{}, fmt.Errorf("credentials file %s is not valid JSON: %s", path, jsonProblem(err))
	}
	if err := c.Validate(); err != nil {
		return Credentials{}, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return c, nil
}

// checkPrivate refuses modes that let group or others read or write the file.
// Windows has no such bits; there the file's ACL is the user's business.
func checkPrivate(path string, mode fs.FileMode) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if perm := mode.Perm(); perm&0o077 != 0 {
		return fmt.Errorf("credentials file %s is accessible by group or others (mode %04o) but holds the app's private key: run 'chmod 600 %s'", path, perm, path)
	}
	return nil
}

// jsonProblem describes a JSON decoding error without quoting the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has a %s, want %s", typ.Field, typ.Value, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of file"
	default:
		return "cannot decode"
	}
}

// errExists is returned by writeCredentials when the file exists and force
// is off.
var errExists = errors.New("file exists")

// writeCredentials writes c to path atomically with mode 0600: a temporary
// file in the same directory is written and synced, then linked into place
// (refusing an existing file) or, with force, renamed over it. A crash leaves
// either no file or a complete one.
func writeCredentials(path string, c Credentials, force bool) (err error) {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode credentials: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".guard-credentials-*.tmp")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		os.Remove(tmpName) // after a link or a rename this is a no-op or drops the extra name
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("chmod temporary file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write temporary file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync temporary file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		tmp = nil
		return fmt.Errorf("close temporary file: %w", err)
	}
	tmp = nil
	if force {
		if err := os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("replace %s: %w", path, err)
		}
	} else if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", path, errExists)
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename or link durable where the platform allows it.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync() // best effort: not supported everywhere
	d.Close()
}
