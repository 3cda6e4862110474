package store_test

import (
	"context"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestJobOpList: listings filter by state and type, order by priority then
// age, and honour limit and skip.
func TestJobOpList(t *testing.T) {
	forEachJobStrategy(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var jobs []*model.Job
		for i := range 6 {
			j := newJob(10 * (3 - i%3)) // 30, 20, 10, 30, 20, 10
			jobs = append(jobs, j)
		}
		jobs[5].Type = "other"
		insertJobs(t, s, jobs...)
		if _, err := s.Transition(ctx, jobs[0], model.StatePaused, store.Change{}, "test"); err != nil {
			t.Fatal(err)
		}
		list := func(f store.JobFilter) []bson.ObjectID {
			t.Helper()
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
		// Priority 10: jobs 2, 5; 20: 1, 4; 30: 0, 3.
		for _, c := range []struct {
			name string
			f    store.JobFilter
			want []*model.Job
		}{
			{"all", store.JobFilter{}, []*model.Job{jobs[2], jobs[5], jobs[1], jobs[4], jobs[0], jobs[3]}},
			{"all, limit 3", store.JobFilter{Limit: 3}, []*model.Job{jobs[2], jobs[5], jobs[1]}},
			{"queued", store.JobFilter{States: []model.State{model.StateQueued}}, []*model.Job{jobs[2], jobs[5], jobs[1], jobs[4], jobs[3]}},
			{"queued, limit 10", store.JobFilter{States: []model.State{model.StateQueued}, Limit: 10}, []*model.Job{jobs[2], jobs[5], jobs[1], jobs[4], jobs[3]}},
			{"paused, limit 10", store.JobFilter{States: []model.State{model.StatePaused}, Limit: 10}, []*model.Job{jobs[0]}},
			{"type other, limit 10", store.JobFilter{Type: "other", Limit: 10}, []*model.Job{jobs[5]}},
			{"skip 2, limit 2", store.JobFilter{Skip: 2, Limit: 2}, []*model.Job{jobs[1], jobs[4]}},
		} {
			if got := list(c.f); !slices.Equal(got, ids(c.want...)) {
				t.Errorf("%s: %v, want %v", c.name, got, ids(c.want...))
			}
		}
	})
}
