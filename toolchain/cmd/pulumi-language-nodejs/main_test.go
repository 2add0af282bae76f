package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// writeJSON writes v as JSON to dir/rel, creating parent directories.
func writeJSON(t *testing.T, dir, rel string, v any) {
	t.Helper()
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindResourcePlugins(t *testing.T) {
	dir := t.TempDir()
	nm := filepath.Join("node_modules")
	// The SDK itself declares no plugin.
	writeJSON(t, dir, filepath.Join(nm, "@pulumi/pulumi/package.json"),
		map[string]any{"name": "@pulumi/pulumi", "version": "3.270.0"})
	// Name derived from the @pulumi scope, version from the package.
	writeJSON(t, dir, filepath.Join(nm, "@pulumi/command/package.json"), map[string]any{
		"name": "@pulumi/command", "version": "1.2.1",
		"pulumi": map[string]any{"resource": true, "name": "command"},
	})
	// Nested node_modules, explicit plugin name, version and server.
	writeJSON(t, dir, filepath.Join(nm, "a/node_modules/@acme/widgets/package.json"), map[string]any{
		"name": "@acme/widgets", "version": "0.1.0",
		"pulumi": map[string]any{"resource": true, "name": "widgets", "version": "v2.0.0", "server": "https://x"},
	})
	// A third-party package without pulumi.name is skipped, not fatal.
	writeJSON(t, dir, filepath.Join(nm, "bad/package.json"),
		map[string]any{"name": "bad", "version": "1.0.0", "pulumi": map[string]any{"resource": true}})
	// Broken JSON is skipped too.
	if err := os.WriteFile(filepath.Join(dir, nm, "a/package.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A symlink cycle (as workspaces can make) must not loop forever, and a
	// package reached twice is listed once.
	if err := os.Symlink(filepath.Join(dir, nm), filepath.Join(dir, nm, "a/node_modules/loop")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, nm, "@pulumi/command"), filepath.Join(dir, nm, "cmd-link")); err != nil {
		t.Fatal(err)
	}

	deps, err := findResourcePlugins(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range deps {
		got = append(got, strings.Join([]string{d.Name, d.Kind, d.Version, d.Server}, " "))
	}
	want := []string{"command resource v1.2.1 ", "widgets resource v2.0.0 https://x"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFindResourcePluginsWithoutNodeModules(t *testing.T) {
	deps, err := findResourcePlugins(t.TempDir())
	if err != nil || len(deps) != 0 {
		t.Errorf("got %v, %v; want no packages and no error", deps, err)
	}
}

func TestRunArgs(t *testing.T) {
	req := &pulumirpc.RunRequest{
		MonitorAddress: "127.0.0.1:1", Project: "p", Stack: "dev", Organization: "org",
		DryRun: true, Parallel: 4, Args: []string{"x"},
		Info: &pulumirpc.ProgramInfo{RootDirectory: "/r", ProgramDirectory: "/r/prog", EntryPoint: "index.ts"},
	}
	got := strings.Join(runArgs(req, "127.0.0.1:2"), " ")
	want := "--monitor 127.0.0.1:1 --engine 127.0.0.1:2 --organization org --project p " +
		"--root-directory /r --stack dev --pwd /r/prog --dry-run --parallel 4 index.ts x"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	// Unset values leave their flag out; the entry point defaults to ".".
	got = strings.Join(runArgs(&pulumirpc.RunRequest{MonitorAddress: "m"}, ""), " ")
	if got != "--monitor m ." {
		t.Errorf("got %q", got)
	}
}

func TestRunEnv(t *testing.T) {
	req := &pulumirpc.RunRequest{
		Config:           map[string]string{"p:greeting": "hi", "p:token": "s3cret"},
		ConfigSecretKeys: []string{"p:token"},
	}
	env, err := runEnv(req, nodeOptions{typescript: true, tsconfig: "tsconfig.build.json"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`PULUMI_CONFIG={"p:greeting":"hi","p:token":"s3cret"}`,
		`PULUMI_CONFIG_SECRET_KEYS=["p:token"]`,
		"PULUMI_NODEJS_TYPESCRIPT=true",
		"PULUMI_NODEJS_TSCONFIG_PATH=tsconfig.build.json",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("env lacks %s", want)
		}
	}

	// No config still gives the SDK valid JSON, and typescript can be off.
	env, err = runEnv(&pulumirpc.RunRequest{}, nodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(env, "PULUMI_CONFIG={}") || !slices.Contains(env, "PULUMI_CONFIG_SECRET_KEYS=[]") ||
		slices.Contains(env, "PULUMI_NODEJS_TYPESCRIPT=true") {
		t.Errorf("unexpected env tail %q", env[len(env)-2:])
	}
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		raw     map[string]any
		want    nodeOptions
		wantErr string
	}{
		{name: "defaults", raw: nil, want: nodeOptions{typescript: true}},
		{
			name: "all set",
			raw:  map[string]any{"typescript": false, "tsconfig": "t.json", "nodeargs": "--a  --b", "packagemanager": "npm"},
			want: nodeOptions{typescript: false, tsconfig: "t.json", nodeArgs: []string{"--a", "--b"}},
		},
		{
			name:    "wrong types are all reported",
			raw:     map[string]any{"typescript": "yes", "tsconfig": 1.0},
			wantErr: `runtime option "tsconfig" has the wrong type (float64); runtime option "typescript" has the wrong type (string)`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := structpb.NewStruct(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseOptions(s.AsMap())
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got error %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.typescript != tc.want.typescript || got.tsconfig != tc.want.tsconfig ||
				!slices.Equal(got.nodeArgs, tc.want.nodeArgs) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRunResponse(t *testing.T) {
	exitWith := func(script string) error { return exec.Command("sh", "-c", script).Run() }
	for _, tc := range []struct {
		name      string
		err       error
		wantError string
		wantBail  bool
	}{
		{name: "success", err: nil},
		{name: "error already shown", err: exitWith("exit 32"), wantBail: true},
		{name: "failure", err: exitWith("exit 1"), wantError: "Program exited with non-zero exit code: 1"},
		{name: "signal", err: exitWith("kill -9 $$"), wantError: "Program was stopped: signal: killed"},
		{name: "not started", err: exec.Command("/nonexistent").Run(), wantError: "could not run the Node.js program: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runResponse(tc.err)
			if got.Bail != tc.wantBail || !strings.HasPrefix(got.Error, tc.wantError) ||
				(tc.wantError == "") != (got.Error == "") {
				t.Errorf("got %+v, want error %q bail %v", got, tc.wantError, tc.wantBail)
			}
		})
	}
}
