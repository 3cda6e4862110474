// Package examples holds the example job types that the rocketjob command
// registers: the simple job nap, the sliced jobs copy, reverse, upcase,
// square and sleep, the tabular job convert (any tabular format to csv, psv,
// tsv, jsonl or xlsx), and the batch jobs triage (output categories and
// statistics) and prefix (a required parameter). They exercise output, failed records, priority and
// crashes, and show how small a job type is.
package examples

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// RunLogEnv names an environment variable: when it holds a file path, nap
// appends "nap <job id>" to that file each time it runs, and the sliced
// examples append "<type> <job id> <line>" for every record they process.
// Tests use it to count side effects (each job or record must run exactly once
// when no server crashes).
const RunLogEnv = "ROCKETJOB_EXAMPLE_LOG"

// StallAfterEnv names an environment variable for tests that must stop a
// server in the middle of a slice: when it holds a number n, each record
// after the process's n-th logged one waits until its job's context ends
// instead of running. It only acts together with RunLogEnv.
const StallAfterEnv = "ROCKETJOB_EXAMPLE_STALL_AFTER"

// loggedLines counts the run log lines this process wrote, for StallAfterEnv.
var loggedLines atomic.Int64

// logRun appends one line to the run log, if there is one. Past the
// StallAfterEnv count it waits for ctx instead.
func logRun(ctx context.Context, typ, what string) error {
	path := os.Getenv(RunLogEnv)
	if path == "" {
		return nil
	}
	if after, err := strconv.ParseInt(os.Getenv(StallAfterEnv), 10, 64); err == nil && loggedLines.Add(1) > after {
		<-ctx.Done()
		return ctx.Err()
	}
	id := "-"
	if job := rocketjob.JobFromContext(ctx); job != nil {
		id = job.ID.Hex()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(typ + " " + id + " " + what + "\n")
	return errors.Join(err, f.Close())
}

// logged wraps a line function so that it writes to the run log.
func logged(typ string, fn func(context.Context, string) (string, error)) func(context.Context, string) (string, error) {
	if os.Getenv(RunLogEnv) == "" {
		return fn
	}
	return func(ctx context.Context, line string) (string, error) {
		if err := logRun(ctx, typ, line); err != nil {
			return "", err
		}
		return fn(ctx, line)
	}
}

// NapArgs are the arguments of the nap job.
type NapArgs struct {
	// MS is how long to sleep, in milliseconds.
	MS int `bson:"ms"`
	// Fail makes the job fail after its nap.
	Fail bool `bson:"fail"`
}

// Validate refuses a negative nap.
func (a NapArgs) Validate() error {
	if a.MS < 0 {
		return errors.New("ms must not be negative")
	}
	return nil
}

// ErrNapFailed is what nap returns when asked to fail.
var ErrNapFailed = errors.New("nap failed as asked (fail=true)")

// Nap sleeps args.MS milliseconds (or until ctx ends) and fails when args.Fail.
func Nap(ctx context.Context, _ *rocketjob.Job, args NapArgs) error {
	if err := logRun(ctx, "nap", "run"); err != nil {
		return err
	}
	select {
	case <-time.After(time.Duration(args.MS) * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	if args.Fail {
		return ErrNapFailed
	}
	return nil
}

// Reverse reverses a line by characters (invalid UTF-8 bytes stay single
// bytes, so any line reverses without loss).
func Reverse(_ context.Context, line string) (string, error) {
	b := make([]byte, 0, len(line))
	for i := len(line); i > 0; {
		_, size := utf8.DecodeLastRuneInString(line[:i])
		b = append(b, line[i-size:i]...)
		i -= size
	}
	return string(b), nil
}

// Upcase upper-cases a line.
func Upcase(_ context.Context, line string) (string, error) { return strings.ToUpper(line), nil }

// Copy returns the line unchanged.
func Copy(_ context.Context, line string) (string, error) { return line, nil }

// Square parses an integer and returns its square; anything else fails the record.
func Square(_ context.Context, line string) (string, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(line), 10, 32)
	if err != nil {
		return "", errors.New("not an integer: " + strconv.Quote(line))
	}
	return strconv.FormatInt(n*n, 10), nil
}

// Sleep sleeps the number of milliseconds on the line and returns the line.
func Sleep(ctx context.Context, line string) (string, error) {
	ms, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || ms < 0 {
		return "", errors.New("not a number of milliseconds: " + strconv.Quote(line))
	}
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
		return line, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Register adds every example type to r.
func Register(r *rocketjob.Registry) error {
	return errors.Join(
		rocketjob.Register(r, "nap", Nap, nil),
		sliced.RegisterLines(r, "copy", logged("copy", Copy), nil),
		sliced.RegisterLines(r, "reverse", logged("reverse", Reverse), nil),
		sliced.RegisterLines(r, "upcase", logged("upcase", Upcase), nil),
		sliced.RegisterLines(r, "square", logged("square", Square), nil),
		sliced.RegisterLines(r, "sleep", logged("sleep", Sleep), &sliced.Options{SliceSize: 10}),
		registerBatch(r),
		registerConvert(r),
	)
}
