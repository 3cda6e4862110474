// Package cli is the rocketjob command line: the same commands that the
// rocketjob binary offers (demo, db, server, upload, download, job, servers),
// for any set of job types. A program with its own job types builds a
// registry and hands it to Main:
//
//	func main() {
//		reg := rocketjob.NewRegistry()
//		rocketjob.Register(reg, "send_email", sendEmail, nil)
//		cli.Main(reg)
//	}
//
// Exit codes: 0 success, 1 failure, 2 usage error (unknown command or flag,
// missing argument, malformed flag value); an upload or a download stopped
// by SIGINT or SIGTERM removes what it wrote (an upload its slices, a
// download its temporary file) and exits 130 or 143 (128 + the signal
// number, as shells report it); other commands stopped by a signal exit 1,
// except servers and the database, which stop gracefully and exit 0.
// Errors are one line on stderr,
// prefixed "rocketjob: ". Standard output carries only data (job ids,
// listings, the database URI), so commands compose in scripts:
//
//	id=$(rocketjob upload --job reverse input.txt)
//	rocketjob job wait "$id" && rocketjob download "$id" output.txt
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
)

// Exit codes.
const (
	ExitOK          = 0   // success
	ExitFailure     = 1   // the command failed (database unreachable, job failed, ...)
	ExitUsage       = 2   // the command line is wrong
	ExitInterrupted = 130 // SIGINT stopped an upload or a download (SIGTERM: 143)
)

// Main runs the rocketjob command line with the job types of reg on
// os.Args and exits the process with the command's exit code. SIGINT and
// SIGTERM cancel the command's context (its cause names the signal):
// servers and the database shut down gracefully, an upload removes what it
// stored, a download its temporary file; a second signal kills the process.
func Main(reg *rocketjob.Registry) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		signal.Stop(sigs) // a second signal gets the default behaviour
		if sig, ok := s.(syscall.Signal); ok {
			cancel(&signalCause{sig: sig})
		}
	}()
	code := Run(ctx, App(reg), os.Args)
	signal.Stop(sigs)
	os.Exit(code)
}

// signalCause is the cause of a context cancelled by a signal.
type signalCause struct{ sig syscall.Signal }

func (s *signalCause) Error() string { return signalName(s.sig) + " received" }

// signalName is "SIGINT" or "SIGTERM".
func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// interruptedError is a command stopped before it finished because its
// context was cancelled: by a signal (exit 128 + its number) or otherwise
// (exit 1).
type interruptedError struct {
	sig syscall.Signal // 0: no signal
	msg string
}

func (e *interruptedError) Error() string { return e.msg }

// interrupted returns the error of a command that ctx stopped: "WHAT
// interrupted by SIGINT[: DETAIL]".
func interrupted(ctx context.Context, what, detail string) error {
	e := &interruptedError{msg: strings.TrimSpace(what + " interrupted")}
	var sc *signalCause
	if errors.As(context.Cause(ctx), &sc) {
		e.sig = sc.sig
		e.msg += " by " + signalName(sc.sig)
	}
	if detail != "" {
		e.msg += ": " + detail
	}
	return e
}

// Run runs app on args (args[0] is the program name) and returns the exit
// code instead of exiting. Errors are printed as one line to app.ErrWriter.
// Flags may follow positional arguments (`job show ID --json`) and global
// flags may follow the command (`job list --uri URI`): Run moves them where
// the flag parser expects them.
func Run(ctx context.Context, app *cli.App, args []string) int {
	if app.ErrWriter == nil {
		app.ErrWriter = os.Stderr
	}
	st := stateOf(app)
	st.notFound = ""
	// Changes made from the command line name its user in job histories.
	ctx = rocketjob.ContextWithUser(ctx, operator())
	err := app.RunContext(ctx, reorderArgs(app, args))
	if err == nil && st.notFound != "" {
		err = usagef("no help topic for %q (see '%s --help')", st.notFound, app.Name)
	}
	if err == nil {
		return ExitOK
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	fmt.Fprintln(app.ErrWriter, "rocketjob: "+oneLine(err.Error()))
	return exitCode(err)
}

// App returns the rocketjob command line for the job types of reg. Its
// Writer (data) and ErrWriter (messages) may be replaced before running it;
// run it with Run, or Main, to get exit codes and error messages right.
func App(reg *rocketjob.Registry) *cli.App {
	if reg == nil {
		reg = rocketjob.NewRegistry()
	}
	st := &appState{reg: reg}
	app := &cli.App{
		Name:    "rocketjob",
		Usage:   "batch processing on MongoDB: upload files, process their records on many servers, download the results",
		Version: server.Version,
		UsageText: `rocketjob [global options] command [command options] [arguments...]

Try it with no set-up at all:
   rocketjob demo

A typical session:
   rocketjob db --data ./data &                    # or use your own MongoDB with --uri
   rocketjob server --workers 8 &
   id=$(rocketjob upload --job reverse input.txt)
   rocketjob job wait "$id" && rocketjob download "$id" output.txt`,
		Flags:                     globalFlags(),
		DisableSliceFlagSeparator: true,
		ExitErrHandler:            func(*cli.Context, error) {}, // Run maps errors to exit codes
		OnUsageError:              onUsageError,
		CommandNotFound: func(c *cli.Context, name string) {
			st.notFound = name
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown command %q (see '%s --help')", c.Args().First(), c.App.Name)
			}
			showHelpOnStderr(c)
			return usagef("missing command (see '%s --help')", c.App.Name)
		},
		Metadata: map[string]any{stateKey: st},
		Commands: []*cli.Command{
			demoCommand(st),
			dbCommand(st),
			serverCommand(st),
			uploadCommand(st),
			downloadCommand(st),
			jobCommand(st),
			serversCommand(st),
			keysCommand(st),
			uiCommand(st),
			checkCommand(st),
			dirmonCommand(st),
			failedCommand(st),
			benchMovedCommand(),
		},
	}
	for _, c := range app.Commands {
		setUsageErrors(c)
	}
	return app
}

// benchMovedCommand is the hidden "bench" command: the benchmark left the
// command line (and with it River, from every binary built with this
// package) for the module under bench/ in the repository. It says so and
// exits 2.
func benchMovedCommand() *cli.Command {
	return &cli.Command{
		Name:            "bench",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(*cli.Context) error {
			return usagef("bench is no longer a rocketjob command: in a clone of the repository run 'go -C bench run . [flags]' (same flags)")
		},
	}
}

const stateKey = "rocketjob/cli"

// appState is what the commands of one App share.
type appState struct {
	reg      *rocketjob.Registry
	notFound string // set by CommandNotFound (help for an unknown topic)
}

func stateOf(app *cli.App) *appState {
	if st, ok := app.Metadata[stateKey].(*appState); ok {
		return st
	}
	st := &appState{reg: rocketjob.NewRegistry()}
	if app.Metadata == nil {
		app.Metadata = map[string]any{}
	}
	app.Metadata[stateKey] = st
	return st
}

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "uri", Usage: "jobs database `URI` (default mongodb://127.0.0.1:27017/)", EnvVars: []string{"ROCKETJOB_URI"}},
		&cli.StringFlag{Name: "work-uri", Usage: "work (slices) database `URI` (default: --uri)", EnvVars: []string{"ROCKETJOB_WORK_URI"}},
		&cli.StringFlag{Name: "db", Usage: "jobs database `NAME` (default rocketjob)", EnvVars: []string{"ROCKETJOB_DB"}},
		&cli.StringFlag{Name: "work-db", Usage: "work database `NAME` (default rocketjob_work)", EnvVars: []string{"ROCKETJOB_WORK_DB"}},
		&cli.StringFlag{Name: "key-file", Usage: "encryption keys, one per line, current first; mode 600 (default: $ROCKETJOB_KEYS)", EnvVars: []string{"ROCKETJOB_KEY_FILE"}},
		&cli.StringFlag{Name: "claim-strategy", Value: "auto", Usage: "how slices are claimed: `auto` (insert on FerretDB, findandmodify on MongoDB), insert, or findandmodify (MongoDB only: refused on a FerretDB work database, where it is not atomic); every process on a work database must use the same (the first one records it)", EnvVars: []string{"ROCKETJOB_CLAIM_STRATEGY"}},
	}
}

// connect opens a client on the databases named by the global flags (or the
// environment).
func (st *appState) connect(c *cli.Context) (*rocketjob.Client, error) {
	return st.connectURI(c, c.String("uri"), c.String("work-uri"))
}

func (st *appState) connectURI(c *cli.Context, uri, workURI string) (*rocketjob.Client, error) {
	strategy := c.String("claim-strategy")
	switch strategy {
	case "auto", "insert", "findandmodify":
	default:
		return nil, usagef("--claim-strategy %q: want auto, insert or findandmodify", strategy)
	}
	client, err := rocketjob.NewClient(c.Context, rocketjob.Config{
		URI:           uri,
		WorkURI:       workURI,
		DB:            c.String("db"),
		WorkDB:        c.String("work-db"),
		Registry:      st.reg,
		KeyFile:       c.String("key-file"),
		ClaimStrategy: strategy,
	})
	if err != nil {
		return nil, err
	}
	return client, nil
}

// closeClient disconnects, bounded in time, ignoring errors (the command's
// own result is what matters).
func closeClient(client *rocketjob.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = client.Close(ctx)
}

// usageError is a problem with the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// onUsageError turns flag parse errors into usage errors.
func onUsageError(c *cli.Context, err error, _ bool) error {
	help := c.App.Name
	if c.Command != nil && c.Command.HelpName != "" {
		help = c.Command.HelpName
	}
	m := err.Error()
	m = strings.Replace(m, "flag provided but not defined: -", "unknown flag -", 1)
	m = flagName.ReplaceAllString(m, "flag --$1")
	if name := cmdName(c); name != "" {
		m = name + ": " + m
	}
	return usagef("%s (see '%s --help')", m, help)
}

// flagName matches the single-dash flag names of the flag package's messages.
var flagName = regexp.MustCompile(`flag -+([A-Za-z0-9][-A-Za-z0-9]*)`)

// cmdName is the command path without the program name, e.g. "job show"
// (empty for the program itself).
func cmdName(c *cli.Context) string {
	if c.Command == nil {
		return ""
	}
	name := c.Command.HelpName
	if name == "" || name == c.App.Name {
		return ""
	}
	return strings.TrimPrefix(name, c.App.Name+" ")
}

func setUsageErrors(c *cli.Command) {
	c.OnUsageError = onUsageError
	for _, s := range c.Subcommands {
		setUsageErrors(s)
	}
}

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	var ie *interruptedError
	if errors.As(err, &ie) && ie.sig != 0 {
		return 128 + int(ie.sig)
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if ec.ExitCode() == 3 { // urfave/cli: help for an unknown topic
			return ExitUsage
		}
		if ec.ExitCode() != 0 {
			return ec.ExitCode()
		}
	}
	return ExitFailure
}

// oneLine keeps an error message on a single line, without the Go source
// locations that FerretDB puts in its messages.
func oneLine(s string) string {
	s = strings.TrimSpace(store.StripFrames(s))
	s = strings.ReplaceAll(s, "\r\n", "; ")
	s = strings.ReplaceAll(s, "\n", "; ")
	return s
}

// showHelpOnStderr prints the help of the current command to ErrWriter
// (used when the command line is incomplete, so stdout stays clean).
func showHelpOnStderr(c *cli.Context) {
	w := c.App.Writer
	c.App.Writer = c.App.ErrWriter
	defer func() { c.App.Writer = w }()
	if c.Command == nil || c.Command.Name == "" || c.Command.Name == c.App.Name {
		_ = cli.ShowAppHelp(c)
		return
	}
	_ = cli.ShowSubcommandHelp(c)
}

// groupAction is the action of a command that only holds subcommands: it
// refuses unknown or missing subcommands with a usage error.
func groupAction(c *cli.Context) error {
	names := make([]string, 0, len(c.Command.Subcommands))
	for _, s := range c.Command.Subcommands {
		if s.Name != "help" {
			names = append(names, s.Name)
		}
	}
	if c.Args().Present() {
		return usagef("%s: unknown command %q (valid: %s; see '%s --help')",
			cmdName(c), c.Args().First(), strings.Join(names, ", "), c.Command.HelpName)
	}
	return usagef("%s: missing command (%s; see '%s --help')",
		cmdName(c), strings.Join(names, ", "), c.Command.HelpName)
}

// args returns the positional arguments of a leaf command, checking their
// number. min and max bound it (max < 0: no limit).
func args(c *cli.Context, min, max int, names string) ([]string, error) {
	a := c.Args().Slice()
	for _, s := range a {
		if len(s) > 1 && s[0] == '-' && !looksNumeric(s) {
			return nil, usagef("%s: flag %s after the arguments: put flags first (see '%s --help')", cmdName(c), s, c.Command.HelpName)
		}
	}
	switch {
	case len(a) < min:
		return nil, usagef("%s: missing argument: %s (see '%s --help')", cmdName(c), names, c.Command.HelpName)
	case max >= 0 && len(a) > max:
		return nil, usagef("%s: too many arguments: %s (expected %s; see '%s --help')", cmdName(c), strings.Join(a[max:], " "), names, c.Command.HelpName)
	}
	return a, nil
}

// out returns the data writer.
func out(c *cli.Context) io.Writer { return c.App.Writer }

// msg writes a message line to the message writer (stderr).
func msg(c *cli.Context, format string, a ...any) {
	fmt.Fprintf(c.App.ErrWriter, format+"\n", a...)
}

// usageText builds a command's help usage: its synopsis, then examples.
func usageText(synopsis string, examples ...string) string {
	return synopsis + "\n\nExamples:\n   " + strings.Join(examples, "\n   ")
}
