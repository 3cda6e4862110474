package rocketjob_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// TestEnqueueManyWritesEveryJobAndItsQueueCopy enqueues more jobs than one
// batch holds and checks each one as stored, in order, with its run-queue
// copy (ReconcileQueue finds nothing to repair).
func TestEnqueueManyWritesEveryJobAndItsQueueCopy(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	const n = 2500 // three batches
	args := make([]emailArgs, n)
	for i := range args {
		args[i] = emailArgs{To: fmt.Sprintf("user%d@example.com", i), Retries: i % 7}
	}
	retry := 4
	expires := time.Now().Add(time.Hour)
	jobs, err := rocketjob.EnqueueManyOf(ctx, c, "send_email", args, &rocketjob.EnqueueOptions{
		Priority: 20, Description: "bulk", RetryLimit: &retry, ExpiresAt: expires,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != n {
		t.Fatalf("%d jobs returned, want %d", len(jobs), n)
	}
	stored, err := c.List(ctx, &rocketjob.ListOptions{States: []rocketjob.State{rocketjob.StateQueued}})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != n {
		t.Fatalf("%d queued jobs stored, want %d", len(stored), n)
	}
	byID := map[bson.ObjectID]*rocketjob.Job{}
	for i := range stored {
		byID[stored[i].ID] = &stored[i]
	}
	for i, j := range jobs {
		if i > 0 && jobs[i-1].ID.Hex() >= j.ID.Hex() {
			t.Fatalf("job %d id %s not after job %d id %s", i, j.ID.Hex(), i-1, jobs[i-1].ID.Hex())
		}
		s := byID[j.ID]
		if s == nil {
			t.Fatalf("job %d (%s) returned but not stored", i, j.ID.Hex())
		}
		var a emailArgs
		if err := bson.Unmarshal(s.Params, &a); err != nil {
			t.Fatal(err)
		}
		if a != args[i] || s.Priority != 20 || s.Description != "bulk" || s.RetryLimit != 4 || s.Type != "send_email" ||
			s.Kind != rocketjob.KindSimple || s.ExpiresAt == nil || !s.ExpiresAt.Equal(expires.UTC().Truncate(time.Millisecond)) {
			t.Fatalf("job %d stored as %+v with args %+v, want args %+v, priority 20, description bulk, retry limit 4, expiry %s", i, s, a, args[i], expires)
		}
	}
	fixed, err := clientstore.Of(c).ReconcileQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fixed != 0 {
		t.Fatalf("the run queue needed %d repairs after EnqueueMany, want 0", fixed)
	}
	runnable, err := clientstore.Of(c).RunnableJobs(ctx, time.Now(), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(runnable) != 10 || runnable[0].ID != jobs[0].ID {
		t.Fatalf("selection found %d jobs starting with %v, want 10 starting with the first enqueued %s", len(runnable), runnable, jobs[0].ID.Hex())
	}
}

// TestEnqueueManyIsAllOrNothing checks that one bad element, or a bad
// option, writes no job at all.
func TestEnqueueManyIsAllOrNothing(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	args := []any{emailArgs{To: "a"}, &emailArgs{To: "b"}, nil, emailArgs{To: "d"}}
	_, err := c.EnqueueMany(ctx, "send_email", args, nil)
	var ae *rocketjob.ArgsError
	if !errors.As(err, &ae) || ae.Index != 2 || !errors.Is(err, rocketjob.ErrBadArgs) {
		t.Fatalf("err = %v, want an *ArgsError for index 2 (nil args fail Validate) wrapping ErrBadArgs", err)
	}
	args[2] = struct{ X int }{1}
	if _, err := c.EnqueueMany(ctx, "send_email", args, nil); !errors.As(err, &ae) || ae.Index != 2 {
		t.Fatalf("wrong args type: err = %v, want an *ArgsError for index 2", err)
	}
	args[2] = emailArgs{To: "c"}
	for name, tc := range map[string]struct {
		typ  string
		opts *rocketjob.EnqueueOptions
		want error
	}{
		"unknown type":       {"nope", nil, rocketjob.ErrUnknownType},
		"bad priority":       {"send_email", &rocketjob.EnqueueOptions{Priority: 101}, rocketjob.ErrBadPriority},
		"missing dependency": {"send_email", &rocketjob.EnqueueOptions{DependsOn: []string{bson.NewObjectID().Hex()}}, rocketjob.ErrJobNotFound},
		"cron":               {"send_email", &rocketjob.EnqueueOptions{Cron: "@hourly"}, nil},
	} {
		_, err := c.EnqueueMany(ctx, tc.typ, args, tc.opts)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	jobs, err := c.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 0 {
		t.Fatalf("%d jobs written by refused bulk enqueues", len(jobs))
	}
	if jobs, err := c.EnqueueMany(ctx, "send_email", nil, nil); err != nil || len(jobs) != 0 {
		t.Fatalf("no args: %d jobs, err %v; want none and no error", len(jobs), err)
	}
}

// TestEnqueueManyDependsOn gives every job of a bulk enqueue the same
// dependency.
func TestEnqueueManyDependsOn(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	first, err := c.Enqueue(ctx, "send_email", emailArgs{To: "first"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := c.EnqueueMany(ctx, "send_email", []any{emailArgs{To: "a"}, bson.Raw(must(bson.Marshal(emailArgs{To: "b"})))},
		&rocketjob.EnqueueOptions{DependsOn: []string{first.ID.Hex()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		got, err := c.Get(ctx, j.ID.Hex())
		if err != nil {
			t.Fatal(err)
		}
		if len(got.DependsOn) != 1 || got.DependsOn[0] != first.ID {
			t.Fatalf("job %s depends on %v, want [%s]", j.ID.Hex(), got.DependsOn, first.ID.Hex())
		}
	}
}

// setupWith connects a client with registry reg to new databases and
// returns it with the name of its jobs database.
func setupWith(tb testing.TB, reg *rocketjob.Registry) (*rocketjob.Client, string) {
	tb.Helper()
	jobs, work := dbtest.DBNames(tb)
	c, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, jobs
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// BenchmarkEnqueueMany reports the bulk enqueue rate on the embedded
// database: each op enqueues 10,000 jobs.
//
//	go test ./rocketjob -run '^$' -bench EnqueueMany -benchtime 3x
func BenchmarkEnqueueMany(b *testing.B) {
	reg := rocketjob.NewRegistry()
	if err := rocketjob.Register(reg, "nap", func(context.Context, *rocketjob.Job, struct {
		Ms int `bson:"ms"`
	}) error {
		return nil
	}, nil); err != nil {
		b.Fatal(err)
	}
	c, jobsDB := setupWith(b, reg)
	ctx := context.Background()
	const perOp = 10_000
	args := make([]any, perOp)
	for i := range args {
		args[i] = bson.Raw(must(bson.Marshal(bson.D{{Key: "ms", Value: 0}})))
	}
	// The baseline, in the same database: the same job documents written
	// by one insertMany of 1,000 after another into one collection, no
	// run-queue copies, nothing checked.
	raw := dbtest.Client(b).Database(jobsDB).Collection("raw_jobs")
	var total, cpu, rawTotal time.Duration
	for b.Loop() {
		start, startCPU := time.Now(), cpuTime()
		jobs, err := c.EnqueueMany(ctx, "nap", args, nil)
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		cpu += cpuTime() - startCPU
		for _, j := range jobs {
			j.ID = bson.NewObjectID()
		}
		start = time.Now()
		for i := 0; i < len(jobs); i += 1000 {
			docs := make([]any, 0, 1000)
			for _, j := range jobs[i:min(i+1000, len(jobs))] {
				docs = append(docs, j)
			}
			if _, err := raw.InsertMany(ctx, docs); err != nil {
				b.Fatal(err)
			}
		}
		rawTotal += time.Since(start)
	}
	b.ReportMetric(float64(b.N*perOp)/total.Seconds(), "jobs/s")
	// The CPU time of the process (the embedded database included): what
	// a job costs, whatever else runs on the machine.
	b.ReportMetric(float64(b.N*perOp)/cpu.Seconds(), "jobs/cpu-s")
	b.ReportMetric(float64(b.N*perOp)/rawTotal.Seconds(), "raw-insertMany-docs/s")
	b.ReportMetric(rawTotal.Seconds()/total.Seconds(), "ratio-to-raw")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkEnqueueConcurrent reports the rate of single Enqueue calls from
// 8 goroutines, as 8 clients of the REST API make them.
//
//	go test ./rocketjob -run '^$' -bench EnqueueConcurrent -benchtime 2000x
func BenchmarkEnqueueConcurrent(b *testing.B) {
	reg := rocketjob.NewRegistry()
	if err := rocketjob.Register(reg, "nap", func(context.Context, *rocketjob.Job, struct {
		Ms int `bson:"ms"`
	}) error {
		return nil
	}, nil); err != nil {
		b.Fatal(err)
	}
	c, _ := setupWith(b, reg)
	ctx := context.Background()
	args := bson.Raw(must(bson.Marshal(bson.D{{Key: "ms", Value: 0}})))
	work := make(chan struct{})
	errs := make(chan error, 8)
	var lat [8]time.Duration
	start := time.Now()
	for w := range 8 {
		go func() {
			for range work {
				t0 := time.Now()
				if _, err := c.Enqueue(ctx, "nap", args, nil); err != nil {
					errs <- err
					return
				}
				lat[w] += time.Since(t0)
			}
			errs <- nil
		}()
	}
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	for range 8 {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	var total time.Duration
	for _, l := range lat {
		total += l
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "jobs/s")
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/enqueue")
	b.ReportMetric(0, "ns/op")
}

// TestConcurrentEnqueues checks that single Enqueue calls from many
// goroutines, which are written together in batches, each get their own
// job, stored with its run-queue copy.
func TestConcurrentEnqueues(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	const workers, each = 8, 40
	ids := make(chan string, workers*each)
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				j, err := c.Enqueue(ctx, "send_email", emailArgs{To: fmt.Sprintf("w%d-%d", w, i)}, nil)
				if err != nil {
					errs <- err
					return
				}
				ids <- j.ID.Hex()
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(ids)
	stored, err := c.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]string{}
	for _, j := range stored {
		var a emailArgs
		if err := bson.Unmarshal(j.Params, &a); err != nil {
			t.Fatal(err)
		}
		byID[j.ID.Hex()] = a.To
	}
	seen := map[string]bool{}
	for id := range ids {
		if byID[id] == "" || seen[byID[id]] {
			t.Fatalf("job %s: stored args %q (seen before: %v)", id, byID[id], seen[byID[id]])
		}
		seen[byID[id]] = true
	}
	if len(stored) != workers*each || len(seen) != workers*each {
		t.Fatalf("%d jobs stored, %d distinct, want %d", len(stored), len(seen), workers*each)
	}
	if fixed, err := clientstore.Of(c).ReconcileQueue(ctx); err != nil || fixed != 0 {
		t.Fatalf("run queue repairs after concurrent enqueues: %d (%v), want 0", fixed, err)
	}
}
