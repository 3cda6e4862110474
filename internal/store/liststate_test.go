package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// jobsInEveryState writes jobs of two types and three priorities in every
// state, through inserts and transitions, and returns them.
func jobsInEveryState(t *testing.T, s *store.Store) []*model.Job {
	t.Helper()
	ctx := context.Background()
	var jobs []*model.Job
	for i := range 36 {
		j := newJob([]int{50, 10, 90}[i%3])
		if i%4 == 0 {
			j.Type = "mail"
		}
		if err := s.InsertJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	move := func(i int, to ...model.State) {
		for _, st := range to {
			moved, err := s.Transition(ctx, jobs[i], st, store.Change{}, "test")
			if err != nil {
				t.Fatal(err)
			}
			jobs[i] = moved
		}
	}
	// Completed in reverse order of age, so entry order is not age order.
	for i := 35; i >= 0; i-- {
		switch i % 6 {
		case 0:
			move(i, model.StateRunning, model.StateCompleted)
		case 1:
			move(i, model.StateRunning)
		case 2:
			move(i, model.StateRunning, model.StateFailed)
		case 3:
			move(i, model.StatePaused)
		case 4:
			move(i, model.StateAborted)
		}
	}
	// A failed job retried, a paused one resumed, a priority change, a
	// job inserted completed, and a destroyed one.
	move(2, model.StateQueued)
	move(3, model.StateQueued)
	moved, err := s.Update(ctx, jobs[6], store.Change{Priority: new(10)}, "test")
	if err != nil {
		t.Fatal(err)
	}
	jobs[6] = moved
	done := newJob(50)
	done.State = model.StateCompleted
	if err := s.InsertJob(ctx, done); err != nil {
		t.Fatal(err)
	}
	jobs = append(jobs, done)
	if err := s.DeleteJob(ctx, jobs[12].ID); err != nil {
		t.Fatal(err)
	}
	return append(jobs[:12], jobs[13:]...)
}

// listIDs returns the ids ListJobs returns for f.
func listIDs(t *testing.T, s *store.Store, f store.JobFilter) []string {
	t.Helper()
	jobs, err := s.ListJobs(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = fmt.Sprintf("%s(%s,p%d)", j.ID.Hex()[18:], j.State, j.Priority)
	}
	return ids
}

// checkLimitedListings compares every limited listing with the full
// listing (which reads every job) cut to the same page.
func checkLimitedListings(t *testing.T, s *store.Store) {
	t.Helper()
	filters := []store.JobFilter{{}}
	for _, st := range model.States {
		filters = append(filters, store.JobFilter{States: []model.State{st}})
	}
	filters = append(filters,
		store.JobFilter{States: []model.State{model.StateQueued, model.StateRunning}},
		store.JobFilter{States: []model.State{model.StateCompleted, model.StateFailed, model.StateQueued}},
		store.JobFilter{Type: "mail"},
		store.JobFilter{Type: "mail", States: []model.State{model.StateQueued, model.StateCompleted}},
	)
	for _, f := range filters {
		all := listIDs(t, s, f)
		for _, page := range []struct{ skip, limit int64 }{{0, 1}, {0, 5}, {0, 50}, {3, 4}, {int64(len(all)), 5}} {
			f.Skip, f.Limit = page.skip, page.limit
			want := all[min(len(all), int(page.skip)):]
			want = want[:min(len(want), int(page.limit))]
			if got := listIDs(t, s, f); !slices.Equal(got, want) {
				t.Errorf("states %v type %q skip %d limit %d:\n got %v\nwant %v", f.States, f.Type, f.Skip, f.Limit, got, want)
			}
		}
	}
}

func TestLimitedListingsMatchTheFullListing(t *testing.T) {
	s := open(t)
	jobsInEveryState(t, s)
	checkLimitedListings(t, s)
}

// TestStateIndexBuiltForOlderDatabases drops the state index, as in a
// database written before it existed: the first limited listing builds it.
func TestStateIndexBuiltForOlderDatabases(t *testing.T) {
	dbtest.RequireFerretDB(t)
	s, name := openNamed(t)
	jobsInEveryState(t, s)
	ctx := context.Background()
	db := dbtest.Client(t).Database(name)
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for _, n := range names {
		if strings.HasPrefix(n, "state_") {
			if err := db.Collection(n).Drop(ctx); err != nil {
				t.Fatal(err)
			}
			dropped++
		}
	}
	if dropped < 5 { // the marker and at least one collection per indexed state
		t.Fatalf("dropped %d state index collections of %v, want at least 5", dropped, names)
	}
	checkLimitedListings(t, s)
}

// TestStateIndexOutOfDateEntries gives the index entries that lie: for a
// job that is no longer in that state, for a job that is gone, and leaves
// a job without its entry. Listings skip the lies and remove them; the
// missing entry is put back by the run-queue reconciliation.
func TestStateIndexOutOfDateEntries(t *testing.T) {
	dbtest.RequireFerretDB(t)
	s, name := openNamed(t)
	ctx := context.Background()
	db := dbtest.Client(t).Database(name)
	queued, gone, done := newJob(50), newJob(50), newJob(50)
	for _, j := range []*model.Job{queued, gone, done} {
		if err := s.InsertJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	lies := db.Collection("state_failed_p050")
	for _, id := range []bson.ObjectID{queued.ID, gone.ID} {
		if _, err := lies.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "v", Value: 0}, {Key: "type", Value: "nap"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Collection("jobs").DeleteOne(ctx, bson.D{{Key: "_id", Value: gone.ID}}); err != nil {
		t.Fatal(err)
	}
	if got := listIDs(t, s, store.JobFilter{States: []model.State{model.StateFailed}, Limit: 10}); len(got) != 0 {
		t.Fatalf("failed jobs listed: %v, want none", got)
	}
	if n, err := lies.CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Fatalf("%d out-of-date entries left (%v), want 0", n, err)
	}

	// A writer that died right after starting a job: the job is running,
	// its run-queue copy still says queued, it has no entry. The run-queue
	// reconciliation gives it one.
	setState := func(j *model.Job, st model.State) {
		t.Helper()
		if _, err := db.Collection("jobs").UpdateOne(ctx, bson.D{{Key: "_id", Value: j.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: st}, {Key: "version", Value: j.Version + 1}}}}); err != nil {
			t.Fatal(err)
		}
		j.State, j.Version = st, j.Version+1
	}
	running := store.JobFilter{States: []model.State{model.StateRunning}, Limit: 10}
	completed := store.JobFilter{States: []model.State{model.StateCompleted}, Limit: 10}
	setState(done, model.StateRunning)
	if got := listIDs(t, s, running); len(got) != 0 {
		t.Fatalf("running jobs listed before the repair: %v, want none", got)
	}
	if _, err := s.ReconcileQueue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := listIDs(t, s, running); len(got) != 1 || !strings.HasPrefix(got[0], done.ID.Hex()[18:]) {
		t.Fatalf("running jobs after the repair: %v, want %s", got, done.ID.Hex())
	}

	// A writer that died right after completing it: the running entry is
	// out of date and the completed one missing. A listing that reads the
	// running entry repairs both.
	setState(done, model.StateCompleted)
	if got := listIDs(t, s, completed); len(got) != 0 {
		t.Fatalf("completed jobs listed before the repair: %v, want none", got)
	}
	if got := listIDs(t, s, running); len(got) != 0 {
		t.Fatalf("running jobs listed: %v, want none", got)
	}
	if got := listIDs(t, s, completed); len(got) != 1 || !strings.HasPrefix(got[0], done.ID.Hex()[18:]) {
		t.Fatalf("completed jobs after the repair: %v, want %s", got, done.ID.Hex())
	}
}

// TestStateIndexConcurrentWrites moves jobs from 8 goroutines at once, so
// that their state index syncs are written in shared batches, and compares
// the limited listings with the full one.
func TestStateIndexConcurrentWrites(t *testing.T) {
	dbtest.RequireFerretDB(t)
	s := open(t)
	ctx := context.Background()
	var jobs []*model.Job
	for i := range 48 {
		j := newJob([]int{50, 20}[i%2])
		if err := s.InsertJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			for i := w; i < len(jobs); i += 8 {
				j, err := s.Transition(ctx, jobs[i], model.StateRunning, store.Change{}, "test")
				if err == nil {
					_, err = s.Transition(ctx, j, []model.State{model.StateCompleted, model.StateFailed, model.StateRunning}[i%3], store.Change{}, "test")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	checkLimitedListings(t, s)
	if got := listIDs(t, s, store.JobFilter{States: []model.State{model.StateRunning}, Limit: 100}); len(got) != 16 {
		t.Fatalf("%d running jobs listed, want 16: %v", len(got), got)
	}
}
