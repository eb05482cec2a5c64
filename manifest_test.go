package mergeguard

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestEmbeddedManifestIsTheContract(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	t.Run("permissions are exactly SPEC section 6", func(t *testing.T) {
		if !maps.Equal(m.DefaultPermissions, Permissions()) {
			t.Errorf("default_permissions = %v, want %v", m.DefaultPermissions, Permissions())
		}
	})
	t.Run("events are exactly SPEC section 6", func(t *testing.T) {
		if !slices.Equal(m.DefaultEvents, SubscribedEvents()) {
			t.Errorf("default_events = %v, want %v", m.DefaultEvents, SubscribedEvents())
		}
	})
	t.Run("app is private and its webhook active", func(t *testing.T) {
		if m.Public {
			t.Error("public: true, want false")
		}
		if !m.HookAttributes.Active {
			t.Error("hook_attributes.active: false, want true")
		}
	})
	t.Run("URL fields are placeholders", func(t *testing.T) {
		if m.HookAttributes.URL != PlaceholderPublicURL+"/webhook" {
			t.Errorf("hook_attributes.url = %q", m.HookAttributes.URL)
		}
		if m.RedirectURL != PlaceholderRedirectURL {
			t.Errorf("redirect_url = %q", m.RedirectURL)
		}
	})
}

func TestEventListsAreCopies(t *testing.T) {
	Permissions()["checks"] = "admin"
	SubscribedEvents()[0] = "push"
	if Permissions()["checks"] != "write" || SubscribedEvents()[0] != "pull_request" {
		t.Fatal("exported lists share state between callers")
	}
	got := DeliveredEvents()
	want := []string{"check_run", "check_suite", "installation", "installation_repositories",
		"issue_comment", "merge_group", "pull_request", "pull_request_review"}
	if !slices.Equal(got, want) {
		t.Errorf("DeliveredEvents = %v, want %v", got, want)
	}
}

const validYAML = `
name: Test Guard
url: "{{public_url}}"
hook_attributes: {url: "{{public_url}}/webhook", active: true}
redirect_url: "{{redirect_url}}"
public: false
default_permissions: {checks: write, metadata: read}
default_events: [pull_request]
`

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string // "" means valid
	}{
		{"valid manifest", validYAML, ""},
		{"JSON is accepted", `{"name":"x","url":"u","hook_attributes":{"url":"h"},"redirect_url":"r","default_permissions":{"checks":"write"},"default_events":["pull_request"]}`, ""},
		{"empty document", "", "empty document"},
		{"not YAML", "name: [", "parse app manifest"},
		{"unknown field is refused", validYAML + "default_permission: {issues: write}\n", "default_permission"},
		{"two documents", validYAML + "---\nname: other\n", "more than one"},
		{"missing name", strings.Replace(validYAML, "name: Test Guard", "", 1), "name is required"},
		{"name too long", strings.Replace(validYAML, "Test Guard", strings.Repeat("g", 35), 1), "longer than"},
		{"missing hook url", strings.Replace(validYAML, `url: "{{public_url}}/webhook", `, "", 1), "hook_attributes.url is required"},
		{"missing redirect url", strings.Replace(validYAML, `redirect_url: "{{redirect_url}}"`, "", 1), "redirect_url is required"},
		{"bad permission level", strings.Replace(validYAML, "checks: write", "checks: rw", 1), `default_permissions.checks: "rw"`},
		{"no permissions", strings.Replace(validYAML, "{checks: write, metadata: read}", "{}", 1), "default_permissions is empty"},
		{"no events", strings.Replace(validYAML, "[pull_request]", "[]", 1), "default_events is empty"},
		{"duplicate event", strings.Replace(validYAML, "[pull_request]", "[pull_request, pull_request]", 1), "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.yaml))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if m.Name == "" {
					t.Error("name not decoded")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestFill(t *testing.T) {
	m, err := Parse([]byte(validYAML))
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "http://127.0.0.1:4321/callback"
	tests := []struct {
		name      string
		publicURL string
		wantHook  string
		wantErr   string
	}{
		{"https base", "https://guard.example.com", "https://guard.example.com/webhook", ""},
		{"trailing slash dropped", "https://guard.example.com/", "https://guard.example.com/webhook", ""},
		{"base with path", "https://proxy.example.com/guard", "https://proxy.example.com/guard/webhook", ""},
		{"empty public URL", "", "", "public URL"},
		{"relative public URL", "guard.example.com", "", "absolute"},
		{"ftp public URL", "ftp://guard.example.com", "", "absolute"},
		{"query in public URL", "https://guard.example.com/?x=1", "", "query"},
		{"credentials in public URL are refused and not echoed", "https://user:hunter2@guard.example.com", "", "credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Fill(tt.publicURL, redirect)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Fill error = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error echoes a password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fill: %v", err)
			}
			if got.HookAttributes.URL != tt.wantHook {
				t.Errorf("hook url = %q, want %q", got.HookAttributes.URL, tt.wantHook)
			}
			if got.RedirectURL != redirect {
				t.Errorf("redirect_url = %q, want %q", got.RedirectURL, redirect)
			}
			if m.HookAttributes.URL != PlaceholderPublicURL+"/webhook" {
				t.Error("Fill modified its receiver")
			}
			raw, err := got.JSON()
			if err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"name", "url", "hook_attributes", "redirect_url", "public", "default_permissions", "default_events"} {
				if _, ok := back[k]; !ok {
					t.Errorf("JSON lacks %q: %s", k, raw)
				}
			}
		})
	}
	t.Run("bad redirect URL", func(t *testing.T) {
		if _, err := m.Fill("https://guard.example.com", "/callback"); err == nil || !strings.Contains(err.Error(), "redirect URL") {
			t.Fatalf("Fill error = %v, want redirect URL error", err)
		}
	})
	t.Run("unknown placeholder is caught", func(t *testing.T) {
		m2 := *m
		m2.URL = "{{homepage}}"
		if _, err := m2.Fill("https://guard.example.com", redirect); err == nil || !strings.Contains(err.Error(), "placeholder") {
			t.Fatalf("Fill error = %v, want placeholder error", err)
		}
	})
}
