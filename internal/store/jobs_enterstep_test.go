package store_test

import (
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpEnterStep: a queued sliced job enters its before step on a
// server, starting; its after step, on another server, keeps that start.
func TestJobOpEnterStep(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newSliced(50)
		insertJobs(t, s, job)
		at := time.Now().UTC()
		before := doOp(t, s, job, store.EnterStep(model.StepBefore, "s1", &at))
		if before.Step != model.StepBefore || before.Server != "s1" || !sameTime(before.StartedAt, at) {
			t.Errorf("before step: %q on %q started %v, want before on s1 started %v", before.Step, before.Server, before.StartedAt, at)
		}
		after := doOp(t, s, before, store.EnterStep(model.StepAfter, "s2", nil))
		if after.Step != model.StepAfter || after.Server != "s2" || !sameTime(after.StartedAt, at) {
			t.Errorf("after step: %q on %q started %v, want after on s2, start kept", after.Step, after.Server, after.StartedAt)
		}
		if mine, err := s.JobsOfServer(t.Context(), "s1"); err != nil || len(mine) != 0 {
			t.Errorf("jobs of s1 once s2 holds the step: %v (%v), want none", mine, err)
		}
	})
}
