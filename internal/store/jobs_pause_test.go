package store_test

import (
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpPauseResume: a paused job leaves the selection; resumed, a
// simple job (or a sliced job that had not started) is queued again, a
// sliced job that had started runs again where it was.
func TestJobOpPauseResume(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		queued, sliced := newJob(50), newSliced(50)
		sliced.State, sliced.Step, sliced.StartedAt = model.StateRunning, model.StepProcessing, new(time.Now().UTC())
		insertJobs(t, s, queued, sliced)
		for _, job := range []*model.Job{queued, sliced} {
			paused := doOp(t, s, job, store.Pause())
			if isRunnable(t, s, job.ID) || !listed(t, s, model.StatePaused, job.ID) {
				t.Errorf("paused %s job: offered or not listed as paused", job.Kind)
			}
			started := job.Kind == model.KindSliced
			resumed := doOp(t, s, paused, store.Resume(started))
			want := model.StateQueued
			if started {
				want = model.StateRunning
			}
			if resumed.State != want || resumed.Step != job.Step || !isRunnable(t, s, job.ID) {
				t.Errorf("resumed %s job: %s at %q, want %s at %q, offered", job.Kind, resumed.State, resumed.Step, want, job.Step)
			}
		}
	})
}
