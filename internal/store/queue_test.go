package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// newJob returns a queued simple job with the given priority, due now.
func newJob(priority int) *model.Job {
	now := time.Now().UTC()
	return &model.Job{ID: bson.NewObjectID(), Type: "nap", Kind: model.KindSimple, State: model.StateQueued,
		Priority: priority, RunAt: now, CreatedAt: now}
}

// runnableIDs returns the ids RunnableJobs returns, in order.
func runnableIDs(t *testing.T, s *store.Store) []bson.ObjectID {
	t.Helper()
	jobs, err := s.RunnableJobs(context.Background(), time.Now(), 50, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []bson.ObjectID
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

func ids(jobs ...*model.Job) []bson.ObjectID {
	var out []bson.ObjectID
	for _, j := range jobs {
		out = append(out, j.ID)
	}
	return out
}

// TestRunnableJobsFollowJobWrites checks the selection through every kind of
// job write: new jobs by priority then age, delayed jobs, a priority change,
// a pause and resume, completion and deletion.
func TestRunnableJobsFollowJobWrites(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	a, b, c, d := newJob(50), newJob(10), newJob(50), newJob(90)
	later := newJob(1)
	later.RunAt = time.Now().Add(time.Hour)
	for _, j := range []*model.Job{a, b, c, d, later} {
		if err := s.InsertJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	want := func(step string, jobs ...*model.Job) {
		t.Helper()
		if got := runnableIDs(t, s); !slices.Equal(got, ids(jobs...)) {
			t.Fatalf("%s: runnable %v, want %v", step, got, ids(jobs...))
		}
	}
	want("inserted", b, a, c, d)

	d, err := s.Update(ctx, d, store.Change{Priority: new(5)}, "test")
	if err != nil {
		t.Fatal(err)
	}
	want("priority raised", d, b, a, c)

	a, err = s.Transition(ctx, a, model.StatePaused, store.Change{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	want("paused", d, b, c)
	if a, err = s.Transition(ctx, a, model.StateQueued, store.Change{}, "test"); err != nil {
		t.Fatal(err)
	}
	want("resumed", d, b, a, c) // same priority: oldest first

	if b, err = s.Transition(ctx, b, model.StateRunning, store.Change{}, "test"); err != nil {
		t.Fatal(err)
	}
	want("running", d, a, c) // a running simple job is one server's: not offered to others
	e := newJob(10)
	e.Kind = model.KindSliced
	if err := s.InsertJob(ctx, e); err != nil {
		t.Fatal(err)
	}
	if e, err = s.Transition(ctx, e, model.StateRunning, store.Change{}, "test"); err != nil {
		t.Fatal(err)
	}
	want("running sliced", d, e, a, c) // a running sliced job's slices are everyone's
	if _, err = s.Transition(ctx, e, model.StateCompleted, store.Change{}, "test"); err != nil {
		t.Fatal(err)
	}
	want("completed", d, a, c)
	if err := s.DeleteJob(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	want("deleted", d, a)

	jobs, err := s.RunnableJobs(ctx, time.Now().Add(2*time.Hour), 50, nil)
	if err != nil || len(jobs) != 3 || jobs[0].ID != later.ID {
		t.Fatalf("in two hours: %v, %v; want the delayed job first", jobs, err)
	}
	if jobs[1].Priority != 5 || jobs[1].Version != d.Version {
		t.Fatalf("the copy is not the job as stored: %+v, want version %d", jobs[1], d.Version)
	}
}

// TestReconcileQueue damages the run queue the ways a crash or a race can
// (a missing copy, a stale copy, a copy at the wrong priority, the copy of a
// finished job) and checks that ReconcileQueue repairs each, then finds
// nothing to do.
func TestReconcileQueue(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s, jobsDB := openNamed(t)
	raw := dbtest.Client(t).Database(jobsDB)
	queue := func(p int) string { return fmt.Sprintf("queue_p%03d", p) }

	// A job written without its copy (its writer died in between).
	lost := newJob(20)
	if _, err := raw.Collection("jobs").InsertOne(ctx, lost); err != nil {
		t.Fatal(err)
	}
	// A job whose copy is older than the job and at its old priority.
	moved := newJob(60)
	if err := s.InsertJob(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Collection("jobs").UpdateOne(ctx, bson.D{{Key: "_id", Value: moved.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "priority", Value: 30}, {Key: "version", Value: moved.Version + 1}}}}); err != nil {
		t.Fatal(err)
	}
	// A finished job whose copy was left behind.
	done := newJob(40)
	if err := s.InsertJob(ctx, done); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Collection("jobs").UpdateOne(ctx, bson.D{{Key: "_id", Value: done.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: model.StateCompleted}, {Key: "version", Value: done.Version + 1}}}}); err != nil {
		t.Fatal(err)
	}
	// A healthy job.
	ok := newJob(70)
	if err := s.InsertJob(ctx, ok); err != nil {
		t.Fatal(err)
	}

	if got := runnableIDs(t, s); !slices.Equal(got, ids(done, moved, ok)) {
		t.Fatalf("damaged queue: %v, want the stale copies %v", got, ids(done, moved, ok))
	}
	n, err := s.ReconcileQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// lost written, moved written at 30 and dropped at 60, done dropped.
	if n != 4 {
		t.Errorf("ReconcileQueue fixed %d copies, want 4", n)
	}
	if got := runnableIDs(t, s); !slices.Equal(got, ids(lost, moved, ok)) {
		t.Fatalf("repaired queue: %v, want %v", got, ids(lost, moved, ok))
	}
	if n, err := raw.Collection(queue(60)).CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Fatalf("old priority still holds %d copies (%v)", n, err)
	}
	if n, err := s.ReconcileQueue(ctx); err != nil || n != 0 {
		t.Fatalf("second pass fixed %d copies (%v), want 0", n, err)
	}
}

// TestReconcileQueueLeavesJobsCreatedSinceItBegan checks that a reconcile
// leaves alone a job created after it began (its id's second later than
// the reconcile's start): such a job's copy may have been written after
// the queue was read, and its writer's intent covers it; the reconcile
// must neither give it a second copy nor drop the copy it has.
func TestReconcileQueueLeavesJobsCreatedSinceItBegan(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s, jobsDB := openNamed(t)
	raw := dbtest.Client(t).Database(jobsDB)

	// Jobs "created" an hour from now, as a job created during a long
	// reconcile would be: one stored without its copy, one with it.
	later := time.Now().Add(time.Hour)
	bare, copied := newJob(20), newJob(20)
	bare.ID, copied.ID = bson.NewObjectIDFromTimestamp(later), bson.NewObjectIDFromTimestamp(later.Add(time.Second))
	if _, err := raw.Collection("jobs").InsertOne(ctx, bare); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertJob(ctx, copied); err != nil {
		t.Fatal(err)
	}
	// An older job without its copy is repaired as usual.
	lost := newJob(20)
	if _, err := raw.Collection("jobs").InsertOne(ctx, lost); err != nil {
		t.Fatal(err)
	}
	n, err := s.ReconcileQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("ReconcileQueue fixed %d copies, want 1 (the old job's)", n)
	}
	if got, want := runnableIDs(t, s), ids(lost, copied); !slices.Equal(got, want) {
		t.Fatalf("queue after the reconcile: %v, want %v (the new job without a copy left alone, the other's kept)", got, want)
	}
}

// TestRepairQueued checks that a worker holding a stale copy puts the job as
// stored back in the queue, or removes the copy of a job that is gone.
func TestRepairQueued(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s, jobsDB := openNamed(t)
	raw := dbtest.Client(t).Database(jobsDB)
	paused := newJob(50)
	if err := s.InsertJob(ctx, paused); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Collection("jobs").UpdateOne(ctx, bson.D{{Key: "_id", Value: paused.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: model.StatePaused}, {Key: "version", Value: paused.Version + 1}}}}); err != nil {
		t.Fatal(err)
	}
	gone := newJob(50)
	if err := s.InsertJob(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Collection("jobs").DeleteOne(ctx, bson.D{{Key: "_id", Value: gone.ID}}); err != nil {
		t.Fatal(err)
	}
	if got := runnableIDs(t, s); len(got) != 2 {
		t.Fatalf("stale copies: %v, want 2", got)
	}
	for _, j := range []*model.Job{paused, gone} {
		if err := s.RepairQueued(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if got := runnableIDs(t, s); len(got) != 0 {
		t.Fatalf("after repair: %v, want none", got)
	}
}

// TestDeleteJobRemovesItsClaims checks that destroying a job leaves none of
// its transition claims behind (they are deleted one by one, by _id).
func TestDeleteJobRemovesItsClaims(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s, jobsDB := openNamed(t)
	claims := dbtest.Client(t).Database(jobsDB).Collection("job_claims")
	job, other := newJob(50), newJob(50)
	for _, j := range []*model.Job{job, other} {
		if err := s.InsertJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	for _, to := range []model.State{model.StateRunning, model.StatePaused, model.StateRunning} {
		if job, err = s.Transition(ctx, job, to, store.Change{}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Transition(ctx, other, model.StateRunning, store.Change{}, "test"); err != nil {
		t.Fatal(err)
	}
	of := func(j *model.Job) int64 {
		n, err := claims.CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^" + j.ID.Hex() + ":"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := of(job); n != 3 {
		t.Fatalf("%d claims before the delete, want 3", n)
	}
	if err := s.DeleteJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	if n, o := of(job), of(other); n != 0 || o != 1 {
		t.Fatalf("after the delete: %d claims of the job (want 0), %d of another job (want 1)", n, o)
	}
}
