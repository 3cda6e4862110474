package store_test

import (
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpStartProcessing: a sliced job's before step ends: the job runs
// its processing step, held by no server, offered to every worker, with
// what the before hook counted.
func TestJobOpStartProcessing(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newSliced(50)
		job.State, job.Step, job.Server = model.StateRunning, model.StepBefore, "s1"
		insertJobs(t, s, job)
		got := doOp(t, s, job, store.StartProcessing(map[string]int64{"rows": 3}))
		if got.Step != model.StepProcessing || got.Server != "" || got.HookStatistics["rows"] != 3 {
			t.Errorf("processing: step %q server %q hook statistics %v, want processing, none, rows 3", got.Step, got.Server, got.HookStatistics)
		}
		if !isRunnable(t, s, job.ID) {
			t.Error("a sliced job at its processing step is not offered")
		}
	})
}
