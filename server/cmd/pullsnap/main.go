// Command pullsnap is the backup server's program. It replaces the Bash runner
// (hosts/backup-server/pullsnap) one command at a time; so far it has
// retention-plan, help and version, with the Bash runner's arguments, output,
// messages and exit codes.
//
// The command tree is cobra's: restic, the model for this layout, uses it, it
// is already in the toolchain's module graph (the Pulumi CLI), and its tree of
// commands with their own help fits the fourteen commands to come. urfave/cli
// v3 would do as well; nothing here needs what only one of them has.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

const (
	program = "pullsnap"
	// version is the Bash runner's, until the Go program replaces it.
	version = "0.1.0"
)

// Exit codes, btrbk-style, as the Bash runner has them.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError is a mistake in the command line: exit 2, and a hint at help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// codeError ends the program with code, printing err unless it is nil.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the program, with its environment passed in so that tests can run it
// in-process. It is the one place where errors become exit codes.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := newRootCommand(args, stdin, stdout).Execute()
	// COMPAT(bash): the Bash runner means to prefix each line with its
	// priority ("<3>") when stderr is the journal, but its test never
	// matches (it runs `stat /dev/stderr` with stderr sent to /dev/null),
	// so no line has one here either. go-systemd's priorities come with the
	// Bash runner's end (issue 10).
	var usage *usageError
	var exit *codeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s: %s\nTry '%s help'.\n", program, usage.msg, program)
		return exitUsage
	case errors.As(err, &exit):
		if exit.err != nil {
			fmt.Fprintf(stderr, "%s: error: %v\n", program, exit.err)
		}
		return exit.code
	}
	fmt.Fprintf(stderr, "%s: error: %v\n", program, err)
	return exitError
}

func newRootCommand(args []string, stdin io.Reader, stdout io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           program,
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Like the Bash runner, the first argument is the command and each
		// command reads its own arguments.
		DisableFlagParsing: true,
		CompletionOptions:  cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// cobra finds a command behind flags ("--x retention-plan");
			// the Bash runner takes "--x" for the command. Nor has it
			// cobra's hidden shell-completion commands.
			hidden := cmd.Name() == cobra.ShellCompRequestCmd || cmd.Name() == cobra.ShellCompNoDescRequestCmd
			if cmd != cmd.Root() && (args[0] != cmd.Name() || hidden) {
				return usageErrorf("unknown command '%s'", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return printUsage(cmd.OutOrStdout())
			}
			switch args[0] {
			case "-h", "--help":
				return printUsage(cmd.OutOrStdout())
			case "--version":
				return printVersion(cmd.OutOrStdout())
			}
			return usageErrorf("unknown command '%s'", args[0])
		},
	}
	if args == nil {
		args = []string{} // cobra reads os.Args for nil
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetHelpCommand(newHelpCommand())
	root.AddCommand(newVersionCommand(), newRetentionPlanCommand())
	return root
}
