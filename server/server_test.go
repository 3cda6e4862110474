package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/goleak"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// TestMain runs the tests on one embedded database, then checks that no
// goroutine outlived its server's Stop.
func TestMain(m *testing.M) { dbtest.MainThen(m, func() error { return goleak.Find() }) }

type bundle struct {
	reg         *rocketjob.Registry
	jobs, work  string
	client      *rocketjob.Client
	runs        sync.Map // job id -> *jobRuns
	afterCalls  atomic.Int32
	squareFixed atomic.Bool
	strategy    string // slice claim strategy; "" picks by server kind
}

// jobRuns notes the runs of a "count" job: when, by which server, at which
// attempt, one line each.
type jobRuns struct {
	mu    sync.Mutex
	lines []string
}

func (r *jobRuns) add(line string) { r.mu.Lock(); r.lines = append(r.lines, line); r.mu.Unlock() }

// count is how many runs were noted (none for nil: the job never ran).
func (r *jobRuns) count() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lines)
}

// String lists the runs, for a failure's message.
func (r *jobRuns) String() string {
	if r == nil {
		return "no run"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%d runs: %s", len(r.lines), strings.Join(r.lines, "; "))
}

// ran returns the runs of the "count" job id, nil when it never ran.
func (b *bundle) ran(id string) *jobRuns {
	r, _ := b.runs.Load(id)
	runs, _ := r.(*jobRuns)
	return runs
}

func setup(t testing.TB) *bundle { return setupStrategy(t, "") }

// setupStrategy is setup with a forced slice claim strategy ("insert" or
// "findandmodify"; the latter skips unless the tests run on MongoDB:
// FerretDB refuses it).
func setupStrategy(t testing.TB, strategy string) *bundle {
	t.Helper()
	if strategy == store.StrategyFindAndModify {
		dbtest.RequireMongoDB(t)
	}
	b := &bundle{reg: rocketjob.NewRegistry(), strategy: strategy}
	must(t, examples.Register(b.reg))
	must(t, rocketjob.Register(b.reg, "count", func(ctx context.Context, job *rocketjob.Job, _ struct{}) error {
		runs, _ := b.runs.LoadOrStore(job.ID.Hex(), new(jobRuns))
		runs.(*jobRuns).add(fmt.Sprintf("%s server=%s attempt=%d started=%v",
			time.Now().Format("15:04:05.000"), job.Server, job.Attempt, job.StartedAt))
		return nil
	}, nil))
	must(t, sliced.RegisterLines(b.reg, "after_once", examples.Upcase, &sliced.Options{
		SliceSize: 2,
		After:     func(context.Context, *rocketjob.Job) error { b.afterCalls.Add(1); return nil },
	}))
	must(t, sliced.RegisterLines(b.reg, "fixable", func(ctx context.Context, line string) (string, error) {
		if strings.HasPrefix(line, "bad") && !b.squareFixed.Load() {
			return "", errors.New("cannot handle " + line)
		}
		return strings.ToUpper(line), nil
	}, &sliced.Options{SliceSize: 3}))
	b.jobs, b.work = dbtest.DBNames(t)
	b.client = b.newClient(t)
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) newClient(t testing.TB) *rocketjob.Client {
	t.Helper()
	c, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: dbtest.URI(), DB: b.jobs, WorkDB: b.work, Registry: b.reg, ClaimStrategy: b.strategy})
	must(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// startServer runs a server with the tests' short intervals on its own
// client connection until the test ends.
func (b *bundle) startServer(t testing.TB, name string, workers int) *server.Server {
	t.Helper()
	return b.runServer(t, server.Config{
		Name: name, Workers: workers, PollInterval: 50 * time.Millisecond, ReCheck: 200 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, DeadAfter: time.Second, ShutdownTimeout: 5 * time.Second,
		Logger: failureLog(t, name),
	})
}

// failureLog is a server's logger that keeps its lines and prints them
// only when the test fails (every line of a passing test is noise).
func failureLog(t testing.TB, name string) *slog.Logger {
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- log of server %s ----\n%s---- end of server %s ----", name, logs.String(), name)
		}
	})
	return slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// runServer runs a server with cfg on its own client connection until the
// test ends.
func (b *bundle) runServer(t testing.TB, cfg server.Config) *server.Server {
	t.Helper()
	srv, err := server.New(b.newClient(t), &cfg)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server %s: %v", cfg.Name, err)
		}
	})
	// Runs before the stop above: a test that failed with its servers
	// still running (a job that never ended, say) prints where their
	// goroutines were.
	t.Cleanup(func() { dumpGoroutines(t) })
	return srv
}

// dumped holds the tests whose goroutines were printed.
var dumped sync.Map

// dumpGoroutines prints every goroutine of the test binary once per failed
// test.
func dumpGoroutines(t testing.TB) {
	if !t.Failed() {
		return
	}
	if _, done := dumped.LoadOrStore(t, true); done {
		return
	}
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	t.Logf("---- goroutines at the failure ----\n%s---- end of goroutines ----", b.String())
}

func (b *bundle) wait(t testing.TB, id string) *rocketjob.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	job, err := b.client.Wait(ctx, id, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("waiting for job %s: %v (state %v)", id, err, job)
	}
	return job
}

func TestSimpleJobsRunExactlyOnceAcrossServers(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var ids []string
	for i := range 30 {
		job, err := b.client.Enqueue(ctx, "count", nil, &rocketjob.EnqueueOptions{Priority: 1 + i%5})
		must(t, err)
		ids = append(ids, job.ID.Hex())
	}
	b.startServer(t, "s1", 3)
	b.startServer(t, "s2", 3)
	for _, id := range ids {
		if job := b.wait(t, id); job.State != rocketjob.StateCompleted {
			t.Fatalf("job %s ended %s: %+v", id, job.State, job.Failure)
		}
	}
	for _, id := range ids {
		if runs := b.ran(id); runs.count() != 1 {
			t.Fatalf("job %s ran %v, want once", id, runs)
		}
	}
}

// Short jobs are started in blocks (runBlock: their claims in one insert,
// then run one after the other), on two servers sharing them by stripes:
// every job still runs exactly once and ends completed.
func TestShortJobsRunInBlocksExactlyOnce(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	args := make([]any, 600)
	for i := range args {
		args[i] = struct{}{}
	}
	jobs, err := b.client.EnqueueMany(ctx, "count", args, nil)
	must(t, err)
	logs := map[string]*syncBuffer{}
	// Neither server may take the other for dead: a rescue re-runs the
	// jobs of a live server by design (at least once), and under -race
	// a heartbeat's write took over a second (a rehearsal saw a job run
	// twice with the usual DeadAfter of one second).
	for _, name := range []string{"s1", "s2"} {
		logs[name] = &syncBuffer{}
		b.runServer(t, server.Config{
			Name: name, Workers: 4, PollInterval: 50 * time.Millisecond, ReCheck: 200 * time.Millisecond,
			HeartbeatInterval: 200 * time.Millisecond, DeadAfter: time.Minute, ShutdownTimeout: 5 * time.Second,
			Logger: slog.New(slog.NewTextHandler(logs[name], &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
	}
	for _, job := range jobs {
		if got := b.wait(t, job.ID.Hex()); got.State != rocketjob.StateCompleted {
			t.Fatalf("job %s ended %s: %+v", job.ID.Hex(), got.State, got.Failure)
		}
	}
	for _, job := range jobs {
		if runs := b.ran(job.ID.Hex()); runs.count() != 1 {
			for name, l := range logs {
				for _, line := range strings.Split(l.String(), "\n") {
					if strings.Contains(line, job.ID.Hex()) || strings.Contains(line, "dead") {
						t.Logf("%s: %s", name, line)
					}
				}
			}
			t.Fatalf("job %s ran %v, want once", job.ID.Hex(), runs)
		}
	}
	blocks := 0
	for name, l := range logs {
		n := strings.Count(l.String(), "jobs started together")
		t.Logf("server %s: %d blocks", name, n)
		blocks += n
	}
	if blocks == 0 {
		t.Error("no block of jobs was started: every short job was claimed alone")
	}
}

// A server that stops leaves its run-queue segments as its next selection
// would have (store.LeaveSegments): its last takes published and the
// segments whose jobs all started dropped, instead of left for a queued
// listing to read whole (about 80 ms for a segment of 1,000) until
// another server's selection drops them.
func TestStoppedServerLeavesNoSegment(t *testing.T) {
	dbtest.RequireFerretDB(t) // segments are the embedded database's
	b := setup(t)
	ctx := context.Background()
	args := make([]any, 2000)
	for i := range args {
		args[i] = struct{}{}
	}
	_, err := b.client.EnqueueMany(ctx, "count", args, nil)
	must(t, err)
	srv, err := server.New(b.newClient(t), &server.Config{Name: "one", Workers: 8, PollInterval: time.Hour, Logger: failureLog(t, "one")})
	must(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n := 0
		b.runs.Range(func(any, any) bool { n++; return true })
		if n == len(args) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs ran", n, len(args))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	must(t, <-done)
	names, err := dbtest.Client(t).Database(store.RunQueueDB(b.jobs)).ListCollectionNames(ctx, bson.D{})
	must(t, err)
	if len(names) > 0 {
		t.Errorf("run-queue collections after the server stopped: %v, want none", names)
	}
}

func TestFailingSimpleJobIsFailedWithItsError(t *testing.T) {
	b := setup(t)
	job, err := b.client.Enqueue(context.Background(), "nap", examples.NapArgs{MS: 1, Fail: true}, nil)
	must(t, err)
	b.startServer(t, "s1", 1)
	got := b.wait(t, job.ID.Hex())
	if got.State != rocketjob.StateFailed || got.Failure == nil || !strings.Contains(got.Failure.Message, "fail=true") {
		t.Fatalf("job: %s %+v", got.State, got.Failure)
	}
}

func lines(n int, f func(i int) string) string {
	var sb strings.Builder
	for i := range n {
		sb.WriteString(f(i))
		sb.WriteByte('\n')
	}
	return sb.String()
}

func TestSlicedRoundTripWithTwoServers(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	input := lines(2345, func(i int) string { return fmt.Sprintf("line %05d héllo", i) })
	job, err := sliced.Upload(ctx, b.client, "reverse", strings.NewReader(input), &sliced.UploadOptions{SliceSize: 50})
	must(t, err)
	if job.RecordCount != 2345 || job.SliceCount != 47 {
		t.Fatalf("uploaded %d records in %d slices", job.RecordCount, job.SliceCount)
	}
	b.startServer(t, "s1", 4)
	b.startServer(t, "s2", 4)
	if got := b.wait(t, job.ID.Hex()); got.State != rocketjob.StateCompleted || got.ProcessedCount != 2345 {
		t.Fatalf("job ended %s, processed %d: %+v", got.State, got.ProcessedCount, got.Failure)
	}
	var out bytes.Buffer
	n, err := sliced.Download(ctx, b.client, job.ID.Hex(), &out)
	must(t, err)
	want := lines(2345, func(i int) string {
		s, _ := examples.Reverse(ctx, fmt.Sprintf("line %05d héllo", i))
		return s
	})
	if n != 2345 || out.String() != want {
		t.Fatalf("download: %d records; equal to reverse(input): %v", n, out.String() == want)
	}
}

func TestFailedRecordsThenRetry(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	input := "a\nbad1\nc\nd\ne\nbad2\ng\n"
	job, err := sliced.Upload(ctx, b.client, "fixable", strings.NewReader(input), nil)
	must(t, err)
	b.startServer(t, "s1", 2)
	got := b.wait(t, job.ID.Hex())
	if got.State != rocketjob.StateFailed || got.FailedRecordCount != 2 || got.Failure == nil || got.Failure.Message != "2 of 7 records failed" {
		t.Fatalf("job: %s failed=%d %+v", got.State, got.FailedRecordCount, got.Failure)
	}
	var failed bytes.Buffer
	_, err = sliced.DownloadFailed(ctx, b.client, job.ID.Hex(), &failed)
	must(t, err)
	if want := "record,error,input\n2,cannot handle bad1,bad1\n6,cannot handle bad2,bad2\n"; failed.String() != want {
		t.Fatalf("failed records:\n%s\nwant:\n%s", failed.String(), want)
	}
	var out bytes.Buffer
	_, err = sliced.Download(ctx, b.client, job.ID.Hex(), &out)
	must(t, err)
	if out.String() != "A\nC\nD\nE\nG\n" {
		t.Fatalf("partial output %q", out.String())
	}
	b.squareFixed.Store(true)
	_, err = b.client.Retry(ctx, job.ID.Hex())
	must(t, err)
	if got = b.wait(t, job.ID.Hex()); got.State != rocketjob.StateCompleted {
		t.Fatalf("after retry: %s %+v", got.State, got.Failure)
	}
	out.Reset()
	_, err = sliced.Download(ctx, b.client, job.ID.Hex(), &out)
	must(t, err)
	if out.String() != "A\nBAD1\nC\nD\nE\nBAD2\nG\n" {
		t.Fatalf("output after retry %q", out.String())
	}
}

func TestAfterHookRunsExactlyOnce(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var ids []string
	for range 3 {
		job, err := sliced.Upload(ctx, b.client, "after_once", strings.NewReader(lines(40, func(i int) string { return "x" })), nil)
		must(t, err)
		ids = append(ids, job.ID.Hex())
	}
	b.startServer(t, "s1", 4)
	b.startServer(t, "s2", 4)
	for _, id := range ids {
		if got := b.wait(t, id); got.State != rocketjob.StateCompleted {
			t.Fatalf("job %s: %s", id, got.State)
		}
	}
	if n := b.afterCalls.Load(); n != 3 {
		t.Fatalf("after hook ran %d times for 3 jobs", n)
	}
}

func TestEmptyUploadCompletes(t *testing.T) {
	b := setup(t)
	job, err := sliced.Upload(context.Background(), b.client, "copy", strings.NewReader(""), nil)
	must(t, err)
	b.startServer(t, "s1", 1)
	if got := b.wait(t, job.ID.Hex()); got.State != rocketjob.StateCompleted || got.RecordCount != 0 {
		t.Fatalf("empty job: %s %d", got.State, got.RecordCount)
	}
	var out bytes.Buffer
	_, err = sliced.Download(context.Background(), b.client, job.ID.Hex(), &out)
	must(t, err)
	if out.Len() != 0 {
		t.Fatalf("output of empty input: %q", out.String())
	}
}
