package store

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
)

// moveStored sets the stored job's version (as a transition that keeps it
// queued would) without touching its run-queue copy: the state a copy
// writer meets when another transition got in between its reads and its
// write.
func moveStored(t *testing.T, s *Store, job *model.Job, version int64) *model.Job {
	t.Helper()
	ctx := context.Background()
	if _, err := s.jobs().UpdateOne(ctx, bson.D{{Key: "_id", Value: job.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: version}}}}); err != nil {
		t.Fatal(err)
	}
	stored, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// copyVersion returns the version of job's copy in its priority's queue,
// or -1 if it has none.
func copyVersion(t *testing.T, s *Store, job *model.Job) int64 {
	t.Helper()
	v, ok, err := queuedVersion(context.Background(), s.queue(job.Priority), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return -1
	}
	return v
}

// TestDropQueuedKeepsTheCopyOfARunnableJob: a removal reads the copy's
// version, then deletes by _id (FerretDB runs other filters in Go), so a
// newer copy written in between goes too. What it leaves is a runnable
// job without a copy, which no server is offered. Here the removal, from a
// transition to version 1 that took the job out of the queue, meets the
// job queued again at version 2 and its copy not yet replaced: after it the
// job must have its copy.
func TestDropQueuedKeepsTheCopyOfARunnableJob(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	job := insertQueued(t, s, 50)
	moveStored(t, s, job, 2)
	if _, err := s.dropQueued(ctx, job.Priority, job.ID, 1); err != nil {
		t.Fatal(err)
	}
	if v := copyVersion(t, s, job); v != 2 {
		t.Fatalf("copy of the job queued at version 2 after a removal from version 1: version %d, want 2 (-1: no copy)", v)
	}
	// A removal for a job that left the queue still removes.
	gone := insertQueued(t, s, 50)
	if _, err := s.jobs().DeleteOne(ctx, bson.D{{Key: "_id", Value: gone.ID}}); err != nil {
		t.Fatal(err)
	}
	if dropped, err := s.dropQueued(ctx, gone.Priority, gone.ID, 0); err != nil || !dropped {
		t.Fatalf("dropQueued of a deleted job's copy: dropped %v (%v), want true", dropped, err)
	}
	if v := copyVersion(t, s, gone); v != -1 {
		t.Fatalf("copy of a deleted job: version %d, want none", v)
	}
}

// TestPutQueuedLeavesNoOlderCopy: a copy is written by _id after its
// version was read, so a writer holding version 1 can overwrite the copy
// of version 2 written in between. Here the write of version 1 replaces an
// older copy while the job is stored at version 2: the copy must end at 2.
func TestPutQueuedLeavesNoOlderCopy(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	job := insertQueued(t, s, 50)
	stale := *job
	stale.Version = 1
	moveStored(t, s, job, 2)
	if wrote, err := s.putQueued(ctx, &stale); err != nil || !wrote {
		t.Fatalf("putQueued over an older copy: wrote %v (%v), want true", wrote, err)
	}
	if v := copyVersion(t, s, job); v != 2 {
		t.Fatalf("copy after writing version 1 while the job is at version 2: version %d, want 2", v)
	}
	// The stored job moved to another priority: the copy at the old one goes.
	stale.Version = 3
	if _, err := s.jobs().UpdateOne(ctx, bson.D{{Key: "_id", Value: job.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: 4}, {Key: "priority", Value: 10}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.putQueued(ctx, &stale); err != nil {
		t.Fatal(err)
	}
	if v := copyVersion(t, s, job); v != -1 {
		t.Fatalf("copy at priority 50 of a job moved to 10: version %d, want none", v)
	}
	moved := *job
	moved.Priority = 10
	if v := copyVersion(t, s, &moved); v != 4 {
		t.Fatalf("copy at priority 10: version %d, want 4", v)
	}
}

// TestQueueWritesAfterALostAnswer: a copy's replace or removal applied
// whose answer is lost is retried, and the retry finds the copy as new (its
// own replace) or gone (its own removal). The job must still be read after
// it, as after any replace or removal: the write may have landed over a
// newer transition's copy (here the job is stored at version 2 and the
// write is of, or from, version 1).
func TestQueueWritesAfterALostAnswer(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	for _, tc := range []struct {
		command string
		write   func(s *Store, job *model.Job) error
	}{
		{"update", func(s *Store, job *model.Job) error {
			stale := *job
			stale.Version = 1
			_, err := s.putQueued(ctx, &stale)
			return err
		}},
		{"delete", func(s *Store, job *model.Job) error {
			_, err := s.dropQueued(ctx, job.Priority, job.ID, 1)
			return err
		}},
	} {
		t.Run(tc.command, func(t *testing.T) {
			s := openInternal(t)
			job := insertQueued(t, s, 50)
			moveStored(t, s, job, 2)
			d := &lossyDialer{match: [][]byte{[]byte("\x02" + tc.command + "\x00"), []byte("queue_p050")}}
			s.jobsDB = lossyClient(t, d).Database(s.jobsDB.Name())
			d.armed.Store(true)
			if err := tc.write(s, job); err != nil {
				t.Fatal(err)
			}
			if d.armed.Load() {
				t.Fatal("no answer was lost")
			}
			if v := copyVersion(t, s, job); v != 2 {
				t.Fatalf("copy after the %s command of version 1 whose answer was lost, the job at version 2: version %d, want 2 (-1: no copy)", tc.command, v)
			}
		})
	}
}

// TestRerunRacingALateStartDropIsRepaired: a held start written with the
// run's end removes the job's copy by _id alone after the job write
// (dropStarted, batched with other workers'). A rerun of the job that
// lands in between writes a copy that this removal then deletes. The rerun
// leaves its queue intent, so that the minute's housekeeping
// (RepairIntents) writes the copy again; without it the job was hidden
// from every server until the hourly reconciliation.
func TestRerunRacingALateStartDropIsRepaired(t *testing.T) {
	dbtest.RequireFerretDB(t)
	holdFor(t, time.Minute) // the end comes within the hold
	ctx := context.Background()
	s := openInternal(t)
	job := insertQueued(t, s, 50)
	started, err := s.StartHeld(ctx, job, Change{Server: new("srv")}, "srv")
	if err != nil {
		t.Fatal(err)
	}
	// The removal waits behind other workers' (a gate here).
	w := s.jobWriters()
	write := w.drops.write
	entered, release := make(chan struct{}, 1), make(chan struct{})
	w.drops.write = func(ctx context.Context, d []dropCopy) []struct{} {
		entered <- struct{}{}
		<-release
		return write(ctx, d)
	}
	failed := make(chan error, 1)
	go func() {
		_, err := s.Do(ctx, started, Fail(&model.Failure{Message: "boom"}, time.Now(), Counts{}), "srv")
		failed <- err
	}()
	<-entered
	stored, err := s.GetJob(ctx, job.ID)
	if err != nil || stored.State != model.StateFailed {
		t.Fatalf("job while its start's copy removal waits: %+v (%v), want failed", stored, err)
	}
	rerun, err := s.Do(ctx, stored, Rerun(time.Now()), "client")
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-failed; err != nil {
		t.Fatal(err)
	}
	w.drops.write = write
	if _, err := s.RepairIntents(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v := copyVersion(t, s, rerun); v != rerun.Version {
		t.Fatalf("copy of the rerun job (version %d) after the housekeeping: version %d (-1: none)", rerun.Version, v)
	}
}

// TestResumeAndOldRerunLeaveNoIntent: only a simple job made runnable while
// its start's copy removal may be on its way keeps its queue intent (a
// rerun right after its end, TestRerunRacingALateStartDropIsRepaired). A
// resume of a job paused while queued, or a rerun of a job that ended
// long ago, leaves none: a bulk resume would otherwise leave an intent per
// job, each read by the minute's repair.
func TestResumeAndOldRerunLeaveNoIntent(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	intents := func() int64 { return intentCount(t, s) }
	job := insertQueued(t, s, 50)
	paused, err := s.Do(ctx, job, Pause(), "client")
	if err != nil {
		t.Fatal(err)
	}
	resumed, err := s.Do(ctx, paused, Resume(false), "client")
	if err != nil {
		t.Fatal(err)
	}
	if n := intents(); n != 0 {
		t.Fatalf("%d intents after a resume, want 0", n)
	}
	running, err := s.Do(ctx, resumed, StartRun("srv", 1, time.Now()), "srv")
	if err != nil {
		t.Fatal(err)
	}
	failed, err := s.Do(ctx, running, Fail(&model.Failure{Message: "boom"}, time.Now().Add(-time.Hour), Counts{}), "srv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do(ctx, failed, Rerun(time.Now()), "client"); err != nil {
		t.Fatal(err)
	}
	if n := intents(); n != 0 {
		t.Fatalf("%d intents after a rerun of a job that ended an hour ago, want 0", n)
	}
}

// TestPriorityMoveKeepsTheRunningEntry: a running job moved from priority
// 50 to 20 and straight back (two clients) has its running entry removed
// at 50 by the first move (its state index removal reads the entry, then
// deletes by _id) after the second move wrote it there again. The first
// move reads the job once its removals are done and writes the entry back:
// the rescuer and the minute's sweep find running jobs by these entries.
func TestPriorityMoveKeepsTheRunningEntry(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	job := queuedSimple(50)
	job.Kind, job.State, job.Step = model.KindSliced, model.StateRunning, model.StepProcessing
	if err := s.InsertJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	// As stored after both moves: at 50 again, version 2, its entry gone.
	stored := moveStored(t, s, job, 2)
	if _, err := s.stateColl(model.StateRunning, 50).DeleteOne(ctx, bson.D{{Key: "_id", Value: job.ID}}); err != nil {
		t.Fatal(err)
	}
	// The first move's removal at 50, late (its entry at 20 is already
	// removed by the move back).
	moved := *job
	moved.Version, moved.Priority = 1, 20
	s.syncStateChanges(ctx, []stateChange{{before: job, after: &moved, part: stateDrop}})
	running, err := s.RunningJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(running) != 1 || running[0].ID != stored.ID || running[0].Version != stored.Version {
		t.Fatalf("running jobs after a late priority move: %v, want the job at version %d", jobIDs(running), stored.Version)
	}
}

// TestQueueWhole: a run queue is whole on a database new to this build
// (marked before its first job) and after a reconcile, not on one whose
// jobs an earlier build wrote.
func TestQueueWhole(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	fresh := openInternal(t) // marks the new database
	if whole, err := fresh.QueueWhole(ctx); err != nil || !whole {
		t.Fatalf("a new database's run queue: whole %v (%v), want whole", whole, err)
	}

	jobsDB, workDB := dbtest.DBNames(t)
	s, err := Open(ctx, Config{URI: dbtest.URI(), DB: jobsDB, WorkDB: workDB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(ctx) })
	if _, err := s.jobs().InsertOne(ctx, queuedSimple(50)); err != nil { // an earlier build's job: no copy
		t.Fatal(err)
	}
	if err := s.MarkNewStateIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if whole, err := s.QueueWhole(ctx); err != nil || whole {
		t.Fatalf("a run queue of jobs an earlier build wrote: whole %v (%v), want not", whole, err)
	}
	if fixed, err := s.ReconcileQueue(ctx); err != nil || fixed != 1 {
		t.Fatalf("reconcile: %d fixed (%v), want the job's copy", fixed, err)
	}
	if whole, err := s.QueueWhole(ctx); err != nil || !whole {
		t.Fatalf("after a reconcile: whole %v (%v), want whole", whole, err)
	}
}
