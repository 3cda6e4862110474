package store_test

import (
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpRetrySlices: a sliced job whose slices had failed records goes
// back from its after step to processing, at the next slice retry attempt,
// held by no server.
func TestJobOpRetrySlices(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newSliced(50)
		job.State, job.Step, job.Server, job.Attempt = model.StateRunning, model.StepAfter, "s1", 1
		insertJobs(t, s, job)
		got := doOp(t, s, job, store.RetrySlices(2))
		if got.Step != model.StepProcessing || got.Attempt != 2 || got.Server != "" {
			t.Errorf("retrying slices: step %q attempt %d server %q, want processing, 2, none", got.Step, got.Attempt, got.Server)
		}
		if !isRunnable(t, s, job.ID) {
			t.Error("the retried job is not offered")
		}
	})
}
