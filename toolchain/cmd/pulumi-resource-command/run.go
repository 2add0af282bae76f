package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Environment variables that carry the previous run's outputs, as upstream.
const (
	prevStdoutVar = "PULUMI_COMMAND_STDOUT"
	prevStderrVar = "PULUMI_COMMAND_STDERR"
)

// How much of the logged output an error message repeats, and the longest
// line sent to the log in one piece.
const (
	errorTailBytes = 4096
	maxLogLine     = 8192
)

// job is one command to run, wherever it runs.
type job struct {
	command        string
	env            map[string]string // from the environment input
	prevEnv        map[string]string // PULUMI_COMMAND_STDOUT/STDERR
	stdin          string
	stdout, stderr io.Writer
}

// result is what a finished command leaves in the resource's state.
type result struct{ stdout, stderr string }

// capture keeps a command's output: each stream whole, for the outputs, and
// the logged streams line by line, so a long step shows progress while it
// runs. Both streams share one lock: they are written from two goroutines.
type capture struct {
	mu   sync.Mutex
	emit func(line string)
	tail []byte // end of the logged output, for error messages
}

type stream struct {
	c       *capture
	all     bytes.Buffer
	log     bool
	partial []byte
}

func (c *capture) stream(log bool) *stream { return &stream{c: c, log: log} }

func (s *stream) Write(p []byte) (int, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.all.Write(p)
	if !s.log {
		return len(p), nil
	}
	s.c.tail = append(s.c.tail, p...)
	if len(s.c.tail) > 2*errorTailBytes {
		s.c.tail = append([]byte(nil), s.c.tail[len(s.c.tail)-errorTailBytes:]...)
	}
	s.partial = append(s.partial, p...)
	for {
		// A carriage return ends a line too, so progress meters show up.
		i := bytes.IndexAny(s.partial, "\r\n")
		if i < 0 {
			break
		}
		s.emitLine(s.partial[:i])
		s.partial = s.partial[i+1:]
	}
	if len(s.partial) >= maxLogLine {
		s.emitLine(s.partial)
		s.partial = nil
	}
	return len(p), nil
}

func (s *stream) emitLine(line []byte) {
	if len(line) > 0 {
		s.c.emit(string(line))
	}
}

// flush logs an unterminated last line.
func (s *stream) flush() {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.emitLine(s.partial)
	s.partial = nil
}

// output is the stream's text as upstream stores it: less one final newline.
func (s *stream) output() string {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return strings.TrimSuffix(s.all.String(), "\n")
}

// tailText is the end of the logged output, cut at a line start.
func (c *capture) tailText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tail
	if len(t) > errorTailBytes {
		t = t[len(t)-errorTailBytes:]
		if i := bytes.IndexByte(t, '\n'); i >= 0 {
			t = t[i+1:]
		}
	}
	return strings.TrimRight(string(t), "\r\n")
}

// runner runs a job on the resource's host; status and warn go to the log.
type runner func(ctx context.Context, args *commandArgs, j job, status, warn func(string)) error

func remoteRunner(ctx context.Context, args *commandArgs, j job, status, warn func(string)) error {
	return runRemote(ctx, args.Connection, j, status, warn)
}

// localRunner runs the job on this machine, like upstream: the interpreter
// (default /bin/sh -c) gets the command as its last argument, and the
// environment adds to the provider's own.
func localRunner(ctx context.Context, args *commandArgs, j job, _, _ func(string)) error {
	argv := []string{"/bin/sh", "-c"}
	if len(args.Interpreter) > 0 {
		argv = args.Interpreter
	}
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:len(argv):len(argv)], j.command)...)
	if args.Dir != nil {
		cmd.Dir = *args.Dir
	}
	cmd.Env = os.Environ()
	for _, m := range []map[string]string{j.env, j.prevEnv} {
		for _, k := range sortedKeys(m) {
			cmd.Env = append(cmd.Env, k+"="+m[k])
		}
	}
	if j.stdin != "" {
		cmd.Stdin = strings.NewReader(j.stdin)
	}
	cmd.Stdout, cmd.Stderr = j.stdout, j.stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// execute runs one of the resource's commands (op names it in errors) and
// returns its outputs. prev is the state left by the last run.
func execute(ctx context.Context, run runner, args *commandArgs, op, command string, prev result,
	status, warn func(string),
) (result, error) {
	c := &capture{emit: status}
	stdout, stderr := c.stream(args.logStdout()), c.stream(args.logStderr())
	j := job{command: command, env: args.Environment, stdout: stdout, stderr: stderr}
	if args.Stdin != nil {
		j.stdin = *args.Stdin
	}
	if args.addPreviousOutput() {
		j.prevEnv = map[string]string{}
		if prev.stdout != "" {
			j.prevEnv[prevStdoutVar] = prev.stdout
		}
		if prev.stderr != "" {
			j.prevEnv[prevStderrVar] = prev.stderr
		}
	}

	err := run(ctx, args, j, status, warn)
	stdout.flush()
	stderr.flush()
	if err != nil {
		msg := fmt.Sprintf("%s command failed: %v", op, err)
		// Only output the user let us log: a stream kept out of the log may
		// hold secrets.
		if t := c.tailText(); t != "" {
			msg += "\noutput (end):\n" + t
		}
		return result{}, errors.New(msg)
	}
	return result{stdout: stdout.output(), stderr: stderr.output()}, nil
}
