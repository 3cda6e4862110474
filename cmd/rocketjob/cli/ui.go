package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobweb"
)

// Settings of the web UI's command line.
const (
	// usersFileEnv names the users file of the web UI when no flag does.
	usersFileEnv = "ROCKETJOB_UI_USERS_FILE"
	// uiTokenEnv names the environment variable of the access token.
	uiTokenEnv = "ROCKETJOB_UI_TOKEN"
	// uiBehindTLSProxyEnv set to true says browsers reach the UI over
	// HTTPS through a proxy (rocketjobweb.Options.BehindTLSProxy).
	uiBehindTLSProxyEnv = "ROCKETJOB_UI_BEHIND_TLS_PROXY"
	// uiDefaultListen is the address of `rocketjob ui` without --listen.
	uiDefaultListen = "127.0.0.1:8080"
)

func uiCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:  "ui",
		Usage: "serve the web UI, the REST API (/api) and Prometheus metrics (/metrics)",
		Description: `Serves Mission Control: a dashboard, the jobs with their progress, uploads,
downloads and actions (priority, pause, resume, abort, retry, destroy), the
servers, a JSON REST API under /api, /metrics for Prometheus and /healthz,
/readyz. Run as many as you like, anywhere that reaches the database; it
processes no jobs itself (see 'rocketjob server --ui').

Authentication: the access token (admin) is read from the environment
variable named by --token-env, never from the command line; --users-file adds
users with the admin or read-only role, one per line "name:role:hash" (hash:
hex SHA-256 of the password, or bcrypt). Without either, only a loopback
address is accepted.`,
		UsageText: usageText("rocketjob ui [--listen HOST:PORT] [--token-env NAME] [--users-file FILE] [--max-upload BYTES] [--pgp-key KEYFILE] [--pgp-recipient KEYFILE]",
			"rocketjob ui                                   # http://127.0.0.1:8080, no login (loopback only)",
			"ROCKETJOB_UI_TOKEN=$(openssl rand -hex 16) rocketjob ui --listen 0.0.0.0:8080",
			"rocketjob ui --listen :8080 --users-file /etc/rocketjob/users",
			"rocketjob ui --pgp-key /etc/rocketjob/feeds.key  # uploads of .gpg/.pgp/.asc files are decrypted"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: uiDefaultListen, Usage: "TCP `HOST:PORT` to serve on (anything but loopback needs a token or a users file)"},
			&cli.StringFlag{Name: "token-env", Value: uiTokenEnv, Usage: "environment variable `NAME` holding the admin access token"},
			&cli.StringFlag{Name: "users-file", Usage: "users `FILE`: name:role:hash per line (roles admin, read-only)", EnvVars: []string{usersFileEnv}},
			&cli.BoolFlag{Name: "behind-tls-proxy", Usage: "browsers reach the UI over HTTPS through a proxy that terminates TLS: Secure session cookie and HSTS", EnvVars: []string{uiBehindTLSProxyEnv}},
			&cli.Int64Flag{Name: "max-upload", Value: rocketjobweb.DefaultMaxUpload, Usage: "largest upload in `BYTES`"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "`LEVEL` of the logs on stderr: debug (every request), info, warn or error"},
			uiPGPKeyFlag(),
			uiPGPRecipientFlag(),
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			if c.Int64("max-upload") < 1 {
				return usagef("%s: --max-upload must be at least 1", cmdName(c))
			}
			level, err := logLevel(c)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
			listen := c.String("listen")
			if listen == "" {
				listen = uiDefaultListen
			}
			cfg := rocketjobweb.Options{
				Listen:    listen,
				Token:     os.Getenv(c.String("token-env")),
				UsersFile: c.String("users-file"),
				MaxUpload: c.Int64("max-upload"),
				Logger:    logger,

				BehindTLSProxy: c.Bool("behind-tls-proxy"),
			}
			if err := validateUI(&cfg); err != nil {
				return usagef("%s: %v", cmdName(c), err)
			}
			if cfg.PGPKeys, err = pgpKeys(c, "pgp-key"); err != nil {
				return err
			}
			if cfg.PGPRecipients, err = pgpKeys(c, "pgp-recipient"); err != nil {
				return err
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			serve, err := listenUI(c, client, cfg)
			if err != nil {
				return err
			}
			return serve(c.Context)
		},
	}
}

// listenUI builds the handler and opens its port; the returned function
// serves until ctx ends.
func listenUI(c *cli.Context, client *rocketjob.Client, cfg rocketjobweb.Options) (func(context.Context) error, error) {
	h, err := rocketjobweb.NewHandler(client, &cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("web UI: %w", err)
	}
	auth := "no login: loopback only"
	switch {
	case cfg.Token != "" && cfg.UsersFile != "":
		auth = "sign in with the access token or a user of " + cfg.UsersFile
	case cfg.Token != "":
		auth = "sign in with the access token"
	case cfg.UsersFile != "":
		auth = "sign in as a user of " + cfg.UsersFile
	}
	msg(c, "web UI, REST API and /metrics on http://%s (%s)", ln.Addr(), auth)
	return func(ctx context.Context) error {
		defer h.Close()
		return serveUI(ctx, h, ln, cfg.Logger)
	}, nil
}

// validateUI checks the options of the web UI before anything connects;
// without authentication it names the command line's settings.
func validateUI(cfg *rocketjobweb.Options) error {
	err := cfg.Validate()
	if errors.Is(err, rocketjobweb.ErrAuthRequired) {
		return fmt.Errorf("refusing to listen on %s without authentication: set %s or --users-file", cfg.Listen, uiTokenEnv)
	}
	return err
}

// serveUI serves h on ln until ctx ends, then shuts down gracefully,
// giving requests in flight (downloads) up to 10 seconds. It returns nil
// after a shutdown caused by ctx.
func serveUI(ctx context.Context, h http.Handler, ln net.Listener, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.With("component", "web").Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	<-errc
	return err
}

// uiPGPKeyFlag is --pgp-key of `ui` and `server --ui`: the private keys
// that decrypt uploaded PGP files (rocketjobweb.Options.PGPKeys).
func uiPGPKeyFlag() cli.Flag {
	return &cli.StringFlag{Name: "pgp-key", Usage: "decrypt uploaded PGP-encrypted files (.gpg, .pgp, .asc, or recognised by their first bytes) with the private keys in these comma-separated key `FILES`; a protected key's passphrase comes from $" + pgpPassphraseEnv}
}

// uiPGPRecipientFlag is --pgp-recipient of `ui` and `server --ui`: the
// public keys that output?pgp=1 downloads are encrypted to
// (rocketjobweb.Options.PGPRecipients).
func uiPGPRecipientFlag() cli.Flag {
	return &cli.StringFlag{Name: "pgp-recipient", Usage: "let output downloads ask for PGP encryption (GET /api/jobs/ID/output?pgp=1) to the public keys in these comma-separated key `FILES`"}
}

// uiServerConfig reads `server --ui`: the token comes from
// $ROCKETJOB_UI_TOKEN, the users file from $ROCKETJOB_UI_USERS_FILE and
// the TLS proxy setting from $ROCKETJOB_UI_BEHIND_TLS_PROXY; --pgp-key
// decrypts uploads and --pgp-recipient encrypts downloads. It returns
// ok=false without --ui.
func uiServerConfig(c *cli.Context, logger *slog.Logger) (cfg rocketjobweb.Options, ok bool, err error) {
	listen := c.String("ui")
	if listen == "" {
		for _, flag := range []string{"pgp-key", "pgp-recipient"} {
			if c.IsSet(flag) {
				return cfg, false, usagef("%s: --%s is a setting of the web UI: it goes with --ui", cmdName(c), flag)
			}
		}
		return cfg, false, nil
	}
	cfg = rocketjobweb.Options{Listen: listen, Token: os.Getenv(uiTokenEnv), UsersFile: os.Getenv(usersFileEnv), Logger: logger}
	if v := os.Getenv(uiBehindTLSProxyEnv); v != "" {
		if cfg.BehindTLSProxy, err = strconv.ParseBool(v); err != nil {
			return cfg, false, usagef("%s: $%s: want true or false, got %q", cmdName(c), uiBehindTLSProxyEnv, v)
		}
	}
	if err := validateUI(&cfg); err != nil {
		return cfg, false, usagef("%s: --ui: %v", cmdName(c), err)
	}
	if cfg.PGPKeys, err = pgpKeys(c, "pgp-key"); err != nil {
		return cfg, false, err
	}
	if cfg.PGPRecipients, err = pgpKeys(c, "pgp-recipient"); err != nil {
		return cfg, false, err
	}
	return cfg, true, nil
}

// startServerUI serves the web UI of `server --ui` in the background until
// the returned stop function is called (when the server has stopped).
func startServerUI(c *cli.Context, client *rocketjob.Client, logger *slog.Logger, metrics ...prometheus.Collector) (stop func(), err error) {
	cfg, ok, err := uiServerConfig(c, logger)
	if err != nil || !ok {
		return func() {}, err
	}
	cfg.Collectors = metrics
	serve, err := listenUI(c, client, cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.Context))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := serve(ctx); err != nil {
			logger.Error("web UI stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}
