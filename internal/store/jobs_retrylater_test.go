package store_test

import (
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpRetryLater: a failed run with retries left queues the simple
// job again, due later, no server's, with the run's failure and
// statistics; it is offered only once due.
func TestJobOpRetryLater(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newJob(50)
		job.State, job.Server = model.StateRunning, "s1"
		insertJobs(t, s, job)
		due := time.Now().Add(time.Hour).UTC()
		got := doOp(t, s, job, store.RetryLater(failure("boom"), due, map[string]int64{"seen": 2}))
		if got.Server != "" || !sameTime(&got.RunAt, due) || got.Failure == nil || got.Failure.Message != "boom" || got.Statistics["seen"] != 2 {
			t.Errorf("retry later: server %q run at %v failure %v statistics %v, want none, %v, boom, seen 2", got.Server, got.RunAt, got.Failure, got.Statistics, due)
		}
		if isRunnable(t, s, job.ID) {
			t.Error("offered before it is due")
		}
		if !isRunnable(t, s, job.ID, due.Add(time.Minute)) {
			t.Error("not offered once due")
		}
	})
}
