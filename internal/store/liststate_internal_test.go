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

// TestSyncStatesMany starts and completes jobs in batches, syncing the state
// index with syncStatesMany, and checks the listings of each state.
func TestSyncStatesMany(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	jobsDB, workDB := dbtest.DBNames(t)
	s, err := Open(ctx, Config{URI: dbtest.URI(), DB: jobsDB, WorkDB: workDB})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	now := time.Now().UTC()
	var queued []*model.Job
	for i := range 30 {
		queued = append(queued, &model.Job{ID: bson.NewObjectID(), Type: "nap", Kind: model.KindSimple, State: model.StateQueued,
			Priority: 50 - i%2*10, RunAt: now, CreatedAt: now})
	}
	if err := s.MarkNewStateIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.InsertJobs(ctx, queued); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkNewStateIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.jobsDB.Collection(stateIndexColl).CountDocuments(ctx, bson.D{{Key: "_id", Value: stateIndexDone}}); err != nil || n != 1 {
		t.Fatalf("a new database marked before its first jobs has %d built markers (%v), want 1", n, err)
	}
	// The batched writes: jobs updated by _id, then one sync for all.
	write := func(from []*model.Job, to model.State) []*model.Job {
		t.Helper()
		var out []*model.Job
		for _, j := range from {
			m := *j
			m.State, m.Version = to, j.Version+1
			if _, err := s.jobs().ReplaceOne(ctx, bson.D{{Key: "_id", Value: j.ID}}, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, &m)
		}
		s.syncQueueMany(ctx, from, out)
		return out
	}
	running := write(queued[:20], model.StateRunning)
	write(running[:15], model.StateCompleted)
	want := map[model.State]int{model.StateQueued: 10, model.StateRunning: 5, model.StateCompleted: 15}
	for st, n := range want {
		jobs, err := s.ListJobs(ctx, JobFilter{States: []model.State{st}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		all, err := s.ListJobs(ctx, JobFilter{States: []model.State{st}})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != n || !slices.EqualFunc(jobs, all, func(a, b model.Job) bool { return a.ID == b.ID }) {
			t.Errorf("%s: %d listed with a limit, %d in all; want %d, the same", st, len(jobs), len(all), n)
		}
	}
	if n, err := s.stateColl(model.StateRunning, 50).CountDocuments(ctx, bson.D{}); err != nil || n > 5 {
		t.Errorf("%d running entries at priority 50 (%v), want at most 5", n, err)
	}
}

// syncStatesMany is syncStates for the writes of several jobs (before[i]
// became after[i]) in one batch of changes.
func (s *Store) syncStatesMany(ctx context.Context, before, after []*model.Job) {
	changes := make([]stateChange, len(after))
	for i := range after {
		changes[i] = stateChange{before[i], after[i], statePut | stateDrop}
	}
	s.syncStateChanges(ctx, changes)
}

// syncQueueMany is the run queue's and the state index's sync for a batch
// of writes, as a batched writer would do it.
func (s *Store) syncQueueMany(ctx context.Context, before, after []*model.Job) {
	for i := range after {
		if runnable(after[i]) {
			_, _ = s.putQueued(ctx, after[i])
		}
		if runnable(before[i]) && !runnable(after[i]) {
			_, _ = s.dropQueued(ctx, before[i].Priority, before[i].ID, after[i].Version)
		}
	}
	s.syncStatesMany(ctx, before, after)
}
