package store_test

import (
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpAbort: a live job is aborted with its reason and end time, or
// with none (an operator's abort); it leaves the selection.
func TestJobOpAbort(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		expired, paused := newJob(50), newJob(50)
		paused.State = model.StatePaused
		insertJobs(t, s, expired, paused)
		at := time.Now().UTC()
		got := doOp(t, s, expired, store.Abort(failure("expired"), at))
		if got.Failure == nil || got.Failure.Message != "expired" || !sameTime(got.CompletedAt, at) {
			t.Errorf("aborted: failure %v completed %v, want expired, %v", got.Failure, got.CompletedAt, at)
		}
		if isRunnable(t, s, expired.ID) {
			t.Error("an aborted job is offered")
		}
		if got := doOp(t, s, paused, store.Abort(nil, at)); got.Failure != nil || !sameTime(got.CompletedAt, at) {
			t.Errorf("aborted by an operator: failure %v completed %v, want none, %v", got.Failure, got.CompletedAt, at)
		}
		if !listed(t, s, model.StateAborted, paused.ID) {
			t.Error("the aborted job is not listed as aborted")
		}
	})
}
