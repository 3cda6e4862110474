package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

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
