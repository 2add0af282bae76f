package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// The tests drive the provider through its gRPC service, as the engine does.

const (
	remoteURN = "urn:pulumi:test::proj::command:remote:Command::step"
	localURN  = "urn:pulumi:test::proj::command:local:Command::step"
)

// recordedLog stands in for the engine host.
type recordedLog struct {
	mu       sync.Mutex
	status   []string
	messages []string
}

func (r *recordedLog) Log(_ context.Context, sev diag.Severity, _ resource.URN, msg string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages = append(r.messages, string(sev)+": "+msg)
	return nil
}

func (r *recordedLog) LogStatus(_ context.Context, _ diag.Severity, _ resource.URN, msg string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = append(r.status, msg)
	return nil
}

func (r *recordedLog) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(append(append([]string(nil), r.status...), r.messages...), "\n")
}

type harness struct {
	t    *testing.T
	prov *commandProvider
	srv  pulumirpc.ResourceProviderServer
	log  *recordedLog
}

func newHarness(t *testing.T) *harness {
	log := &recordedLog{}
	prov := newCommandProvider(log)
	return &harness{t: t, prov: prov, srv: plugin.NewProviderServer(prov), log: log}
}

var wire = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, KeepResources: true}

func (h *harness) marshal(m resource.PropertyMap) *structpb.Struct {
	h.t.Helper()
	s, err := plugin.MarshalProperties(m, wire)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) unmarshal(s *structpb.Struct) resource.PropertyMap {
	h.t.Helper()
	m, err := plugin.UnmarshalProperties(s, wire)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

func (h *harness) check(urn string, news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	h.t.Helper()
	resp, err := h.srv.Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: h.marshal(news)})
	if err != nil {
		h.t.Fatal(err)
	}
	return h.unmarshal(resp.Inputs), resp.Failures
}

func (h *harness) create(urn string, inputs resource.PropertyMap, preview bool) (string, resource.PropertyMap, error) {
	h.t.Helper()
	resp, err := h.srv.Create(context.Background(), &pulumirpc.CreateRequest{
		Urn: urn, Properties: h.marshal(inputs), Preview: preview,
	})
	if err != nil {
		return "", nil, err
	}
	return resp.Id, h.unmarshal(resp.Properties), nil
}

func (h *harness) diff(urn string, oldInputs, state, news resource.PropertyMap) *pulumirpc.DiffResponse {
	h.t.Helper()
	resp, err := h.srv.Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: urn, Id: "x", OldInputs: h.marshal(oldInputs), Olds: h.marshal(state), News: h.marshal(news),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

func (h *harness) update(
	urn string, oldInputs, state, news resource.PropertyMap, preview bool,
) (resource.PropertyMap, error) {
	h.t.Helper()
	resp, err := h.srv.Update(context.Background(), &pulumirpc.UpdateRequest{
		Urn: urn, Id: "x", OldInputs: h.marshal(oldInputs), Olds: h.marshal(state), News: h.marshal(news),
		Preview: preview,
	})
	if err != nil {
		return nil, err
	}
	return h.unmarshal(resp.Properties), nil
}

func (h *harness) delete(urn string, inputs, state resource.PropertyMap) error {
	h.t.Helper()
	_, err := h.srv.Delete(context.Background(), &pulumirpc.DeleteRequest{
		Urn: urn, Id: "x", OldInputs: h.marshal(inputs), Properties: h.marshal(state),
	})
	return err
}

// remoteInputs are inputs as the SDK sends them: connection is a secret.
func remoteInputs(conn map[string]any, extra map[string]any) resource.PropertyMap {
	m := map[string]any{"connection": conn}
	for k, v := range extra {
		m[k] = v
	}
	pm := resource.NewPropertyMapFromMap(m)
	pm["connection"] = resource.MakeSecret(pm["connection"])
	return pm
}

func str(t *testing.T, m resource.PropertyMap, k resource.PropertyKey) string {
	t.Helper()
	v := m[k]
	if !v.IsString() {
		t.Fatalf("%s = %v, want a string", k, v)
	}
	return v.StringValue()
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("%s does not contain %q:\n%s", what, want, got)
		}
	}
}

func TestRemoteLifecycle(t *testing.T) {
	srv := startTestSSHServer(t)
	h := newHarness(t)
	dir := t.TempDir()
	inputs := remoteInputs(srv.connection(), map[string]any{
		"create":      "echo created; read line; echo \"stdin=$line\"; echo \"greeting=$GREETING\"; echo oops >&2",
		"delete":      fmt.Sprintf("echo \"$PULUMI_COMMAND_STDOUT\" > %s/deleted", dir),
		"stdin":       "hello\n",
		"environment": map[string]any{"GREETING": "hi"},
		"triggers":    []any{"v1"},
	})

	checked, failures := h.check(remoteURN, inputs)
	if len(failures) > 0 {
		t.Fatalf("unexpected check failures: %v", failures)
	}

	// Preview runs nothing and leaves the outputs unknown.
	if _, state, err := h.create(remoteURN, checked, true); err != nil {
		t.Fatal(err)
	} else if !state["stdout"].IsComputed() || !state["stderr"].IsComputed() {
		t.Fatalf("preview outputs should be unknown: %v", state)
	}
	if strings.Contains(h.log.all(), "created") {
		t.Fatalf("preview ran the command: %s", h.log.all())
	}

	id, state, err := h.create(remoteURN, checked, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "step") {
		t.Errorf("id %q should start with the resource name", id)
	}
	if got, want := str(t, state, "stdout"), "created\nstdin=hello\ngreeting=hi"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if got := str(t, state, "stderr"); got != "oops" {
		t.Errorf("stderr = %q, want %q", got, "oops")
	}
	if !state["connection"].IsSecret() {
		t.Error("connection must stay secret in the state")
	}
	if state["stdout"].IsSecret() {
		t.Error("stdout should not be secret (upstream leaves it to additionalSecretOutputs)")
	}
	mustContain(t, "log", h.log.all(), "created", "stdin=hello", "oops")
	if strings.Contains(h.log.all(), "PRIVATE KEY") {
		t.Fatal("the private key reached the log")
	}

	// A change of triggers replaces; another change updates.
	changed := checked.Copy()
	changed["triggers"] = resource.NewPropertyValue([]any{"v2"})
	if d := h.diff(remoteURN, checked, state, changed); len(d.Replaces) != 1 || d.Replaces[0] != "triggers" {
		t.Errorf("triggers change: replaces = %v, want [triggers]", d.Replaces)
	}
	// In preview a trigger may not be known yet; that is a replace too.
	changed["triggers"] = resource.NewArrayProperty([]resource.PropertyValue{
		resource.MakeComputed(resource.NewStringProperty("")),
	})
	if d := h.diff(remoteURN, checked, state, changed); len(d.Replaces) != 1 || d.Replaces[0] != "triggers" {
		t.Errorf("unknown trigger: replaces = %v, want [triggers]", d.Replaces)
	}
	delete(changed, "triggers")
	if d := h.diff(remoteURN, checked, state, changed); len(d.Replaces) != 1 || d.Replaces[0] != "triggers" {
		t.Errorf("triggers removed: replaces = %v, want [triggers]", d.Replaces)
	}
	changed = checked.Copy()
	changed["create"] = resource.NewStringProperty("echo again")
	d := h.diff(remoteURN, checked, state, changed)
	if d.Changes != pulumirpc.DiffResponse_DIFF_SOME || len(d.Replaces) != 0 ||
		len(d.Diffs) != 1 || d.Diffs[0] != "create" {
		t.Errorf("create change: changes=%v diffs=%v replaces=%v, want an update of create",
			d.Changes, d.Diffs, d.Replaces)
	}
	if d := h.diff(remoteURN, checked, state, checked); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("no change: changes = %v", d.Changes)
	}

	// Without an update command, an update reruns create.
	state2, err := h.update(remoteURN, checked, state, changed, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := str(t, state2, "stdout"); got != "again" {
		t.Errorf("update without update command: stdout = %q, want %q", got, "again")
	}

	// With one, it runs update, which sees the previous stdout.
	withUpdate := changed.Copy()
	withUpdate["update"] = resource.NewStringProperty("echo \"updated after $PULUMI_COMMAND_STDOUT\"")
	state3, err := h.update(remoteURN, changed, state2, withUpdate, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := str(t, state3, "stdout"); got != "updated after again" {
		t.Errorf("update: stdout = %q", got)
	}

	if err := h.delete(remoteURN, withUpdate, state3); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "deleted"))
	if err != nil {
		t.Fatal("delete command did not run:", err)
	}
	if string(got) != "updated after again\n" {
		t.Errorf("delete saw PULUMI_COMMAND_STDOUT = %q", got)
	}
}

func TestRemoteUpdatePreviewAndNoCommand(t *testing.T) {
	h := newHarness(t)
	// Nothing here dials: preview never connects, and no command means no run.
	conn := map[string]any{"host": "127.0.0.1", "port": float64(1)}
	olds := remoteInputs(conn, map[string]any{"create": "true"})
	state := olds.Copy()
	setOutputs(state, result{stdout: "before"})

	news := remoteInputs(conn, map[string]any{"create": "false"})
	got, err := h.update(remoteURN, olds, state, news, true)
	if err != nil {
		t.Fatal(err)
	}
	if !got["stdout"].IsComputed() {
		t.Errorf("preview of an update that runs a command: stdout = %v, want unknown", got["stdout"])
	}

	news = remoteInputs(conn, map[string]any{"delete": "true"})
	got, err = h.update(remoteURN, olds, state, news, false)
	if err != nil {
		t.Fatal(err)
	}
	if s := str(t, got, "stdout"); s != "before" {
		t.Errorf("update without commands: stdout = %q, want the previous %q", s, "before")
	}
	// Deleting without a delete command does nothing (and does not dial).
	if err := h.delete(remoteURN, olds, state); err != nil {
		t.Fatal(err)
	}
}

// Update and delete fail like create (TestFailedCommandError has the text).
func TestRemoteUpdateAndDeleteFailure(t *testing.T) {
	srv := startTestSSHServer(t)
	h := newHarness(t)
	olds := remoteInputs(srv.connection(), map[string]any{"create": "true", "delete": "echo gone; exit 4"})
	state := olds.Copy()
	setOutputs(state, result{})
	news := remoteInputs(srv.connection(), map[string]any{"create": "true", "update": "echo no; exit 5"})
	if _, err := h.update(remoteURN, olds, state, news, false); err == nil {
		t.Error("a failing update must fail")
	} else {
		mustContain(t, "update error", err.Error(), "Process exited with status 5: running \"echo no; exit 5\":\nno\n")
	}
	if err := h.delete(remoteURN, olds, state); err == nil {
		t.Error("a failing delete must fail")
	} else {
		mustContain(t, "delete error", err.Error(), "Process exited with status 4: running \"echo gone; exit 4\":\ngone\n")
	}
}

func TestRemoteEnvironmentRefused(t *testing.T) {
	srv := startTestSSHServer(t)
	h := newHarness(t)
	_, _, err := h.create(remoteURN, remoteInputs(srv.connection(), map[string]any{
		"create":      "true",
		"environment": map[string]any{"NOT_ACCEPTED": "x"},
	}), false)
	if err == nil {
		t.Fatal("a refused environment variable must fail the run")
	}
	mustContain(t, "error", err.Error(), "NOT_ACCEPTED", "AcceptEnv")

	// A refused PULUMI_COMMAND_STDOUT only warns.
	delete(srv.acceptEnv, prevStdoutVar)
	inputs := remoteInputs(srv.connection(), map[string]any{"create": "echo hi"})
	state := inputs.Copy()
	setOutputs(state, result{stdout: "old"})
	if _, err := h.update(remoteURN, inputs, state, inputs, false); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "log", h.log.all(), "warning: the server refused environment variable PULUMI_COMMAND_STDOUT")
}

func TestRemoteAuth(t *testing.T) {
	srv := startTestSSHServer(t)
	h := newHarness(t)
	run := func(conn map[string]any) error {
		_, _, err := h.create(remoteURN, remoteInputs(conn, map[string]any{"create": "true"}), false)
		return err
	}

	conn := srv.connection()
	delete(conn, "privateKey")
	conn["password"] = testPassword
	if err := run(conn); err != nil {
		t.Errorf("password: %v", err)
	}

	_, priv := newKey(t)
	conn = srv.connection()
	conn["dialErrorLimit"] = float64(1)
	conn["privateKey"] = pemKey(t, priv, "")
	if err := run(conn); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("wrong key: err = %v", err)
	}

	// An encrypted key needs its passphrase, and the error says so.
	encrypted := newTestSSHServer(t)
	_, encPriv := newKey(t)
	encSigner, _ := ssh.NewSignerFromKey(encPriv)
	encrypted.clientPub = encSigner.PublicKey()
	encrypted.serve(t, "127.0.0.1:0")
	conn = encrypted.connection()
	conn["privateKey"] = pemKey(t, encPriv, "phrase")
	if err := run(conn); err == nil || !strings.Contains(err.Error(), "privateKeyPassword") {
		t.Errorf("encrypted key without passphrase: err = %v", err)
	}
	conn["privateKeyPassword"] = "phrase"
	if err := run(conn); err != nil {
		t.Errorf("encrypted key with passphrase: %v", err)
	}
}

func TestRemoteHostKey(t *testing.T) {
	srv := startTestSSHServer(t)
	h := newHarness(t)
	run := func(hostKey string) error {
		conn := srv.connection()
		conn["hostKey"] = hostKey
		_, _, err := h.create(remoteURN, remoteInputs(conn, map[string]any{"create": "true"}), false)
		return err
	}
	if err := run(string(ssh.MarshalAuthorizedKey(srv.hostKey.PublicKey()))); err != nil {
		t.Errorf("right host key: %v", err)
	}
	// TestHostKeyMismatchIsRetried has the wrong key.
	if err := run("not a key"); err == nil || !strings.Contains(err.Error(), "connection.hostKey") {
		t.Errorf("unparsable host key: err = %v", err)
	}
}

func TestDialGivesUpNamingTheAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now

	h := newHarness(t)
	conn := map[string]any{
		"host": "127.0.0.1", "port": float64(port), "password": "x",
		"dialErrorLimit": float64(3), "perDialTimeout": float64(1),
	}
	_, _, err = h.create(remoteURN, remoteInputs(conn, map[string]any{"create": "true"}), false)
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	// dialErrorLimit 3 tolerates three failures: four attempts.
	mustContain(t, "error", err.Error(), fmt.Sprintf("127.0.0.1:%d", port), "after 4 attempt(s)", "connection refused")
	mustContain(t, "log", h.log.all(), "dial error 1/3", "dial error 3/3")
}

func TestDialWaitsForBootingHost(t *testing.T) {
	srv := newTestSSHServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	time.AfterFunc(700*time.Millisecond, func() { srv.serve(t, addr) })

	h := newHarness(t)
	conn := srv.connection()
	conn["dialErrorLimit"] = float64(20)
	_, state, err := h.create(remoteURN, remoteInputs(conn, map[string]any{"create": "echo up"}), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := str(t, state, "stdout"); got != "up" {
		t.Errorf("stdout = %q", got)
	}
	mustContain(t, "log", h.log.all(), "dial error 1/20")
}

func TestCancellationStopsCommand(t *testing.T) {
	srv := startTestSSHServer(t)
	h := newHarness(t)
	time.AfterFunc(500*time.Millisecond, func() {
		_, _ = h.srv.Cancel(context.Background(), &emptypb.Empty{})
	})
	start := time.Now()
	_, _, err := h.create(remoteURN, remoteInputs(srv.connection(), map[string]any{"create": "sleep 3"}), false)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v, want a cancellation", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("cancellation took %v", time.Since(start))
	}
}

func TestCheck(t *testing.T) {
	h := newHarness(t)
	unknown := resource.MakeComputed(resource.NewStringProperty(""))
	for _, tc := range []struct {
		name   string
		urn    string
		inputs resource.PropertyMap
		want   []string // "property: reason" substrings, in order
	}{
		{"valid", remoteURN, remoteInputs(map[string]any{"host": "h"}, nil), nil},
		{"no connection", remoteURN, resource.PropertyMap{"create": resource.NewStringProperty("x")},
			[]string{"connection: missing required property"}},
		{"no host", remoteURN, remoteInputs(map[string]any{"port": float64(22)}, nil),
			[]string{"connection.host: missing required property"}},
		{"proxy", remoteURN, remoteInputs(map[string]any{"host": "h", "proxy": map[string]any{"host": "b"}}, nil),
			[]string{"connection.proxy: proxy connections are not supported"}},
		{"bad types", remoteURN, remoteInputs(map[string]any{"host": "h", "port": "22"},
			map[string]any{"logging": "loud", "environment": []any{"A=1"}}),
			[]string{"connection: connection.port: expected a number, got a string",
				"environment: expected an object of strings, got a array",
				"logging: \"loud\" is not one of stdout, stderr, stdoutAndStderr, none"}},
		{"unknowns are fine", remoteURN, resource.PropertyMap{
			"connection": resource.MakeSecret(resource.NewObjectProperty(resource.PropertyMap{"host": unknown})),
			"create":     unknown,
		}, nil},
		{"local assets", localURN, resource.NewPropertyMapFromMap(map[string]any{"assetPaths": []any{"*"}}),
			[]string{"assetPaths: not supported"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checked, failures := h.check(tc.urn, tc.inputs)
			expectFailures(t, failures, tc.want)
			if c, ok := checked["connection"]; ok && !c.IsSecret() {
				t.Error("Check must return connection as a secret")
			}
		})
	}
}

func TestLocalCommand(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	inputs := resource.NewPropertyMapFromMap(map[string]any{
		"create":      "pwd; printf '%s\\n' \"$GREETING\"; cat",
		"delete":      "echo \"$PULUMI_COMMAND_STDOUT\" > deleted",
		"dir":         dir,
		"environment": map[string]any{"GREETING": "hi"},
		"stdin":       "from stdin",
		"interpreter": []any{"/bin/bash", "-c"},
	})
	_, state, err := h.create(localURN, inputs, false)
	if err != nil {
		t.Fatal(err)
	}
	want := dir + "\nhi\nfrom stdin"
	if got := str(t, state, "stdout"); got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if err := h.delete(localURN, inputs, state); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "deleted")); string(got) != want+"\n" {
		t.Errorf("delete saw %q", got)
	}

	_, _, err = h.create(localURN, resource.NewPropertyMapFromMap(map[string]any{"create": "exit 7"}), false)
	if err == nil || !strings.Contains(err.Error(), "exit status 7") {
		t.Errorf("failing local create: err = %v", err)
	}
}

func TestPluginInfoAndSchema(t *testing.T) {
	h := newHarness(t)
	info, err := h.srv.GetPluginInfo(context.Background(), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != "1.2.1" {
		t.Errorf("version = %q, want the SDK's 1.2.1", info.Version)
	}
	resp, err := h.srv.GetSchema(context.Background(), &pulumirpc.GetSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "schema", resp.Schema, `"command:remote:Command"`, `"command:local:Command"`)
}

func TestCaptureLogsLines(t *testing.T) {
	var lines []string
	c := &capture{emit: func(l string) { lines = append(lines, l) }}
	out, quiet := c.stream(true), c.stream(false)
	for _, chunk := range []string{"one\ntw", "o\r\n", "10%\r20%\r", "last"} {
		_, _ = out.Write([]byte(chunk))
	}
	_, _ = quiet.Write([]byte("hidden\n"))
	out.flush()
	quiet.flush()
	if got, want := strings.Join(lines, "|"), "one|two|10%|20%|last"; got != want {
		t.Errorf("logged %q, want %q", got, want)
	}
	if got := quiet.output(); got != "hidden" {
		t.Errorf("unlogged stream output = %q", got)
	}
	// A failed run's error repeats all output, logged or not, as upstream.
	if got, want := c.combined(), "one\ntwo\r\n10%\r20%\rlasthidden\n"; got != want {
		t.Errorf("combined output = %q, want %q", got, want)
	}
}

// expectFailures checks Check's failures, in order: each "property: reason"
// contains the wanted text.
func expectFailures(t *testing.T, failures []*pulumirpc.CheckFailure, want []string) {
	t.Helper()
	var got []string
	for _, f := range failures {
		got = append(got, f.Property+": "+f.Reason)
	}
	if len(got) != len(want) {
		t.Fatalf("failures = %q, want %q", got, want)
	}
	for i := range got {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("failure %d = %q, want %q", i, got[i], want[i])
		}
	}
}
