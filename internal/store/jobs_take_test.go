package store_test

import (
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpTake: a queued job, or a running sliced job's step that nobody
// holds, becomes running held by the server; a sliced job keeps its step.
func TestJobOpTake(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		simple, sliced := newJob(50), newSliced(50)
		sliced.State, sliced.Step = model.StateRunning, model.StepAfter
		insertJobs(t, s, simple, sliced)
		if got := doOp(t, s, simple, store.Take("s1")); got.Server != "s1" {
			t.Errorf("taken queued job: server %q, want s1", got.Server)
		}
		if got := doOp(t, s, sliced, store.Take("s2")); got.Server != "s2" || got.Step != model.StepAfter {
			t.Errorf("taken after step: server %q step %q, want s2 at the after step", got.Server, got.Step)
		}
		if mine, err := s.JobsOfServer(t.Context(), "s2"); err != nil || len(mine) != 1 || mine[0].ID != sliced.ID {
			t.Errorf("jobs of s2: %v (%v), want the sliced job", mine, err)
		}
	})
}
