package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/archive"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/asset"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
)

const copyURN = "urn:pulumi:test::proj::command:remote:CopyToRemote::program"

// The test server's SFTP subsystem works on this machine's file system, so
// "remote" paths below are in temporary directories here.

// copyInputs are inputs as the SDK sends them; the engine has already hashed
// the source.
func copyInputs(conn map[string]any, source resource.PropertyValue, remotePath string, triggers ...any) resource.PropertyMap {
	m := remoteInputs(conn, map[string]any{"remotePath": remotePath})
	m["source"] = source
	if len(triggers) > 0 {
		m["triggers"] = resource.NewPropertyValue(triggers)
	}
	return m
}

func fileAsset(t *testing.T, path string) resource.PropertyValue {
	t.Helper()
	a, err := resource.NewPathAsset(path)
	if err != nil {
		t.Fatal(err)
	}
	return resource.NewAssetProperty(a)
}

func textAsset(t *testing.T, text string) resource.PropertyValue {
	t.Helper()
	a, err := resource.NewTextAsset(text)
	if err != nil {
		t.Fatal(err)
	}
	return resource.NewAssetProperty(a)
}

func dirArchive(t *testing.T, path string) resource.PropertyValue {
	t.Helper()
	a, err := resource.NewPathArchive(path)
	if err != nil {
		t.Fatal(err)
	}
	return resource.NewArchiveProperty(a)
}

func writeFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func fileContent(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fileMode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// The life of the copy that delivers a program: create, an update that only
// records a new connection, an update after the program changed, a
// replacement by triggers, and delete.
func TestCopyToRemoteLifecycle(t *testing.T) {
	srv := startTestSSHServer(t)
	h := newHarness(t)
	local := filepath.Join(t.TempDir(), "pullsnap-server")
	writeFile(t, local, "#!/bin/sh\necho v1\n", 0o755)
	remote := filepath.Join(t.TempDir(), "opt", "pullsnap", "bin", "pullsnap-server")

	inputs := copyInputs(srv.connection(), fileAsset(t, local), remote, "hash-v1")
	checked, failures := h.check(copyURN, inputs)
	if len(failures) > 0 {
		t.Fatalf("unexpected check failures: %v", failures)
	}
	if !checked["connection"].IsSecret() {
		t.Error("Check must return connection as a secret")
	}

	// Preview copies nothing, and the outputs (the inputs) are known.
	if _, state, err := h.create(copyURN, checked, true); err != nil {
		t.Fatal(err)
	} else if !state["source"].IsAsset() || state["remotePath"].StringValue() != remote {
		t.Errorf("preview state = %v", state)
	}
	if _, err := os.Stat(remote); err == nil || srv.accepted.Load() != 0 {
		t.Fatal("preview dialled or copied")
	}

	id, state, err := h.create(copyURN, checked, false)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(id) {
		t.Errorf("id = %q, want 8 hex digits, as upstream", id)
	}
	if got := fileContent(t, remote); got != "#!/bin/sh\necho v1\n" {
		t.Errorf("remote content = %q", got)
	}
	// As upstream, the local mode is not copied: the server's default is.
	if got := fileMode(t, remote); got != 0o644 {
		t.Errorf("remote mode = %v, want the SFTP server's 0644", got)
	}
	if !state["connection"].IsSecret() {
		t.Error("connection must stay secret in the state")
	}
	if d := state.Diff(checked); d != nil && d.AnyChanges() {
		t.Errorf("the state should be the inputs; diff: %v", d.ChangedKeys())
	}

	// A changed connection alone is recorded without copying again.
	writeFile(t, remote, "edited on the host", 0o750)
	newConn := srv.connection()
	newConn["dialErrorLimit"] = float64(5)
	news := copyInputs(newConn, fileAsset(t, local), remote, "hash-v1")
	d := h.diff(copyURN, checked, state, news)
	if d.Changes != pulumirpc.DiffResponse_DIFF_SOME || len(d.Replaces) != 0 {
		t.Errorf("connection change: changes=%v replaces=%v, want an update", d.Changes, d.Replaces)
	}
	state2, err := h.update(copyURN, checked, state, news, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := fileContent(t, remote); got != "edited on the host" {
		t.Errorf("an update without a new hash or remotePath copied again: %q", got)
	}

	// A new program (a new asset hash) is copied over the old one, which
	// keeps its mode.
	writeFile(t, local, "#!/bin/sh\necho v2\n", 0o755)
	news2 := copyInputs(newConn, fileAsset(t, local), remote, "hash-v1")
	d = h.diff(copyURN, news, state2, news2)
	if d.Changes != pulumirpc.DiffResponse_DIFF_SOME || len(d.Replaces) != 0 ||
		len(d.Diffs) != 1 || d.Diffs[0] != "source" {
		t.Errorf("new content: changes=%v diffs=%v replaces=%v, want an update of source",
			d.Changes, d.Diffs, d.Replaces)
	}
	if _, err := h.update(copyURN, news, state2, news2, true); err != nil {
		t.Fatal(err)
	} else if got := fileContent(t, remote); got != "edited on the host" {
		t.Error("a preview of the update copied")
	}
	state3, err := h.update(copyURN, news, state2, news2, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := fileContent(t, remote); got != "#!/bin/sh\necho v2\n" {
		t.Errorf("after update: remote content = %q", got)
	}
	if got := fileMode(t, remote); got != 0o750 {
		t.Errorf("after update: remote mode = %v, want the existing file's 0750", got)
	}

	// New triggers replace: the engine creates the new copy, then deletes
	// the old resource, which leaves the file alone.
	news3 := copyInputs(newConn, fileAsset(t, local), remote, "hash-v2")
	if d := h.diff(copyURN, news2, state3, news3); len(d.Replaces) != 1 || d.Replaces[0] != "triggers" ||
		d.DeleteBeforeReplace {
		t.Errorf("triggers change: replaces=%v deleteBeforeReplace=%v, want [triggers], false",
			d.Replaces, d.DeleteBeforeReplace)
	}
	if err := h.delete(copyURN, news2, state3); err != nil {
		t.Fatal(err)
	}
	if got := fileContent(t, remote); got != "#!/bin/sh\necho v2\n" {
		t.Errorf("delete changed the remote file: %q", got)
	}
}

func TestCopyToRemoteDiff(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	a, b, sameAsA := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "a-again")
	writeFile(t, a, "one", 0o644)
	writeFile(t, b, "two", 0o644)
	writeFile(t, sameAsA, "one", 0o644)
	conn := map[string]any{"host": "127.0.0.1", "port": float64(1)}
	olds := copyInputs(conn, fileAsset(t, a), "/srv/x", "t1")

	for _, tc := range []struct {
		name            string
		news            resource.PropertyMap
		changes         pulumirpc.DiffResponse_DiffChanges
		diffs, replaces []string
	}{
		{name: "same", news: olds, changes: pulumirpc.DiffResponse_DIFF_NONE},
		// Assets compare by hash: another path with the same content is no change.
		{name: "same content elsewhere", news: copyInputs(conn, fileAsset(t, sameAsA), "/srv/x", "t1"),
			changes: pulumirpc.DiffResponse_DIFF_NONE},
		{name: "new content", news: copyInputs(conn, fileAsset(t, b), "/srv/x", "t1"),
			changes: pulumirpc.DiffResponse_DIFF_SOME, diffs: []string{"source"}},
		{name: "a StringAsset of the same content", news: copyInputs(conn, textAsset(t, "one"), "/srv/x", "t1"),
			changes: pulumirpc.DiffResponse_DIFF_NONE},
		{name: "new remotePath", news: copyInputs(conn, fileAsset(t, a), "/srv/y", "t1"),
			changes: pulumirpc.DiffResponse_DIFF_SOME, diffs: []string{"remotePath"}},
		{name: "new trigger", news: copyInputs(conn, fileAsset(t, a), "/srv/x", "t2"),
			changes: pulumirpc.DiffResponse_DIFF_SOME, diffs: []string{"triggers"}, replaces: []string{"triggers"}},
		{name: "triggers dropped", news: copyInputs(conn, fileAsset(t, a), "/srv/x"),
			changes: pulumirpc.DiffResponse_DIFF_SOME, diffs: []string{"triggers"}, replaces: []string{"triggers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := h.diff(copyURN, olds, olds, tc.news)
			if d.Changes != tc.changes || strings.Join(d.Diffs, ",") != strings.Join(tc.diffs, ",") ||
				strings.Join(d.Replaces, ",") != strings.Join(tc.replaces, ",") || d.DeleteBeforeReplace {
				t.Errorf("changes=%v diffs=%v replaces=%v deleteBeforeReplace=%v, want %v %v %v false",
					d.Changes, d.Diffs, d.Replaces, d.DeleteBeforeReplace, tc.changes, tc.diffs, tc.replaces)
			}
		})
	}
}

// Where a source lands, as upstream's table says (see putPath).
func TestCopyToRemotePaths(t *testing.T) {
	srv := startTestSSHServer(t)
	h := newHarness(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "tool"), "tool", 0o755)
	writeFile(t, filepath.Join(src, "tree", "top"), "top", 0o644)
	writeFile(t, filepath.Join(src, "tree", "sub", "leaf"), "leaf", 0o600)
	tool, tree := filepath.Join(src, "tool"), filepath.Join(src, "tree")

	for _, tc := range []struct {
		name    string
		source  func(t *testing.T) resource.PropertyValue
		setup   func(t *testing.T, dest string) // prepares the remote side
		dest    string                          // remotePath, under the test's remote directory
		want    map[string]string               // remote files and their content
		wantErr string
	}{
		{name: "file to a new path makes its parents", source: func(t *testing.T) resource.PropertyValue {
			return fileAsset(t, tool)
		}, dest: "a/b/tool", want: map[string]string{"a/b/tool": "tool"}},
		{name: "file into an existing directory", source: func(t *testing.T) resource.PropertyValue {
			return fileAsset(t, tool)
		}, setup: mkdir("bin"), dest: "bin", want: map[string]string{"bin/tool": "tool"}},
		{name: "file over an existing file", source: func(t *testing.T) resource.PropertyValue {
			return fileAsset(t, tool)
		}, setup: file("old", "old content that is longer"), dest: "old", want: map[string]string{"old": "tool"}},
		{name: "directory to a new path", source: func(t *testing.T) resource.PropertyValue {
			return dirArchive(t, tree)
		}, dest: "new", want: map[string]string{"new/tree/top": "top", "new/tree/sub/leaf": "leaf"}},
		{name: "directory into an existing one, merging", source: func(t *testing.T) resource.PropertyValue {
			return dirArchive(t, tree)
		}, setup: file("have/tree/kept", "kept"), dest: "have",
			want: map[string]string{"have/tree/top": "top", "have/tree/sub/leaf": "leaf", "have/tree/kept": "kept"}},
		{name: "directory with a slash: its contents", source: func(t *testing.T) resource.PropertyValue {
			return dirArchive(t, tree+"/")
		}, dest: "flat", want: map[string]string{"flat/top": "top", "flat/sub/leaf": "leaf"}},
		{name: "directory over a file", source: func(t *testing.T) resource.PropertyValue {
			return dirArchive(t, tree)
		}, setup: file("plain", "x"), dest: "plain", wantErr: "plain/tree"},
		{name: "directory with a slash over a file", source: func(t *testing.T) resource.PropertyValue {
			return dirArchive(t, tree+"/")
		}, setup: file("plain", "x"), dest: "plain", wantErr: "plain exists and is not a directory"},
		{name: "text to a new path", source: func(t *testing.T) resource.PropertyValue {
			return textAsset(t, "key=value\n")
		}, dest: "etc/app.conf", want: map[string]string{"etc/app.conf": "key=value\n"}},
		{name: "text onto a directory", source: func(t *testing.T) resource.PropertyValue {
			return textAsset(t, "x")
		}, setup: mkdir("etc"), dest: "etc", wantErr: "etc is a directory: a StringAsset needs remotePath to name a file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, root)
			}
			_, _, err := h.create(copyURN, copyInputs(srv.connection(), tc.source(t), filepath.Join(root, tc.dest)), false)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("no error, want one containing %q", tc.wantErr)
				}
				mustContain(t, "error", err.Error(), tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for rel, want := range tc.want {
				if got := fileContent(t, filepath.Join(root, rel)); got != want {
					t.Errorf("%s = %q, want %q", rel, got, want)
				}
				if got := fileMode(t, filepath.Join(root, rel)); rel != "have/tree/kept" && got != 0o644 {
					t.Errorf("%s mode = %v, want the server's 0644", rel, got)
				}
			}
		})
	}
}

func mkdir(rel string) func(*testing.T, string) {
	return func(t *testing.T, root string) {
		if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func file(rel, content string) func(*testing.T, string) {
	return func(t *testing.T, root string) { writeFile(t, filepath.Join(root, rel), content, 0o644) }
}

func TestCopyToRemoteFailures(t *testing.T) {
	srv := startTestSSHServer(t)
	h := newHarness(t)
	local := filepath.Join(t.TempDir(), "program")
	writeFile(t, local, "program", 0o755)
	other, _ := newKey(t)
	noSFTP := newTestSSHServer(t)
	noSFTP.noSFTP = true
	noSFTP.serve(t, "127.0.0.1:0")

	for _, tc := range []struct {
		name     string
		srv      *testSSHServer
		conn     func(map[string]any)
		source   resource.PropertyValue
		want     []string
		attempts int32 // TCP connections the run made
	}{
		{
			// The engine hashed the file, and it is gone by the time of the copy.
			name: "missing source file", srv: srv,
			source: resource.NewAssetProperty(&asset.Asset{
				Sig: asset.AssetSig, Path: filepath.Join(filepath.Dir(local), "gone"), Hash: "00",
			}),
			want: []string{"source: stat ", "gone: no such file or directory"},
		},
		{
			name: "pinned host key mismatch", srv: srv,
			conn: func(c map[string]any) {
				c["hostKey"] = *authorizedKey(t, other.PublicKey())
				c["dialErrorLimit"] = float64(1)
			},
			want:     []string{"host key does not match connection.hostKey", "gave up after 2 attempt(s)"},
			attempts: 2,
		},
		{
			name: "server without SFTP", srv: noSFTP,
			want: []string{"start the SFTP subsystem"}, attempts: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := filepath.Join(t.TempDir(), "program")
			conn := tc.srv.connection()
			if tc.conn != nil {
				tc.conn(conn)
			}
			source := tc.source
			if source.V == nil {
				source = fileAsset(t, local)
			}
			before := tc.srv.accepted.Load()
			_, _, err := h.create(copyURN, copyInputs(conn, source, remote), false)
			if err == nil {
				t.Fatal("the copy succeeded")
			}
			mustContain(t, "error", err.Error(), tc.want...)
			if got := tc.srv.accepted.Load() - before; got != tc.attempts {
				t.Errorf("%d connections, want %d", got, tc.attempts)
			}
			if _, err := os.Stat(remote); err == nil {
				t.Error("the remote file was written")
			}
		})
	}

	// The right pinned key copies.
	conn := srv.connection()
	conn["hostKey"] = string(ssh.MarshalAuthorizedKey(srv.hostKey.PublicKey()))
	remote := filepath.Join(t.TempDir(), "program")
	if _, _, err := h.create(copyURN, copyInputs(conn, fileAsset(t, local), remote), false); err != nil {
		t.Fatal(err)
	}
	if got := fileContent(t, remote); got != "program" {
		t.Errorf("remote content = %q", got)
	}
}

func TestCopyToRemoteCheck(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "x", 0o644)
	conn := map[string]any{"host": "h"}
	unknown := resource.MakeComputed(resource.NewStringProperty(""))
	uri := resource.NewAssetProperty(&asset.Asset{Sig: asset.AssetSig, URI: "https://example.com/x", Hash: "00"})
	assets, err := archive.FromAssets(map[string]any{"f": mustAsset(t, filepath.Join(dir, "f"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		inputs resource.PropertyMap
		want   []string // "property: reason" substrings, in order
	}{
		{"file asset", copyInputs(conn, fileAsset(t, filepath.Join(dir, "f")), "/x"), nil},
		{"text asset", copyInputs(conn, textAsset(t, "x"), "/x"), nil},
		{"path archive", copyInputs(conn, dirArchive(t, dir), "/x"), nil},
		{"unknowns are fine", resource.PropertyMap{
			"connection": resource.MakeSecret(resource.NewObjectProperty(resource.PropertyMap{"host": unknown})),
			"source":     unknown,
			"remotePath": unknown,
		}, nil},
		{"nothing", resource.PropertyMap{}, []string{
			"connection: missing required property", "source: missing required property",
			"remotePath: missing required property",
		}},
		{"URI asset", copyInputs(conn, uri, "/x"), []string{"source: an asset must be a FileAsset or a StringAsset"}},
		{"archive of assets", copyInputs(conn, resource.NewArchiveProperty(assets), "/x"),
			[]string{"source: an archive must be a FileArchive"}},
		{"bad types", copyInputs(map[string]any{"port": float64(22)}, resource.NewStringProperty("/etc/passwd"), "/x"),
			[]string{"connection.host: missing required property", "source: expected an asset or an archive, got a string"}},
		{"remotePath not a string", withKey(copyInputs(conn, textAsset(t, "x"), "/x"), "remotePath", float64(1)),
			[]string{"remotePath: expected a string, got a number"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, failures := h.check(copyURN, tc.inputs)
			expectFailures(t, failures, tc.want)
		})
	}
}

func mustAsset(t *testing.T, path string) *asset.Asset {
	t.Helper()
	a, err := asset.FromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func withKey(m resource.PropertyMap, k resource.PropertyKey, v any) resource.PropertyMap {
	m[k] = resource.NewPropertyValue(v)
	return m
}
