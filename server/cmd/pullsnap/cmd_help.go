package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// The commands the Bash runner still has are listed once they move here.
const usage = program + " " + version + `: pull backups with rsync over SSH into Btrfs snapshots

Usage:
  ` + program + ` retention-plan [--now T] [--preserve-min X] [--preserve Y] [--failed]
                                   what the policy keeps of the names on stdin
  ` + program + ` help | version          "` + program + ` COMMAND --help" for each command

The other commands (run, prune, list, status, restore, check, init, scrub, watch,
alert, smartd-hook) are still the Bash runner's, hosts/backup-server/pullsnap.

Exit codes: 0 ok, 1 error, 2 usage error.
`

func newHelpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help",
		Short: "print the usage",
		// As in the Bash runner, help takes no topic: it ignores its arguments.
		DisableFlagParsing: true,
		RunE:               func(cmd *cobra.Command, _ []string) error { return printUsage(cmd.OutOrStdout()) },
	}
}

func printUsage(w io.Writer) error {
	_, err := io.WriteString(w, usage)
	return err
}

func printVersion(w io.Writer) error {
	_, err := fmt.Fprintln(w, program, version)
	return err
}
