// Package mergeguard holds what the whole product shares from the repository
// root: the GitHub App manifest (app-manifest.yml), embedded as Manifest.
//
// The manifest is the contract of SPEC section 6: the permissions the app
// requests and the events it subscribes to. Permissions, SubscribedEvents and
// DeliveredEvents return that contract as plain values so that other packages
// can test against it (the webhook intake must handle every delivered event);
// a test keeps the embedded file and these lists equal.
//
// The URL fields of the file are placeholders that Fill replaces with the
// guard's public URL and the setup page's redirect URL.
package mergeguard

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Manifest is app-manifest.yml as embedded at build time. Treat it as
// read-only; Parse it to use it.
//
//go:embed app-manifest.yml
var Manifest []byte

// Placeholders in the URL fields of app-manifest.yml.
const (
	// PlaceholderPublicURL stands for the base URL GitHub reaches the guard
	// at, without a trailing slash (the webhook is PublicURL + "/webhook").
	PlaceholderPublicURL = "{{public_url}}"
	// PlaceholderRedirectURL stands for the URL GitHub sends the browser
	// back to, with ?code=…&state=…, once the app is registered.
	PlaceholderRedirectURL = "{{redirect_url}}"
)

// MaxNameLength is the longest GitHub App name GitHub accepts.
const MaxNameLength = 34

// AppManifest is a GitHub App manifest ("Registering a GitHub App from a
// manifest" in GitHub's documentation). Its JSON form is what GitHub expects
// in the manifest form field.
type AppManifest struct {
	Name                  string            `yaml:"name" json:"name"`
	URL                   string            `yaml:"url" json:"url"`
	Description           string            `yaml:"description,omitempty" json:"description,omitempty"`
	HookAttributes        HookAttributes    `yaml:"hook_attributes" json:"hook_attributes"`
	RedirectURL           string            `yaml:"redirect_url" json:"redirect_url"`
	CallbackURLs          []string          `yaml:"callback_urls,omitempty" json:"callback_urls,omitempty"`
	SetupURL              string            `yaml:"setup_url,omitempty" json:"setup_url,omitempty"`
	Public                bool              `yaml:"public" json:"public"`
	DefaultPermissions    map[string]string `yaml:"default_permissions" json:"default_permissions"`
	DefaultEvents         []string          `yaml:"default_events" json:"default_events"`
	RequestOAuthOnInstall bool              `yaml:"request_oauth_on_install,omitempty" json:"request_oauth_on_install,omitempty"`
	SetupOnUpdate         bool              `yaml:"setup_on_update,omitempty" json:"setup_on_update,omitempty"`
}

// HookAttributes configures the app's webhook.
type HookAttributes struct {
	URL    string `yaml:"url" json:"url"`
	Active bool   `yaml:"active" json:"active"`
}

// Permissions returns the permissions the app requests (SPEC section 6),
// keyed by GitHub's permission name. The map is a fresh copy.
func Permissions() map[string]string {
	return map[string]string{
		"checks":         "write",
		"pull_requests":  "write",
		"issues":         "write",
		"merge_queues":   "read",
		"contents":       "read",
		"metadata":       "read",
		"members":        "read",
		"administration": "read",
	}
}

// SubscribedEvents returns the webhook events the manifest subscribes to, in
// the manifest's order. The slice is a fresh copy.
func SubscribedEvents() []string {
	return []string{"pull_request", "pull_request_review", "issue_comment", "merge_group"}
}

// AutomaticEvents returns the events GitHub delivers to every app without a
// subscription that the guard uses. The slice is a fresh copy.
func AutomaticEvents() []string {
	return []string{"check_run", "check_suite", "installation", "installation_repositories"}
}

// DeliveredEvents returns every event the guard receives and must handle:
// SubscribedEvents and AutomaticEvents, sorted. The slice is a fresh copy.
func DeliveredEvents() []string {
	out := append(SubscribedEvents(), AutomaticEvents()...)
	slices.Sort(out)
	return out
}

// Default parses the embedded Manifest.
func Default() (*AppManifest, error) {
	return Parse(Manifest)
}

// Parse decodes and checks a manifest in YAML (JSON is YAML too). Unknown
// fields are refused, so that a misspelt key does not silently drop a
// permission. Placeholders are allowed in the URL fields; Fill replaces them.
func Parse(data []byte) (*AppManifest, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var m AppManifest
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("parse app manifest: empty document")
		}
		return nil, fmt.Errorf("parse app manifest: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse app manifest: more than one YAML document")
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("app manifest: %w", err)
	}
	return &m, nil
}

// check validates the fields that do not depend on placeholders.
func (m *AppManifest) check() error {
	var errs []error
	switch {
	case strings.TrimSpace(m.Name) == "":
		errs = append(errs, errors.New("name is required"))
	case len([]rune(m.Name)) > MaxNameLength:
		errs = append(errs, fmt.Errorf("name %q is longer than GitHub's %d characters", m.Name, MaxNameLength))
	}
	if m.URL == "" {
		errs = append(errs, errors.New("url is required (the app's homepage)"))
	}
	if m.HookAttributes.URL == "" {
		errs = append(errs, errors.New("hook_attributes.url is required (where GitHub sends webhooks)"))
	}
	if m.RedirectURL == "" {
		errs = append(errs, errors.New("redirect_url is required (the manifest flow returns there)"))
	}
	if len(m.DefaultPermissions) == 0 {
		errs = append(errs, errors.New("default_permissions is empty"))
	}
	for _, k := range sortedKeys(m.DefaultPermissions) {
		switch v := m.DefaultPermissions[k]; v {
		case "read", "write", "admin":
		default:
			errs = append(errs, fmt.Errorf("default_permissions.%s: %q is not read, write or admin", k, v))
		}
	}
	if len(m.DefaultEvents) == 0 {
		errs = append(errs, errors.New("default_events is empty"))
	}
	seen := map[string]bool{}
	for _, e := range m.DefaultEvents {
		switch {
		case strings.TrimSpace(e) == "":
			errs = append(errs, errors.New("default_events has an empty entry"))
		case seen[e]:
			errs = append(errs, fmt.Errorf("default_events lists %q twice", e))
		}
		seen[e] = true
	}
	return errors.Join(errs...)
}

// Fill returns a copy of m whose placeholders are replaced: publicURL is the
// base URL GitHub can reach the guard at (http or https, no query; a
// trailing slash is dropped), redirectURL the setup page's callback. Every
// URL field of the result must be an absolute http(s) URL.
func (m *AppManifest) Fill(publicURL, redirectURL string) (*AppManifest, error) {
	base, err := baseURL(publicURL)
	if err != nil {
		return nil, fmt.Errorf("public URL: %w", err)
	}
	if _, err := absURL(redirectURL); err != nil {
		return nil, fmt.Errorf("redirect URL: %w", err)
	}
	r := strings.NewReplacer(PlaceholderPublicURL, base, PlaceholderRedirectURL, redirectURL)
	out := *m
	out.URL = r.Replace(m.URL)
	out.HookAttributes.URL = r.Replace(m.HookAttributes.URL)
	out.RedirectURL = r.Replace(m.RedirectURL)
	out.SetupURL = r.Replace(m.SetupURL)
	out.CallbackURLs = nil
	for _, u := range m.CallbackURLs {
		out.CallbackURLs = append(out.CallbackURLs, r.Replace(u))
	}
	out.DefaultPermissions = maps.Clone(m.DefaultPermissions)
	out.DefaultEvents = slices.Clone(m.DefaultEvents)

	fields := map[string]string{"url": out.URL, "hook_attributes.url": out.HookAttributes.URL, "redirect_url": out.RedirectURL}
	if out.SetupURL != "" {
		fields["setup_url"] = out.SetupURL
	}
	for i, u := range out.CallbackURLs {
		fields[fmt.Sprintf("callback_urls[%d]", i)] = u
	}
	for _, k := range sortedKeys(fields) {
		if _, err := absURL(fields[k]); err != nil {
			return nil, fmt.Errorf("app manifest %s: %w", k, err)
		}
	}
	return &out, nil
}

// JSON returns the manifest as GitHub expects it in the manifest form field.
func (m *AppManifest) JSON() ([]byte, error) {
	return json.Marshal(m)
}

// PublicURL checks the guard's public base URL (absolute http(s), no
// credentials, query or fragment) and returns it without a trailing slash.
func PublicURL(s string) (string, error) { return baseURL(s) }

// baseURL checks a public base URL and returns it without a trailing slash.
func baseURL(s string) (string, error) {
	u, err := absURL(s)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q must not have a query or fragment", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// absURL parses s and requires an absolute http(s) URL with a host and no
// leftover placeholder.
func absURL(s string) (*url.URL, error) {
	if strings.Contains(s, "{{") {
		return nil, fmt.Errorf("%q still has a placeholder", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q must not carry credentials", u.Redacted())
	}
	return u, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
