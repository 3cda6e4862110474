package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
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
ROCKETJOB_URI).

The embedded database cannot check user names or passwords, so it listens on
the loopback interface only, unless clients must present a certificate
(--tls-cert, --tls-key and --tls-ca: clients add
tlsCertificateKeyFile=CLIENT.pem&tlsCAFile=CA.pem to the URI) or
--insecure-listen says that anyone who can reach the port may read and change
every job. For several hosts, MongoDB with authentication is the better choice.`,
		UsageText: usageText("rocketjob db --data DIR [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE --tls-ca FILE] [--insecure-listen]",
			"rocketjob db --data ./rocketjob-data",
			"rocketjob db --data ./rocketjob-data --listen 127.0.0.1:27018",
			"rocketjob db --data ./data --listen 127.0.0.1:0 > db.uri &   # the URI is the only line on stdout",
			"rocketjob db --data ./data --listen 0.0.0.0:27017 --tls-cert server.pem --tls-key server-key.pem --tls-ca ca.pem"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "data folder `DIR` (created if missing)"},
			&cli.StringFlag{Name: "listen", Value: DefaultDBListen, Usage: "TCP `HOST:PORT` to listen on (port 0: any free port); off loopback only with --tls-ca or --insecure-listen"},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve TLS with this PEM server certificate `FILE` (with --tls-key)"},
			&cli.StringFlag{Name: "tls-key", Usage: "PEM private key `FILE` of --tls-cert"},
			&cli.StringFlag{Name: "tls-ca", Usage: "accept only clients with a certificate signed by the CA certificates in `FILE` (needs --tls-cert)"},
			insecureListenFlag(),
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
			tlsOpts, err := dbTLS(c)
			if err != nil {
				return err
			}
			db, err := startDBTLS(c.Context, dir, c.String("listen"), level, c, tlsOpts)
			if err != nil {
				return err
			}
			fmt.Fprintln(out(c), db.URI())
			msg(c, "embedded database listening on %s (data in %s); stop with Ctrl-C", db.URI(), db.Dir())
			if tlsOpts.ClientAuth() {
				msg(c, "clients need a certificate signed by %s: add &tlsCertificateKeyFile=CLIENT.pem&tlsCAFile=CA.pem to the URI", tlsOpts.CAFile)
			}
			<-c.Context.Done()
			msg(c, "stopping the embedded database")
			if err := db.Close(); err != nil {
				return err
			}
			return nil
		},
	}
}

// insecureListenFlag is --insecure-listen, of every command that starts the
// embedded database on an address given on the command line.
func insecureListenFlag() cli.Flag {
	return &cli.BoolFlag{Name: "insecure-listen", Usage: "let the embedded database listen off the loopback interface without client certificates: anyone who can reach it can read and change every job"}
}

// dbTLS reads --tls-cert, --tls-key and --tls-ca (nil when none is set).
func dbTLS(c *cli.Context) (*embedded.TLS, error) {
	t := &embedded.TLS{CertFile: c.String("tls-cert"), KeyFile: c.String("tls-key"), CAFile: c.String("tls-ca")}
	switch {
	case *t == embedded.TLS{}:
		return nil, nil
	case t.CertFile == "" || t.KeyFile == "":
		return nil, usagef("%s: --tls-cert and --tls-key go together (and --tls-ca needs them) (see '%s --help')", cmdName(c), c.Command.HelpName)
	}
	return t, nil
}

// startDB starts the embedded database in dir, logging to stderr at level
// (FerretDB logs every error answer at warn level, over several lines).
// Off the loopback interface it needs --insecure-listen, and then warns on
// stderr at every start.
func startDB(ctx context.Context, dir, listen string, level slog.Level, c *cli.Context) (*embedded.DB, error) {
	return startDBTLS(ctx, dir, listen, level, c, nil)
}

// startDBTLS is startDB with an optional TLS listener: with a CA file,
// clients must present a certificate, and the database may listen off the
// loopback interface without --insecure-listen.
func startDBTLS(ctx context.Context, dir, listen string, level slog.Level, c *cli.Context, t *embedded.TLS) (*embedded.DB, error) {
	insecure := c.Bool("insecure-listen")
	if err := embedded.CheckListen(listen, t); err != nil && !insecure {
		how := "add --insecure-listen"
		if c.Command != nil && slices.ContainsFunc(c.Command.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "tls-ca") }) {
			how = "require client certificates (--tls-cert, --tls-key, --tls-ca), or add --insecure-listen"
		}
		return nil, usagef("%s: --listen %s is not a loopback address and the embedded database cannot check passwords: "+
			"%s to let anyone who can reach it read and change every job (see '%s --help')",
			cmdName(c), listen, how, c.Command.HelpName)
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	db, err := embedded.Start(sctx, embedded.Options{Dir: dir, Listen: listen, Logger: logger, TLS: t, InsecureListen: insecure})
	if err != nil {
		return nil, fmt.Errorf("embedded database: %w", err)
	}
	if !embedded.IsLoopback(listen) && !t.ClientAuth() {
		bound := listen
		if host, _, err := net.SplitHostPort(listen); err == nil {
			if u, err := url.Parse(db.URI()); err == nil {
				bound = net.JoinHostPort(host, u.Port())
			}
		}
		msg(c, "rocketjob: warning: the embedded database listens on %s without authentication: anyone who can reach it can read and change every job and slice", bound)
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
