package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
)

// noopArgs are the arguments of the benchmark's job: its index.
type noopArgs struct {
	I int `bson:"i"`
}

// simpleTracker counts the runs of the benchmark's jobs and keeps when
// each started; it is what the registered job functions do.
type simpleTracker struct {
	runs    []atomic.Int32
	started []atomic.Int64 // each job's started_at, Unix nanoseconds
	ran     atomic.Int64   // jobs that ran at least once
	half    int64          // ran count at which halfway is closed
	halfway chan struct{}  // closed when half the jobs ran
	probe   probeTracker
	backlog atomic.Int64 // runs of backlog jobs (SimpleConfig.Backlog)

	mu      sync.Mutex
	last    []bson.ObjectID // the ids of the jobs that ran last, oldest first (at most lastRan)
	lastRan int
}

// newSimpleTracker tracks n jobs run by workers workers in all. It keeps
// the ids of the twice as many jobs that ran last: a worker writes a job's
// end before it takes the next, so once every job ran, only the last one
// of each worker can still be stored unended.
func newSimpleTracker(n, workers int) *simpleTracker {
	return &simpleTracker{runs: make([]atomic.Int32, n), started: make([]atomic.Int64, n),
		half: int64(max(1, n/2)), halfway: make(chan struct{}), lastRan: 2 * workers}
}

// perform is the no-op job: it counts the run and notes the job's start.
func (t *simpleTracker) perform(_ context.Context, job *rocketjob.Job, a noopArgs) error {
	if a.I < 0 || a.I >= len(t.runs) {
		return fmt.Errorf("no job %d", a.I)
	}
	if job.StartedAt != nil {
		t.started[a.I].CompareAndSwap(0, job.StartedAt.UnixNano())
	}
	if t.runs[a.I].Add(1) == 1 && t.ran.Add(1) == t.half {
		close(t.halfway)
	}
	t.ranLast(job.ID)
	return nil
}

// ranLast notes that job id ran.
func (t *simpleTracker) ranLast(id bson.ObjectID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.last) == t.lastRan {
		t.last = t.last[1:]
	}
	t.last = append(t.last, id)
}

// lastIDs returns the ids of the jobs that ran last.
func (t *simpleTracker) lastIDs() []bson.ObjectID {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.last)
}

// done reports whether every job and the probe ran, and the probe's
// enqueue was noted (a server may run the probe before Enqueue returns).
func (t *simpleTracker) done() bool {
	return t.ran.Load() >= int64(len(t.runs)) && t.probe.runs.Load() > 0 && t.probe.enqueuedAt.Load() != 0
}

// register registers the job type and the probe's type.
func (t *simpleTracker) register() (*rocketjob.Registry, error) {
	reg := rocketjob.NewRegistry()
	if err := rocketjob.Register(reg, SimpleType, t.perform, nil); err != nil {
		return nil, err
	}
	if err := rocketjob.Register(reg, ProbeType, t.probe.perform, nil); err != nil {
		return nil, err
	}
	backlog := func(context.Context, *rocketjob.Job, noopArgs) error {
		t.backlog.Add(1)
		return nil
	}
	if err := rocketjob.Register(reg, BacklogType, backlog, nil); err != nil {
		return nil, err
	}
	return reg, nil
}

// runSimpleRocketJob enqueues cfg.N no-op jobs on the databases jobsDB and
// workDB, runs them with servers in-process servers, enqueuing the priority
// probe once half of them ran, and checks that each ran exactly once and
// completed (countCompleted).
func runSimpleRocketJob(ctx context.Context, cfg SimpleConfig, uri, jobsDB, workDB string, servers int, tr *tracer) (SimpleRun, error) {
	run := SimpleRun{Name: "rocketjob", N: cfg.N, Servers: servers, Workers: cfg.Workers}
	t := newSimpleTracker(cfg.N, servers*cfg.Workers)
	reg, err := t.register()
	if err != nil {
		return run, err
	}
	ccfg := rocketjob.Config{URI: uri, WorkURI: uri, DB: jobsDB, WorkDB: workDB, Registry: reg}
	client, err := rocketjob.NewClient(ctx, ccfg)
	if err != nil {
		return run, fmt.Errorf("rocketjob: %w", err)
	}
	defer func() { _ = client.Close(context.WithoutCancel(ctx)) }()

	if cfg.Backlog > 0 {
		start := time.Now()
		if err := enqueueNoops(ctx, client, BacklogType, backlogPriority, cfg.Backlog); err != nil {
			return run, fmt.Errorf("rocketjob: backlog: %w", err)
		}
		run.Backlog, run.BacklogEnqueue = cfg.Backlog, time.Since(start)
		cfg.Logf("bench: rocketjob backlog of %d jobs enqueued: %s", cfg.Backlog, run.BacklogEnqueue.Round(time.Millisecond))
	}
	ph := phaser{tr: tr, calls: &run.Calls}
	if err := ph.time(PhaseEnqueue, &run.Enqueue, func() error { return enqueueNoops(ctx, client, SimpleType, simplePriority, cfg.N) }); err != nil {
		return run, fmt.Errorf("rocketjob: %w", err)
	}
	cfg.Logf("bench: rocketjob enqueue: %s", run.Enqueue.Round(time.Millisecond))

	// The servers start once every job is enqueued, so the phases do not
	// overlap; each has its own client, as a separate process would.
	fleet := &serverFleet{}
	defer fleet.stop(ctx)
	err = ph.time(PhaseProcess, &run.Process, func() error {
		if err := fleet.start(ctx, ccfg, servers, cfg.Workers); err != nil {
			return err
		}
		waitCtx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		go t.probe.enqueueAt(waitCtx, client, t.halfway, cancel)
		return waitAllCompleted(waitCtx, client, t, fleet)
	})
	if err != nil {
		return run, fmt.Errorf("rocketjob: %w", err)
	}
	cfg.Logf("bench: rocketjob process: %s", run.Process.Round(time.Millisecond))
	if err := fleet.stop(ctx); err != nil {
		return run, fmt.Errorf("rocketjob: server: %w", err)
	}
	if run.BacklogRan = t.backlog.Load(); run.BacklogRan > 0 {
		cfg.Logf("bench: rocketjob: %d backlog jobs ran before the servers stopped", run.BacklogRan)
	}
	if run.Reads, err = timeReads(ctx, client); err != nil {
		return run, fmt.Errorf("rocketjob: %w", err)
	}
	return run, verifyRocketJob(ctx, client, t, &run)
}

// enqueueNoops enqueues n no-op jobs of type typ at priority with
// EnqueueMany, simpleEnqueueChunk per call.
func enqueueNoops(ctx context.Context, client *rocketjob.Client, typ string, priority, n int) error {
	args := make([]noopArgs, n)
	for i := range args {
		args[i].I = i
	}
	opts := &rocketjob.EnqueueOptions{Priority: priority}
	for from := 0; from < n; from += simpleEnqueueChunk {
		if _, err := rocketjob.EnqueueManyOf(ctx, client, typ, args[from:min(from+simpleEnqueueChunk, n)], opts); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
	}
	return nil
}

// timeReads times what a user reads while the jobs sit in the collection
// (the backlog queued, the N completed): the CLI's listings of 50 (most
// urgent first, newest first, by state, of a type none of whose jobs is
// left queued) and a job's show.
func timeReads(ctx context.Context, client *rocketjob.Client) ([]TimedRead, error) {
	var reads []TimedRead
	var shown string
	for _, l := range []struct {
		what string
		opts rocketjob.ListOptions
	}{
		{"job list --limit 50", rocketjob.ListOptions{Limit: 50}},
		{"job list --limit 50 --newest", rocketjob.ListOptions{Limit: 50, Newest: true}},
		{"job list --limit 50 --state queued", rocketjob.ListOptions{Limit: 50, States: []rocketjob.State{rocketjob.StateQueued}}},
		// None left: a listing that must rule out the whole backlog.
		{"job list --limit 50 --state queued --type " + SimpleType, rocketjob.ListOptions{Limit: 50, States: []rocketjob.State{rocketjob.StateQueued}, Type: SimpleType}},
		{"job list --limit 50 --state completed", rocketjob.ListOptions{Limit: 50, States: []rocketjob.State{rocketjob.StateCompleted}}},
		{"job list --limit 50 --state completed --newest", rocketjob.ListOptions{Limit: 50, States: []rocketjob.State{rocketjob.StateCompleted}, Newest: true}},
	} {
		start := time.Now()
		jobs, err := client.List(ctx, &l.opts)
		if err != nil {
			return reads, fmt.Errorf("%s: %w", l.what, err)
		}
		reads = append(reads, TimedRead{What: l.what, Took: time.Since(start), Jobs: len(jobs)})
		if shown == "" && len(jobs) > 0 {
			shown = jobs[len(jobs)-1].ID.Hex()
		}
	}
	if shown != "" {
		start := time.Now()
		if _, err := client.Get(ctx, shown); err != nil {
			return reads, fmt.Errorf("job show: %w", err)
		}
		reads = append(reads, TimedRead{What: "job show", Took: time.Since(start), Jobs: 1})
	}
	return reads, nil
}

// verifyRocketJob checks that every job ran exactly once and that N are
// stored completed, and fills in run's counts and probe.
func verifyRocketJob(ctx context.Context, client *rocketjob.Client, t *simpleTracker, run *SimpleRun) error {
	for i := range t.runs {
		run.Runs += int64(t.runs[i].Load())
	}
	if err := exactlyOnce(t.runs); err != nil {
		return fmt.Errorf("rocketjob: verify: %w", err)
	}
	completed, err := countCompleted(ctx, client)
	if err != nil {
		return fmt.Errorf("rocketjob: verify: %w", err)
	}
	run.Completed = completed
	if completed != int64(run.N) {
		return fmt.Errorf("rocketjob: verify: %d jobs completed, want %d", completed, run.N)
	}
	probe, err := t.probe.result(t.started)
	if err != nil {
		return fmt.Errorf("rocketjob: priority probe: %w", err)
	}
	run.Probe = probe
	return nil
}

// countCompleted counts the no-op jobs completed, with one listing of the
// type without a limit, outside the timed phases: on FerretDB it reads
// every job of the type and every end record (a short job's end is an
// insert there, which leaves its job document as it was enqueued).
func countCompleted(ctx context.Context, client *rocketjob.Client) (int64, error) {
	jobs, err := client.List(ctx, &rocketjob.ListOptions{Type: SimpleType, States: []rocketjob.State{rocketjob.StateCompleted}})
	if err != nil {
		return 0, fmt.Errorf("counting completed jobs: %w", err)
	}
	return int64(len(jobs)), nil
}

// serverFleet is the in-process servers of a run, each with its own client.
type serverFleet struct {
	cancel  context.CancelFunc
	done    chan error
	running int
	clients []*rocketjob.Client
}

// start starts n servers of workers workers each.
func (f *serverFleet) start(ctx context.Context, ccfg rocketjob.Config, n, workers int) error {
	var srvCtx context.Context
	srvCtx, f.cancel = context.WithCancel(ctx)
	f.done = make(chan error, n)
	for i := range n {
		c, err := rocketjob.NewClient(ctx, ccfg)
		if err != nil {
			return err
		}
		f.clients = append(f.clients, c)
		srv, err := server.New(c, &server.Config{
			Name:    fmt.Sprintf("bench-simple-%d-%d", os.Getpid(), i),
			Workers: workers,
			Logger:  slog.New(slog.DiscardHandler),
		})
		if err != nil {
			return err
		}
		f.running++
		go func() { f.done <- srv.Run(srvCtx) }()
	}
	return nil
}

// stopped is the channel on which a server's end is reported.
func (f *serverFleet) stopped() <-chan error { return f.done }

// stop stops the servers, waits for them and closes their clients; it
// returns the first server error. It may be called again.
func (f *serverFleet) stop(ctx context.Context) error {
	if f.cancel == nil {
		return nil
	}
	f.cancel()
	var first error
	for ; f.running > 0; f.running-- {
		if err := <-f.done; err != nil && first == nil {
			first = err
		}
	}
	for _, c := range f.clients {
		_ = c.Close(context.WithoutCancel(ctx))
	}
	f.clients = nil
	return first
}

// waitAllCompleted waits until every job ran, then until the jobs that ran
// last (the only ones whose end may not be stored yet) are stored
// completed: point reads, whatever else the queue holds. A job stored
// failed, aborted or paused, a server that stops, or ctx's end (its cause)
// is an error.
func waitAllCompleted(ctx context.Context, c *rocketjob.Client, t *simpleTracker, fleet *serverFleet) error {
	tick := time.NewTicker(simplePoll)
	defer tick.Stop()
	var pending []bson.ObjectID
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case err := <-fleet.stopped():
			fleet.running--
			return fmt.Errorf("a server stopped before every job completed: %v", err)
		case <-tick.C:
		}
		if !t.done() {
			continue
		}
		if pending == nil {
			pending = append(t.lastIDs(), t.probe.id())
		}
		for len(pending) > 0 {
			job, err := c.Get(ctx, pending[0].Hex())
			if err != nil {
				return err
			}
			switch job.State {
			case rocketjob.StateCompleted:
				pending = pending[1:]
				continue
			case rocketjob.StateFailed, rocketjob.StateAborted, rocketjob.StatePaused:
				msg := ""
				if job.Failure != nil {
					msg = ": " + job.Failure.Message
				}
				return fmt.Errorf("job %s ended %s%s", job.ID.Hex(), job.State, msg)
			}
			break // not ended yet: look again at the next tick
		}
		if len(pending) == 0 {
			return nil
		}
	}
}
