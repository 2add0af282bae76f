package main

// What a run leaves behind, compared with upstream pulumi-command 1.2.1
// (provider/pkg/provider/remote/commandOutputs.go: CommandOutputs.run).

import (
	"strconv"
	"strings"
	"testing"
)

// A failed command's error is "<err>: running <command, Go-quoted>:\n<all
// output>", stdout and stderr interleaved, whatever logging says.
func TestFailedCommandError(t *testing.T) {
	srv := startTestSSHServer(t)
	for _, tc := range []struct {
		name, command, logging, want string
		wantLogged                   []string
	}{
		{
			name:       "both streams",
			command:    "echo step one; sleep 0.2; echo broken >&2; exit 3",
			want:       "Process exited with status 3: running \"echo step one; sleep 0.2; echo broken >&2; exit 3\":\nstep one\nbroken\n",
			wantLogged: []string{"step one", "broken"},
		},
		{
			name:    "logging none",
			command: "echo s3cret; exit 1",
			logging: "none",
			want:    "Process exited with status 1: running \"echo s3cret; exit 1\":\ns3cret\n",
		},
		{
			name:       "logging stdout",
			command:    "echo out; sleep 0.2; echo err >&2; exit 1",
			logging:    "stdout",
			want:       "Process exited with status 1: running \"echo out; sleep 0.2; echo err >&2; exit 1\":\nout\nerr\n",
			wantLogged: []string{"out"},
		},
		{
			name:    "multi-line command, no output",
			command: "true\nfalse",
			want:    "Process exited with status 1: running \"true\\nfalse\":\n",
		},
		{
			name:       "long output is kept whole",
			command:    "seq 1 20000; exit 2",
			logging:    "none",
			want:       "Process exited with status 2: running \"seq 1 20000; exit 2\":\n" + seq(20000),
			wantLogged: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			inputs := map[string]any{"create": tc.command}
			if tc.logging != "" {
				inputs["logging"] = tc.logging
			}
			_, _, err := h.create(remoteURN, remoteInputs(srv.connection(), inputs), false)
			if err == nil {
				t.Fatal("a failing create must fail the resource")
			}
			// The gRPC status carries the provider's text after its own prefix.
			got := err.Error()
			if i := strings.Index(got, "Process exited"); i >= 0 {
				got = got[i:]
			}
			if got != tc.want {
				t.Errorf("error =\n%q\nwant\n%q", got, tc.want)
			}
			h.log.mu.Lock()
			logged := h.log.status
			h.log.mu.Unlock()
			if strings.Join(logged, "|") != strings.Join(tc.wantLogged, "|") {
				t.Errorf("logged %q, want %q", logged, tc.wantLogged)
			}
		})
	}
}

func seq(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// stdout and stderr are returned whole, less one trailing newline.
func TestOutputsLoseOneTrailingNewline(t *testing.T) {
	srv := startTestSSHServer(t)
	h := newHarness(t)
	long := strings.Repeat("x", 200<<10)
	for _, tc := range []struct {
		name, command, stdout, stderr string
	}{
		{"one newline", "echo a; echo b >&2", "a", "b"},
		{"two newlines", "printf 'a\\n\\n'; printf 'b\\n\\n' >&2", "a\n", "b\n"},
		{"no newline", "printf a; printf b >&2", "a", "b"},
		{"carriage return kept", "printf 'a\\r\\n'", "a\r", ""},
		{"nothing", "true", "", ""},
		// Upstream stops logging at a 64 KiB line and never returns; ours
		// logs it in pieces.
		{"one 200 KiB line", "head -c 204800 /dev/zero | tr '\\0' x; echo", long, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, state, err := h.create(remoteURN, remoteInputs(srv.connection(), map[string]any{"create": tc.command}), false)
			if err != nil {
				t.Fatal(err)
			}
			if got := str(t, state, "stdout"); got != tc.stdout {
				t.Errorf("stdout = %.80q (%d bytes), want %.80q (%d bytes)", got, len(got), tc.stdout, len(tc.stdout))
			}
			if got := str(t, state, "stderr"); got != tc.stderr {
				t.Errorf("stderr = %q, want %q", got, tc.stderr)
			}
		})
	}
}
