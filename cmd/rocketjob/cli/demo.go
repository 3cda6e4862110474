package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// Demo defaults.
const (
	DefaultDemoRecords = 100_000
	demoNapJobs        = 5
	demoNapMS          = 200
)

func demoCommand(_ *appState) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "see it work with no set-up: embedded database, a server, simple and sliced jobs, verified",
		Description: `Starts an embedded database (in a temporary folder, or in --data DIR, which is
kept) and a server with --workers workers in this process, runs a few 'nap'
jobs, then generates --records lines, uploads them into a 'reverse' job,
downloads the output and checks that every line came back reversed, in order.
Prints a summary on stdout; exits 1 if anything does not check out.`,
		UsageText: usageText("rocketjob demo [--data DIR] [--records N] [--workers N]",
			"rocketjob demo",
			"rocketjob demo --records 1000000 --workers 8",
			"rocketjob demo --data ./demo-data       # keep the database, then: rocketjob --uri ... job list"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "keep the database in `DIR` (default: a temporary folder, removed at the end)"},
			&cli.IntFlag{Name: "records", Value: DefaultDemoRecords, Usage: "`N` lines to generate and process"},
			&cli.IntFlag{Name: "workers", Value: server.DefaultWorkers, Usage: "`N` workers in the demo server"},
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			d := &demo{c: c, records: c.Int("records"), workers: c.Int("workers"), dataDir: c.String("data")}
			if d.records < 1 {
				return usagef("%s: --records must be at least 1 (got %d)", cmdName(c), d.records)
			}
			if d.workers < 1 {
				return usagef("%s: --workers must be at least 1 (got %d)", cmdName(c), d.workers)
			}
			err := d.run(c.Context)
			if err != nil && c.Context.Err() != nil {
				return fmt.Errorf("demo interrupted")
			}
			return err
		},
	}
}

// demo holds one run of the demo command.
type demo struct {
	c       *cli.Context
	records int
	workers int
	dataDir string

	client *rocketjob.Client
	prog   *progressLine

	napDone                    int
	napTime, upload, processed time.Duration
	download, verify           time.Duration
	jobID                      string
}

func (d *demo) say(format string, a ...any) {
	d.prog.done()
	msg(d.c, "demo: "+format, a...)
}

func (d *demo) run(ctx context.Context) (err error) {
	start := time.Now()
	d.prog = newProgress(d.c.App.ErrWriter)
	defer d.prog.done()

	// Files (input and output) always go to a temporary folder.
	tmp, err := os.MkdirTemp("", "rocketjob-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dataDir := d.dataDir
	if dataDir == "" {
		dataDir = filepath.Join(tmp, "data")
	}

	d.say("starting the embedded database in %s", dataDir)
	db, err := startDB(ctx, dataDir, "127.0.0.1:0", slog.LevelError, d.c)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()

	// The demo has its own job types, whatever the program registered.
	reg := rocketjob.NewRegistry()
	if err := examples.Register(reg); err != nil {
		return err
	}
	d.client, err = rocketjob.NewClient(ctx, rocketjob.Config{
		URI: db.URI(), WorkURI: db.URI(), DB: d.c.String("db"), WorkDB: d.c.String("work-db"), Registry: reg,
	})
	if err != nil {
		return err
	}
	defer closeClient(d.client) // before db.Close (deferred calls run last-in first-out)

	d.say("starting a server with %d workers", d.workers)
	logger := slog.New(slog.NewTextHandler(d.c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(d.client, &server.Config{
		Workers:           d.workers,
		ReCheck:           time.Second,
		PollInterval:      100 * time.Millisecond,
		HeartbeatInterval: time.Second,
		ShutdownTimeout:   10 * time.Second,
		Logger:            logger,
	})
	if err != nil {
		return err
	}
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(srvCtx) }()
	defer func() {
		stopServer()
		if serr := <-srvDone; err == nil && serr != nil {
			err = fmt.Errorf("server: %w", serr)
		}
	}()
	// A server that cannot start ends the demo at once.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case serr := <-srvDone:
			srvDone <- serr // for the deferred stop above
			if serr == nil {
				serr = errors.New("stopped")
			}
			cancel(fmt.Errorf("server: %w", serr))
		case <-ctx.Done():
		}
	}()
	wrap := func(err error) error {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
		return err
	}

	if err := d.naps(ctx); err != nil {
		return wrap(err)
	}
	if err := d.sliced(ctx, tmp); err != nil {
		return wrap(err)
	}
	d.summary(time.Since(start))
	return nil
}

// naps enqueues a few simple jobs and waits for them.
func (d *demo) naps(ctx context.Context) error {
	d.say("enqueuing %d nap jobs (%d ms each)", demoNapJobs, demoNapMS)
	start := time.Now()
	ids := make([]string, 0, demoNapJobs)
	for i := range demoNapJobs {
		job, err := d.client.Enqueue(ctx, "nap", examples.NapArgs{MS: demoNapMS}, &rocketjob.EnqueueOptions{
			Priority:    40 + i,
			Description: fmt.Sprintf("demo nap %d of %d", i+1, demoNapJobs),
		})
		if err != nil {
			return err
		}
		ids = append(ids, job.ID.Hex())
	}
	wctx, cancel := context.WithTimeout(ctx, demoStall)
	defer cancel()
	for _, id := range ids {
		job, err := d.client.Wait(wctx, id, 50*time.Millisecond)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("nap job %s is still %s after %s", id, job.State, demoStall)
		}
		if err != nil {
			return err
		}
		if err := jobResult(job); err != nil {
			return err
		}
		d.napDone++
	}
	d.napTime = time.Since(start)
	d.say("%d nap jobs completed in %s", d.napDone, humanDuration(d.napTime))
	return nil
}

// sliced generates the input, runs it through the reverse job and checks
// the output.
func (d *demo) sliced(ctx context.Context, tmp string) error {
	input := filepath.Join(tmp, "input.txt")
	d.say("generating %s lines", commas(int64(d.records)))
	if err := writeDemoInput(input, d.records); err != nil {
		return err
	}

	f, err := os.Open(input)
	if err != nil {
		return err
	}
	defer f.Close()
	start := time.Now()
	collect, keep := true, false
	job, err := uploadFile(ctx, d.client, "reverse", f, &sliced.UploadOptions{
		Name:              input,
		Description:       fmt.Sprintf("demo: reverse %s lines", commas(int64(d.records))),
		CollectOutput:     &collect,
		DestroyOnComplete: &keep,
	}, d.prog)
	if err != nil {
		return err
	}
	d.upload = time.Since(start)
	d.jobID = job.ID.Hex()
	d.say("uploaded %s records in %d slices in %s (job %s)", commas(job.RecordCount), job.SliceCount, humanDuration(d.upload), d.jobID)

	start = time.Now()
	job, err = d.wait(ctx, d.jobID)
	if err != nil {
		return err
	}
	if err := jobResult(job); err != nil {
		return err
	}
	d.processed = time.Since(start)
	d.say("processed in %s", humanDuration(d.processed))

	start = time.Now()
	output := filepath.Join(tmp, "output.txt")
	n, err := downloadTo(ctx, d.client, d.jobID, output, false, nil)
	if err != nil {
		return err
	}
	d.download = time.Since(start)
	d.say("downloaded %s records in %s", commas(n), humanDuration(d.download))

	start = time.Now()
	if err := verifyDemoOutput(output, d.records); err != nil {
		return fmt.Errorf("verification failed: %w", err)
	}
	d.verify = time.Since(start)
	return nil
}

// demoStall is how long the demo waits without any progress before it
// gives up.
const demoStall = time.Minute

// wait waits for the job, with a progress bar on a terminal, and gives up
// when nothing moves for demoStall.
func (d *demo) wait(ctx context.Context, id string) (*rocketjob.Job, error) {
	lastProcessed, lastChange, lastCheck := int64(-1), time.Now(), time.Time{}
	for {
		job, err := d.client.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		switch job.State {
		case rocketjob.StateCompleted, rocketjob.StateFailed, rocketjob.StateAborted:
			if job.State == rocketjob.StateCompleted {
				d.prog.bar(true, "processing", job.RecordCount, job.RecordCount, "")
			}
			d.prog.done()
			return job, nil
		}
		if d.prog.on || time.Since(lastCheck) >= 2*time.Second {
			lastCheck = time.Now()
			if p, err := d.client.Progress(ctx, job); err == nil {
				if p.Processed != lastProcessed {
					lastProcessed, lastChange = p.Processed, time.Now()
				}
				extra := fmt.Sprintf("%s/%s records", commas(p.Processed), commas(p.Records))
				if p.Remaining > 0 {
					extra += ", " + humanDuration(p.Remaining) + " left"
				}
				d.prog.bar(true, "processing", p.Processed, p.Records, extra)
			}
		}
		if time.Since(lastChange) > demoStall {
			return nil, fmt.Errorf("job %s (%s) made no progress for %s", id, job.State, demoStall)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (d *demo) summary(total time.Duration) {
	rate := func(n int, t time.Duration) string {
		if t <= 0 {
			return "-"
		}
		return commas(int64(float64(n)/t.Seconds())) + " records/s"
	}
	w := tabwriter.NewWriter(out(d.c), 0, 4, 1, ' ', 0)
	fmt.Fprintf(w, "rocketjob demo: OK\n")
	fmt.Fprintf(w, "  nap jobs:\t%d of %d completed in %s\n", d.napDone, demoNapJobs, humanDuration(d.napTime))
	fmt.Fprintf(w, "  records:\t%s lines reversed, downloaded and verified (job %s)\n", commas(int64(d.records)), d.jobID)
	fmt.Fprintf(w, "  upload:\t%s (%s)\n", humanDuration(d.upload), rate(d.records, d.upload))
	fmt.Fprintf(w, "  processing:\t%s (%s, %d workers)\n", humanDuration(d.processed), rate(d.records, d.processed), d.workers)
	fmt.Fprintf(w, "  download:\t%s (%s)\n", humanDuration(d.download), rate(d.records, d.download))
	fmt.Fprintf(w, "  verify:\t%s\n", humanDuration(d.verify))
	fmt.Fprintf(w, "  total:\t%.1f seconds\n", total.Seconds())
	_ = w.Flush()
}

// demoWords give the demo lines multi-byte characters, so reversing by
// bytes instead of characters would be caught.
var demoWords = []string{
	"the quick brown fox jumps over the lazy dog",
	"héllo wörld, ça va?",
	"日本語のテキスト",
	"rocket 🚀 job",
	"Ünïcödé ßtrâße",
	"a",
	"",
	"tab\tseparated\tvalues",
}

// demoLine is line i (1-based) of the demo input.
func demoLine(i int) string {
	return strconv.Itoa(i) + " " + demoWords[i%len(demoWords)]
}

// writeDemoInput streams n lines to path.
func writeDemoInput(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	for i := 1; i <= n; i++ {
		w.WriteString(demoLine(i))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// reverseRunes reverses s by characters (independently of the job's code).
func reverseRunes(s string) string {
	r := make([]rune, 0, utf8.RuneCountInString(s))
	for _, c := range s {
		r = append(r, c)
	}
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// verifyDemoOutput checks, streaming, that line i of path is demo line i
// reversed, for every i, and that there is nothing more.
func verifyDemoOutput(path string, n int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	for i := 1; i <= n; i++ {
		line, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) {
			if line == "" {
				return fmt.Errorf("the output has %d lines, expected %d", i-1, n)
			}
			return fmt.Errorf("line %d has no final newline", i)
		}
		if err != nil {
			return err
		}
		line = line[:len(line)-1]
		if want := reverseRunes(demoLine(i)); line != want {
			return fmt.Errorf("line %d is %q, expected %q", i, line, want)
		}
	}
	if extra, _ := r.ReadString('\n'); extra != "" {
		return fmt.Errorf("the output has more than %d lines (next: %q)", n, extra)
	}
	return nil
}
