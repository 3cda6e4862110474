package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Each service of the server, started alone against the embedded database.

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// serviceStore opens a store on a database of the test's own.
func serviceStore(t *testing.T) *store.Store {
	t.Helper()
	jobs, work := dbtest.DBNames(t)
	c, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return clientstore.Of(c)
}

// passes waits for n passes of a periodic service.
func passes(t *testing.T, ch chan struct{}, n int) {
	t.Helper()
	for range n {
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatal("the service made no pass")
		}
	}
}

// startStop starts svc, registers its Stop for the end of the test and
// checks that Start and Stop are idempotent.
func startStop(t *testing.T, svc interface {
	Start(context.Context) error
	Stop(context.Context) error
}) {
	t.Helper()
	ctx := context.Background()
	if err := svc.Stop(ctx); !errors.Is(err, errNotStarted) {
		t.Fatalf("Stop before Start: %v", err)
	}
	for range 2 {
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for range 2 {
			if err := svc.Stop(ctx); err != nil {
				t.Errorf("Stop: %v", err)
			}
		}
	})
}

func newQueuedJob() *model.Job {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &model.Job{ID: bson.NewObjectID(), Type: "nap", Kind: model.KindSimple, State: model.StateQueued,
		Priority: 50, RunAt: now, CreatedAt: now}
}

// runningOn inserts a simple job and moves it to running on server.
func runningOn(t *testing.T, st *store.Store, server string) *model.Job {
	t.Helper()
	ctx := context.Background()
	job := newQueuedJob()
	if err := st.InsertJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	job, err := st.Transition(ctx, job, model.StateRunning, store.Change{Server: &server}, server)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func TestHeartbeatService(t *testing.T) {
	st := serviceStore(t)
	ctx := context.Background()
	h := newHeartbeat(heartbeatConfig{Name: "hb", Interval: 50 * time.Millisecond}, st, quietLog)
	h.passed = make(chan struct{})
	var mu sync.Mutex
	var commands []string
	var dead atomic.Int32
	h.command = func(c string) { mu.Lock(); commands = append(commands, c); mu.Unlock() }
	h.declaredDead = func() { dead.Add(1) }
	startStop(t, h)
	passes(t, h.passed, 2)
	srv, err := st.GetServer(ctx, "hb")
	if err != nil || srv.HeartbeatInterval != 50*time.Millisecond {
		t.Fatalf("server document: %+v, %v", srv, err)
	}
	if err := st.SendCommand(ctx, "hb", rocketjob.CommandPause); err != nil {
		t.Fatal(err)
	}
	// A rescuer removes the document of a server it declared dead.
	if _, err := st.RemoveServer(ctx, "hb", time.Time{}); err != nil {
		t.Fatal(err)
	}
	passes(t, h.passed, 3)
	mu.Lock()
	defer mu.Unlock()
	if len(commands) != 1 || commands[0] != rocketjob.CommandPause {
		t.Fatalf("commands applied: %v, want one pause", commands)
	}
	if dead.Load() != 1 {
		t.Fatalf("declared dead %d times, want once", dead.Load())
	}
}

func TestRescuerService(t *testing.T) {
	st := serviceStore(t)
	ctx := context.Background()
	old := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	// A dead server (an old heartbeat) and a live one with a slow heartbeat
	// of its own (older than the rescuer's dead-after, within its own).
	for _, srv := range []*model.Server{
		{Name: "dead", HeartbeatAt: old, State: model.ServerRunning},
		{Name: "slow", HeartbeatAt: time.Now().Add(-3 * time.Second).UTC(), DeadAfter: time.Minute, State: model.ServerRunning},
	} {
		if _, err := st.Heartbeat(ctx, srv); err != nil {
			t.Fatal(err)
		}
	}
	deadJob, slowJob := runningOn(t, st, "dead"), runningOn(t, st, "slow")
	r := newRescuer(rescuerConfig{Name: "me", Interval: 50 * time.Millisecond, DeadAfter: time.Second}, st, quietLog)
	r.passed = make(chan struct{})
	var rescued atomic.Int32
	r.rescued = func() { rescued.Add(1) }
	startStop(t, r)
	passes(t, r.passed, 2)
	if j, err := st.GetJob(ctx, deadJob.ID); err != nil || j.State != model.StateQueued || j.Server != "" {
		t.Fatalf("job of the dead server: %+v, %v", j, err)
	}
	if j, err := st.GetJob(ctx, slowJob.ID); err != nil || j.State != model.StateRunning || j.Server != "slow" {
		t.Fatalf("job of the live slow server: %+v, %v", j, err)
	}
	if _, err := st.GetServer(ctx, "dead"); !errors.Is(err, model.ErrServerNotFound) {
		t.Fatalf("dead server's document: %v", err)
	}
	if rescued.Load() != 1 {
		t.Fatalf("%d rescues, want 1", rescued.Load())
	}
}

func TestHousekeeperService(t *testing.T) {
	st := serviceStore(t)
	ctx := context.Background()
	// A job running on a server that no longer exists (its claim was rolled
	// forward after the server was rescued and removed).
	orphan := runningOn(t, st, "gone")
	h := newHousekeeper(housekeeperConfig{Name: "me", Interval: 50 * time.Millisecond}, st, quietLog)
	h.passed = make(chan struct{})
	startStop(t, h)
	passes(t, h.passed, 1)
	if j, err := st.GetJob(ctx, orphan.ID); err != nil || j.State != model.StateQueued || j.Server != "" {
		t.Fatalf("orphaned job: %+v, %v", j, err)
	}
}

func TestWatcherService(t *testing.T) {
	st := serviceStore(t)
	ctx := context.Background()
	w := newWatcher(st, 50*time.Millisecond, quietLog)
	w.passed = make(chan struct{})
	startStop(t, w)
	job := runningOn(t, st, "me")
	runCtx, wt := w.track(ctx, job, true, func(j *model.Job) bool { return j.State == model.StateRunning }, nil)
	defer wt.Done()
	passes(t, w.passed, 1)
	if wt.Err() != nil || runCtx.Err() != nil {
		t.Fatalf("a running job's run ended: %v", wt.Err())
	}
	if _, err := st.Transition(ctx, job, model.StateAborted, store.Change{}, "client"); err != nil {
		t.Fatal(err)
	}
	passes(t, w.passed, 2)
	if !errors.Is(wt.Err(), model.ErrAborted) || !errors.Is(context.Cause(runCtx), model.ErrAborted) {
		t.Fatalf("aborted job: watch %v, context cause %v", wt.Err(), context.Cause(runCtx))
	}
}

func TestCompleterService(t *testing.T) {
	var mu sync.Mutex
	var batches [][]completion
	c := newCompleter(completerConfig{Batch: 4, Linger: time.Hour}, func(_ context.Context, b []completion) {
		mu.Lock()
		batches = append(batches, b)
		mu.Unlock()
	})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		c.submit(completion{firstErr: string(rune('a' + i))})
	}
	// Stop writes what is queued, in batches of at most 4, then returns.
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, b := range batches {
		if len(b) > 4 {
			t.Fatalf("batch of %d, want at most 4", len(b))
		}
		for _, x := range b {
			if want := string(rune('a' + n)); x.firstErr != want {
				t.Fatalf("completion %d is %q, want %q", n, x.firstErr, want)
			}
			n++
		}
	}
	if n != 10 {
		t.Fatalf("%d completions written, want 10", n)
	}
}

func TestWorkerPoolService(t *testing.T) {
	var stopping atomic.Bool
	var running atomic.Int32
	started := make(chan struct{}, 3)
	p := newWorkerPool(poolConfig{Workers: 3}, func(ctx context.Context, _ int) {
		running.Add(1)
		defer running.Add(-1)
		started <- struct{}{}
		<-ctx.Done() // work that ignores stopping: only the deadline ends it
	}, func() { stopping.Store(true) })
	startStop(t, p)
	for range 3 {
		<-started
	}
	deadline, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Stop(deadline); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop past the deadline: %v", err)
	}
	if !stopping.Load() || running.Load() != 0 {
		t.Fatalf("after Stop: stopping %v, %d workers running", stopping.Load(), running.Load())
	}
}

// TestWakerStreamOnMongoDB: on a MongoDB replica set the waker follows the
// wake-up document's change stream, and a new job wakes an idle worker
// through it while the token is read only every streamedWakeEvery polls
// (an hour apart here).
func TestWakerStreamOnMongoDB(t *testing.T) {
	dbtest.RequireMongoDB(t)
	st := serviceStore(t)
	ctx := context.Background()
	sel := newSelector(st, time.Hour, time.Hour)
	w := newWaker(st, sel, time.Hour/streamedWakeEvery)
	startStop(t, w)
	deadline := time.Now().Add(30 * time.Second)
	for !w.streaming.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the change stream of the wake-up document did not open")
		}
		time.Sleep(20 * time.Millisecond)
	}
	woken := make(chan struct{})
	go func() {
		sel.wait(ctx)
		close(woken)
	}()
	for sel.idle.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := st.InsertJob(ctx, newQueuedJob()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(30 * time.Second):
		t.Fatal("an idle worker was not woken through the change stream")
	}
}

// TestWakerStreamOnlyOnMongoDB: on FerretDB the waker opens no change
// stream (FerretDB has none) and goes on polling.
func TestWakerStreamOnlyOnMongoDB(t *testing.T) {
	dbtest.RequireFerretDB(t)
	st := serviceStore(t)
	if _, err := st.WatchWake(context.Background()); !errors.Is(err, store.ErrNoChangeStreams) {
		t.Fatalf("WatchWake on FerretDB: %v, want ErrNoChangeStreams", err)
	}
	w := newWaker(st, newSelector(st, time.Hour, time.Hour), 20*time.Millisecond)
	w.passed = make(chan struct{})
	startStop(t, w)
	passes(t, w.passed, 2)
	if w.streaming.Load() {
		t.Fatal("the waker says its change stream is up on FerretDB")
	}
}

func TestWakerService(t *testing.T) {
	st := serviceStore(t)
	ctx := context.Background()
	sel := newSelector(st, time.Hour, time.Hour)
	w := newWaker(st, sel, 20*time.Millisecond)
	w.passed = make(chan struct{})
	startStop(t, w)
	woken := make(chan struct{})
	go func() {
		sel.wait(ctx) // an idle worker: the poll interval is an hour
		close(woken)
	}()
	waitIdle := time.Now().Add(30 * time.Second)
	for sel.idle.Load() == 0 && time.Now().Before(waitIdle) {
		passes(t, w.passed, 1)
	}
	// A new job anywhere changes the wake-up token.
	if err := st.InsertJob(ctx, newQueuedJob()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(30 * time.Second):
		t.Fatal("an idle worker was not woken by a new job")
	}
}

// TestHousekeeperDeepSweepWaits: the hour's reconcile of the whole run
// queue (a read of every job) is left by a housekeeper fresh from its
// server's start when the run queue is whole (a database new to this build),
// taken by one that has run deepSweepAfter, and taken at once on a
// database that may lack copies (written by a build before the run queue).
func TestHousekeeperDeepSweepWaits(t *testing.T) {
	dbtest.RequireFerretDB(t) // the claims strategy keeps a run queue
	ctx := context.Background()
	whole := func(t *testing.T) *store.Store {
		st := serviceStore(t)
		if err := st.MarkNewStateIndex(ctx); err != nil {
			t.Fatal(err)
		}
		return st
	}
	left := func(st *store.Store) bool {
		won, err := st.ClaimDeepSweep(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return won
	}

	fresh := newHousekeeper(housekeeperConfig{Name: "fresh"}, whole(t), quietLog)
	fresh.pass(ctx)
	if !left(fresh.store) {
		t.Errorf("a fresh housekeeper took the hour's reconcile of a whole run queue, want it left")
	}
	old := newHousekeeper(housekeeperConfig{Name: "old"}, whole(t), quietLog)
	old.started = time.Now().Add(-deepSweepAfter)
	old.pass(ctx)
	if left(old.store) {
		t.Errorf("a housekeeper that ran %s left the hour's reconcile, want it taken", deepSweepAfter)
	}
	earlier := newHousekeeper(housekeeperConfig{Name: "earlier"}, serviceStore(t), quietLog)
	earlier.pass(ctx)
	if left(earlier.store) {
		t.Errorf("a fresh housekeeper left the hour's reconcile of a run queue not known whole, want it taken")
	}
}
