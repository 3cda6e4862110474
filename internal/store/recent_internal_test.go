package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
)

// TestNewestWindowsStayBounded writes more completed jobs than a window
// keeps and checks that the window was trimmed, that newest-first
// listings still give what the jobs collection gives (from the window,
// or from the jobs collection beyond it), and that entries of jobs that
// moved on are removed by the listing that finds them.
func TestNewestWindowsStayBounded(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	jobsDB, workDB := dbtest.DBNames(t)
	s, err := Open(ctx, Config{URI: dbtest.URI(), DB: jobsDB, WorkDB: workDB})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if err := s.MarkNewStateIndex(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	newJobs := func(n int, state model.State) []*model.Job {
		var jobs []*model.Job
		for i := range n {
			jobs = append(jobs, &model.Job{ID: bson.NewObjectID(), Type: "nap", Kind: model.KindSimple, State: state,
				Priority: 50 - i%2*10, RunAt: now, CreatedAt: now, Version: 1})
		}
		return jobs
	}
	completed := newJobs(recentTrimAt+recentKeep/2, model.StateCompleted)
	failed := newJobs(10, model.StateFailed)
	for _, batch := range [][]*model.Job{completed, failed} {
		if _, err := s.InsertJobs(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}

	window, err := s.recentIDs(ctx, model.StateCompleted)
	if err != nil {
		t.Fatal(err)
	}
	if len(window) > recentTrimAt {
		t.Errorf("completed window holds %d entries, want at most %d", len(window), recentTrimAt)
	}
	complete, err := s.completeWindows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if complete[model.StateCompleted] || !complete[model.StateFailed] {
		t.Errorf("complete windows %v: want completed trimmed, failed complete", complete)
	}

	same := func(name string, f JobFilter) {
		t.Helper()
		f.Newest = true
		got, err := s.ListJobs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.queryJobs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || len(want) == 0 && f.Limit > 0 && len(f.States) == 0 {
			t.Fatalf("%s: %d jobs, the jobs collection gives %d", name, len(got), len(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID {
				t.Fatalf("%s: job %d is %s, the jobs collection gives %s", name, i, got[i].ID.Hex(), want[i].ID.Hex())
			}
		}
	}
	same("completed, limit 50", JobFilter{States: []model.State{model.StateCompleted}, Limit: 50})
	same("all, limit 50", JobFilter{Limit: 50})
	same("completed beyond the window", JobFilter{States: []model.State{model.StateCompleted}, Skip: int64(len(completed) - 20), Limit: 50})
	same("failed", JobFilter{States: []model.State{model.StateFailed}, Limit: 50})

	// Half the failed jobs are retried: the failed listing drops their
	// entries from the window as it finds them.
	for _, j := range failed[:5] {
		if _, err := s.Transition(ctx, j, model.StateQueued, Change{}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	same("failed after retries", JobFilter{States: []model.State{model.StateFailed}, Limit: 50})
	same("queued after retries", JobFilter{States: []model.State{model.StateQueued}, Limit: 50})
	left, err := s.recentIDs(ctx, model.StateFailed)
	if err != nil {
		t.Fatal(err)
	}
	var want []bson.ObjectID
	for _, j := range failed[5:] {
		want = append(want, j.ID)
	}
	if !slices.Equal(left, want) {
		t.Errorf("failed window after the listing: %v, want %v", left, want)
	}

	// A database whose jobs were written before the windows existed: the
	// windows are incomplete, and a listing they cannot fill reads the jobs.
	if _, err := s.jobsDB.Collection(stateIndexColl).DeleteOne(ctx, bson.D{{Key: "_id", Value: recentMarker}}); err != nil {
		t.Fatal(err)
	}
	if err := s.dropRecent(ctx, model.StateFailed, want[:3]); err != nil {
		t.Fatal(err)
	}
	same("failed, window incomplete", JobFilter{States: []model.State{model.StateFailed}, Limit: 50})
}

// TestNewestWindowTrim adds entries to a window a hundred at a time, as
// transitions do, and checks that trims keep it between recentKeep and
// recentTrimAt entries, the newest ones, and mark it trimmed.
func TestNewestWindowTrim(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	jobsDB, workDB := dbtest.DBNames(t)
	s, err := Open(ctx, Config{URI: dbtest.URI(), DB: jobsDB, WorkDB: workDB})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if err := s.MarkNewStateIndex(ctx); err != nil {
		t.Fatal(err)
	}
	var all []bson.ObjectID
	for range (recentTrimAt + recentTrimEvery) / 100 {
		var jobs []*model.Job
		for range 100 {
			j := &model.Job{ID: bson.NewObjectID(), State: model.StateCompleted, Version: 3}
			jobs = append(jobs, j)
			all = append(all, j.ID)
		}
		s.noteRecent(ctx, jobs...)
		time.Sleep(time.Millisecond) // entries of two calls never share their time
	}
	window, err := s.recentIDs(ctx, model.StateCompleted)
	if err != nil {
		t.Fatal(err)
	}
	if len(window) < recentKeep || len(window) > recentTrimAt {
		t.Fatalf("window of %d entries after %d, want %d to %d", len(window), len(all), recentKeep, recentTrimAt)
	}
	if !slices.Equal(window, all[len(all)-len(window):]) {
		t.Errorf("the window does not hold the newest entries")
	}
	complete, err := s.completeWindows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if complete[model.StateCompleted] {
		t.Errorf("the trimmed window is said complete")
	}
}
