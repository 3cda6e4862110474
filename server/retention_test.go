package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/clientjob"
	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ at atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.set(t)
	return c
}

func (c *fakeClock) set(t time.Time)     { c.at.Store(t.UnixNano()) }
func (c *fakeClock) now() time.Time      { return time.Unix(0, c.at.Load()) }
func (c *fakeClock) add(d time.Duration) { c.at.Add(int64(d)) }

// retentionClient returns a client on a database of the test's own with
// reg's job types, its store and the name of its jobs database.
func retentionClient(t *testing.T, reg *rocketjob.Registry) (*rocketjob.Client, *store.Store, string) {
	t.Helper()
	jobs, work := dbtest.DBNames(t)
	c, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, clientstore.Of(c), jobs
}

// finish moves a new job through running to state st, ending it now.
func finish(t *testing.T, st *store.Store, job *model.Job, to model.State) *model.Job {
	t.Helper()
	ctx := context.Background()
	job, err := st.Transition(ctx, job, model.StateRunning, store.Change{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if to == model.StateRunning {
		return job
	}
	if to == model.StatePaused {
		job, err = st.Transition(ctx, job, model.StatePaused, store.Change{}, "test")
	} else {
		job, err = st.Transition(ctx, job, to, store.Change{CompletedAt: new(time.Now())}, "test")
	}
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// TestRetainerService: finished jobs older than their retention are deleted
// with their slice collections, state index entries and claims; newer ones
// and live ones stay; a type's own retention beats the cluster's.
func TestRetainerService(t *testing.T) {
	ctx := context.Background()
	reg := rocketjob.NewRegistry()
	noop := func(context.Context, *rocketjob.Job, struct{}) error { return nil }
	for _, typ := range []struct {
		name string
		opts *rocketjob.TypeOptions
	}{
		{"plain", nil},
		{"brief", &rocketjob.TypeOptions{Retention: rocketjob.Retention{Completed: time.Hour}}},
		{"audit", &rocketjob.TypeOptions{Retention: rocketjob.Retention{Completed: rocketjob.KeepForever}}},
	} {
		if err := rocketjob.Register(reg, typ.name, noop, typ.opts); err != nil {
			t.Fatal(err)
		}
	}
	same := func(_ context.Context, s string) (string, error) { return s, nil }
	if err := sliced.RegisterLines(reg, "lines", same, nil); err != nil {
		t.Fatal(err)
	}
	// A sliced type destroyed on completion, whose upload kept the job:
	// the upload's word stands, the job is kept like any other.
	if err := sliced.RegisterLines(reg, "transient", same, &sliced.Options{DestroyOnComplete: true}); err != nil {
		t.Fatal(err)
	}
	client, st, _ := retentionClient(t, reg)

	type want struct {
		job  *model.Job
		gone time.Duration // deleted once the clock is this far on (0: never)
	}
	var jobs []want
	add := func(typ string, to model.State, gone time.Duration) {
		j, err := client.Enqueue(ctx, typ, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, want{finish(t, st, (*model.Job)(j), to), gone})
	}
	day := 24 * time.Hour
	add("plain", model.StateCompleted, 8*day)
	add("plain", model.StateFailed, 31*day)
	add("plain", model.StateAborted, 31*day)
	add("brief", model.StateCompleted, 2*time.Hour)
	add("brief", model.StateFailed, 31*day) // only completed is overridden
	add("audit", model.StateCompleted, 0)
	add("plain", model.StateRunning, 0)
	add("plain", model.StatePaused, 0)
	queued, err := client.Enqueue(ctx, "plain", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	jobs = append(jobs, want{(*model.Job)(queued), 0})
	// A completed sliced job keeps its output until it is deleted.
	up, err := sliced.Upload(ctx, client, "lines", strings.NewReader("a\nb\nc\n"), &sliced.UploadOptions{SliceSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	jobs = append(jobs, want{finish(t, st, (*model.Job)(up), model.StateCompleted), 8 * day})
	keep := false
	upKept, err := sliced.Upload(ctx, client, "transient", strings.NewReader("a\n"), &sliced.UploadOptions{DestroyOnComplete: &keep})
	if err != nil {
		t.Fatal(err)
	}
	jobs = append(jobs, want{finish(t, st, (*model.Job)(upKept), model.StateCompleted), 8 * day})
	slicesOf := func(id bson.ObjectID) []string {
		names, err := st.WorkCollections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(names, func(n string) bool { return !strings.Contains(n, id.Hex()) })
	}
	if len(slicesOf(up.ID)) == 0 {
		t.Fatal("the uploaded job has no slice collections")
	}

	start := time.Now()
	clock := newFakeClock(start)
	r := newRetainer(retainerConfig{Interval: 50 * time.Millisecond, Now: clock.now}, st, quietLog)
	r.types = func() []*rocketjob.TypeSpec {
		var out []*rocketjob.TypeSpec
		for _, n := range reg.Names() {
			spec, _ := reg.Lookup(n)
			out = append(out, spec)
		}
		return out
	}
	r.destroy = func(ctx context.Context, job *model.Job) error { return clientjob.DestroyAt(ctx, client, job) }
	r.swept = make(chan struct{})
	startStop(t, r)

	for _, at := range []time.Duration{0, 2 * time.Hour, 8 * day, 31 * day, 365 * day} {
		clock.set(start.Add(at + time.Minute))
		passes(t, r.swept, 2) // the first may have read the clock before it moved
		for _, w := range jobs {
			_, err := st.GetJob(ctx, w.job.ID)
			gone := err != nil
			if wantGone := w.gone != 0 && w.gone <= at+time.Minute; gone != wantGone {
				t.Errorf("at +%s: %s job %s (%s): gone=%v (%v), want %v", at, w.job.Type, w.job.ID.Hex(), w.job.State, gone, err, wantGone)
			}
		}
	}
	if names := slicesOf(up.ID); len(names) != 0 {
		t.Errorf("slice collections of the deleted sliced job: %v", names)
	}
	// The state index lists only what is left (its entries went with the jobs).
	left, err := st.ListJobs(ctx, store.JobFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 4 {
		t.Errorf("%d jobs listed after retention, want 4 (audit completed, running, paused, queued)", len(left))
	}
}

// TestRetentionBoundsACronChainOverASimulatedWeek: a cron job fires every
// second on a real server while the server's clock (Config.Now, which ages
// finished jobs) runs through a week. The chain's scheduling uses the wall
// clock, so the week's finished instances are simulated: every 6 simulated
// hours the instances that ended in them are written to the store (a
// sample, ticks a simulated 20 minutes apart, not the week's 604,800), with
// the ids, run times and end times the chain gives them. With the type's
// retention at one day, the jobs collection stays bounded by about one
// day's instances, and the real chain keeps running throughout.
//
// (A sample, because the store deletes a job in several writes: the
// week's 604,800 instances would take the test hours. The bound does not
// depend on the density: one day's instances.)
func TestRetentionBoundsACronChainOverASimulatedWeek(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated week")
	}
	ctx := context.Background()
	reg := rocketjob.NewRegistry()
	var ran atomic.Int32
	const every = "* * * * * *"
	err := rocketjob.Register(reg, "tick", func(context.Context, *rocketjob.Job, struct{}) error { ran.Add(1); return nil },
		&rocketjob.TypeOptions{Retention: rocketjob.Retention{Completed: 24 * time.Hour, Failed: 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	client, st, jobsDB := retentionClient(t, reg)
	if _, err := client.Enqueue(ctx, "tick", nil, &rocketjob.EnqueueOptions{Cron: every}); err != nil {
		t.Fatal(err)
	}

	start := time.Now().UTC().Truncate(time.Second)
	clock := newFakeClock(start)
	srv := runRetentionServer(t, client, clock.now)

	const (
		step  = 6 * time.Hour    // simulated time between looks
		tick  = 20 * time.Minute // simulated ticks a sample is made of
		keep  = 24 * time.Hour   // the type's retention
		steps = int(7 * 24 * time.Hour / step)
	)
	perStep := int(step / tick)
	simStart := start.Add(time.Hour) // the simulated instances run from here on
	// Kept of the simulated instances: those that ended within the
	// retention (the oldest of them a tick short of it).
	bound := int(keep/tick) + 1
	maxJobs, maxSim, simulated := 0, 0, 0
	for s := range steps {
		from := simStart.Add(time.Duration(s) * step)
		var batch []*model.Job
		for k := range perStep {
			runAt := from.Add(time.Duration(k) * tick)
			ended := runAt.Add(50 * time.Millisecond)
			state := model.StateCompleted
			if k%10 == 9 {
				state = model.StateFailed
			}
			batch = append(batch, &model.Job{
				ID: model.CronJobID("tick", every, runAt), Type: "tick", Kind: model.KindSimple, State: state,
				Priority: rocketjob.DefaultPriority, Cron: every, RunAt: runAt, CreatedAt: runAt.Add(-time.Second),
				StartedAt: &runAt, CompletedAt: &ended, Version: 2, Attempt: 1,
			})
		}
		if _, err := st.InsertJobs(ctx, batch); err != nil {
			t.Fatal(err)
		}
		simulated += len(batch)
		clock.set(from.Add(step))
		// Retention catches up within a few passes (a pass is bounded in
		// time and may have read the clock before it moved); on a busy
		// machine it may take more than two, so wait for the bound pass
		// by pass rather than after a fixed number.
		var all []model.Job
		var sim, realEnded int
		var stale string
		for pass := 0; ; pass++ {
			passes(t, srv.retainer.swept, 1)
			var err error
			if all, err = st.ListJobs(ctx, store.JobFilter{}); err != nil {
				t.Fatal(err)
			}
			sim, realEnded, stale = 0, 0, ""
			for _, j := range all {
				switch {
				case !j.RunAt.Before(simStart):
					sim++
					if age := clock.now().Sub(*j.CompletedAt); age > keep {
						stale = fmt.Sprintf("a %s instance that ended %s before is kept", j.State, age)
					}
				case !j.State.Live():
					realEnded++
				}
			}
			// Once the clock is a day on, the real instances are deleted
			// as they end: a few at most are waiting for the next pass.
			realOK := clock.now().Sub(start) <= keep+time.Minute || realEnded <= 5
			if stale == "" && realOK {
				break
			}
			if pass == 20 {
				t.Fatalf("after %s simulated and %d retention passes: %s; %d real instances kept", time.Duration(s+1)*step, pass+1, stale, realEnded)
			}
		}
		maxJobs, maxSim = max(maxJobs, len(all)), max(maxSim, sim)
		if sim > bound {
			t.Fatalf("after %s simulated: %d simulated instances kept, want at most %d", time.Duration(s+1)*step, sim, bound)
		}
	}
	// The chain's successor records (one per ended real instance) go with
	// the instances.
	records, err := dbtest.Client(t).Database(jobsDB).Collection("cron_successors").CountDocuments(ctx, bson.D{})
	if err != nil || records > 8 {
		t.Fatalf("%d cron successor records after the week (%v), want a few", records, err)
	}
	// One chain: an instance enqueues its successor before it ends, so
	// while one runs two are live (it and the queued next); a forked chain
	// shows two queued instances. Look until the chain is between two
	// instances (most of each second), checking every look.
	waitFor(t, "the cron chain between two instances", func() bool {
		live, err := st.ListJobs(ctx, store.JobFilter{Type: "tick", States: []model.State{model.StateQueued, model.StateRunning}})
		if err != nil {
			t.Fatal(err)
		}
		var queued, running []model.Job
		for _, j := range live {
			if j.State == model.StateQueued {
				// A short run's start is held (store: held starts): the
				// instance is stored queued while it runs, its start
				// claimed. It counts as the running one.
				if _, _, started, err := st.PendingTransition(ctx, &j); err != nil {
					t.Fatal(err)
				} else if started {
					running = append(running, j)
					continue
				}
				queued = append(queued, j)
			} else {
				running = append(running, j)
			}
		}
		if len(queued) > 1 || len(running) > 1 || len(live) == 0 {
			t.Fatalf("the chain: %d queued and %d running instances, want one chain", len(queued), len(running))
		}
		if len(running) == 1 && len(queued) == 1 && !queued[0].RunAt.After(running[0].RunAt) {
			t.Fatalf("the chain: the queued instance (%s) is not after the running one (%s)", queued[0].RunAt, running[0].RunAt)
		}
		return len(live) == 1
	})
	if ran.Load() < 2 {
		t.Fatalf("the chain ran %d times, want at least 2", ran.Load())
	}
	t.Logf("simulated %d finished instances over a week: the jobs collection held at most %d jobs, %d of them simulated (bound %d); the real chain ran %d times",
		simulated, maxJobs, maxSim, bound, ran.Load())
}

// runRetentionServer runs a server on client with a fast retention pass
// and the clock now until the test ends.
func runRetentionServer(t *testing.T, client *rocketjob.Client, now func() time.Time) *Server {
	t.Helper()
	srv, err := New(client, &Config{
		Name: "retention", Workers: 2, PollInterval: 20 * time.Millisecond, ReCheck: 200 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, DeadAfter: time.Second, ShutdownTimeout: 5 * time.Second,
		Logger: quietLog, Now: now, RetentionInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.retainer.swept = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return srv
}

// TestDestroyOnCompleteSimpleJob: a simple job of a type registered with
// DestroyOnComplete is deleted at the first retention pass after it
// completes; a failed one is kept, as are the jobs of other types.
func TestDestroyOnCompleteSimpleJob(t *testing.T) {
	ctx := context.Background()
	reg := rocketjob.NewRegistry()
	type args struct{ Fail bool }
	work := func(_ context.Context, _ *rocketjob.Job, a args) error {
		if a.Fail {
			return errors.New("failed on purpose")
		}
		return nil
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rocketjob.Register(reg, "ephemeral", work, &rocketjob.TypeOptions{DestroyOnComplete: true}))
	must(rocketjob.Register(reg, "kept", work, nil))
	client, st, _ := retentionClient(t, reg)
	gone, err := client.Enqueue(ctx, "ephemeral", args{}, nil)
	must(err)
	failed, err := client.Enqueue(ctx, "ephemeral", args{Fail: true}, nil)
	must(err)
	kept, err := client.Enqueue(ctx, "kept", args{}, nil)
	must(err)
	srv := runRetentionServer(t, client, nil)
	deadline := time.After(30 * time.Second)
	for {
		_, err := st.GetJob(ctx, gone.ID)
		if errors.Is(err, model.ErrJobNotFound) {
			break
		}
		select {
		case <-srv.retainer.swept:
		case <-deadline:
			t.Fatalf("the completed job of a destroy-on-complete type is still there: %v", err)
		}
	}
	for _, j := range []*rocketjob.Job{failed, kept} {
		got, err := client.Wait(ctx, j.ID.Hex(), 20*time.Millisecond)
		if err != nil {
			t.Fatalf("job %s (%s): %v", j.ID.Hex(), j.Type, err)
		}
		passes(t, srv.retainer.swept, 2)
		if _, err := st.GetJob(ctx, j.ID); err != nil {
			t.Errorf("%s %s job deleted: %v", got.State, got.Type, err)
		}
	}
}

// TestRetentionLosesToARerun: retention deletes the job it found expired
// at the version it found it (DeleteJobAt: decided by that version's
// claim, so a rerun between its read and its deletion can no longer be
// reported done and then deleted; TestJobOpDeleteAt checks both orders).
// A client's rerun after the find comes first: the job stays, queued, and
// the retainer reports nothing deleted.
func TestRetentionLosesToARerun(t *testing.T) {
	ctx := context.Background()
	reg := rocketjob.NewRegistry()
	if err := rocketjob.Register(reg, "plain", func(context.Context, *rocketjob.Job, struct{}) error { return nil }, nil); err != nil {
		t.Fatal(err)
	}
	client, st, _ := retentionClient(t, reg)
	r := newRetainer(retainerConfig{}, st, quietLog)
	r.destroy = func(ctx context.Context, job *model.Job) error { return clientjob.DestroyAt(ctx, client, job) }
	enqueue := func() *model.Job {
		j, err := client.Enqueue(ctx, "plain", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return finish(t, st, (*model.Job)(j), model.StateFailed)
	}
	found := enqueue() // as retention read it
	if _, err := client.Retry(ctx, found.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	if r.delete(ctx, found) {
		t.Fatal("retention deleted a job rerun after it was found")
	}
	if got, err := st.GetJob(ctx, found.ID); err != nil || got.State != model.StateQueued {
		t.Fatalf("the rerun job after retention's pass: %+v (%v), want it queued", got, err)
	}
	// Unchanged since it was found: deleted.
	expired := enqueue()
	if !r.delete(ctx, expired) {
		t.Fatal("retention did not delete a job unchanged since it was found")
	}
	if _, err := st.GetJob(ctx, expired.ID); !errors.Is(err, model.ErrJobNotFound) {
		t.Fatalf("the expired job after retention's pass: %v, want it gone", err)
	}
}
