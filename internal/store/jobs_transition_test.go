package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

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
