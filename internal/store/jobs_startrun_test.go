package store_test

import (
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpStartRun: a queued simple job's run starts on the server at the
// attempt given, the last run's failure cleared; the job leaves the
// selection and is the server's.
func TestJobOpStartRun(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newJob(50)
		job.Attempt, job.Failure = 1, failure("the first run failed")
		insertJobs(t, s, job)
		at := time.Now().UTC()
		got := doOp(t, s, job, store.StartRun("s1", 2, at))
		if got.Server != "s1" || got.Attempt != 2 || !sameTime(got.StartedAt, at) || got.Failure != nil {
			t.Errorf("started: server %q attempt %d started %v failure %v, want s1, 2, %v, none", got.Server, got.Attempt, got.StartedAt, got.Failure, at)
		}
		if isRunnable(t, s, job.ID) {
			t.Error("a running simple job is still offered")
		}
		if mine, err := s.JobsOfServer(t.Context(), "s1"); err != nil || len(mine) != 1 || mine[0].ID != job.ID {
			t.Errorf("jobs of s1: %v (%v), want the started job", mine, err)
		}
	})
}
