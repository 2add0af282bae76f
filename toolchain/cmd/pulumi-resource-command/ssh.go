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

// Pauses between dial attempts: short at first, for a port that is about to
// open, then longer, for a VM that is still booting.
const (
	firstDialPause = 100 * time.Millisecond
	maxDialPause   = 5 * time.Second
)

// errHostKeyMismatch is not retried: waiting does not change a host key.
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
		// Ask for the kind of key we can check, or the server may offer another.
		cfg.HostKeyAlgorithms = []string{want.Type()}
		if want.Type() == ssh.KeyAlgoRSA {
			// OpenSSH no longer signs with SHA-1 RSA; offer the SHA-2 forms first.
			cfg.HostKeyAlgorithms = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
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
	if sock := c.agentSocket(); sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil && c.AgentSocketPath != nil {
			return nil, nil, fmt.Errorf("connection.agentSocketPath: %w", err)
		}
		// A stale SSH_AUTH_SOCK is not worth failing for; other methods may work.
		if err == nil {
			cfg.Auth = append(cfg.Auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
			done = func() { conn.Close() }
		}
	}
	return cfg, done, nil
}

func (c *connection) agentSocket() string {
	if c.AgentSocketPath != nil {
		return *c.AgentSocketPath
	}
	return os.Getenv("SSH_AUTH_SOCK")
}

func (c *connection) address() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.port()))
}

// dial connects and authenticates, retrying so that a host that is still
// booting is tolerated. dialErrorLimit is the number of failed attempts
// allowed (-1: no limit); each attempt, handshake included, gets
// perDialTimeout. status reports each failed attempt while retrying.
func (c *connection) dial(ctx context.Context, status func(string)) (*ssh.Client, error) {
	cfg, done, err := c.clientConfig()
	if err != nil {
		return nil, err
	}
	defer done()
	addr := c.address()
	limit := c.dialErrorLimit()
	if limit == 0 {
		limit = 1
	}
	pause := firstDialPause
	for attempt := 1; ; attempt++ {
		client, err := dialOnce(ctx, addr, cfg, c.perDialTimeout())
		if err == nil {
			return client, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ssh %s@%s: %w", cfg.User, addr, ctx.Err())
		}
		if errors.Is(err, errHostKeyMismatch) || (limit > 0 && attempt >= limit) {
			return nil, fmt.Errorf("ssh %s@%s: gave up after %d attempt(s): %w", cfg.User, addr, attempt, err)
		}
		of := "unlimited"
		if limit > 0 {
			of = strconv.Itoa(limit)
		}
		status(fmt.Sprintf("ssh %s@%s: attempt %d/%s failed: %v; retrying", cfg.User, addr, attempt, of, err))
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(pause*3/2, maxDialPause)
	}
}

// dialOnce makes one attempt. ssh.ClientConfig.Timeout only bounds the TCP
// connect, but a half-booted sshd can accept and then stall, so the deadline
// (and cancellation) also covers the handshake.
func dialOnce(ctx context.Context, addr string, cfg *ssh.ClientConfig, timeout time.Duration) (*ssh.Client, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
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
		return fmt.Errorf("ssh %s: %w", where, err)
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
