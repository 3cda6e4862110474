package cli

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

func failedCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:  "failed",
		Usage: "view, correct or delete the failed records of a failed sliced job, then retry it (only the failed records run again)",
		UsageText: usageText("rocketjob failed list|show|edit|delete|history ...",
			"rocketjob failed list 65a1b2c3d4e5f60718293a4b",
			"rocketjob failed edit 65a1b2c3d4e5f60718293a4b 1042 'ann,42,2024-01-02'",
			"rocketjob failed delete 65a1b2c3d4e5f60718293a4b 1043",
			"rocketjob job retry 65a1b2c3d4e5f60718293a4b"),
		Action: groupAction,
		Subcommands: []*cli.Command{
			failedListCommand(st),
			failedShowCommand(st),
			failedEditCommand(st),
			failedDeleteCommand(st),
			historyCommand(st),
		},
	}
}

// operator names the user of the command line in a job's history.
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "cli"
}

// fixErr turns the fix errors a user can correct into usage errors.
func fixErr(c *cli.Context, err error) error {
	if errors.Is(err, sliced.ErrBadOptions) {
		return usagef("%s: %v", cmdName(c), err)
	}
	return err
}

// jobAndRecord reads the ID and NUMBER arguments (and more, up to max).
func jobAndRecord(c *cli.Context, max int, names string) (string, int64, []string, error) {
	a, err := args(c, 2, max, names)
	if err != nil {
		return "", 0, nil, err
	}
	if _, err := rocketjob.ParseID(a[0]); err != nil {
		return "", 0, nil, err
	}
	n, err := strconv.ParseInt(a[1], 10, 64)
	if err != nil || n < 1 {
		return "", 0, nil, usagef("%s: record NUMBER %q: want a record number from 1", cmdName(c), a[1])
	}
	return a[0], n, a[2:], nil
}

func failedListCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "list",
		Usage:     "list a job's failed records with their errors and pending fixes",
		ArgsUsage: "ID",
		UsageText: usageText("rocketjob failed list ID [--offset N] [--limit N] [--json]",
			"rocketjob failed list 65a1b2c3d4e5f60718293a4b",
			"rocketjob failed list 65a1b2c3d4e5f60718293a4b --limit 10 --json"),
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "offset", Usage: "skip the first `N` failed records"},
			&cli.Int64Flag{Name: "limit", Value: 100, Usage: "at most `N` failed records"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.Int64("offset") < 0 || c.Int64("limit") < 1 {
				return usagef("%s: --offset must not be negative and --limit must be at least 1", cmdName(c))
			}
			return st.withJobID(c, func(client *rocketjob.Client, id string) error {
				list, more, err := sliced.FailedRecords(c.Context, client, id, c.Int64("offset"), c.Int64("limit"))
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return writeJSON(out(c), list)
				}
				tw := tabwriter.NewWriter(out(c), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "RECORD\tERROR\tINPUT\tFIX")
				for _, f := range list {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", f.Number, oneLine(f.Error), f.Input, fixText(f.Fix))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if more {
					msg(c, "more failed records follow: --offset %d", c.Int64("offset")+int64(len(list)))
				}
				return nil
			})
		},
	}
}

// fixText describes a pending fix.
func fixText(f *sliced.RecordFix) string {
	switch {
	case f == nil:
		return "-"
	case f.Delete:
		return "delete (by " + orDash(f.User) + ")"
	}
	return "edit to " + strconv.Quote(f.Input) + " (by " + orDash(f.User) + ")"
}

func failedShowCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show one failed record, its error and its pending fix",
		ArgsUsage: "ID NUMBER",
		UsageText: usageText("rocketjob failed show ID NUMBER [--json]", "rocketjob failed show 65a1b2c3d4e5f60718293a4b 1042"),
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			id, n, _, err := jobAndRecord(c, 2, "ID NUMBER")
			if err != nil {
				return err
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			f, err := sliced.GetFailedRecord(c.Context, client, id, n)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(out(c), f)
			}
			fmt.Fprintf(out(c), "record: %d\nerror:  %s\ninput:  %s\nfix:    %s\n", f.Number, oneLine(f.Error), f.Input, fixText(f.Fix))
			return nil
		},
	}
}

func failedEditCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "edit",
		Usage:     "correct a failed record of a failed job; the job's next retry runs it as corrected",
		ArgsUsage: "ID NUMBER RECORD",
		UsageText: usageText("rocketjob failed edit ID NUMBER RECORD   # a CSV job's record as one CSV line",
			"rocketjob failed edit 65a1b2c3d4e5f60718293a4b 1042 '42'",
			"rocketjob failed edit 65a1b2c3d4e5f60718293a4b 7 'ann,\"Main St, 5\",2024-01-02'"),
		Action: func(c *cli.Context) error {
			id, n, rest, err := jobAndRecord(c, 3, "ID NUMBER RECORD")
			if err != nil {
				return err
			}
			if len(rest) != 1 {
				return usagef("%s: missing argument: the corrected RECORD (see '%s --help')", cmdName(c), c.Command.HelpName)
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			if _, err := sliced.FixFailedRecord(c.Context, client, id, n, rest[0], operator()); err != nil {
				return fixErr(c, err)
			}
			msg(c, "record %d of job %s corrected: run it with 'rocketjob job retry %s'", n, id, id)
			return nil
		},
	}
}

func failedDeleteCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete a failed record of a failed job: its next retry skips it (no output, no failure)",
		ArgsUsage: "ID NUMBER",
		UsageText: usageText("rocketjob failed delete ID NUMBER", "rocketjob failed delete 65a1b2c3d4e5f60718293a4b 1043"),
		Action: func(c *cli.Context) error {
			id, n, _, err := jobAndRecord(c, 2, "ID NUMBER")
			if err != nil {
				return err
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			if _, err := sliced.DeleteFailedRecord(c.Context, client, id, n, operator()); err != nil {
				return fixErr(c, err)
			}
			msg(c, "record %d of job %s deleted: it is skipped by 'rocketjob job retry %s'", n, id, id)
			return nil
		},
	}
}

func historyCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "list the changes made to a job's failed records and its retries, oldest first",
		ArgsUsage: "ID",
		UsageText: usageText("rocketjob failed history ID [--json]", "rocketjob failed history 65a1b2c3d4e5f60718293a4b"),
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			return st.withJobID(c, func(client *rocketjob.Client, id string) error {
				list, err := client.History(c.Context, id)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return writeJSON(out(c), list)
				}
				tw := tabwriter.NewWriter(out(c), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "WHEN\tUSER\tACTION\tRECORD\tDETAIL")
				for _, h := range list {
					rec := "-"
					if h.Record > 0 {
						rec = strconv.FormatInt(h.Record, 10)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", timeString(&h.At), orDash(h.User), h.Action, rec, orDash(h.Detail))
				}
				return tw.Flush()
			})
		},
	}
}
