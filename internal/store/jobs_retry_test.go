package store_test

import (
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpRetry: a failed sliced job runs again from the step it failed
// in (RetryStep), a failed simple job is queued again from its first
// attempt (Rerun); both lose their failure, server and end.
func TestJobOpRetry(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		at := time.Now().UTC()
		sliced, simple := newSliced(50), newJob(50)
		sliced.State, sliced.Step, sliced.Server = model.StateFailed, model.StepAfter, "s1"
		simple.State, simple.Server, simple.Attempt = model.StateFailed, "s1", 3
		for _, j := range []*model.Job{sliced, simple} {
			j.Failure, j.CompletedAt = failure("boom"), &at
		}
		insertJobs(t, s, sliced, simple)
		got := doOp(t, s, sliced, store.RetryStep())
		if got.Step != model.StepAfter || got.Server != "" || got.Failure != nil || got.CompletedAt != nil {
			t.Errorf("retried sliced job: step %q server %q failure %v completed %v, want after, none, none, none", got.Step, got.Server, got.Failure, got.CompletedAt)
		}
		due := at.Add(-time.Minute)
		got = doOp(t, s, simple, store.Rerun(due))
		if got.Attempt != 0 || !sameTime(&got.RunAt, due) || got.Server != "" || got.Failure != nil || got.CompletedAt != nil {
			t.Errorf("rerun simple job: attempt %d run at %v server %q failure %v completed %v, want 0, %v, none, none, none",
				got.Attempt, got.RunAt, got.Server, got.Failure, got.CompletedAt, due)
		}
		for _, j := range []*model.Job{sliced, simple} {
			if !isRunnable(t, s, j.ID) {
				t.Errorf("the retried %s job is not offered", j.Kind)
			}
		}
	})
}
