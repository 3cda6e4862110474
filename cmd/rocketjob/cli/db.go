package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/internal/embedded"
)

// DefaultDBListen is where `rocketjob db` listens unless --listen says otherwise.
const DefaultDBListen = "127.0.0.1:27017"

func dbCommand(_ *appState) *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "run the embedded database (FerretDB on SQLite) in the foreground; prints its URI",
		Description: `Runs an embedded MongoDB-compatible database that keeps its data in DIR, until
SIGINT or SIGTERM. One process owns a data folder; servers and other commands
connect to it over TCP with the URI printed on stdout (use it as --uri or
ROCKETJOB_URI).`,
		UsageText: usageText("rocketjob db --data DIR [--listen HOST:PORT]",
			"rocketjob db --data ./rocketjob-data",
			"rocketjob db --data ./rocketjob-data --listen 127.0.0.1:27018",
			"rocketjob db --data ./data --listen 127.0.0.1:0 > db.uri &   # the URI is the only line on stdout"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "data folder `DIR` (created if missing)"},
			&cli.StringFlag{Name: "listen", Value: DefaultDBListen, Usage: "TCP `HOST:PORT` to listen on (port 0: any free port)"},
			&cli.StringFlag{Name: "log-level", Value: "error", Usage: "`LEVEL` of the database's logs on stderr: warn or error"},
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			dir := c.String("data")
			if dir == "" {
				return usagef("%s: missing --data DIR (see '%s --help')", cmdName(c), c.Command.HelpName)
			}
			level, err := logLevel(c)
			if err != nil {
				return err
			}
			db, err := startDB(c.Context, dir, c.String("listen"), level, c)
			if err != nil {
				return err
			}
			fmt.Fprintln(out(c), db.URI())
			msg(c, "embedded database listening on %s (data in %s); stop with Ctrl-C", db.URI(), db.Dir())
			<-c.Context.Done()
			msg(c, "stopping the embedded database")
			if err := db.Close(); err != nil {
				return err
			}
			return nil
		},
	}
}

// startDB starts the embedded database in dir, logging to stderr at level
// (FerretDB logs every error answer at warn level, over several lines).
func startDB(ctx context.Context, dir, listen string, level slog.Level, c *cli.Context) (*embedded.DB, error) {
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	db, err := embedded.Start(sctx, embedded.Options{Dir: dir, Listen: listen, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("embedded database: %w", err)
	}
	return db, nil
}

// logLevel reads --log-level.
func logLevel(c *cli.Context) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToLower(c.String("log-level")))); err != nil {
		return level, usagef("%s: --log-level %q: use debug, info, warn or error", cmdName(c), c.String("log-level"))
	}
	return level, nil
}
