package main

// Dialling and host keys, compared with upstream pulumi-command 1.2.1
// (provider/pkg/provider/remote/connection.go: SSHConfig, dialWithRetry,
// reachedDialingErrorLimit; pulumi's util/retry.Until for the pauses).

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The tests must not pick up the caller's agent: a stale SSH_AUTH_SOCK fails
// every run, as upstream.
func TestMain(m *testing.M) {
	os.Unsetenv("SSH_AUTH_SOCK")
	os.Exit(m.Run())
}

// bareListener accepts TCP connections on 127.0.0.1 and counts them; it
// hangs up at once, or, if silent, holds each connection open without a
// word, like an sshd that accepts and never speaks.
type bareListener struct {
	ln       net.Listener
	accepted atomic.Int32
}

func newBareListener(t *testing.T, silent bool) *bareListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &bareListener{ln: ln}
	var (
		mu   sync.Mutex
		held []net.Conn
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			if !silent {
				nc.Close()
				continue
			}
			mu.Lock()
			held = append(held, nc)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, nc := range held {
			nc.Close()
		}
	})
	return b
}

func (b *bareListener) connection(dialErrorLimit, perDialTimeout int) *connection {
	port := float64(b.ln.Addr().(*net.TCPAddr).Port)
	return &connection{Host: "127.0.0.1", Port: &port, DialErrorLimit: &dialErrorLimit, PerDialTimeout: &perDialTimeout}
}

func TestDialPause(t *testing.T) {
	for _, tc := range []struct {
		failed int
		want   time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 150 * time.Millisecond},
		{2, 225 * time.Millisecond},
		{3, 337500 * time.Microsecond},
		{9, 3844335937},       // 100 ms × 1.5⁹, in ns
		{10, 5 * time.Second}, // 100 ms × 1.5¹⁰ = 5.77 s, capped
		{1000, 5 * time.Second},
	} {
		if got := dialPause(tc.failed); got != tc.want {
			t.Errorf("dialPause(%d) = %v, want %v", tc.failed, got, tc.want)
		}
	}
}

// dialErrorLimit counts the errors tolerated, so N allows N+1 attempts.
func TestDialAttempts(t *testing.T) {
	for _, tc := range []struct {
		limit    int
		attempts int32
		statuses []string
	}{
		{0, 1, nil},
		{1, 2, []string{"dial error 1/1"}},
		{3, 4, []string{"dial error 1/3", "dial error 2/3", "dial error 3/3"}},
	} {
		b := newBareListener(t, false)
		var statuses []string
		_, err := b.connection(tc.limit, 5).dial(context.Background(), func(s string) { statuses = append(statuses, s) })
		if err == nil {
			t.Fatalf("limit %d: dial to a server that hangs up succeeded", tc.limit)
		}
		if got := b.accepted.Load(); got != tc.attempts {
			t.Errorf("limit %d: %d attempts, want %d", tc.limit, got, tc.attempts)
		}
		mustContain(t, "error", err.Error(), fmt.Sprintf("gave up after %d attempt(s)", tc.attempts), b.ln.Addr().String())
		if len(statuses) != len(tc.statuses) {
			t.Fatalf("limit %d: statuses %q, want %q", tc.limit, statuses, tc.statuses)
		}
		for i := range statuses {
			mustContain(t, "status", statuses[i], tc.statuses[i], "retrying")
		}
	}
}

func TestDialUnlimitedStopsOnCancel(t *testing.T) {
	b := newBareListener(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	_, err := b.connection(-1, 5).dial(ctx, func(string) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	// 100+150+225 ms of pauses fit in 700 ms: at least four attempts.
	if got := b.accepted.Load(); got < 4 {
		t.Errorf("%d attempts with no limit, want at least 4", got)
	}
}

// perDialTimeout bounds the TCP connect only (upstream passes it to ssh.Dial
// as ClientConfig.Timeout): an sshd that accepts and never speaks stalls the
// attempt past it. Only cancellation ends the wait.
func TestPerDialTimeoutCoversOnlyTheConnect(t *testing.T) {
	b := newBareListener(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.connection(3, 1).dial(ctx, func(string) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if elapsed := time.Since(start); elapsed < 2400*time.Millisecond {
		t.Errorf("gave up after %v: perDialTimeout (1 s) must not bound the handshake", elapsed)
	}
	if got := b.accepted.Load(); got != 1 {
		t.Errorf("%d attempts, want 1: the stalled handshake is never retried", got)
	}
}

func authorizedKey(t *testing.T, k ssh.PublicKey) *string {
	t.Helper()
	s := string(ssh.MarshalAuthorizedKey(k))
	return &s
}

// With hostKey pinned, only the pinned key's own type is offered; for ssh-rsa
// that is the SHA-1 signature, not rsa-sha2-256/512.
func TestHostKeyAlgorithms(t *testing.T) {
	ed, _ := newKey(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ssh.NewSignerFromKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner := newRSAKey(t)
	for _, tc := range []struct {
		name string
		key  ssh.PublicKey
		want []string
	}{
		{"ed25519", ed.PublicKey(), []string{ssh.KeyAlgoED25519}},
		{"ecdsa", ec.PublicKey(), []string{ssh.KeyAlgoECDSA256}},
		{"rsa", rsaSigner.PublicKey(), []string{ssh.KeyAlgoRSA}},
		{"not pinned", nil, nil},
	} {
		c := &connection{Host: "h"}
		if tc.key != nil {
			c.HostKey = authorizedKey(t, tc.key)
		}
		cfg, done, err := c.clientConfig()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		done()
		if !slices.Equal(cfg.HostKeyAlgorithms, tc.want) {
			t.Errorf("%s: offers %q, want %q", tc.name, cfg.HostKeyAlgorithms, tc.want)
		}
	}
}

func newRSAKey(t *testing.T) ssh.Signer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// A pinned ssh-rsa key fails against a server that, like OpenSSH 8.8 and
// later, no longer signs with SHA-1, and works against one that still does.
func TestPinnedRSAHostKey(t *testing.T) {
	rsaSigner := newRSAKey(t)
	sha2Only, err := ssh.NewSignerWithAlgorithms(rsaSigner.(ssh.AlgorithmSigner),
		[]string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		hostKey ssh.Signer
		wantErr string
	}{
		{"server without SHA-1", sha2Only, "no common algorithm for host key"},
		{"server with SHA-1", rsaSigner, ""},
	} {
		srv := newTestSSHServer(t)
		srv.hostKey = tc.hostKey
		srv.serve(t, "127.0.0.1:0")
		h := newHarness(t)
		conn := srv.connection()
		conn["hostKey"] = *authorizedKey(t, rsaSigner.PublicKey())
		conn["dialErrorLimit"] = float64(0)
		_, _, err := h.create(remoteURN, remoteInputs(conn, map[string]any{"create": "true"}), false)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

// A host key mismatch is retried like any dial error.
func TestHostKeyMismatchIsRetried(t *testing.T) {
	srv := startTestSSHServer(t)
	other, _ := newKey(t)
	h := newHarness(t)
	conn := srv.connection()
	conn["hostKey"] = *authorizedKey(t, other.PublicKey())
	conn["dialErrorLimit"] = float64(2)
	_, _, err := h.create(remoteURN, remoteInputs(conn, map[string]any{"create": "true"}), false)
	if err == nil {
		t.Fatal("a wrong host key was accepted")
	}
	mustContain(t, "error", err.Error(), "host key does not match connection.hostKey",
		ssh.FingerprintSHA256(srv.hostKey.PublicKey()), "gave up after 3 attempt(s)")
	if got := srv.accepted.Load(); got != 3 {
		t.Errorf("%d attempts, want 3", got)
	}
}

// An agent that cannot be reached fails the run before any dial, even when
// another method (here a password) would work.
func TestDeadAgentSocketFailsAtOnce(t *testing.T) {
	dead := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: dead, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the socket file stays; nothing listens on it

	for _, tc := range []struct {
		name, env, path, want string
	}{
		{"SSH_AUTH_SOCK dead", dead, "", "SSH agent (SSH_AUTH_SOCK): dial unix " + dead + ": connect: connection refused"},
		{"SSH_AUTH_SOCK missing", dead + ".gone", "", "no such file or directory"},
		{"agentSocketPath dead", "", dead, "connection.agentSocketPath: dial unix " + dead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SSH_AUTH_SOCK", tc.env)
			srv := startTestSSHServer(t)
			h := newHarness(t)
			conn := srv.connection()
			delete(conn, "privateKey")
			conn["password"] = testPassword
			conn["dialErrorLimit"] = float64(5)
			if tc.path != "" {
				conn["agentSocketPath"] = tc.path
			}
			start := time.Now()
			_, _, err := h.create(remoteURN, remoteInputs(conn, map[string]any{"create": "true"}), false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if elapsed := time.Since(start); elapsed > 500*time.Millisecond {
				t.Errorf("failed after %v: it must not retry", elapsed)
			}
			if got := srv.accepted.Load(); got != 0 {
				t.Errorf("%d dial attempts, want none", got)
			}
		})
	}
}
