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
