package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Pauses between dial attempts, as upstream's (pulumi's retry.Until
// defaults): short at first, for a port that is about to open, then longer,
// for a VM that is still booting.
const (
	firstDialPause  = 100 * time.Millisecond
	dialPauseGrowth = 1.5
	maxDialPause    = 5 * time.Second
)

// dialPause is the pause after the nth failed attempt (n from 0).
func dialPause(n int) time.Duration {
	pause := firstDialPause
	for i := 0; i < n && pause < maxDialPause; i++ {
		pause = time.Duration(float64(pause) * dialPauseGrowth)
	}
	return min(pause, maxDialPause)
}

// errHostKeyMismatch is retried like any dial error, as upstream.
var errHostKeyMismatch = errors.New("host key does not match connection.hostKey")

// clientConfig turns the connection into an SSH client configuration. Its
// errors never quote the secrets they are about. Call done once dialled: it
// closes the agent connection, if any.
func (c *connection) clientConfig() (cfg *ssh.ClientConfig, done func(), err error) {
	done = func() {}
	cfg = &ssh.ClientConfig{
		User: c.user(),
		// Upstream's behaviour: without hostKey the host is not verified.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), //nolint:gosec // opt-in via hostKey, like upstream
	}
	if c.HostKey != nil {
		want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*c.HostKey))
		if err != nil {
			return nil, nil, fmt.Errorf("connection.hostKey: %w", err)
		}
		cfg.HostKeyCallback = func(_ string, _ net.Addr, got ssh.PublicKey) error {
			if !bytes.Equal(got.Marshal(), want.Marshal()) {
				return fmt.Errorf("%w: server sent %s", errHostKeyMismatch, ssh.FingerprintSHA256(got))
			}
			return nil
		}
		// Ask for the kind of key we can check, or the server may offer
		// another. Like upstream, only the key's own type: a pinned ssh-rsa
		// key thus asks for SHA-1 signatures, which OpenSSH 8.8 and later
		// refuse ("no common algorithm for host key"). Pin an ed25519 key.
		cfg.HostKeyAlgorithms = []string{want.Type()}
	}

	if c.PrivateKey != nil {
		var signer ssh.Signer
		var err error
		if c.PrivateKeyPassword != nil {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(*c.PrivateKey), []byte(*c.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(*c.PrivateKey))
		}
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, nil, errors.New("connection.privateKey is encrypted: set connection.privateKeyPassword")
		} else if err != nil {
			return nil, nil, fmt.Errorf("connection.privateKey: %w", err)
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeys(signer))
	}
	if c.Password != nil {
		password := *c.Password
		cfg.Auth = append(cfg.Auth,
			ssh.Password(password),
			// Many servers ask for the password as a keyboard-interactive prompt.
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = password
				}
				return answers, nil
			}))
	}
	if sock, from, ok := c.agentSocket(); ok {
		// Like upstream, an agent that cannot be reached fails the run at
		// once, before any dial, even when other methods might work.
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", from, err)
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
		done = func() { conn.Close() }
	}
	return cfg, done, nil
}

// agentSocket says which SSH agent to use, if any, and where that came from:
// agentSocketPath when set (even empty, as upstream), else a non-empty
// SSH_AUTH_SOCK.
func (c *connection) agentSocket() (sock, from string, ok bool) {
	if c.AgentSocketPath != nil {
		return *c.AgentSocketPath, "connection.agentSocketPath", true
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		return sock, "SSH agent (SSH_AUTH_SOCK)", true
	}
	return "", "", false
}

func (c *connection) address() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.port()))
}

// dial connects and authenticates, retrying so that a host that is still
// booting is tolerated. As upstream: dialErrorLimit is the number of failed
// attempts tolerated, so N allows N+1 attempts (negative: no limit), every
// error is retried (a host key mismatch too), and perDialTimeout bounds only
// the TCP connect: an sshd that accepts and never speaks stalls the attempt.
// Unlike upstream, cancellation (Ctrl-C, customTimeouts) ends a stalled
// attempt. status reports each failed attempt while retrying.
func (c *connection) dial(ctx context.Context, status func(string)) (*ssh.Client, error) {
	cfg, done, err := c.clientConfig()
	if err != nil {
		return nil, err
	}
	defer done()
	addr := c.address()
	limit := c.dialErrorLimit()
	of := "unlimited"
	if limit >= 0 {
		of = strconv.Itoa(limit)
	}
	for failed := 0; ; failed++ {
		client, err := dialOnce(ctx, addr, cfg, c.perDialTimeout())
		if err == nil {
			return client, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ssh %s@%s: %w", cfg.User, addr, ctx.Err())
		}
		if limit >= 0 && failed >= limit {
			return nil, fmt.Errorf("ssh %s@%s: gave up after %d attempt(s): %w", cfg.User, addr, failed+1, err)
		}
		status(fmt.Sprintf("ssh %s@%s: dial error %d/%s: %v; retrying", cfg.User, addr, failed+1, of, err))
		select {
		case <-ctx.Done():
		case <-time.After(dialPause(failed)):
		}
	}
}

// dialOnce makes one attempt. timeout bounds the TCP connect only, as
// ssh.Dial's ClientConfig.Timeout does upstream; cancelling ctx ends the
// attempt at any stage.
func dialOnce(ctx context.Context, addr string, cfg *ssh.ClientConfig, timeout time.Duration) (*ssh.Client, error) {
	connectCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		connectCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var d net.Dialer
	nc, err := d.DialContext(connectCtx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if !stop() || err != nil {
		nc.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	return ssh.NewClient(conn, chans, reqs), nil
}

// runRemote runs j.command in one SSH session. warn reports problems that do
// not fail the run; status reports dial retries.
func runRemote(ctx context.Context, c *connection, j job, status, warn func(string)) error {
	if c == nil {
		return errors.New("connection is required")
	}
	if c.Proxy != nil {
		return errors.New("connection.proxy is not supported by this provider")
	}
	client, err := c.dial(ctx, status)
	if err != nil {
		return err
	}
	defer client.Close()
	where := c.user() + "@" + c.address()

	session, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("ssh %s: open session: %w", where, err)
	}
	defer session.Close()

	// Upstream sends the environment with setenv requests, which sshd only
	// honours for names listed in AcceptEnv. A refused user variable fails the
	// run; a refused PULUMI_COMMAND_* variable is only a warning.
	for _, k := range sortedKeys(j.env) {
		if err := session.Setenv(k, j.env[k]); err != nil {
			return fmt.Errorf("ssh %s: the server refused environment variable %q (it must be listed in sshd's AcceptEnv): %w",
				where, k, err)
		}
	}
	for _, k := range sortedKeys(j.prevEnv) {
		if err := session.Setenv(k, j.prevEnv[k]); err != nil {
			warn(fmt.Sprintf("the server refused environment variable %s (list it in sshd's AcceptEnv, "+
				"or set addPreviousOutputInEnv: false)", k))
		}
	}
	if j.stdin != "" {
		session.Stdin = strings.NewReader(j.stdin)
	}
	session.Stdout, session.Stderr = j.stdout, j.stderr

	done := make(chan error, 1)
	go func() { done <- session.Run(j.command) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Most servers ignore signal requests; closing the connection makes
		// sshd hang up the command's session.
		_ = session.Signal(ssh.SIGTERM)
		client.Close()
		<-done
		err = ctx.Err()
	}
	if err != nil {
		return &ranError{err}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
