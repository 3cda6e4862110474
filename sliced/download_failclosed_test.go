package sliced_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// failClosed is a jobs database with its work database, one server, and
// the names to reach them.
type failClosed struct {
	cfg    rocketjob.Config
	client *rocketjob.Client
	work   string
}

// setupFailClosed registers "pad" (each line padded to 40 bytes) and "odd"
// (numbers: odd ones fail) and runs a server until the test ends.
func setupFailClosed(t *testing.T) *failClosed {
	t.Helper()
	reg := rocketjob.NewRegistry()
	must(t, sliced.RegisterLines(reg, "pad", func(_ context.Context, line string) (string, error) {
		return fmt.Sprintf("%-40s", line), nil
	}, &sliced.Options{SliceSize: 50}))
	must(t, sliced.RegisterLines(reg, "odd", func(_ context.Context, line string) (string, error) {
		n, err := strconv.Atoi(line)
		if err != nil || n%2 == 1 {
			return "", fmt.Errorf("%q is odd", line)
		}
		return line, nil
	}, &sliced.Options{SliceSize: 10}))
	jobs, work := dbtest.DBNames(t)
	f := &failClosed{cfg: rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg}, work: work}
	f.client = f.newClient(t, work)
	srvClient := f.newClient(t, work)
	srv, err := server.New(srvClient, &server.Config{Workers: 2, PollInterval: 20 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		must(t, <-done)
	})
	return f
}

// newClient connects to the jobs database with work as the work database.
func (f *failClosed) newClient(t *testing.T, work string) *rocketjob.Client {
	t.Helper()
	cfg := f.cfg
	cfg.WorkDB = work
	c, err := rocketjob.NewClient(context.Background(), cfg)
	must(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func (f *failClosed) run(t *testing.T, typ string, n int) *rocketjob.Job {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	job, err := sliced.Upload(context.Background(), f.client, typ, strings.NewReader(b.String()), nil)
	must(t, err)
	return wait(t, f.client, job)
}

// expectIncomplete checks that err is an *IncompleteError with want and got,
// and that nothing was written.
func expectIncomplete(t *testing.T, what string, err error, out *bytes.Buffer, kind string, want, got int64) {
	t.Helper()
	var ie *sliced.IncompleteError
	if !errors.As(err, &ie) || !errors.Is(err, sliced.ErrIncomplete) {
		t.Fatalf("%s: err = %v, want an *IncompleteError", what, err)
	}
	if ie.Kind != kind || ie.Want != want || ie.Got != got {
		t.Errorf("%s: %+v, want kind %s, want %d, got %d", what, *ie, kind, want, got)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("%s: error is not one line: %q", what, err)
	}
	if out.Len() != 0 {
		t.Errorf("%s: %d bytes written before the error: %q", what, out.Len(), out.String()[:min(out.Len(), 80)])
	}
}

func TestDownloadFromAnotherWorkDatabaseFails(t *testing.T) {
	f := setupFailClosed(t)
	ctx := context.Background()
	done := f.run(t, "pad", 300)
	failed := f.run(t, "odd", 45) // 23 odd numbers fail
	if done.State != rocketjob.StateCompleted || failed.State != rocketjob.StateFailed || failed.FailedRecordCount != 23 {
		t.Fatalf("jobs ended %s and %s (%d failed)", done.State, failed.State, failed.FailedRecordCount)
	}
	// The right work database: every record, no error.
	var out bytes.Buffer
	if n, err := sliced.Download(ctx, f.client, done.ID.Hex(), &out); err != nil || n != 300 {
		t.Fatalf("download from the right work database: %d records, %v", n, err)
	}
	out.Reset()
	if n, err := sliced.DownloadFailed(ctx, f.client, failed.ID.Hex(), &out); err != nil || n != 23 {
		t.Fatalf("failed records from the right work database: %d, %v", n, err)
	}

	elsewhere := f.newClient(t, f.work+"_typo")
	t.Cleanup(func() { _ = dbtest.Client(t).Database(f.work + "_typo").Drop(context.Background()) })
	out.Reset()
	n, err := sliced.Download(ctx, elsewhere, done.ID.Hex(), &out)
	expectIncomplete(t, "output of a completed job", err, &out, sliced.OutputKind, 300, 0)
	if n != 0 {
		t.Errorf("download reported %d records", n)
	}
	out.Reset()
	_, err = sliced.Download(ctx, elsewhere, failed.ID.Hex(), &out)
	expectIncomplete(t, "output of a failed job", err, &out, sliced.OutputKind, 22, 0)
	out.Reset()
	_, err = sliced.DownloadFailed(ctx, elsewhere, failed.ID.Hex(), &out)
	expectIncomplete(t, "failed records", err, &out, sliced.FailedKind, 23, 0)
	// A completed job without failed records has nothing to miss there.
	out.Reset()
	if _, err := sliced.DownloadFailed(ctx, elsewhere, done.ID.Hex(), &out); err != nil {
		t.Errorf("failed records of a job without any: %v", err)
	}
}

func TestDownloadWithLostOutputFails(t *testing.T) {
	f := setupFailClosed(t)
	ctx := context.Background()
	job := f.run(t, "pad", 120) // 3 slices
	if job.State != rocketjob.StateCompleted {
		t.Fatalf("job %s", job.State)
	}
	coll := dbtest.Client(t).Database(f.work).Collection("slices_" + job.ID.Hex() + "_output")
	// One output slice lost: the download fails (the FerretDB strategy
	// names the missing slice; the MongoDB one counts 80 of 120).
	if _, err := coll.DeleteOne(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if n, err := sliced.Download(ctx, f.client, job.ID.Hex(), &out); err == nil || out.Len() != 0 {
		t.Fatalf("download with a slice lost: %d records, %d bytes, err %v", n, out.Len(), err)
	} else {
		t.Logf("one slice lost: %v", err)
	}
	// The whole output lost: known before streaming.
	if err := coll.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := sliced.Download(ctx, f.client, job.ID.Hex(), &out)
	expectIncomplete(t, "output dropped", err, &out, sliced.OutputKind, 120, 0)
}

// hookWriter is a writer that runs hook once, before its first write.
type hookWriter struct {
	once sync.Once
	hook func()
	buf  bytes.Buffer
}

func (w *hookWriter) Write(p []byte) (int, error) {
	w.once.Do(w.hook)
	return w.buf.Write(p)
}

func TestDownloadRacingDestroyNeverLooksComplete(t *testing.T) {
	f := setupFailClosed(t)
	ctx := context.Background()
	const n = 6000 // 41 bytes a line: several write-buffer flushes
	job := f.run(t, "pad", n)
	if job.State != rocketjob.StateCompleted {
		t.Fatalf("job %s", job.State)
	}
	w := &hookWriter{hook: func() { must(t, f.client.Destroy(ctx, job.ID.Hex())) }}
	got, err := sliced.Download(ctx, f.client, job.ID.Hex(), w)
	switch {
	case err == nil && got == n && w.buf.Len() == n*41:
		// The stream had its records before the drop: a whole file is true.
		t.Logf("the download finished before the drop took effect")
	case errors.Is(err, rocketjob.ErrJobNotFound):
		t.Logf("after %d records: %v", got, err)
		if !strings.Contains(err.Error(), "destroyed during the download") {
			t.Errorf("error does not say the job was destroyed: %v", err)
		}
	default:
		t.Fatalf("download racing a destroy: %d records (%d bytes), err %v", got, w.buf.Len(), err)
	}
	if _, err := f.client.Get(ctx, job.ID.Hex()); !errors.Is(err, rocketjob.ErrJobNotFound) {
		t.Fatalf("the job was not destroyed: %v", err)
	}
	// Once destroyed, a download is "not found".
	if _, err := sliced.Download(ctx, f.client, job.ID.Hex(), io.Discard); !errors.Is(err, rocketjob.ErrJobNotFound) {
		t.Errorf("download of a destroyed job: %v", err)
	}
}

func TestExpectedCounts(t *testing.T) {
	base := rocketjob.Job{Kind: rocketjob.KindSliced, CollectOutput: true, RecordCount: 10, ProcessedCount: 10, FailedRecordCount: 3}
	for _, c := range []struct {
		name           string
		edit           func(*rocketjob.Job)
		output, failed int64
		final          bool
	}{
		{"completed", func(j *rocketjob.Job) { j.State, j.FailedRecordCount = rocketjob.StateCompleted, 0 }, 10, 0, true},
		{"failed after every record ran", func(j *rocketjob.Job) { j.State = rocketjob.StateFailed }, 7, 3, true},
		{"no output kept", func(j *rocketjob.Job) { j.State, j.CollectOutput = rocketjob.StateFailed, false }, 0, 3, true},
		{"stopped at its first error", func(j *rocketjob.Job) { j.State, j.StopOnError = rocketjob.StateFailed, true }, 0, 0, false},
		{"failed before processing", func(j *rocketjob.Job) { j.State, j.ProcessedCount = rocketjob.StateFailed, 0 }, 0, 0, false},
		{"running", func(j *rocketjob.Job) { j.State = rocketjob.StateRunning }, 0, 0, false},
		{"aborted", func(j *rocketjob.Job) { j.State = rocketjob.StateAborted }, 0, 0, false},
		{"simple job", func(j *rocketjob.Job) { j.State, j.Kind = rocketjob.StateCompleted, rocketjob.KindSimple }, 0, 0, false},
	} {
		j := base
		c.edit(&j)
		o, fl, final := sliced.ExpectedCounts(&j)
		if o != c.output || fl != c.failed || final != c.final {
			t.Errorf("%s: ExpectedCounts = %d, %d, %v; want %d, %d, %v", c.name, o, fl, final, c.output, c.failed, c.final)
		}
	}
}
