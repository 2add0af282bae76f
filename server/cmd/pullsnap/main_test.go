package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const names = "2026-11-20T00:00:00Z\nnotes\n2026-11-25T00:00:00Z\n"

// The command line as the Bash runner reads it: what each prints, and how it exits.
func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		stdin  string
		env    map[string]string
		code   int
		stdout string // a prefix
		stderr string // exactly
	}{
		{args: nil, stdout: "pullsnap 0.1.0: pull backups"},
		{args: []string{"help"}, stdout: "pullsnap 0.1.0: pull backups"},
		{args: []string{"help", "retention-plan", "--bogus"}, stdout: "pullsnap 0.1.0: pull backups"},
		{args: []string{"-h"}, stdout: "pullsnap 0.1.0: pull backups"},
		{args: []string{"--help"}, stdout: "pullsnap 0.1.0: pull backups"},
		{args: []string{"--version"}, stdout: "pullsnap 0.1.0\n"},
		{args: []string{"version"}, stdout: "pullsnap 0.1.0\n"},
		{args: []string{"frobnicate"}, code: 2, stderr: "pullsnap: unknown command 'frobnicate'\nTry 'pullsnap help'.\n"},
		{args: []string{"run", "main"}, code: 2, stderr: "pullsnap: unknown command 'run'\nTry 'pullsnap help'.\n"},
		{args: []string{"-v"}, code: 2, stderr: "pullsnap: unknown command '-v'\nTry 'pullsnap help'.\n"},
		{args: []string{"--bogus", "retention-plan"}, code: 2, stderr: "pullsnap: unknown command '--bogus'\nTry 'pullsnap help'.\n"},
		{args: []string{"completion"}, code: 2, stderr: "pullsnap: unknown command 'completion'\nTry 'pullsnap help'.\n"},
		{args: []string{"__complete", "re"}, code: 2, stderr: "pullsnap: unknown command '__complete'\nTry 'pullsnap help'.\n"},

		{args: []string{"retention-plan", "--help"}, stdout: "Usage: pullsnap retention-plan [--now TIME]"},
		{args: []string{"retention-plan", "--now", "x", "-h", "--bogus"}, stdout: "Usage: pullsnap retention-plan"},
		{args: []string{"retention-plan", "--now", "2026-11-26T00:00:00Z", "--preserve-min", "no", "--preserve", "no"}, stdin: names,
			stdout: "keep\tnotes\tnot a snapshot name; left alone\ndelete\t2026-11-20T00:00:00Z\t6d0h old, kept by no rule\nkeep\t2026-11-25T00:00:00Z\tnewest snapshot\n"},
		{args: []string{"retention-plan", "--preserve-min", "no", "--preserve", "no", "--failed"}, stdin: names, env: map[string]string{"PULLSNAP_NOW": "1795680000"},
			stdout: "keep\tnotes\tnot a snapshot name; left alone\nkeep\t2026-11-20T00:00:00Z\tthe last run failed"},
		// --now "" is the system clock, or PULLSNAP_NOW.
		{args: []string{"retention-plan", "--now", "", "--preserve-min", "no", "--preserve", "no"}, stdin: names, env: map[string]string{"PULLSNAP_NOW": "2026-11-26T00:00:00Z"},
			stdout: "keep\tnotes\tnot a snapshot name; left alone\ndelete\t2026-11-20T00:00:00Z"},
		// COMPAT(bash): the last line counts only with its newline; NUL bytes are dropped.
		{args: []string{"retention-plan", "--now", "2026-11-26T00:00:00Z"}, stdin: "\n2026-11-2\x000T00:00:00Z\n\n2026-11-25T00:00:00Z",
			stdout: "keep\t2026-11-20T00:00:00Z\tnewest snapshot\n"},
		{args: []string{"retention-plan", "--bogus"}, code: 2, stderr: "pullsnap: retention-plan: unknown argument '--bogus'\nTry 'pullsnap help'.\n"},
		{args: []string{"retention-plan", "--now=5"}, code: 2, stderr: "pullsnap: retention-plan: unknown argument '--now=5'\nTry 'pullsnap help'.\n"},
		{args: []string{"retention-plan", "--", "--failed"}, code: 2, stderr: "pullsnap: retention-plan: unknown argument '--'\nTry 'pullsnap help'.\n"},
		{args: []string{"retention-plan", "--now", "tomorrow"}, code: 2,
			stderr: "pullsnap: PULLSNAP_NOW='tomorrow': expected epoch seconds or YYYY-MM-DDTHH:MM:SSZ\nTry 'pullsnap help'.\n"},
		{args: []string{"retention-plan"}, env: map[string]string{"PULLSNAP_NOW": "yesterday"}, code: 2,
			stderr: "pullsnap: PULLSNAP_NOW='yesterday': expected epoch seconds or YYYY-MM-DDTHH:MM:SSZ\nTry 'pullsnap help'.\n"},
		{args: []string{"retention-plan", "--now", "bad", "--preserve-min", "bad"}, code: 2,
			stderr: "pullsnap: PULLSNAP_NOW='bad': expected epoch seconds or YYYY-MM-DDTHH:MM:SSZ\nTry 'pullsnap help'.\n"},
		{args: []string{"retention-plan", "--preserve-min", "2x", "--preserve", "bad"}, code: 2,
			stderr: "pullsnap: retention-plan: --preserve-min '2x': expected all, latest, no or e.g. 2d\nTry 'pullsnap help'.\n"},
		{args: []string{"retention-plan", "--preserve-min", "a\nb"}, code: 2,
			stderr: "pullsnap: retention-plan: --preserve-min 'a\nb': expected all, latest, no or e.g. 2d\nTry 'pullsnap help'.\n"},
		{args: []string{"retention-plan", "--preserve", "7d 7d"}, code: 2,
			stderr: "pullsnap: retention-plan: --preserve '7d 7d': expected no or e.g. '24h 7d 4w 12m *y'\nTry 'pullsnap help'.\n"},
		// COMPAT(bash): where the Bash runner exits 1 without a word.
		{args: []string{"retention-plan", "--now"}, code: 1},
		{args: []string{"retention-plan", "--failed", "--preserve"}, code: 1},
		{args: []string{"retention-plan", "--now", "253402300800"}, stdin: names, code: 1, stdout: "keep\tnotes\tnot a snapshot name; left alone\n"},
		{args: []string{"retention-plan", "--now", "253402300800"}, stdin: "notes\n", stdout: "keep\tnotes\tnot a snapshot name; left alone\n"},
		// COMPAT(bash): a leading 0 is octal; 8 and 9 fail once the clock is used.
		{args: []string{"retention-plan", "--now", "0100"}, stdin: "1970-01-01T00:01:04Z\n1970-01-01T00:01:05Z\n",
			stdout: "keep\t1970-01-01T00:01:04Z\tnewest snapshot\nkeep\t1970-01-01T00:01:05Z\tdated 1s in the future (clock skew?)\n"},
		{args: []string{"retention-plan", "--now", "08"}, stdin: names, code: 1,
			stdout: "keep\tnotes\tnot a snapshot name; left alone\n", stderr: "pullsnap: error: 08: invalid octal number\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Setenv("PULLSNAP_NOW", tc.env["PULLSNAP_NOW"])
			var stdout, stderr bytes.Buffer
			code := run(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr)
			if code != tc.code || !strings.HasPrefix(stdout.String(), tc.stdout) || stderr.String() != tc.stderr {
				t.Errorf("exit %d; want %d\nstdout %q\nwant   %q...\nstderr %q\nwant   %q", code, tc.code, stdout.String(), tc.stdout, stderr.String(), tc.stderr)
			}
			if tc.stdout == "" && stdout.Len() > 0 {
				t.Errorf("stdout %q; want none", stdout.String())
			}
		})
	}
}

// COMPAT(bash): under systemd too, no line carries a priority (see logger).
func TestNoJournalPriorities(t *testing.T) {
	stderr, err := os.Create(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(stderr.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if code := run([]string{"retention-plan", "--preserve", "a\nb"}, strings.NewReader(""), &bytes.Buffer{}, stderr); code != 2 {
		t.Fatalf("exit %d; want 2", code)
	}
	got, err := os.ReadFile(stderr.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := "pullsnap: retention-plan: --preserve 'a\nb': expected no or e.g. '24h 7d 4w 12m *y'\nTry 'pullsnap help'.\n"
	if string(got) != want {
		t.Errorf("stderr %q; want %q", got, want)
	}
}
