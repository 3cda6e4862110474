package store_test

import (
	"context"
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpRunning: the running jobs and a server's jobs follow the
// transitions.
func TestJobOpRunning(t *testing.T) {
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
		if running, err := s.RunningJobs(ctx); err != nil || len(running) != 1 || running[0].ID != b.ID {
			t.Fatalf("running jobs after the requeue: %v (%v), want b", running, err)
		}
	})
}
