package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpInsertAndGet: a job reads back as written; an unknown id is
// ErrJobNotFound; a second insert of the same job is not an error (a
// retried insert) and leaves one job.
func TestJobOpInsertAndGet(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		job := newJob(30)
		job.Description = "first"
		insertJobs(t, s, job, job)
		got, err := s.GetJob(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != job.ID || got.State != model.StateQueued || got.Priority != 30 || got.Description != "first" || got.Version != 0 {
			t.Errorf("read back %+v", got)
		}
		if _, err := s.GetJob(ctx, bson.NewObjectID()); !errors.Is(err, model.ErrJobNotFound) {
			t.Errorf("unknown job: %v, want ErrJobNotFound", err)
		}
		all, err := s.ListJobs(ctx, store.JobFilter{})
		if err != nil || len(all) != 1 {
			t.Errorf("after a repeated insert: %d jobs (%v), want 1", len(all), err)
		}
	})
}

// TestJobOpBulkInsert: jobs written together read, list and select like
// jobs written one by one.
func TestJobOpBulkInsert(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var jobs []*model.Job
		for i := range 40 {
			jobs = append(jobs, newJob(1+i%4))
		}
		n, err := s.InsertJobs(ctx, jobs)
		if err != nil || n != len(jobs) {
			t.Fatalf("inserted %d (%v), want %d", n, err, len(jobs))
		}
		got, err := s.RunnableJobs(ctx, time.Now(), 100, nil)
		if err != nil || len(got) != len(jobs) {
			t.Fatalf("runnable: %d (%v), want %d", len(got), err, len(jobs))
		}
		for i := 1; i < len(got); i++ {
			if got[i].Priority < got[i-1].Priority {
				t.Fatalf("selection out of priority order at %d: %d after %d", i, got[i].Priority, got[i-1].Priority)
			}
		}
		listed, err := s.ListJobs(ctx, store.JobFilter{States: []model.State{model.StateQueued}, Limit: 100})
		if err != nil || len(listed) != len(jobs) {
			t.Fatalf("listed: %d (%v), want %d", len(listed), err, len(jobs))
		}
	})
}
