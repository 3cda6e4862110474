package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpDelete: a deleted job, queued or running, is gone from reads,
// listings, the running jobs and the selection, and deleting it again is
// not an error.
func TestJobOpDelete(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, c := newJob(50), newJob(50), newJob(50)
		insertJobs(t, s, a, b, c)
		b, err := s.Transition(ctx, b, model.StateRunning, store.Change{Server: new("s1")}, "s1")
		if err != nil {
			t.Fatal(err)
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
			t.Errorf("runnable after the delete: %v (%v), want a", got, err)
		}
		if err := s.DeleteJob(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		if running, err := s.RunningJobs(ctx); err != nil || len(running) != 0 {
			t.Errorf("running jobs after deleting the running one: %v (%v), want none", running, err)
		}
		if mine, err := s.JobsOfServer(ctx, "s1"); err != nil || len(mine) != 0 {
			t.Errorf("jobs of s1 after deleting its job: %v (%v), want none", mine, err)
		}
	})
}

// TestJobOpDeleteAt: a deletion at a version and a transition from that
// version are decided alike: of the two, the first wins and the other gets
// ErrConflict (a rerun of a job that retention found expired is never
// reported done and then deleted).
func TestJobOpDeleteAt(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		kept, gone := newJob(50), newJob(50)
		insertJobs(t, s, kept, gone)
		// The transition first: the deletion from the version read before
		// it conflicts, and the job stays as the transition left it.
		paused, err := s.Transition(ctx, kept, model.StatePaused, store.Change{}, "client")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteJobAt(ctx, kept.ID, kept.Version); !errors.Is(err, model.ErrConflict) {
			t.Fatalf("deleting at the version before a transition: %v, want ErrConflict", err)
		}
		if got, err := s.GetJob(ctx, kept.ID); err != nil || got.Version != paused.Version || got.State != model.StatePaused {
			t.Fatalf("job after a conflicting deletion: %+v (%v), want it paused at version %d", got, err, paused.Version)
		}
		// The deletion first: deleting again finds nothing to do and leaves
		// no claim behind; a transition from the same version conflicts.
		if err := s.DeleteJobAt(ctx, gone.ID, gone.Version); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetJob(ctx, gone.ID); !errors.Is(err, model.ErrJobNotFound) {
			t.Fatalf("job deleted at its version reads back: %v", err)
		}
		if err := s.DeleteJobAt(ctx, gone.ID, gone.Version); err != nil {
			t.Fatalf("deleting a deleted job: %v", err)
		}
		if by, _, pending, err := s.PendingTransition(ctx, gone); err != nil || pending {
			t.Fatalf("claim of a deleted job left by %q (%v)", by, err)
		}
		if _, err := s.Transition(ctx, gone, model.StatePaused, store.Change{}, "client"); !errors.Is(err, model.ErrConflict) && !errors.Is(err, model.ErrJobNotFound) {
			t.Fatalf("a transition from the deleted version: %v, want ErrConflict or ErrJobNotFound", err)
		}
		if got, err := s.RunnableJobs(ctx, time.Now(), 10, nil); err != nil || len(got) != 0 {
			t.Fatalf("runnable after the deletion: %d jobs (%v), want none", len(got), err)
		}
	})
}
