package store_test

import (
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpComplete: a simple job's run completes with its end time and
// statistics, keeping the server that ran it; it is listed as completed.
func TestJobOpComplete(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newJob(50)
		job.State, job.Server = model.StateRunning, "s1"
		insertJobs(t, s, job)
		at := time.Now().UTC()
		got := doOp(t, s, job, store.Complete(at, store.Counts{Statistics: map[string]int64{"seen": 4}}))
		if !sameTime(got.CompletedAt, at) || got.Statistics["seen"] != 4 || got.Server != "s1" {
			t.Errorf("completed: %v statistics %v server %q, want %v, seen 4, s1", got.CompletedAt, got.Statistics, got.Server, at)
		}
		if !listed(t, s, model.StateCompleted, job.ID) {
			t.Error("the completed job is not listed as completed")
		}
	})
}

// TestJobOpCompleteSliced: a sliced job completes with its totals and what
// its slices and hooks counted; its after step's server is freed.
func TestJobOpCompleteSliced(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newSliced(50)
		job.State, job.Step, job.Server = model.StateRunning, model.StepAfter, "s1"
		insertJobs(t, s, job)
		at := time.Now().UTC()
		c := store.Counts{
			Totals:         &store.JobTotals{Processed: 5, Categories: map[string]int64{"even": 2, "odd": 3}},
			Statistics:     map[string]int64{"rows": 5},
			HookStatistics: map[string]int64{"after": 1},
		}
		got := doOp(t, s, job, store.CompleteSliced(at, c))
		if !sameTime(got.CompletedAt, at) || got.Server != "" || !got.Totals || got.ProcessedCount != 5 ||
			got.Categories["even"] != 2 || got.Categories["odd"] != 3 || got.Statistics["rows"] != 5 || got.HookStatistics["after"] != 1 {
			t.Errorf("completed: %+v", got)
		}
		if isRunnable(t, s, job.ID) {
			t.Error("a completed job is offered")
		}
	})
}
