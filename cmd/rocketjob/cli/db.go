package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/internal/embedded"
)

// DefaultDBListen is where `rocketjob db` listens unless --listen says otherwise.
const DefaultDBListen = "127.0.0.1:27017"

// dbPostgreSQLEnv is the environment variable of `rocketjob db --postgresql`.
const dbPostgreSQLEnv = "ROCKETJOB_DB_POSTGRESQL"

// dbAdvertiseEnv is the environment variable of `rocketjob db --advertise`.
const dbAdvertiseEnv = "ROCKETJOB_DB_ADVERTISE"

func dbCommand(_ *appState) *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "run the embedded database (FerretDB on SQLite, or on PostgreSQL) in the foreground; prints its URI",
		Description: `Runs an embedded MongoDB-compatible database that keeps its data in DIR, until
SIGINT or SIGTERM. One process owns a data folder; servers and other commands
connect to it over TCP with the URI printed on stdout (use it as --uri or
ROCKETJOB_URI).

With --postgresql URL (or $` + dbPostgreSQLEnv + `) FerretDB keeps the data in that
PostgreSQL database instead of a folder, so PostgreSQL's replication and
backups cover it, and front ends on several hosts can share it. FerretDB
v1.24.2 reads the list of collections once per process, so one front end at a
time serves the database (it holds a lock in it): the active one. It records
the address other hosts reach it at, --advertise HOST[:PORT] (default: its
--listen address, unless that is loopback or a wildcard such as 0.0.0.0; a
HOST alone means the port it listens on), in the table
rocketjob_frontend.active of the database. Every other ` + "`rocketjob db`" + ` on the
database is a standby: it listens on its own --listen address, forwards each
client connection byte for byte to the active front end, and takes over
(serves on its own address) within about a second of the active one stopping
or dying; clients reconnect on their own. Each front end says on stderr
whether it is "serving" or "standby, forwarding to HOST:PORT". When the
active front end advertises no address, or with --standby=false, a second
front end is refused instead, naming the first. The database must exist, with
encoding UTF8 and collation C (CREATE DATABASE rocketjob ENCODING 'UTF8'
LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0). Keep the password out of the
command line (other users see it in ps): use $` + dbPostgreSQLEnv + `, PGPASSWORD or
~/.pgpass. Messages never show it.

The embedded database cannot check user names or passwords, so it listens on
the loopback interface only, unless clients must present a certificate
(--tls-cert, --tls-key and --tls-ca: clients add
tlsCertificateKeyFile=CLIENT.pem&tlsCAFile=CA.pem to the URI) or
--insecure-listen says that anyone who can reach the port may read and change
every job. For several hosts, MongoDB with authentication is the better choice.`,
		UsageText: usageText("rocketjob db (--data DIR | --postgresql URL [--advertise HOST[:PORT]] [--standby=false]) [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE --tls-ca FILE] [--insecure-listen]",
			"rocketjob db --data ./rocketjob-data",
			"ROCKETJOB_DB_POSTGRESQL='postgres://rocketjob:PASSWORD@pg.example.com:5432/rocketjob' rocketjob db",
			"ROCKETJOB_DB_POSTGRESQL=... rocketjob db --listen 0.0.0.0:27017 --advertise db1.example.com --tls-cert s.pem --tls-key k.pem --tls-ca ca.pem   # on each front-end host",
			"PGPASSFILE=~/.pgpass rocketjob db --postgresql postgres://rocketjob@127.0.0.1:5432/rocketjob",
			"rocketjob db --data ./rocketjob-data --listen 127.0.0.1:27018",
			"rocketjob db --data ./data --listen 127.0.0.1:0 > db.uri &   # the URI is the only line on stdout",
			"rocketjob db --data ./data --listen 0.0.0.0:27017 --tls-cert server.pem --tls-key server-key.pem --tls-ca ca.pem"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "data folder `DIR` (created if missing)"},
			&cli.StringFlag{Name: "postgresql", Usage: "keep the data in the PostgreSQL database at `URL` (postgres://USER:PASSWORD@HOST:PORT/DATABASE) instead of --data", EnvVars: []string{dbPostgreSQLEnv}},
			&cli.StringFlag{Name: "listen", Value: DefaultDBListen, Usage: "TCP `HOST:PORT` to listen on (port 0: any free port); off loopback only with --tls-ca or --insecure-listen"},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve TLS with this PEM server certificate `FILE` (with --tls-key)"},
			&cli.StringFlag{Name: "tls-key", Usage: "PEM private key `FILE` of --tls-cert"},
			&cli.StringFlag{Name: "tls-ca", Usage: "accept only clients with a certificate signed by the CA certificates in `FILE` (needs --tls-cert)"},
			&cli.StringFlag{Name: "advertise", EnvVars: []string{dbAdvertiseEnv}, Usage: "with --postgresql: the `HOST[:PORT]` at which the other front ends of the database reach this one while it serves (no port: the --listen port); default: the --listen address unless it is loopback or a wildcard"},
			&cli.BoolFlag{Name: "standby", Value: true, Usage: "with --postgresql: when another front end serves the database, forward to it and take over when it stops; --standby=false exits instead"},
			insecureListenFlag(),
			&cli.StringFlag{Name: "log-level", Value: "error", Usage: "`LEVEL` of the database's logs on stderr: warn or error"},
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			dir, pg := c.String("data"), c.String("postgresql")
			switch {
			case dir != "" && pg != "":
				from := "--postgresql"
				if os.Getenv(dbPostgreSQLEnv) != "" {
					from = "--postgresql (or $" + dbPostgreSQLEnv + ", which is set)"
				}
				return usagef("%s: --data and %s exclude each other: the data is either in a folder (SQLite) or in PostgreSQL (see '%s --help')", cmdName(c), from, c.Command.HelpName)
			case dir == "" && pg == "":
				return usagef("%s: missing --data DIR (or --postgresql URL) (see '%s --help')", cmdName(c), c.Command.HelpName)
			case pg != "":
				if err := embedded.CheckPostgreSQLURL(pg); err != nil {
					return usagef("%s: --postgresql: %s (see '%s --help')", cmdName(c), err, c.Command.HelpName)
				}
			case c.String("advertise") != "":
				return usagef("%s: --advertise needs --postgresql: a data folder has one front end (see '%s --help')", cmdName(c), c.Command.HelpName)
			}
			level, err := logLevel(c)
			if err != nil {
				return err
			}
			tlsOpts, err := dbTLS(c)
			if err != nil {
				return err
			}
			if pg != "" && c.Bool("standby") {
				return runFrontEnd(c, pg, level, tlsOpts)
			}
			db, err := startDBTLS(c.Context, embedded.Options{Dir: dir, PostgreSQL: pg}, c.String("listen"), level, c, tlsOpts)
			if err != nil {
				return err
			}
			fmt.Fprintln(out(c), db.URI())
			msg(c, "embedded database listening on %s (data in %s); stop with Ctrl-C", db.URI(), db.Where())
			if tlsOpts.ClientAuth() {
				msg(c, "clients need a certificate signed by %s: add &tlsCertificateKeyFile=CLIENT.pem&tlsCAFile=CA.pem to the URI", tlsOpts.CAFile)
			}
			select {
			case <-c.Context.Done():
			case <-db.Done():
				// It lost the PostgreSQL session that holds its lock.
				cerr := db.Close()
				if err := db.Err(); err != nil {
					return fmt.Errorf("embedded database: %w", err)
				}
				if cerr != nil {
					return cerr
				}
				return errors.New("embedded database: stopped")
			}
			msg(c, "stopping the embedded database")
			if err := db.Close(); err != nil {
				return err
			}
			return nil
		},
	}
}

// runFrontEnd runs `rocketjob db --postgresql` as one of the front ends of
// the database: serving it, or a standby that forwards to the one that
// does and takes over when it stops. Like the other databases it prints its
// URI as the only line on stdout; its role, and each change, go to stderr.
func runFrontEnd(c *cli.Context, pg string, level slog.Level, t *embedded.TLS) error {
	listen := c.String("listen")
	if err := checkDBListen(c, listen, t); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(c.Context, time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	fe, err := embedded.StartFrontEnd(sctx,
		embedded.Options{PostgreSQL: pg, Listen: listen, Logger: logger, TLS: t, InsecureListen: c.Bool("insecure-listen")},
		embedded.FrontEndOptions{Advertise: c.String("advertise"), OnRole: func(rc embedded.RoleChange) { msg(c, "%s", roleMessage(rc)) }})
	if err != nil {
		if strings.HasPrefix(err.Error(), "advertised address ") {
			return usagef("%s: --advertise: %s (see '%s --help')", cmdName(c), err, c.Command.HelpName)
		}
		return fmt.Errorf("embedded database: %w", err)
	}
	warnOpenListen(c, listen, fe.URI(), t)
	fmt.Fprintln(out(c), fe.URI())
	msg(c, "embedded database front end listening on %s (data in %s); stop with Ctrl-C", fe.URI(), fe.Where())
	if t.ClientAuth() {
		msg(c, "clients need a certificate signed by %s: add &tlsCertificateKeyFile=CLIENT.pem&tlsCAFile=CA.pem to the URI", t.CAFile)
	}
	select {
	case <-c.Context.Done():
	case <-fe.Done():
		cerr := fe.Close()
		if err := fe.Err(); err != nil {
			return fmt.Errorf("embedded database: %w", err)
		}
		if cerr != nil {
			return cerr
		}
		return errors.New("embedded database: stopped")
	}
	msg(c, "stopping the embedded database front end")
	return fe.Close()
}

// roleMessage is the line on stderr that says what a front end does now.
func roleMessage(rc embedded.RoleChange) string {
	switch {
	case rc.Role == embedded.RoleServing && rc.Address != "":
		return fmt.Sprintf("serving (epoch %d); standbys forward to %s", rc.Epoch, rc.Address)
	case rc.Role == embedded.RoleServing:
		return fmt.Sprintf("serving (epoch %d); it advertises no address, so other front ends of the database are refused (see --advertise)", rc.Epoch)
	case rc.Address != "":
		return fmt.Sprintf("standby, forwarding to %s (the front end serving the database: %s, epoch %d); takes over when it stops", rc.Address, rc.Active, rc.Epoch)
	default:
		return fmt.Sprintf("standby, not forwarding: %s; new connections are closed until a front end serves the database", rc.Reason)
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
	return startDBTLS(ctx, embedded.Options{Dir: dir}, listen, level, c, nil)
}

// startDBTLS is startDB on the data folder or PostgreSQL database of where
// (its Dir or PostgreSQL), with an optional TLS listener: with a CA file,
// clients must present a certificate, and the database may listen off the
// loopback interface without --insecure-listen.
func startDBTLS(ctx context.Context, where embedded.Options, listen string, level slog.Level, c *cli.Context, t *embedded.TLS) (*embedded.DB, error) {
	if err := checkDBListen(c, listen, t); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	db, err := embedded.Start(sctx, embedded.Options{Dir: where.Dir, PostgreSQL: where.PostgreSQL, Listen: listen, Logger: logger, TLS: t, InsecureListen: c.Bool("insecure-listen")})
	if err != nil {
		return nil, fmt.Errorf("embedded database: %w", err)
	}
	warnOpenListen(c, listen, db.URI(), t)
	return db, nil
}

// checkDBListen is the usage error of a listen address off the loopback
// interface without client certificates or --insecure-listen.
func checkDBListen(c *cli.Context, listen string, t *embedded.TLS) error {
	if err := embedded.CheckListen(listen, t); err == nil || c.Bool("insecure-listen") {
		return nil
	}
	how := "add --insecure-listen"
	if c.Command != nil && slices.ContainsFunc(c.Command.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "tls-ca") }) {
		how = "require client certificates (--tls-cert, --tls-key, --tls-ca), or add --insecure-listen"
	}
	return usagef("%s: --listen %s is not a loopback address and the embedded database cannot check passwords: "+
		"%s to let anyone who can reach it read and change every job (see '%s --help')",
		cmdName(c), listen, how, c.Command.HelpName)
}

// warnOpenListen warns on stderr, at every start, that the database at uri
// listens off the loopback interface without authentication.
func warnOpenListen(c *cli.Context, listen, uri string, t *embedded.TLS) {
	if embedded.IsLoopback(listen) || t.ClientAuth() {
		return
	}
	bound := listen
	if host, _, err := net.SplitHostPort(listen); err == nil {
		if u, err := url.Parse(uri); err == nil {
			bound = net.JoinHostPort(host, u.Port())
		}
	}
	msg(c, "rocketjob: warning: the embedded database listens on %s without authentication: anyone who can reach it can read and change every job and slice", bound)
}

// logLevel reads --log-level.
func logLevel(c *cli.Context) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToLower(c.String("log-level")))); err != nil {
		return level, usagef("%s: --log-level %q: use debug, info, warn or error", cmdName(c), c.String("log-level"))
	}
	return level, nil
}
