package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpStartRun: a queued simple job's run starts on the server at the
// attempt given, the last run's failure cleared; the job leaves the
// selection and is the server's.
func TestJobOpStartRun(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newJob(50)
		job.Attempt, job.Failure = 1, failure("the first run failed")
		insertJobs(t, s, job)
		at := time.Now().UTC()
		got := doOp(t, s, job, store.StartRun("s1", 2, at))
		if got.Server != "s1" || got.Attempt != 2 || !sameTime(got.StartedAt, at) || got.Failure != nil {
			t.Errorf("started: server %q attempt %d started %v failure %v, want s1, 2, %v, none", got.Server, got.Attempt, got.StartedAt, got.Failure, at)
		}
		if isRunnable(t, s, job.ID) {
			t.Error("a running simple job is still offered")
		}
		if mine, err := s.JobsOfServer(t.Context(), "s1"); err != nil || len(mine) != 1 || mine[0].ID != job.ID {
			t.Errorf("jobs of s1: %v (%v), want the started job", mine, err)
		}
	})
}

// TestJobOpStartRunHeld: DoHeld starts a run as Do does, though the claims
// strategy may hold the start back (heldstart_internal_test.go): the job
// returned is the job started, the same start from the version the job had
// is a conflict, and the run's next op, made from the job returned, leaves
// the job stored two versions on with the start's fields. An op that
// starts no run is not held: it is Do.
func TestJobOpStartRunHeld(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		job := newJob(50)
		insertJobs(t, s, job)
		at := time.Now().UTC()
		started, err := s.DoHeld(ctx, job, store.StartRun("s1", 1, at), "s1")
		if err != nil {
			t.Fatal(err)
		}
		if started.State != model.StateRunning || started.Version != 1 || started.Server != "s1" || started.Attempt != 1 {
			t.Fatalf("DoHeld returned %+v, want running at version 1 on s1, attempt 1", started)
		}
		if _, err := s.DoHeld(ctx, job, store.StartRun("s2", 1, at), "s2"); !errors.Is(err, model.ErrConflict) {
			t.Errorf("the start again from version 0: %v, want ErrConflict", err)
		}
		done, err := s.Do(ctx, started, store.Complete(time.Now().UTC(), store.Counts{}), "s1")
		if err != nil {
			t.Fatal(err)
		}
		stored, err := s.GetJob(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.State != model.StateCompleted || stored.Version != 2 || stored.Server != "s1" || stored.Attempt != 1 || !sameTime(stored.StartedAt, at) {
			t.Errorf("stored after the run: %+v, want completed at version 2 on s1, attempt 1, started %v", stored, at)
		}
		if !reflect.DeepEqual(done, stored) {
			t.Errorf("the end returned\n%+v\nthe store holds\n%+v", done, stored)
		}
		if isRunnable(t, s, job.ID) {
			t.Error("a completed job is offered")
		}

		other := newJob(50)
		insertJobs(t, s, other)
		got, err := s.DoHeld(ctx, other, store.SetPriority(7), "client")
		if err != nil {
			t.Fatal(err)
		}
		if stored, err := s.GetJob(ctx, other.ID); err != nil || !reflect.DeepEqual(got, stored) || stored.Priority != 7 || stored.Version != 1 {
			t.Errorf("DoHeld of an update returned\n%+v\nthe store holds\n%+v (%v), want priority 7 at version 1", got, stored, err)
		}
	})
}
