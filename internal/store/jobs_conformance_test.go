package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// The job operations' conformance suite: each test runs against both job
// strategies (store.WithJobStrategy) on whatever database the tests use,
// the claims strategy (FerretDB's: a claim insert decides, selections and
// listings read the run queue and the state index) and the conditional
// one (MongoDB's: version-conditioned updates, queries on the jobs
// collection). Both must give the same answers. The conditional strategy
// is not atomic on FerretDB: these tests write from one goroutine.

// forEachJobStrategy runs fn once per job strategy, on new databases.
func forEachJobStrategy(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	for _, strategy := range []struct {
		name   string
		claims bool
	}{{"claims", true}, {"conditional", false}} {
		t.Run(strategy.name, func(t *testing.T) {
			s := open(t).WithJobStrategy(strategy.claims)
			if err := s.MarkNewStateIndex(context.Background()); err != nil {
				t.Fatal(err)
			}
			fn(t, s)
		})
	}
}

func insertJobs(t *testing.T, s *store.Store, jobs ...*model.Job) {
	t.Helper()
	for _, j := range jobs {
		if err := s.InsertJob(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
}

// TestJobOpInsertAndGet: a job reads back as written; an unknown id is
// ErrJobNotFound; a second insert of the same job is not an error (a
// retried insert) and leaves one job.
func TestJobOpInsertAndGet(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		job := newJob(30)
		job.Description = "first"
		insertJobs(t, s, job, job)
		got, err := s.GetJob(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != job.ID || got.State != model.StateQueued || got.Priority != 30 || got.Description != "first" || got.Version != 0 {
			t.Errorf("read back %+v", got)
		}
		if _, err := s.GetJob(ctx, bson.NewObjectID()); !errors.Is(err, model.ErrJobNotFound) {
			t.Errorf("unknown job: %v, want ErrJobNotFound", err)
		}
		all, err := s.ListJobs(ctx, store.JobFilter{})
		if err != nil || len(all) != 1 {
			t.Errorf("after a repeated insert: %d jobs (%v), want 1", len(all), err)
		}
	})
}

// TestJobOpTransition: a transition moves the job one version on and
// returns it as stored; a transition from a version that moved on is
// ErrConflict and changes nothing; an illegal one is an
// *InvalidTransitionError.
func TestJobOpTransition(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		job := newJob(50)
		insertJobs(t, s, job)
		running, err := s.Transition(ctx, job, model.StateRunning, store.Change{Server: new("a"), Attempt: new(1)}, "a")
		if err != nil {
			t.Fatal(err)
		}
		if running.State != model.StateRunning || running.Version != 1 || running.Server != "a" || running.Attempt != 1 {
			t.Errorf("returned %+v", running)
		}
		if _, err := s.Transition(ctx, job, model.StateRunning, store.Change{Server: new("b")}, "b"); !errors.Is(err, model.ErrConflict) {
			t.Errorf("a transition from a stale version: %v, want ErrConflict", err)
		}
		var ite *model.InvalidTransitionError
		if _, err := s.Transition(ctx, running, model.StatePaused, store.Change{}, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Transition(ctx, job, model.StateCompleted, store.Change{}, "a"); !errors.As(err, &ite) {
			t.Errorf("queued to completed: %v, want an InvalidTransitionError", err)
		}
		stored, err := s.GetJob(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Version != 2 || stored.State != model.StatePaused || stored.Server != "a" {
			t.Errorf("stored after a lost and a refused transition: version %d %s server %q, want 2 paused a", stored.Version, stored.State, stored.Server)
		}
		stored, err = s.Transition(ctx, stored, model.StateRunning, store.Change{}, "a")
		if err != nil {
			t.Fatal(err)
		}
		done, err := s.Transition(ctx, stored, model.StateCompleted, store.Change{CompletedAt: new(time.Now()), ClearServer: true}, "a")
		if err != nil || done.State != model.StateCompleted || done.Server != "" || done.CompletedAt == nil {
			t.Errorf("completed: %+v, %v", done, err)
		}
	})
}

// TestJobOpRunnable: the selection offers queued jobs that are due and
// running sliced jobs, by priority then age, of the types asked for; not
// jobs due later, paused, finished or running simple jobs (those are one
// server's); it follows priority changes and deletions.
func TestJobOpRunnable(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, c := newJob(50), newJob(20), newJob(50)
		later := newJob(1)
		later.RunAt = time.Now().Add(time.Hour)
		paused, done, runs := newJob(10), newJob(10), newJob(10)
		sliced := newJob(40)
		sliced.Kind = model.KindSliced
		other := newJob(5)
		other.Type = "other"
		insertJobs(t, s, a, b, c, later, paused, done, runs, sliced, other)
		move := func(j *model.Job, to ...model.State) *model.Job {
			t.Helper()
			for _, st := range to {
				var err error
				if j, err = s.Transition(ctx, j, st, store.Change{}, "test"); err != nil {
					t.Fatal(err)
				}
			}
			return j
		}
		move(paused, model.StatePaused)
		move(done, model.StateRunning, model.StateCompleted)
		move(runs, model.StateRunning)
		sliced = move(sliced, model.StateRunning)
		want := func(step string, types []string, jobs ...*model.Job) {
			t.Helper()
			got, err := s.RunnableJobs(ctx, time.Now(), 50, types)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []bson.ObjectID
			for _, j := range got {
				gotIDs = append(gotIDs, j.ID)
			}
			if !slices.Equal(gotIDs, ids(jobs...)) {
				t.Fatalf("%s: runnable %v, want %v", step, gotIDs, ids(jobs...))
			}
		}
		want("nap jobs", []string{"nap"}, b, sliced, a, c)
		want("every type", nil, other, b, sliced, a, c)
		c, err := s.Update(ctx, c, store.Change{Priority: new(15)}, "test")
		if err != nil {
			t.Fatal(err)
		}
		want("c raised", []string{"nap"}, c, b, sliced, a)
		if err := s.DeleteJob(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		want("b deleted", []string{"nap"}, c, sliced, a)
		got, err := s.RunnableJobs(ctx, time.Now().Add(2*time.Hour), 1, []string{"nap"})
		if err != nil || len(got) != 1 || got[0].ID != later.ID {
			t.Fatalf("in two hours, limit 1: %v (%v), want the delayed priority-1 job", got, err)
		}
	})
}

// TestJobOpList: listings filter by state and type, order by priority then
// age, and honour limit and skip.
func TestJobOpList(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var jobs []*model.Job
		for i := range 6 {
			j := newJob(10 * (3 - i%3)) // 30, 20, 10, 30, 20, 10
			jobs = append(jobs, j)
		}
		jobs[5].Type = "other"
		insertJobs(t, s, jobs...)
		if _, err := s.Transition(ctx, jobs[0], model.StatePaused, store.Change{}, "test"); err != nil {
			t.Fatal(err)
		}
		list := func(f store.JobFilter) []bson.ObjectID {
			t.Helper()
			got, err := s.ListJobs(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []bson.ObjectID
			for _, j := range got {
				out = append(out, j.ID)
			}
			return out
		}
		// Priority 10: jobs 2, 5; 20: 1, 4; 30: 0, 3.
		for _, c := range []struct {
			name string
			f    store.JobFilter
			want []*model.Job
		}{
			{"all", store.JobFilter{}, []*model.Job{jobs[2], jobs[5], jobs[1], jobs[4], jobs[0], jobs[3]}},
			{"all, limit 3", store.JobFilter{Limit: 3}, []*model.Job{jobs[2], jobs[5], jobs[1]}},
			{"queued", store.JobFilter{States: []model.State{model.StateQueued}}, []*model.Job{jobs[2], jobs[5], jobs[1], jobs[4], jobs[3]}},
			{"queued, limit 10", store.JobFilter{States: []model.State{model.StateQueued}, Limit: 10}, []*model.Job{jobs[2], jobs[5], jobs[1], jobs[4], jobs[3]}},
			{"paused, limit 10", store.JobFilter{States: []model.State{model.StatePaused}, Limit: 10}, []*model.Job{jobs[0]}},
			{"type other, limit 10", store.JobFilter{Type: "other", Limit: 10}, []*model.Job{jobs[5]}},
			{"skip 2, limit 2", store.JobFilter{Skip: 2, Limit: 2}, []*model.Job{jobs[1], jobs[4]}},
		} {
			if got := list(c.f); !slices.Equal(got, ids(c.want...)) {
				t.Errorf("%s: %v, want %v", c.name, got, ids(c.want...))
			}
		}
	})
}

// TestJobOpRunningAndDelete: the running jobs and a server's jobs follow
// the transitions; a deleted job is gone from reads, listings and the
// selection, and deleting it again is not an error.
func TestJobOpRunningAndDelete(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, c := newJob(50), newJob(50), newJob(50)
		insertJobs(t, s, a, b, c)
		a, err := s.Transition(ctx, a, model.StateRunning, store.Change{Server: new("s1")}, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Transition(ctx, b, model.StateRunning, store.Change{Server: new("s2")}, "s2"); err != nil {
			t.Fatal(err)
		}
		running, err := s.RunningJobs(ctx)
		if err != nil || len(running) != 2 {
			t.Fatalf("running jobs: %d (%v), want 2", len(running), err)
		}
		mine, err := s.JobsOfServer(ctx, "s1")
		if err != nil || len(mine) != 1 || mine[0].ID != a.ID {
			t.Fatalf("jobs of s1: %v (%v), want job a", mine, err)
		}
		if _, err := s.Transition(ctx, a, model.StateQueued, store.Change{ClearServer: true}, "rescuer"); err != nil {
			t.Fatal(err)
		}
		if mine, err := s.JobsOfServer(ctx, "s1"); err != nil || len(mine) != 0 {
			t.Fatalf("jobs of s1 after the requeue: %v (%v), want none", mine, err)
		}
		for range 2 {
			if err := s.DeleteJob(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.GetJob(ctx, c.ID); !errors.Is(err, model.ErrJobNotFound) {
			t.Errorf("a deleted job reads back: %v", err)
		}
		for _, limit := range []int64{0, 10} {
			all, err := s.ListJobs(ctx, store.JobFilter{Limit: limit})
			if err != nil || slices.ContainsFunc(all, func(j model.Job) bool { return j.ID == c.ID }) || len(all) != 2 {
				t.Errorf("listing (limit %d) after the delete: %d jobs (%v), want a and b", limit, len(all), err)
			}
		}
		got, err := s.RunnableJobs(ctx, time.Now(), 10, nil)
		if err != nil || len(got) != 1 || got[0].ID != a.ID {
			t.Errorf("runnable after the delete: %v (%v), want the requeued a", got, err)
		}
	})
}

// TestJobOpBulkInsert: jobs written together read, list and select like
// jobs written one by one.
func TestJobOpBulkInsert(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var jobs []*model.Job
		for i := range 40 {
			jobs = append(jobs, newJob(1+i%4))
		}
		n, err := s.InsertJobs(ctx, jobs)
		if err != nil || n != len(jobs) {
			t.Fatalf("inserted %d (%v), want %d", n, err, len(jobs))
		}
		got, err := s.RunnableJobs(ctx, time.Now(), 100, nil)
		if err != nil || len(got) != len(jobs) {
			t.Fatalf("runnable: %d (%v), want %d", len(got), err, len(jobs))
		}
		for i := 1; i < len(got); i++ {
			if got[i].Priority < got[i-1].Priority {
				t.Fatalf("selection out of priority order at %d: %d after %d", i, got[i].Priority, got[i-1].Priority)
			}
		}
		listed, err := s.ListJobs(ctx, store.JobFilter{States: []model.State{model.StateQueued}, Limit: 100})
		if err != nil || len(listed) != len(jobs) {
			t.Fatalf("listed: %d (%v), want %d", len(listed), err, len(jobs))
		}
	})
}
