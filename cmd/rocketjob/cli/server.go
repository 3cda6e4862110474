package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
)

func serverCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "run a server process: workers that process jobs until SIGINT/SIGTERM or a stop command",
		Description: `Runs workers that take the most urgent job with work and process it. Run as
many servers, on as many machines, as you like: they share the work through the
database. SIGINT or SIGTERM (or 'rocketjob servers stop') stops taking work,
lets the work in flight finish within --shutdown-timeout and exits 0.`,
		UsageText: usageText("rocketjob server [--workers N] [--name NAME] [--embedded DIR] [options]",
			"rocketjob server --workers 8",
			"rocketjob server --name worker-1 --uri mongodb://db.example.com:27017/",
			"rocketjob server --embedded ./rocketjob-data      # runs its own embedded database too",
			"rocketjob server --include reverse,upcase         # only these job types",
			"rocketjob server --exclude nap                    # every type but nap",
			"rocketjob server --drain --drain-timeout 1h --fail-on-job-failure   # a batch run: what is due, then exit",
			"rocketjob server --keep-completed 24h --keep-failed 0   # delete completed jobs after a day, keep failed ones forever"),
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "workers", Value: server.DefaultWorkers, Usage: "`N` concurrent workers"},
			&cli.StringFlag{Name: "name", Usage: "server `NAME` (default host:pid); two live servers cannot share one"},
			&cli.StringFlag{Name: "embedded", Usage: "start the embedded database in `DIR` and use it instead of --uri (its URI is printed on stderr)"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0", Usage: "with --embedded: TCP `HOST:PORT` of the embedded database (off loopback only with --insecure-listen)"},
			insecureListenFlag(),
			&cli.DurationFlag{Name: "re-check", Value: server.DefaultReCheck, Usage: "how often a busy worker looks for a more urgent job (`D`)"},
			&cli.DurationFlag{Name: "poll", Value: server.DefaultPollInterval, Usage: "how long an idle worker waits before looking for work again (`D`)"},
			&cli.DurationFlag{Name: "heartbeat", Value: server.DefaultHeartbeatInterval, Usage: "heartbeat and command check interval (`D`)"},
			&cli.DurationFlag{Name: "dead-after", Usage: "another server's heartbeat age after which its work is requeued (`D`)", DefaultText: "4 heartbeats"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: server.DefaultShutdownTimeout, Usage: "how long to wait for work in flight when stopping (`D`)"},
			&cli.StringFlag{Name: "include", Usage: "run only jobs of these types (`TYPE,...`; default: every registered type)"},
			&cli.StringFlag{Name: "exclude", Usage: "never run jobs of these types (`TYPE,...`)"},
			&cli.BoolFlag{Name: "drain", Usage: "process what is due, then exit 0 once no due job this server runs is left (jobs scheduled later, outside their window or whose key is missing do not count)"},
			&cli.DurationFlag{Name: "drain-timeout", Usage: "with --drain: stop after `D` even with work left (exit 1; work in flight is given back)"},
			&cli.BoolFlag{Name: "fail-on-job-failure", Usage: "with --drain: exit 1 when a job this server ran failed"},
			&cli.DurationFlag{Name: "keep-completed", Value: server.DefaultKeepCompleted, Usage: "delete completed jobs (and their slices) `D` after they completed; 0 keeps them forever"},
			&cli.DurationFlag{Name: "keep-failed", Value: server.DefaultKeepFailed, Usage: "delete failed jobs `D` after they failed; 0 keeps them forever"},
			&cli.DurationFlag{Name: "keep-aborted", Value: server.DefaultKeepAborted, Usage: "delete aborted jobs `D` after they were aborted; 0 keeps them forever"},
			&cli.StringSliceFlag{Name: "dirmon", Usage: "scan the Dirmon entries (rocketjob dirmon add) whose folders lie under this `ROOT` folder (repeatable, or ROOT,ROOT); entries elsewhere are left to other servers"},
			&cli.DurationFlag{Name: "dirmon-interval", Value: server.DefaultDirmonInterval, Usage: "time `D` between scans of a Dirmon entry; a file is taken once unchanged for that long"},
			&cli.StringFlag{Name: "webhook-secret", EnvVars: []string{"ROCKETJOB_WEBHOOK_SECRET"}, Usage: "sign the webhook POST of jobs uploaded with --notify with HMAC-SHA256 under `SECRET` (header X-Rocketjob-Signature: sha256=HEX); give every server the same"},
			&cli.StringFlag{Name: "public-url", Usage: "the web UI's address as webhook receivers reach it (`URL`, e.g. https://jobs.example.com): the base of the result URLs in a notification"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "`LEVEL` of the logs on stderr: debug, info, warn or error"},
			&cli.StringFlag{Name: "ui", Usage: "also serve the web UI, REST API and /metrics on `HOST:PORT` (login: $ROCKETJOB_UI_TOKEN or $ROCKETJOB_UI_USERS_FILE)"},
			uiPGPKeyFlag(),
			uiPGPRecipientFlag(),
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			if n := c.Int("workers"); n < 1 {
				return usagef("%s: --workers must be at least 1 (got %d)", cmdName(c), n)
			}
			drain := c.Bool("drain")
			if !drain && (c.IsSet("drain-timeout") || c.Bool("fail-on-job-failure")) {
				return usagef("%s: --drain-timeout and --fail-on-job-failure go with --drain", cmdName(c))
			}
			for _, d := range []string{"re-check", "poll", "heartbeat", "dead-after", "shutdown-timeout", "drain-timeout", "keep-completed", "keep-failed", "keep-aborted", "dirmon-interval"} {
				if c.Duration(d) < 0 {
					return usagef("%s: --%s must not be negative", cmdName(c), d)
				}
			}
			include, err := typeList(c, st, "include")
			if err != nil {
				return err
			}
			exclude, err := typeList(c, st, "exclude")
			if err != nil {
				return err
			}
			level, err := logLevel(c)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
			if _, _, err := uiServerConfig(c, logger); err != nil {
				return err // refuse before starting anything
			}

			uri, workURI := c.String("uri"), c.String("work-uri")
			if dir := c.String("embedded"); dir != "" {
				db, err := startDB(c.Context, dir, c.String("listen"), max(level, slog.LevelError), c)
				if err != nil {
					return err
				}
				defer db.Close() // after the client is closed (defers run last-in first-out)
				uri, workURI = db.URI(), db.URI()
				msg(c, "embedded database listening on %s (data in %s)", db.URI(), db.Dir())
			}
			client, err := st.connectURI(c, uri, workURI)
			if err != nil {
				return err
			}
			defer closeClient(client)
			srv, err := server.New(client, &server.Config{
				Name:              c.String("name"),
				Workers:           c.Int("workers"),
				ReCheck:           c.Duration("re-check"),
				PollInterval:      c.Duration("poll"),
				HeartbeatInterval: c.Duration("heartbeat"),
				DeadAfter:         c.Duration("dead-after"),
				ShutdownTimeout:   c.Duration("shutdown-timeout"),
				Logger:            logger,
				Include:           include,
				Exclude:           exclude,
				Drain:             drain,
				DirmonRoots:       splitNames(strings.Join(c.StringSlice("dirmon"), ",")),
				DirmonInterval:    c.Duration("dirmon-interval"),
				WebhookSecret:     c.String("webhook-secret"),
				PublicURL:         c.String("public-url"),
				Retention: rocketjob.Retention{
					Completed: keepFlag(c, "keep-completed"),
					Failed:    keepFlag(c, "keep-failed"),
					Aborted:   keepFlag(c, "keep-aborted"),
				},
			})
			if err != nil {
				return err
			}
			stopUI, err := startServerUI(c, client, logger, srv.Collectors()...)
			if err != nil {
				return err
			}
			defer stopUI()
			return runServer(c, srv)
		},
	}
}

// keepFlag reads a --keep-* flag: 0 keeps the jobs forever.
func keepFlag(c *cli.Context, flag string) time.Duration {
	if d := c.Duration(flag); d > 0 {
		return d
	}
	return rocketjob.KeepForever
}

// errDrainTimeout ends a drain that outlasts --drain-timeout.
var errDrainTimeout = errors.New("drain timeout")

// runServer runs srv until it stops, honouring --drain-timeout and
// --fail-on-job-failure.
func runServer(c *cli.Context, srv *server.Server) error {
	ctx := c.Context
	if d := c.Duration("drain-timeout"); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, errDrainTimeout)
		defer cancel()
	}
	if err := srv.Run(ctx); err != nil {
		return err
	}
	if errors.Is(context.Cause(ctx), errDrainTimeout) {
		return fmt.Errorf("%s: drain timed out after %s with work left (work in flight was given back)", cmdName(c), c.Duration("drain-timeout"))
	}
	if n := srv.FailedJobs(); n > 0 && c.Bool("fail-on-job-failure") {
		return fmt.Errorf("%s: %d jobs this server ran failed", cmdName(c), n)
	}
	return nil
}

// typeList reads a comma-separated list of registered job types from flag.
func typeList(c *cli.Context, st *appState, flag string) ([]string, error) {
	v := c.String(flag)
	if v == "" {
		return nil, nil
	}
	var out []string
	for _, typ := range strings.Split(v, ",") {
		typ = strings.TrimSpace(typ)
		if typ == "" {
			continue
		}
		if _, err := st.reg.Lookup(typ); err != nil {
			return nil, usagef("%s: --%s: %v", cmdName(c), flag, err)
		}
		out = append(out, typ)
	}
	return out, nil
}
