package store_test

import (
	"context"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpListNewest: newest-first listings order by creation, newest
// first, whatever the priority, filter by state and type, honour limit and
// skip, and follow jobs that leave a state and enter it again.
func TestJobOpListNewest(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var jobs []*model.Job
		for i := range 8 {
			jobs = append(jobs, newJob(10*(1+i%3))) // 10, 20, 30, 10, ...
		}
		jobs[6].Type = "other"
		insertJobs(t, s, jobs...)
		move := func(j *model.Job, to model.State) *model.Job {
			t.Helper()
			moved, err := s.Transition(ctx, j, to, store.Change{}, "test")
			if err != nil {
				t.Fatal(err)
			}
			return moved
		}
		jobs[1] = move(jobs[1], model.StatePaused)
		jobs[4] = move(jobs[4], model.StatePaused)
		jobs[5] = move(jobs[5], model.StateAborted)
		list := func(f store.JobFilter) []bson.ObjectID {
			t.Helper()
			f.Newest = true
			got, err := s.ListJobs(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []bson.ObjectID
			for _, j := range got {
				out = append(out, j.ID)
			}
			return out
		}
		check := func(name string, f store.JobFilter, want ...*model.Job) {
			t.Helper()
			if got := list(f); !slices.Equal(got, ids(want...)) {
				t.Errorf("%s: %v, want %v", name, got, ids(want...))
			}
		}
		states := func(st ...model.State) []model.State { return st }
		check("all, limit 3", store.JobFilter{Limit: 3}, jobs[7], jobs[6], jobs[5])
		check("all, no limit", store.JobFilter{}, jobs[7], jobs[6], jobs[5], jobs[4], jobs[3], jobs[2], jobs[1], jobs[0])
		check("queued, limit 10", store.JobFilter{States: states(model.StateQueued), Limit: 10}, jobs[7], jobs[6], jobs[3], jobs[2], jobs[0])
		check("paused, limit 10", store.JobFilter{States: states(model.StatePaused), Limit: 10}, jobs[4], jobs[1])
		check("paused and aborted, limit 10", store.JobFilter{States: states(model.StatePaused, model.StateAborted), Limit: 10}, jobs[5], jobs[4], jobs[1])
		check("type other, limit 10", store.JobFilter{Type: "other", Limit: 10}, jobs[6])
		check("skip 2, limit 3", store.JobFilter{Skip: 2, Limit: 3}, jobs[5], jobs[4], jobs[3])
		check("failed, limit 10", store.JobFilter{States: states(model.StateFailed), Limit: 10})

		// Job 4 is resumed (queued again), then paused again: listed in one
		// state at a time, at its place by creation.
		jobs[4] = move(jobs[4], model.StateQueued)
		check("paused after a resume", store.JobFilter{States: states(model.StatePaused), Limit: 10}, jobs[1])
		check("queued after a resume", store.JobFilter{States: states(model.StateQueued), Limit: 10}, jobs[7], jobs[6], jobs[4], jobs[3], jobs[2], jobs[0])
		jobs[4] = move(jobs[4], model.StatePaused)
		check("paused again", store.JobFilter{States: states(model.StatePaused), Limit: 10}, jobs[4], jobs[1])
		check("queued again", store.JobFilter{States: states(model.StateQueued), Limit: 2}, jobs[7], jobs[6])

		// A deleted job is listed no more.
		if err := s.DeleteJob(ctx, jobs[7].ID); err != nil {
			t.Fatal(err)
		}
		check("all after a delete, limit 2", store.JobFilter{Limit: 2}, jobs[6], jobs[5])
	})
}
