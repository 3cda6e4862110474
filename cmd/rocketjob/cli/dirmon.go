package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/sliced"
)

func dirmonCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:  "dirmon",
		Usage: "watch folders: files dropped there become jobs (scanned by servers started with --dirmon ROOT)",
		UsageText: usageText("rocketjob dirmon add|list|files|enable|disable|remove ...",
			"rocketjob dirmon add partners --folder /data/in/partners --pattern '*.csv' --job people --priority 20",
			"rocketjob dirmon list",
			"rocketjob dirmon files partners",
			"rocketjob dirmon disable partners"),
		Action: groupAction,
		Subcommands: []*cli.Command{
			dirmonAddCommand(st),
			dirmonListCommand(st),
			dirmonFilesCommand(st),
			dirmonEnableCommand(st, "enable", true),
			dirmonEnableCommand(st, "disable", false),
			dirmonRemoveCommand(st),
		},
	}
}

func dirmonAddCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "add",
		Usage:     "add a watched folder: each file matching PATTERN becomes a job of TYPE once unchanged between two scans, then moves to the archive folder",
		ArgsUsage: "NAME",
		UsageText: usageText("rocketjob dirmon add NAME --folder DIR --job TYPE [--pattern GLOB] [--archive DIR] [--failed DIR] [--priority N] [--slice-size N] [--format F] [--description TEXT] [--param K=V ...] [--require-columns A,B] [--allow-columns A,B] [--max-workers N] [--window START,DURATION[,ZONE]] [--stop-on-error] [--no-output] [--encrypt] [--compress] [--disabled]",
			"rocketjob dirmon add partners --folder /data/in/partners --pattern '*.csv' --job people",
			"rocketjob dirmon add nightly --folder /data/in/nightly --job reverse --archive /data/done --window 22:00,6h,Europe/London"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "folder", Usage: "absolute path of the folder to watch (under a server's --dirmon root)"},
			&cli.StringFlag{Name: "pattern", Value: "*", Usage: "shell `GLOB` of the file names to take (no '/'; names starting with '.' are never taken)"},
			&cli.StringFlag{Name: "job", Usage: "job `TYPE` (a registered sliced job type)"},
			&cli.StringFlag{Name: "archive", Usage: "folder the files go to once their job exists, as JOBID_NAME", DefaultText: "FOLDER/archive"},
			&cli.StringFlag{Name: "failed", Usage: "folder refused files go to, with JOBID_NAME.reason", DefaultText: "FOLDER/failed"},
			priorityFlag(),
			&cli.IntFlag{Name: "slice-size", Usage: "`N` records per slice", DefaultText: "the job type's"},
			&cli.StringFlag{Name: "format", Usage: "input `FORMAT`: lines, csv or jsonl", DefaultText: "the job type's"},
			&cli.StringFlag{Name: "description", Usage: "free `TEXT` shown in listings"},
			paramFlag(),
			&cli.StringFlag{Name: "require-columns", Usage: "refuse a CSV file whose header lacks one of these comma-separated `NAMES`"},
			&cli.StringFlag{Name: "allow-columns", Usage: "refuse a CSV file with a header column not in these `NAMES` nor in --require-columns"},
			&cli.IntFlag{Name: "max-workers", Usage: "at most `N` workers on each job at once (0: no limit)"},
			&cli.StringFlag{Name: "window", Usage: "process only in a daily window `START,DURATION[,ZONE]`, e.g. 22:30,3h,Europe/London"},
			&cli.BoolFlag{Name: "stop-on-error", Usage: "fail a job at its first failed record"},
			&cli.BoolFlag{Name: "no-output", Usage: "do not keep the output records"},
			&cli.BoolFlag{Name: "encrypt", Usage: "store the jobs' slices encrypted (the servers need a key)"},
			&cli.BoolFlag{Name: "compress", Usage: "store the jobs' slices compressed"},
			&cli.BoolFlag{Name: "disabled", Usage: "add the entry disabled (enable it later)"},
		},
		Action: func(c *cli.Context) error {
			a, err := args(c, 1, 1, "NAME")
			if err != nil {
				return err
			}
			e := &sliced.DirmonEntry{
				Name: a[0], Folder: c.String("folder"), Pattern: c.String("pattern"), Type: c.String("job"),
				Archive: c.String("archive"), Failed: c.String("failed"), Enabled: !c.Bool("disabled"),
			}
			if e.Folder == "" || e.Type == "" {
				return usagef("%s: missing --folder DIR or --job TYPE (see '%s --help')", cmdName(c), c.Command.HelpName)
			}
			// A relative folder is taken from here, as the user meant it.
			for _, p := range []*string{&e.Folder, &e.Archive, &e.Failed} {
				if *p != "" && !filepath.IsAbs(*p) {
					if *p, err = filepath.Abs(*p); err != nil {
						return err
					}
				}
			}
			o := &e.Options
			if o.Priority, err = priorityOption(c); err != nil {
				return err
			}
			o.SliceSize, o.Format, o.Description = c.Int("slice-size"), c.String("format"), c.String("description")
			o.MaxWorkers, o.Window = c.Int("max-workers"), c.String("window")
			o.RequireColumns, o.AllowColumns = splitNames(c.String("require-columns")), splitNames(c.String("allow-columns"))
			for flag, p := range map[string]**bool{"stop-on-error": &o.StopOnError, "encrypt": &o.Encrypt, "compress": &o.Compress} {
				if c.IsSet(flag) {
					v := c.Bool(flag)
					*p = &v
				}
			}
			if c.Bool("no-output") {
				no := false
				o.CollectOutput = &no
			}
			if e.Params, err = paramPairs(c); err != nil {
				return err
			}
			if err := e.Check(st.reg); err != nil {
				return usagef("%s: %v", cmdName(c), err)
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			if err := sliced.AddDirmon(c.Context, client, e); err != nil {
				return err
			}
			msg(c, "dirmon entry %s added (%s): %s/%s -> %s jobs, archived to %s", e.Name, enabledWord(e.Enabled), e.Folder, e.Pattern, e.Type, e.Archive)
			return nil
		},
	}
}

func splitNames(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

func enabledWord(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}

func dirmonListCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the watched folders and what their last scan found",
		UsageText: usageText("rocketjob dirmon list [--json]",
			"rocketjob dirmon list",
			"rocketjob dirmon list --json"),
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
			list, err := sliced.DirmonEntries(c.Context, client)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if list == nil {
					list = []sliced.DirmonEntry{}
				}
				return writeJSON(out(c), list)
			}
			tw := tabwriter.NewWriter(out(c), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tTYPE\tFOLDER\tPATTERN\tARCHIVE\tLAST SCAN\tWAITING\tERROR")
			for _, e := range list {
				scan, waiting, scanErr := "never", "-", ""
				if e.Status != nil {
					scan, waiting, scanErr = ago(e.Status.At)+" by "+e.Status.Server, fmt.Sprint(e.Status.Waiting), e.Status.Error
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
					e.Name, enabledWord(e.Enabled), e.Type, e.Folder, e.Pattern, e.Archive, scan, waiting, scanErr)
			}
			return tw.Flush()
		},
	}
}

func dirmonFilesCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "files",
		Usage:     "list the files taken (newest first) and their jobs",
		ArgsUsage: "[NAME]",
		UsageText: usageText("rocketjob dirmon files [NAME] [--limit N] [--json]",
			"rocketjob dirmon files",
			"rocketjob dirmon files partners --limit 10 --json"),
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "at most `N` files (0: all)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: func(c *cli.Context) error {
			a, err := args(c, 0, 1, "[NAME]")
			if err != nil {
				return err
			}
			name := ""
			if len(a) == 1 {
				name = a[0]
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			list, err := sliced.DirmonFiles(c.Context, client, name, c.Int("limit"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if list == nil {
					list = []sliced.DirmonFile{}
				}
				return writeJSON(out(c), list)
			}
			tw := tabwriter.NewWriter(out(c), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ENTRY\tFILE\tSIZE\tSTATE\tJOB\tTAKEN\tSERVER\tMOVED TO\tREASON")
			for _, f := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
					f.Entry, f.Path, f.Size, f.State, f.JobID, ago(f.TakenAt), f.Server, f.MovedTo, f.Reason)
			}
			return tw.Flush()
		},
	}
}

func dirmonEnableCommand(st *appState, name string, enable bool) *cli.Command {
	usage := "scan the entry again"
	if !enable {
		usage = "stop scanning the entry (files being uploaded are finished; others stay where they are)"
	}
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "NAME",
		UsageText: usageText("rocketjob dirmon "+name+" NAME", "rocketjob dirmon "+name+" partners"),
		Action: func(c *cli.Context) error {
			a, err := args(c, 1, 1, "NAME")
			if err != nil {
				return err
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			if err := sliced.EnableDirmon(c.Context, client, a[0], enable); err != nil {
				return err
			}
			msg(c, "dirmon entry %s %sd", a[0], name)
			return nil
		},
	}
}

func dirmonRemoveCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "remove",
		Usage:     "remove an entry (files being uploaded are finished; the files' records age out)",
		ArgsUsage: "NAME",
		UsageText: usageText("rocketjob dirmon remove NAME", "rocketjob dirmon remove partners"),
		Action: func(c *cli.Context) error {
			a, err := args(c, 1, 1, "NAME")
			if err != nil {
				return err
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			if err := sliced.RemoveDirmon(c.Context, client, a[0]); err != nil {
				return err
			}
			msg(c, "dirmon entry %s removed", a[0])
			return nil
		},
	}
}
