package store_test

import (
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpSetPriority: a new priority keeps the job's state and moves it
// in the selection and in listings.
func TestJobOpSetPriority(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		first, second := newJob(50), newJob(50)
		insertJobs(t, s, first, second)
		got := doOp(t, s, second, store.SetPriority(5))
		if got.Priority != 5 || got.State != model.StateQueued {
			t.Errorf("priority %d state %s, want 5 queued", got.Priority, got.State)
		}
		runnable, err := s.RunnableJobs(t.Context(), time.Now(), 10, nil)
		if err != nil || len(runnable) != 2 || runnable[0].ID != second.ID || runnable[0].Priority != 5 {
			t.Errorf("selection after the change: %v (%v), want the raised job first", runnable, err)
		}
		listing, err := s.ListJobs(t.Context(), store.JobFilter{Limit: 10})
		if err != nil || len(listing) != 2 || listing[0].ID != second.ID {
			t.Errorf("listing after the change: %v (%v), want the raised job first", listing, err)
		}
	})
}
