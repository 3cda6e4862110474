package store_test

import (
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpEdit: an edit changes the description and the worker cap it is
// given and leaves those it is not given, keeping the job's state.
func TestJobOpEdit(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newSliced(50)
		job.Description = "old"
		insertJobs(t, s, job)
		got := doOp(t, s, job, store.Edit(new("new"), new(3)))
		if got.Description != "new" || got.MaxWorkers != 3 || got.State != model.StateQueued {
			t.Errorf("edited: %q, %d workers, %s; want new, 3, queued", got.Description, got.MaxWorkers, got.State)
		}
		got = doOp(t, s, got, store.Edit(nil, new(0)))
		if got.Description != "new" || got.MaxWorkers != 0 {
			t.Errorf("edited the cap only: %q, %d workers; want new, 0", got.Description, got.MaxWorkers)
		}
	})
}
