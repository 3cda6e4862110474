package store_test

import (
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpFail: a running simple job fails with its failure, end time
// and statistics, keeping its server; it is listed as failed and no longer
// running.
func TestJobOpFail(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newJob(50)
		job.State, job.Server = model.StateRunning, "s1"
		insertJobs(t, s, job)
		at := time.Now().UTC()
		got := doOp(t, s, job, store.Fail(failure("boom"), at, store.Counts{Statistics: map[string]int64{"seen": 1}}))
		if got.Failure == nil || got.Failure.Message != "boom" || !sameTime(got.CompletedAt, at) || got.Statistics["seen"] != 1 || got.Server != "s1" {
			t.Errorf("failed: failure %v completed %v statistics %v server %q, want boom, %v, seen 1, s1", got.Failure, got.CompletedAt, got.Statistics, got.Server, at)
		}
		if !listed(t, s, model.StateFailed, job.ID) || listed(t, s, model.StateRunning, job.ID) {
			t.Error("the failed job is not listed as failed only")
		}
	})
}

// TestJobOpFailRecords: a sliced job whose records failed fails with its
// totals, back at its processing step, held by no server.
func TestJobOpFailRecords(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		job := newSliced(50)
		job.State, job.Step, job.Server = model.StateRunning, model.StepAfter, "s1"
		insertJobs(t, s, job)
		at := time.Now().UTC()
		totals := &store.JobTotals{Processed: 10, FailedRecords: 2, Dropped: 1, Outputs: 7}
		got := doOp(t, s, job, store.FailRecords(failure("2 of 10 records failed"), at, store.Counts{Totals: totals, Statistics: map[string]int64{"rows": 10}}))
		if got.Step != model.StepProcessing || got.Server != "" || !sameTime(got.CompletedAt, at) || got.Failure == nil {
			t.Errorf("failed: step %q server %q completed %v failure %v, want processing, none, %v, a failure", got.Step, got.Server, got.CompletedAt, got.Failure, at)
		}
		if !got.Totals || got.ProcessedCount != 10 || got.FailedRecordCount != 2 || got.DroppedCount != 1 || got.OutputCount != 7 || got.Statistics["rows"] != 10 {
			t.Errorf("totals: %v processed %d failed %d dropped %d output %d statistics %v, want final 10 2 1 7 rows 10",
				got.Totals, got.ProcessedCount, got.FailedRecordCount, got.DroppedCount, got.OutputCount, got.Statistics)
		}
		if !listed(t, s, model.StateFailed, job.ID) {
			t.Error("the failed job is not listed as failed")
		}
	})
}
