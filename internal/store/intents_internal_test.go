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

// openInternal opens a store on databases of the test's own.
func openInternal(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	jobsDB, workDB := dbtest.DBNames(t)
	s, err := Open(ctx, Config{URI: dbtest.URI(), DB: jobsDB, WorkDB: workDB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(ctx) })
	if err := s.MarkNewStateIndex(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// intentCount is how many queue intents s holds.
func intentCount(t *testing.T, s *Store) int64 {
	t.Helper()
	n, err := s.intents().CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// insertQueued stores a new queued simple job of priority, with its copy.
func insertQueued(t *testing.T, s *Store, priority int) *model.Job {
	t.Helper()
	job := queuedSimple(priority)
	if err := s.InsertJob(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	return job
}

func queuedSimple(priority int) *model.Job {
	now := time.Now().UTC()
	return &model.Job{ID: bson.NewObjectID(), Type: "nap", Kind: model.KindSimple, State: model.StateQueued,
		Priority: priority, RunAt: now, CreatedAt: now}
}

func jobIDs(jobs []model.Job) []bson.ObjectID {
	var out []bson.ObjectID
	for _, j := range jobs {
		out = append(out, j.ID)
	}
	slices.SortFunc(out, compareIDs)
	return out
}

// TestRunningJobsFromTheIndex checks that RunningJobs and JobsOfServer find
// the running jobs, simple and sliced, among completed and queued ones,
// from the state index, and that they follow the jobs' transitions.
func TestRunningJobsFromTheIndex(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	var all []*model.Job
	for range 30 {
		all = append(all, queuedSimple(50))
	}
	done := queuedSimple(50)
	done.State = model.StateCompleted
	step := queuedSimple(20)
	step.Kind, step.State, step.Server = model.KindSliced, model.StateRunning, "a"
	all = append(all, done, step)
	if _, err := s.InsertJobs(ctx, all); err != nil {
		t.Fatal(err)
	}
	start := func(j *model.Job, server string) *model.Job {
		t.Helper()
		moved, err := s.Transition(ctx, j, model.StateRunning, Change{Server: &server}, server)
		if err != nil {
			t.Fatal(err)
		}
		return moved
	}
	a1, b1, a2 := start(all[0], "a"), start(all[1], "b"), start(all[2], "a")
	if _, err := s.Transition(ctx, a2, model.StateCompleted, Change{}, "a"); err != nil {
		t.Fatal(err)
	}
	running, err := s.RunningJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := jobIDs(running), jobIDs([]model.Job{*a1, *b1, *step}); !slices.Equal(got, want) {
		t.Fatalf("running jobs %v, want %v", got, want)
	}
	ofA, err := s.JobsOfServer(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := jobIDs(ofA), jobIDs([]model.Job{*a1, *step}); !slices.Equal(got, want) {
		t.Fatalf("jobs of server a %v, want %v", got, want)
	}
	// A running sliced job is listed once, though it is in the run queue too.
	listed, err := s.ListJobs(ctx, JobFilter{States: []model.State{model.StateRunning}, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := jobIDs(listed), jobIDs([]model.Job{*a1, *b1, *step}); !slices.Equal(got, want) {
		t.Fatalf("running jobs listed %v, want %v", got, want)
	}
}

// TestSlicedJobsWithSlices checks that the sliced jobs a rescue requeues
// slices of are those with input slices, found without reading every job.
func TestSlicedJobsWithSlices(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	mk := func(state model.State) *model.Job {
		j := queuedSimple(50)
		j.Kind, j.State = model.KindSliced, state
		return j
	}
	running, paused, failed, queued, completed := mk(model.StateRunning), mk(model.StatePaused), mk(model.StateFailed), mk(model.StateQueued), mk(model.StateCompleted)
	noSlices := mk(model.StateRunning)
	if _, err := s.InsertJobs(ctx, []*model.Job{running, paused, failed, queued, completed, noSlices}); err != nil {
		t.Fatal(err)
	}
	for _, j := range []*model.Job{running, paused, failed, queued} {
		if _, err := s.workDB.Collection("slices_"+j.ID.Hex()+"_input").InsertOne(ctx, bson.D{{Key: "_id", Value: "0000000001"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.workDB.Collection("slices_"+completed.ID.Hex()+"_output").InsertOne(ctx, bson.D{{Key: "_id", Value: "0000000001"}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.SlicedJobsWithSlices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := jobIDs(got), jobIDs([]model.Job{*running, *paused, *failed}); !slices.Equal(got, want) {
		t.Fatalf("sliced jobs with slices %v, want %v (running, paused, failed with input)", got, want)
	}
}

// TestRepairIntents checks that a job whose writer died between the job
// write and its run-queue copy gets its copy from the intent the writer
// left, once the intent is old enough, that writers that finish leave no
// intent behind, and that a simple job made runnable again leaves its
// intent for the repair (its run's removal of its start's copy may land
// after its new copy: takenBack).
func TestRepairIntents(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	count := func() int64 { return intentCount(t, s) }
	// Writers that finish: a bulk insert, a single insert.
	jobs := []*model.Job{queuedSimple(50), queuedSimple(50)}
	if _, err := s.InsertJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	insertQueued(t, s, 40)
	if n := count(); n != 0 {
		t.Fatalf("%d intents left by writers that finished, want 0", n)
	}
	// A failed job's retry: its intent stays until the repair.
	running, err := s.Transition(ctx, jobs[0], model.StateRunning, Change{}, "a")
	if err != nil {
		t.Fatal(err)
	}
	failed, err := s.Transition(ctx, running, model.StateFailed, Change{}, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transition(ctx, failed, model.StateQueued, Change{}, "a"); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d intents after a failed simple job's retry, want its own", n)
	}

	// A writer that died after its intent and its job write.
	lost := queuedSimple(30)
	s.intend(ctx, []bson.ObjectID{lost.ID})
	if _, err := s.jobs().InsertOne(ctx, lost); err != nil {
		t.Fatal(err)
	}
	due := func() bool {
		t.Helper()
		got, err := s.RunnableJobs(ctx, time.Now(), 50, nil)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(got, func(j model.Job) bool { return j.ID == lost.ID })
	}
	if due() {
		t.Fatal("a job without a run-queue copy is offered")
	}
	if n, err := s.RepairIntents(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("a fresh intent (its writer may be at work): %d copies written (%v), want 0", n, err)
	}
	if n, err := s.RepairIntents(ctx, time.Now().Add(intentAge+time.Second)); err != nil || n != 1 {
		t.Fatalf("an old intent: %d copies written (%v), want 1", n, err)
	}
	if !due() {
		t.Fatal("the job is not offered after the repair")
	}
	if n := count(); n != 0 {
		t.Fatalf("%d intents left after the repair, want 0", n)
	}
}

// TestRequeueSurvivesALateStartDrop checks the race the chaos test met: a
// server starts a simple job, another takes it for dead and requeues the
// job, and only then does the first server's removal of the copy of its
// start land (it names the copy by _id alone). The requeue's intent stays
// until RepairIntents has checked the job, which gives it its copy back.
func TestRequeueSurvivesALateStartDrop(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	job := insertQueued(t, s, 20)
	running, err := s.Transition(ctx, job, model.StateRunning, Change{Server: new("a")}, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transition(ctx, running, model.StateQueued, Change{ClearServer: true}, "b"); err != nil {
		t.Fatal(err)
	}
	s.dropStarted(ctx, job) // server a's removal, late
	offered := func() bool {
		t.Helper()
		got, err := s.RunnableJobs(ctx, time.Now(), 50, nil)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(got, func(j model.Job) bool { return j.ID == job.ID })
	}
	if offered() {
		t.Fatal("the late removal left the copy: this test no longer stages the race")
	}
	if n, err := s.RepairIntents(ctx, time.Now().Add(intentAge+time.Second)); err != nil || n != 1 {
		t.Fatalf("RepairIntents wrote %d copies (%v), want 1: the requeue's intent is gone", n, err)
	}
	if !offered() {
		t.Fatal("the requeued job is not offered after the repair")
	}
}

// TestSettleNeverUndoesLaterTransitions: settling an update of a batch that
// matched short (writeUpdates) applies it when its job is still at its
// version, reports it applied without writing it again when the job went
// past that version (a second write by _id alone would undo the later
// transitions), and reports no match for a job that is gone.
func TestSettleNeverUndoesLaterTransitions(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	job, pending, gone := queuedSimple(50), queuedSimple(50), queuedSimple(50)
	for _, j := range []*model.Job{job, pending, gone} {
		if err := s.InsertJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	update := func(j *model.Job, to model.State) jobUpdate {
		return jobUpdate{id: j.ID, version: j.Version, claimedAt: time.Now(),
			update: bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: to}, {Key: "version", Value: j.Version + 1}}}}}
	}
	started := update(job, model.StateRunning)
	running, err := s.Transition(ctx, job, model.StateRunning, Change{}, "a") // the batch applied it
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transition(ctx, running, model.StateCompleted, Change{}, "a"); err != nil { // and the job went on
		t.Fatal(err)
	}
	if r := s.settle(ctx, started); r.err != nil || r.matched != 1 {
		t.Errorf("an update applied before: matched %d (%v), want 1", r.matched, r.err)
	}
	if got, err := s.GetJob(ctx, job.ID); err != nil || got.State != model.StateCompleted || got.Version != 2 {
		t.Fatalf("after settling an applied update the job is %+v (%v), want completed at version 2", got, err)
	}
	if r := s.settle(ctx, update(pending, model.StateRunning)); r.err != nil || r.matched != 1 {
		t.Errorf("an update not applied yet: matched %d (%v), want 1", r.matched, r.err)
	}
	if got, err := s.GetJob(ctx, pending.ID); err != nil || got.State != model.StateRunning || got.Version != 1 {
		t.Errorf("the pending update: job %+v (%v), want running at version 1", got, err)
	}
	if err := s.DeleteJob(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if r := s.settle(ctx, update(gone, model.StateRunning)); r.err != nil || r.matched != 0 {
		t.Errorf("an update of a deleted job: matched %d (%v), want 0", r.matched, r.err)
	}
}
