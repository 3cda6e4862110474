package cli

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// jobPauseResumeCommand is `job pause` or `job resume`: one job by id, or
// with --all every job that can take the change (of --type, if given).
func jobPauseResumeCommand(st *appState, name, usage string,
	one func(*rocketjob.Client, context.Context, string) (*rocketjob.Job, error),
	all func(*rocketjob.Client, context.Context, string) (int, error)) *cli.Command {
	cmd := jobChangeCommand(st, name, usage, one)
	cmd.ArgsUsage = "ID|--all"
	cmd.UsageText = usageText("rocketjob job "+name+" ID|--all [--type TYPE]",
		"rocketjob job "+name+" 65a1b2c3d4e5f60718293a4b",
		"rocketjob job "+name+" --all --type reverse")
	cmd.Flags = []cli.Flag{
		&cli.BoolFlag{Name: "all", Usage: "every job that can be " + name + "d now"},
		&cli.StringFlag{Name: "type", Usage: "with --all: only jobs of `TYPE`"},
	}
	single := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if !c.Bool("all") {
			if c.IsSet("type") {
				return usagef("%s: --type goes with --all", cmdName(c))
			}
			return single(c)
		}
		if _, err := args(c, 0, 0, "no ID with --all"); err != nil {
			return err
		}
		if typ := c.String("type"); typ != "" {
			if _, err := st.reg.Lookup(typ); err != nil {
				return usagef("%s: --type: %v", cmdName(c), err)
			}
		}
		client, err := st.connect(c)
		if err != nil {
			return err
		}
		defer closeClient(client)
		n, err := all(client, c.Context, c.String("type"))
		msg(c, "%d jobs %sd", n, name)
		return err
	}
	return cmd
}

func jobRunNowCommand(st *appState) *cli.Command {
	return jobChangeCommand(st, "run-now", "start a queued job at the next selection, whatever its run-at (a scheduled job, a cron instance, a retry waiting out its delay)", (*rocketjob.Client).RunNow)
}

func jobEditCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "edit",
		Usage:     "change a live job's description or, for a sliced job, its cap on workers",
		ArgsUsage: "ID",
		UsageText: usageText("rocketjob job edit ID [--description TEXT] [--max-workers N]",
			"rocketjob job edit 65a1b2c3d4e5f60718293a4b --description 'March invoices, rerun'",
			"rocketjob job edit 65a1b2c3d4e5f60718293a4b --max-workers 4    # 0: no cap"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "description", Usage: "new description `TEXT`"},
			&cli.IntFlag{Name: "max-workers", Usage: "at most `N` workers on the job's slices across all servers (0: no cap)"},
		},
		Action: func(c *cli.Context) error {
			var e rocketjob.JobEdit
			if c.IsSet("description") {
				d := c.String("description")
				e.Description = &d
			}
			if c.IsSet("max-workers") {
				n := c.Int("max-workers")
				if n < 0 {
					return usagef("%s: --max-workers must not be negative (got %d)", cmdName(c), n)
				}
				e.MaxWorkers = &n
			}
			if e.Description == nil && e.MaxWorkers == nil {
				return usagef("%s: nothing to change: give --description or --max-workers", cmdName(c))
			}
			return st.withJobID(c, func(client *rocketjob.Client, id string) error {
				job, err := client.Edit(c.Context, id, e)
				if err != nil {
					return err
				}
				msg(c, "job %s edited", job.ID.Hex())
				return nil
			})
		},
	}
}
