package store_test

import (
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpSetRunAt: a queued job due later becomes due now, keeping its
// state.
func TestJobOpSetRunAt(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newJob(50)
		job.RunAt = time.Now().Add(time.Hour).UTC()
		insertJobs(t, s, job)
		if isRunnable(t, s, job.ID) {
			t.Fatal("offered before it is due")
		}
		now := time.Now().UTC()
		got := doOp(t, s, job, store.SetRunAt(now))
		if !sameTime(&got.RunAt, now) || got.State != model.StateQueued {
			t.Errorf("run at %v state %s, want %v queued", got.RunAt, got.State, now)
		}
		if !isRunnable(t, s, job.ID, now.Add(time.Second)) {
			t.Error("not offered once due")
		}
	})
}
