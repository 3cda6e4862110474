// Command bench runs the "batch-1M" workload of /work/shared/BENCH.md through
// rocketjob and through a raw mongo-driver baseline on the same database, in
// one invocation, and reports the figures side by side; with --simple, the
// simple-jobs workload (N no-op jobs). With --river-dsn it adds River on
// PostgreSQL as a peer (package riverbench).
//
// It is a module of its own (github.com/rocketjob-go/rocketjob/bench), so
// that neither the benchmark nor River is in the dependency graph of the
// library or of the programs built with it. Run it from the repository root:
//
//	go -C bench run .                     # 1,000,000 lines on a temporary embedded database
//	go -C bench run . --simple            # 100,000 no-op simple jobs
//	go -C bench run . --help
//
// Exit codes: 0 success, 1 failure, 2 usage error. The report goes to
// stdout, progress and errors to stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/internal/store"
)

// Exit codes.
const (
	exitOK      = 0 // success
	exitFailure = 1 // the benchmark failed (database unreachable, a record missing, ...)
	exitUsage   = 2 // the command line is wrong
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	if spec, ok := os.LookupEnv(serveEnv); ok {
		code = serveMain(ctx, spec, os.Stdin, os.Stdout, os.Stderr) // a server process of a run with --processes
	} else {
		code = runCommand(ctx, os.Args, os.Stdout, os.Stderr)
	}
	stop()
	os.Exit(code)
}

// runCommand runs the benchmark command line argv (argv[0] is the program
// name), writing the report to stdout and messages to stderr, and returns
// the exit code.
func runCommand(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	app := benchApp()
	app.Writer, app.ErrWriter = stdout, stderr
	app.HideHelpCommand = true
	app.ExitErrHandler = func(*cli.Context, error) {} // errors become exit codes here
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		return usagef("%v (see 'go -C bench run . --help')", err)
	}
	err := app.RunContext(ctx, argv)
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	m := strings.TrimPrefix(oneLine(err.Error()), "bench: ")
	fmt.Fprintln(stderr, "bench: "+m)
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

// usageError is a problem with the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// oneLine keeps an error message on a single line, without the Go source
// locations that FerretDB puts in its messages.
func oneLine(s string) string {
	s = strings.TrimSpace(store.StripFrames(s))
	s = strings.ReplaceAll(s, "\r\n", "; ")
	s = strings.ReplaceAll(s, "\n", "; ")
	return s
}

// args returns the positional arguments, checking their number: min and max
// bound it (max < 0: no limit).
func args(c *cli.Context, min, max int, names string) ([]string, error) {
	a := c.Args().Slice()
	switch {
	case len(a) < min:
		return nil, usagef("missing argument: %s (see 'go -C bench run . --help')", names)
	case max >= 0 && len(a) > max:
		return nil, usagef("too many arguments: %s (expected %s; see 'go -C bench run . --help')", strings.Join(a[max:], " "), names)
	}
	return a, nil
}

// out returns the data writer (the report).
func out(c *cli.Context) io.Writer { return c.App.Writer }

// usageText builds the help usage: the synopsis, then examples.
func usageText(synopsis string, examples ...string) string {
	return synopsis + "\n\nExamples:\n   " + strings.Join(examples, "\n   ")
}
