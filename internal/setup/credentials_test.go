package setup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// exampleCredentials are the credentials of GitHub's documented example
// response.
func exampleCredentials(t *testing.T) Credentials {
	t.Helper()
	data, err := os.ReadFile("testdata/conversion-201.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Credentials
		Owner struct {
			Login string `json:"login"`
		} `json:"owner"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	c := v.Credentials
	c.Owner = v.Owner.Login
	return c
}

// writeFile writes content with mode and returns its path.
func writeFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	return path
}

func marshal(t *testing.T, c Credentials) string {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestLoadCredentials(t *testing.T) {
	good := exampleCredentials(t)
	without := func(edit func(*Credentials)) string {
		c := good
		edit(&c)
		return marshal(t, c)
	}
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		wantErr []string // nil: valid
		unix    bool     // mode checks do not apply on Windows
	}{
		{"valid file", marshal(t, good), 0o600, nil, false},
		{"owner read-only is fine", marshal(t, good), 0o400, nil, false},
		{"group-readable file is refused", marshal(t, good), 0o640, []string{"mode 0640", "chmod 600"}, true},
		{"world-readable file is refused", marshal(t, good), 0o604, []string{"mode 0604", "chmod 600"}, true},
		{"group-writable file is refused", marshal(t, good), 0o620, []string{"chmod 600"}, true},
		{"bad JSON", `{"id": 1, "pem": "` + good.PEM[:40], 0o600, []string{"not valid JSON"}, false},
		{"not JSON at all", "id=1\n", 0o600, []string{"not valid JSON", "syntax error"}, false},
		{"wrong type", `{"id": "one"}`, 0o600, []string{"not valid JSON", `"id"`}, false},
		{"missing id", without(func(c *Credentials) { c.AppID = 0 }), 0o600, []string{`"id"`}, false},
		{"missing private key", without(func(c *Credentials) { c.PEM = "" }), 0o600, []string{`"pem"`}, false},
		{"private key that is not PEM", without(func(c *Credentials) { c.PEM = "not a key" }), 0o600, []string{"no PEM block"}, false},
		{"private key that does not parse", without(func(c *Credentials) {
			c.PEM = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
		}), 0o600, []string{"PKCS #1"}, false},
		{"missing webhook secret", without(func(c *Credentials) { c.WebhookSecret = "" }), 0o600, []string{`"webhook_secret"`}, false},
		{"everything missing is reported at once", `{}`, 0o600, []string{`"id"`, `"pem"`, `"webhook_secret"`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.unix && runtime.GOOS == "windows" {
				t.Skip("no Unix mode bits on Windows")
			}
			path := writeFile(t, tt.content, tt.mode)
			c, err := LoadCredentials(path)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("LoadCredentials: %v", err)
				}
				if c != good {
					t.Errorf("loaded %v, want %v", fields(c), fields(good))
				}
				return
			}
			if err == nil {
				t.Fatal("LoadCredentials succeeded, want an error")
			}
			for _, w := range append(tt.wantErr, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			assertNoSecret(t, "error", err.Error())
		})
	}
	t.Run("missing file says to run setup", func(t *testing.T) {
		_, err := LoadCredentials(filepath.Join(t.TempDir(), "none.json"))
		if err == nil || !strings.Contains(err.Error(), "guard setup") {
			t.Fatalf("error = %v, want a hint to run guard setup", err)
		}
	})
	t.Run("directory is refused", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := LoadCredentials(dir)
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("error = %v, want 'not a regular file'", err)
		}
	})
}

func TestCredentialsNeverPrintSecrets(t *testing.T) {
	c := exampleCredentials(t)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("loaded", "credentials", c)
	outputs := map[string]string{
		"%v":              fmt.Sprintf("%v", c),
		"%+v":             fmt.Sprintf("%+v", c),
		"%#v":             fmt.Sprintf("%#v", c),
		"%s":              fmt.Sprintf("%s", c),
		"%v of a pointer": fmt.Sprintf("%v", &c),
		"slog":            logged.String(),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			assertNoSecret(t, name, out)
			if !strings.Contains(out, "octoapp") {
				t.Errorf("%s = %q, want the slug", name, out)
			}
		})
	}
}

func TestWriteCredentials(t *testing.T) {
	c := exampleCredentials(t)
	t.Run("new file has mode 0600 and round-trips", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.json")
		if err := writeCredentials(path, c, false); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Errorf("mode = %04o, want 0600", fi.Mode().Perm())
		}
		got, err := LoadCredentials(path)
		if err != nil || got != c {
			t.Errorf("LoadCredentials = %v, %v", fields(got), err)
		}
	})
	t.Run("existing file is kept without force", func(t *testing.T) {
		path := writeFile(t, "keep", 0o600)
		if err := writeCredentials(path, c, false); err == nil {
			t.Fatal("writeCredentials replaced an existing file")
		}
		if data, _ := os.ReadFile(path); string(data) != "keep" {
			t.Errorf("file = %q, want keep", data)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Errorf("directory holds %d entries, want 1 (no temporary file left)", len(entries))
		}
	})
}
