package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

func serversCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:  "servers",
		Usage: "list server processes and pause, resume or stop them",
		UsageText: usageText("rocketjob servers list|pause|resume|stop ...",
			"rocketjob servers list",
			"rocketjob servers pause --all",
			"rocketjob servers stop myhost:1234"),
		Action: groupAction,
		Subcommands: []*cli.Command{
			serversListCommand(st),
			serversCommandCommand(st, rocketjob.CommandPause, "stop servers from taking new work (work in flight finishes)"),
			serversCommandCommand(st, rocketjob.CommandResume, "let paused servers take work again"),
			serversCommandCommand(st, rocketjob.CommandStop, "shut servers down gracefully"),
		},
	}
}

func serversListCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the server processes",
		UsageText: usageText("rocketjob servers list [--json]",
			"rocketjob servers list",
			"rocketjob servers list --json"),
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			if _, err := args(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			list, err := client.Servers(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if list == nil {
					list = []rocketjob.Server{}
				}
				return writeJSON(out(c), list)
			}
			tw := tabwriter.NewWriter(out(c), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tWORKERS\tBUSY\tHEARTBEAT\tSTARTED\tHOST\tPID\tVERSION")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%d\t%s\n",
					s.Name, s.State, s.Workers, s.Busy, ago(s.HeartbeatAt), timeString(&s.StartedAt), s.Host, s.PID, s.Version)
			}
			return tw.Flush()
		},
	}
}

func serversCommandCommand(st *appState, command, usage string) *cli.Command {
	return &cli.Command{
		Name:      command,
		Usage:     usage,
		ArgsUsage: "NAME|--all",
		UsageText: usageText("rocketjob servers "+command+" NAME|--all",
			"rocketjob servers "+command+" myhost:1234",
			"rocketjob servers "+command+" --all"),
		Flags: []cli.Flag{&cli.BoolFlag{Name: "all", Usage: "every server"}},
		Action: func(c *cli.Context) error {
			a, err := args(c, 0, 1, "NAME or --all")
			if err != nil {
				return err
			}
			all := c.Bool("all")
			switch {
			case all && len(a) == 1:
				return usagef("%s: give a server NAME or --all, not both", cmdName(c))
			case !all && len(a) == 0:
				return usagef("%s: missing argument: a server NAME or --all (see '%s --help')", cmdName(c), c.Command.HelpName)
			}
			name := ""
			if !all {
				name = a[0]
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			if err := client.CommandServer(c.Context, name, command); err != nil {
				return err
			}
			target := "server " + name
			if all {
				target = "every server"
			}
			msg(c, "sent %s to %s (acted on at the next heartbeat)", command, target)
			return nil
		},
	}
}
