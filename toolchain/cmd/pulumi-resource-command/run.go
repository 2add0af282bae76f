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

// maxLogLine is the longest line sent to the log in one piece. Upstream
// stops logging at a line over 64 KiB, and its command then never returns.
const maxLogLine = 8192

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

// ranError is the error of a command that was started and failed, as opposed
// to one that never ran (no connection, a refused environment variable).
// execute adds the command and its output to it, as upstream does.
type ranError struct{ err error }

func (e *ranError) Error() string { return e.err.Error() }
func (e *ranError) Unwrap() error { return e.err }

// capture keeps a command's output: each stream whole, for the outputs, both
// interleaved, for the error of a failed run, and the logged streams line by
// line, so a long step shows progress while it runs. Both streams share one
// lock: they are written from two goroutines.
type capture struct {
	mu   sync.Mutex
	emit func(line string)
	all  bytes.Buffer // stdout and stderr in the order they came
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
	s.c.all.Write(p)
	if !s.log {
		return len(p), nil
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

// combined is all output of both streams, whole.
func (c *capture) combined() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all.String()
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
			err = ctx.Err()
		}
		return &ranError{err}
	}
	return nil
}

// execute runs one of the resource's commands and returns its outputs. prev
// is the state left by the last run.
func execute(ctx context.Context, run runner, args *commandArgs, command string, prev result,
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
	var ran *ranError
	if errors.As(err, &ran) {
		// Upstream's text: the whole command and all of its output, whatever
		// logging says, so a failing step can be read from the error alone.
		// Output kept out of the log for its secrets shows up here too.
		return result{}, fmt.Errorf("%w: running %q:\n%s", ran.err, command, c.combined())
	} else if err != nil {
		return result{}, err
	}
	return result{stdout: stdout.output(), stderr: stderr.output()}, nil
}
