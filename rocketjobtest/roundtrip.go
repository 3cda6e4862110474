package rocketjobtest

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// Defaults of RoundTripOptions.
const (
	// DefaultRoundTripTimeout bounds a round trip from upload to download.
	DefaultRoundTripTimeout = 2 * time.Minute
	// DefaultRoundTripWorkers is the number of workers of the round trip's server.
	DefaultRoundTripWorkers = 2
)

// RoundTripOptions tune RoundTrip; nil means all defaults.
type RoundTripOptions struct {
	// Upload are the upload's options (priority, slice size, format,
	// encryption, ...); nil means the type's defaults. Unless they say
	// otherwise the job is kept when it completes (DestroyOnComplete false),
	// so that its output can be downloaded.
	Upload *sliced.UploadOptions
	// Server configures the in-process server; nil means DefaultRoundTripWorkers
	// workers, short poll and heartbeat intervals and a silent logger. An
	// empty Name gets a unique one.
	Server *server.Config
	// Timeout bounds the whole round trip (default DefaultRoundTripTimeout);
	// ctx may end it sooner.
	Timeout time.Duration
}

// RoundTrip uploads input (a file's content, compressed or not) into a new
// job of the sliced type typ on client's databases, runs a server in this
// process until the job ends, downloads its output and its failed records,
// and stops the server: the path of a real deployment, for integration-style
// tests of a type. The Result is shaped as Records shapes it, so the two can
// be compared; a failed record's Err carries only the stored message.
//
// The server is gone when RoundTrip returns, whatever happened; the job and
// its output stay on the databases for further checks. The error is about
// the round trip itself (an upload refused, the server failing to start, the
// timeout); a job that failed is a Result whose Job.State is StateFailed.
func RoundTrip(ctx context.Context, client *rocketjob.Client, typ string, input io.Reader, opts *RoundTripOptions) (res *Result, err error) {
	if opts == nil {
		opts = &RoundTripOptions{}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultRoundTripTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	up := sliced.UploadOptions{}
	if opts.Upload != nil {
		up = *opts.Upload
	}
	if up.DestroyOnComplete == nil {
		keep := false
		up.DestroyOnComplete = &keep
	}
	job, err := sliced.Upload(ctx, client, typ, input, &up)
	if err != nil {
		return nil, err
	}
	id := job.ID.Hex()

	stop, err := runServer(ctx, client, opts.Server)
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := stop(); serr != nil && err == nil {
			res, err = nil, serr
		}
	}()
	job, err = client.Wait(ctx, id, 20*time.Millisecond)
	if err != nil {
		if job != nil {
			return nil, fmt.Errorf("waiting for job %s (%s, %s): %w", id, job.State, job.Step, err)
		}
		return nil, fmt.Errorf("waiting for job %s: %w", id, err)
	}
	return download(ctx, client, job)
}

// runServer starts a server on client in the background and returns the
// function that stops it and waits for it.
func runServer(ctx context.Context, client *rocketjob.Client, cfg *server.Config) (stop func() error, err error) {
	c := server.Config{
		Workers: DefaultRoundTripWorkers, PollInterval: 20 * time.Millisecond, ReCheck: 200 * time.Millisecond,
		HeartbeatInterval: 250 * time.Millisecond, DeadAfter: 10 * time.Second, ShutdownTimeout: 10 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	}
	if cfg != nil {
		c = *cfg
	}
	if c.Name == "" {
		c.Name = "rocketjobtest-" + bson.NewObjectID().Hex()
	}
	srv, err := server.New(client, &c)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	return func() error {
		cancel()
		if err := <-done; err != nil {
			return fmt.Errorf("server %s: %w", c.Name, err)
		}
		return nil
	}, nil
}

// download reads a finished job's output and failed records into a Result.
func download(ctx context.Context, client *rocketjob.Client, job *rocketjob.Job) (*Result, error) {
	id := job.ID.Hex()
	res := &Result{Job: job}
	format := sliced.Format(job.Format)
	if job.CollectOutput && len(job.CategoryNames) == 0 {
		out, err := outputLines(format, id, func(w io.Writer) error {
			_, err := sliced.Download(ctx, client, id, w)
			return err
		})
		if err != nil {
			return nil, err
		}
		res.Output = out
	}
	for _, c := range job.CategoryNames {
		out, err := outputLines(format, id, func(w io.Writer) error {
			_, err := sliced.DownloadCategory(ctx, client, id, c, w)
			return err
		})
		if err != nil {
			return nil, err
		}
		if res.Categories == nil {
			res.Categories = map[string][]string{}
		}
		res.Categories[c] = out
	}
	res.Statistics, res.Dropped = job.Statistics, job.DroppedCount
	var buf bytes.Buffer
	if _, err := sliced.DownloadFailed(ctx, client, id, &buf); err != nil {
		return nil, err
	}
	cr := csv.NewReader(&buf)
	cr.FieldsPerRecord = 3
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("reading the failed records of job %s: %w", id, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("failed records of job %s: no header row", id)
	}
	for _, row := range rows[1:] { // after the header row
		n, err := strconv.ParseInt(row[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("failed records of job %s: record number %q: %w", id, row[0], err)
		}
		rec := row[2]
		if format == sliced.CSV && rec != "" {
			if rec, err = csvRow(rec); err != nil {
				return nil, err
			}
		}
		res.Failed = append(res.Failed, FailedRecord{Number: n, Record: rec, Err: errors.New(row[1])})
	}
	return res, nil
}

// outputLines reads back what download writes, one record at a time, as
// Records writes them (a CSV header first).
func outputLines(format sliced.Format, id string, download func(io.Writer) error) ([]string, error) {
	var buf bytes.Buffer
	if err := download(&buf); err != nil {
		return nil, err
	}
	rd := sliced.NewReader(&buf, format)
	out := []string{}
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the output of job %s: %w", id, err)
		}
		l, err := line(format, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	if h := rd.Header(); len(h) > 0 {
		l, err := headerLine(h)
		if err != nil {
			return nil, err
		}
		out = append([]string{l}, out...)
	}
	return out, nil
}

// csvRow quotes one CSV row as Records does.
func csvRow(row string) (string, error) {
	rd := sliced.NewReader(strings.NewReader("h\n"+row+"\n"), sliced.CSV)
	rec, err := rd.Next()
	if err != nil {
		return "", err
	}
	return line(sliced.CSV, rec)
}
