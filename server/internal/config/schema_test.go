package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// A valid stack config, as config.test.ts's validConfig writes it.
const validStack = `{
	"backupServer": {
		"connection": {"host": "backup.example.org", "privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxx"},
		"drives": ["/dev/sda", "/dev/sdb"]
	},
	"jobs": [{
		"name": "main",
		"connection": {"host": "main.example.org", "privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxx"},
		"pullAddress": {"host": "192.0.2.10"}
	}]
}`

// withValue returns validStack with the value at a pointer set (or removed, for nil).
func withValue(t testing.TB, ptr string, value any) []byte {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(validStack), &doc); err != nil {
		t.Fatal(err)
	}
	tokens := strings.Split(ptr, "/")[1:]
	parent := doc
	for _, tok := range tokens[:len(tokens)-1] {
		switch p := parent.(type) {
		case map[string]any:
			parent = p[tok]
		case []any:
			parent = p[mustIndex(t, tok)]
		}
	}
	last := tokens[len(tokens)-1]
	switch p := parent.(type) {
	case map[string]any:
		if value == nil {
			delete(p, last)
		} else {
			p[last] = value
		}
	case []any:
		p[mustIndex(t, last)] = value
	default:
		t.Fatalf("%s: no such parent", ptr)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustIndex(t testing.TB, tok string) int {
	t.Helper()
	var i int
	if err := json.Unmarshal([]byte(tok), &i); err != nil {
		t.Fatalf("%q is not an index", tok)
	}
	return i
}

func TestValidateStack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ptr   string
		value any
		want  string // the pointer of the one problem; "-" for none
	}{
		{"the valid config", "/jobs/0/name", "main", "-"},
		{"maxAge in minutes", "/jobs/0/maxAge", "90min", "-"},
		{"maxAge in months", "/jobs/0/maxAge", "1m", "/jobs/0/maxAge"},
		{"a weekday calendar", "/jobs/0/schedule", "Mon..Fri *-*-* 22:30", "-"},
		{"a calendar shorthand", "/backupServer/scrubSchedule", "weekly", "-"},
		{"schedule sometimes", "/jobs/0/schedule", "sometimes", "/jobs/0/schedule"},
		{"a tab in a calendar", "/jobs/0/schedule", "Mon\t03:00", "-"},
		{"an ECMA space in a calendar", "/jobs/0/schedule", "Mon\u00a003:00", "-"},
		{"an ssh-rsa host key", "/jobs/0/connection/hostKey", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7", "/jobs/0/connection/hostKey"},
		{"a host key with a comment", "/backupServer/connection/hostKey", "ssh-ed25519 AAAA root@backup", "/backupServer/connection/hostKey"},
		{"an ecdsa host key", "/backupServer/connection/hostKey", "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=", "-"},
		{"a missing host key", "/backupServer/connection/hostKey", nil, "/backupServer/connection"},
		{"a metrics folder", "/backupServer/metricsDir", "/var/lib/m", "-"},
		{"a metrics folder with ..", "/backupServer/metricsDir", "/var/../m", "/backupServer/metricsDir"},
		{"a metrics folder named ..x", "/backupServer/metricsDir", "/var/..x", "-"},
		{"a relative metrics folder", "/backupServer/metricsDir", "var/m", "/backupServer/metricsDir"},
		{"mount point /", "/backupServer/volume", map[string]any{"mountPoint": "/"}, "/backupServer/volume/mountPoint"},
		{"mount point //", "/backupServer/volume", map[string]any{"mountPoint": "//"}, "-"},
		{"a blank preserve", "/jobs/0/retention", map[string]any{"preserve": " \u3000"}, "/jobs/0/retention/preserve"},
		{"preserve out of order", "/jobs/0/retention", map[string]any{"preserve": "7d 24h"}, "/jobs/0/retention/preserve"},
		{"preserve forever", "/jobs/0/retention", map[string]any{"preserve": "48h 14d *y"}, "-"},
		{"a port out of range", "/jobs/0/pullAddress/port", 70000, "/jobs/0/pullAddress/port"},
		{"a port that is not an integer", "/jobs/0/pullAddress/port", 22.5, "/jobs/0/pullAddress/port"},
		{"a drive without /dev/", "/backupServer/drives/1", "sdb", "/backupServer/drives/1"},
		{"no jobs", "/jobs", []any{}, "/jobs"},
		{"an unknown key", "/backupServer/drivez", []any{"/dev/sdc"}, "/backupServer"},
		{"an unknown key with a tilde", "/jobs/0/a~b", true, "/jobs/0"},
		{"an alert format Teams", "/alerts", map[string]any{"format": "teams", "url": "https://example.org/hook"}, "/alerts/format"},
		{"an alert URL with a quote", "/alerts", map[string]any{"format": "slack", "url": "https://example.org/\"x"}, "/alerts/url"},
		{"an alert URL with an ECMA space", "/alerts", map[string]any{"format": "slack", "url": "https://example.org/\u2028x"}, "/alerts/url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateStack(withValue(t, tc.ptr, tc.value))
			if tc.want == "-" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("got %v, want an *InvalidError", err)
			}
			if len(invalid.Problems) != 1 || invalid.Problems[0].Pointer != tc.want {
				t.Fatalf("got %v, want one problem at %q", invalid.Problems, tc.want)
			}
		})
	}
}

func TestValidateStackReportsEveryProblem(t *testing.T) {
	doc := `{"backupServer": {"drives": ["sda"], "extra": 1}, "jobs": [{"name": "Main", "maxAge": "1m"}]}`
	var invalid *InvalidError
	if err := ValidateStack([]byte(doc)); !errors.As(err, &invalid) {
		t.Fatalf("got %v, want an *InvalidError", err)
	}
	var got []string
	for _, p := range invalid.Problems {
		got = append(got, p.Pointer)
	}
	want := []string{"/backupServer", "/backupServer", "/backupServer/drives/0", "/jobs/0", "/jobs/0/maxAge", "/jobs/0/name"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("pointers %q, want %q\n%v", got, want, invalid)
	}
	msg := invalid.Error()
	for _, part := range []string{"invalid pullsnap configuration (6 problems)", `at "/jobs/0/maxAge": `, "'extra'"} {
		if !strings.Contains(msg, part) {
			t.Errorf("%q lacks %q", msg, part)
		}
	}
}

func TestValidateStackRefusesWhatIsNotJSON(t *testing.T) {
	for _, doc := range []string{"", "{", `{"jobs": []} {}`, "nul"} {
		err := ValidateStack([]byte(doc))
		var invalid *InvalidError
		if err == nil || errors.As(err, &invalid) || !strings.Contains(err.Error(), "not JSON") {
			t.Errorf("%q: got %v, want a not-JSON error", doc, err)
		}
	}
}

func TestECMAToRE2(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: `^a\sb$`, want: `^a[` + ecmaSpace + `]b$`},
		{in: `[^\s"]`, want: `[^` + ecmaSpace + `"]`},
		{in: `\S`, want: `[^` + ecmaSpace + `]`},
		{in: `a.b[.]`, want: `a` + ecmaDot + `b[.]`},
		{in: `\.\/\\s`, want: `\.\/\\s`},
		{in: `[\S]`, err: `\S inside`},
		{in: `(a)\1`, err: "backreferences"},
		{in: `a[]`, err: "empty character class"},
		{in: `a[^]`, err: "empty character class"},
		{in: `a\`, err: "lone backslash"},
	} {
		got, err := ecmaToRE2(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	// RE2 itself refuses lookaround, so such a pattern cannot slip in.
	if _, err := compileECMA(`^(?!ssh-rsa )`); err == nil {
		t.Error("a lookahead compiled")
	}
}

// FuzzValidateStack: any input gives nil, a not-JSON error or problems whose
// pointers all lead to a value in the document.
func FuzzValidateStack(f *testing.F) {
	f.Add([]byte(validStack))
	f.Add([]byte(`{"backupServer": {"drives": ["sda"], "extra": 1}, "jobs": [{"name": "Main", "maxAge": "1m"}]}`))
	f.Add([]byte(`{"a/b~c": {"": [1, 2.5, null]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := ValidateStack(doc)
		var invalid *InvalidError
		if err == nil || !errors.As(err, &invalid) {
			return
		}
		if len(invalid.Problems) == 0 {
			t.Fatal("an InvalidError without problems")
		}
		var v any
		if jerr := json.Unmarshal(doc, &v); jerr != nil {
			t.Fatalf("problems for a document encoding/json refuses (%v): %v", jerr, err)
		}
		for _, p := range invalid.Problems {
			if !resolves(v, p.Pointer) {
				t.Fatalf("%q does not resolve in %s", p.Pointer, doc)
			}
		}
	})
}

func resolves(v any, ptr string) bool {
	if ptr == "" {
		return true
	}
	for _, tok := range strings.Split(ptr, "/")[1:] {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[tok]; !ok {
				return false
			}
		case []any:
			var i int
			if json.Unmarshal([]byte(tok), &i) != nil || i < 0 || i >= len(x) {
				return false
			}
			v = x[i]
		default:
			return false
		}
	}
	return true
}
