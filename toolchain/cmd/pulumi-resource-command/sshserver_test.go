package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

const testPassword = "open sesame"

// testSSHServer is a minimal sshd on 127.0.0.1: it authenticates one key or
// a password, accepts the environment variables in acceptEnv (like sshd's
// AcceptEnv), runs exec requests with /bin/sh -c, and serves the "sftp"
// subsystem on this machine's file system unless noSFTP is set.
type testSSHServer struct {
	host      string
	port      int
	hostKey   ssh.Signer
	clientKey string // PEM private key the server accepts
	clientPub ssh.PublicKey
	acceptEnv map[string]bool
	noSFTP    bool
	accepted  atomic.Int32 // TCP connections, one per dial attempt
	ln        net.Listener
	wg        sync.WaitGroup
}

func newKey(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, priv
}

func pemKey(t *testing.T, priv ed25519.PrivateKey, passphrase string) string {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}

// newTestSSHServer makes a server; start it with serve.
func newTestSSHServer(t *testing.T) *testSSHServer {
	t.Helper()
	hostKey, _ := newKey(t)
	clientSigner, clientPriv := newKey(t)
	return &testSSHServer{
		host:      "127.0.0.1",
		hostKey:   hostKey,
		clientKey: pemKey(t, clientPriv, ""),
		clientPub: clientSigner.PublicKey(),
		acceptEnv: map[string]bool{"GREETING": true, prevStdoutVar: true, prevStderrVar: true},
	}
}

func startTestSSHServer(t *testing.T) *testSSHServer {
	t.Helper()
	s := newTestSSHServer(t)
	s.serve(t, "127.0.0.1:0")
	return s
}

func (s *testSSHServer) serve(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.port = ln.Addr().(*net.TCPAddr).Port
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(s.clientPub.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
		PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == testPassword {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
	}
	cfg.AddHostKey(s.hostKey)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.handleConn(nc, cfg)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
}

func (s *testSSHServer) handleConn(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			return
		}
		s.handleSession(ch, chReqs)
	}
}

func (s *testSSHServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	env := []string{"PATH=/usr/bin:/bin"}
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			ok := ssh.Unmarshal(req.Payload, &kv) == nil && s.acceptEnv[kv.Name]
			if ok {
				env = append(env, kv.Name+"="+kv.Value)
			}
			_ = req.Reply(ok, nil)
		case "exec":
			var cmdline struct{ Command string }
			if ssh.Unmarshal(req.Payload, &cmdline) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			cmd := exec.Command("/bin/sh", "-c", cmdline.Command)
			cmd.Env = env
			cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
			// Do not wait for a stdin the client never closes.
			cmd.WaitDelay = time.Second
			status := 0
			if err := cmd.Run(); err != nil {
				status = 255
				var exitErr *exec.ExitError
				if errors.As(err, &exitErr) {
					status = exitErr.ExitCode()
				}
			}
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
			return
		case "subsystem":
			var sub struct{ Name string }
			if s.noSFTP || ssh.Unmarshal(req.Payload, &sub) != nil || sub.Name != "sftp" {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			go ssh.DiscardRequests(reqs)
			server, err := sftp.NewServer(ch)
			if err != nil {
				return
			}
			_ = server.Serve() // until the client closes the channel
			server.Close()
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// connection returns connection inputs that reach this server by key.
func (s *testSSHServer) connection() map[string]any {
	return map[string]any{
		"host":           s.host,
		"port":           float64(s.port),
		"user":           "tester",
		"privateKey":     s.clientKey,
		"dialErrorLimit": float64(3),
		"perDialTimeout": float64(5),
	}
}

func (s *testSSHServer) addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }
