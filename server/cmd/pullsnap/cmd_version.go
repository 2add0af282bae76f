package main

import "github.com/spf13/cobra"

// "pullsnap --version" is the root command's.
func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "version",
		Short:              "print the version",
		DisableFlagParsing: true,
		RunE:               func(cmd *cobra.Command, _ []string) error { return printVersion(cmd.OutOrStdout()) },
	}
}
