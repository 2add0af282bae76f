package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"pullsnap.dev/server/internal/clock"
	"pullsnap.dev/server/internal/retention"
)

const usageRetentionPlan = `Usage: ` + program + ` retention-plan [--now TIME] [--preserve-min X] [--preserve Y] [--failed]

Reads snapshot names on stdin and prints, oldest first, one line per name:
keep|delete <TAB> NAME <TAB> reason. TIME is epoch seconds or a snapshot name
(default: now); --failed acts as after a failed run. Defaults: 2d, '24h 7d 4w 12m *y'.
`

func newRetentionPlanCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "retention-plan",
		Short: "what the policy keeps of the names on stdin",
		// The arguments are read below, exactly as the Bash runner reads them:
		// pflag would also take --now=T, --failed=false, "--" and stray
		// words, and word its errors differently. Use cobra's flags once the
		// Bash runner is gone.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return retentionPlan(args, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
}

func retentionPlan(args []string, stdin io.Reader, stdout io.Writer) error {
	now, minimum, preserve, failed := "", "2d", "24h 7d 4w 12m *y", false
	for i := 0; i < len(args); i++ {
		switch arg := args[i]; arg {
		case "-h", "--help":
			_, err := io.WriteString(stdout, usageRetentionPlan)
			return err
		case "--now", "--preserve-min", "--preserve":
			if i+1 == len(args) {
				// COMPAT(bash): the Bash runner's `shift` fails here under
				// set -e: exit 1 without a word.
				return &codeError{code: exitError}
			}
			i++
			switch arg {
			case "--now":
				now = args[i]
			case "--preserve-min":
				minimum = args[i]
			default:
				preserve = args[i]
			}
		case "--failed":
			failed = true
		default:
			return usageErrorf("retention-plan: unknown argument '%s'", arg)
		}
	}
	if now == "" {
		now = os.Getenv("PULLSNAP_NOW")
	}
	reading, err := clock.Parse(now, time.Now)
	if err != nil {
		return usageErrorf("PULLSNAP_NOW='%s': %v", now, err)
	}
	minRule, err := retention.ParseMinimum(minimum)
	if err != nil {
		return usageErrorf("retention-plan: --preserve-min '%s': expected all, latest, no or e.g. 2d", minimum)
	}
	preserveRules, err := retention.ParsePreserve(preserve)
	if err != nil {
		return usageErrorf("retention-plan: --preserve '%s': expected no or e.g. '24h 7d 4w 12m *y'", preserve)
	}
	policy := retention.Policy{Minimum: minRule, Preserve: preserveRules}

	out := bufio.NewWriter(stdout)
	snapshots, foreign := retention.Split(readNames(stdin))
	for _, name := range foreign {
		fmt.Fprintln(out, retention.LeftAlone(name))
	}
	if len(snapshots) > 0 {
		// As in the Bash runner, the clock is first used here.
		t, err := reading.Time()
		if err != nil {
			out.Flush()
			if errors.Is(err, clock.ErrRange) {
				// COMPAT(bash): its parse_stamp of now fails under set -e:
				// exit 1 without a word.
				err = nil
			}
			return &codeError{code: exitError, err: err}
		}
		for _, d := range retention.Decide(snapshots, t, policy, failed) {
			fmt.Fprintln(out, d)
		}
	}
	return out.Flush()
}

// readNames reads one name a line, skipping empty lines.
//
// COMPAT(bash): like the Bash runner's `read`, it drops NUL bytes, ignores a
// last line without a newline, and takes a read error for the end.
func readNames(r io.Reader) []string {
	var names []string
	in := bufio.NewReader(r)
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			return names
		}
		if name := strings.ReplaceAll(strings.TrimSuffix(line, "\n"), "\x00", ""); name != "" {
			names = append(names, name)
		}
	}
}
