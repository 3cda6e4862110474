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

// holdFor sets how long starts are held for the rest of the test.
func holdFor(t *testing.T, d time.Duration) {
	old := startHold
	startHold = d
	t.Cleanup(func() { startHold = old })
}

// TestHeldStartWrittenWithTheEnd: a simple job started with StartHeld and
// ended before its hold is over is written once, with both moves: it ends
// completed two versions on with the start's fields, it never gets a
// running entry in the state index (the rescuer finds no running job), and
// its end makes no claim (the start's decides both).
func TestHeldStartWrittenWithTheEnd(t *testing.T) {
	dbtest.RequireFerretDB(t)
	holdFor(t, time.Minute) // the end comes within the hold, however slow the machine
	ctx := context.Background()
	s := openInternal(t)
	job := insertQueued(t, s, 50)
	now := time.Now().UTC()
	started, err := s.StartHeld(ctx, job, Change{Server: new("srv"), StartedAt: &now, Attempt: new(1)}, "srv")
	if err != nil {
		t.Fatal(err)
	}
	if started.State != model.StateRunning || started.Version != 1 || started.Server != "srv" {
		t.Fatalf("StartHeld returned %+v, want running at version 1 on srv", started)
	}
	// Held, the job is stored queued and keeps its run-queue copy: were
	// this process killed now, other servers would still find it.
	if queued, err := s.RunnableJobs(ctx, time.Now(), 10, nil); err != nil || len(queued) != 1 || queued[0].ID != job.ID {
		t.Fatalf("runnable jobs while the start is held: %v (%v), want the job", jobIDs(queued), err)
	}
	if _, err := s.Transition(ctx, started, model.StateCompleted, Change{CompletedAt: new(time.Now())}, "srv"); err != nil {
		t.Fatal(err)
	}
	if queued, err := s.RunnableJobs(ctx, time.Now(), 10, nil); err != nil || len(queued) != 0 {
		t.Fatalf("runnable jobs after the end: %v (%v), want none", jobIDs(queued), err)
	}
	got, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != model.StateCompleted || got.Version != 2 || got.Server != "srv" || got.Attempt != 1 || got.StartedAt == nil || got.CompletedAt == nil {
		t.Fatalf("job after a held start and its end: %+v, want completed at version 2 with the start's server, attempt and started_at", got)
	}
	if running, err := s.stateEntryIDs(ctx, model.StateRunning); err != nil || len(running) != 0 {
		t.Errorf("running entries %v (%v), want none", running, err)
	}
	// The start's claim decides both moves: the end, written with it, makes
	// no claim of its own.
	for v, want := range []int64{1, 0} {
		n, err := s.jobClaims().CountDocuments(ctx, bson.D{{Key: "_id", Value: claimID(&model.Job{ID: job.ID, Version: int64(v)})}})
		if err != nil || n != want {
			t.Errorf("claims of version %d: %d (%v), want %d", v, n, err, want)
		}
	}
	if done, err := s.stateEntryIDs(ctx, model.StateCompleted); err != nil || !slices.Contains(done, job.ID) {
		t.Errorf("completed entries %v (%v), want the job's", done, err)
	}
}

// TestHeldStartWrittenAlone: a held start whose job does not move on within
// the hold is written alone, with its running entry: the job is then
// stored running, found by RunningJobs, and its end is written as usual.
func TestHeldStartWrittenAlone(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	job := insertQueued(t, s, 50)
	started, err := s.StartHeld(ctx, job, Change{Server: new("srv")}, "srv")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := s.GetJob(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == model.StateRunning && got.Version == 1 {
			break
		}
		if got.Version != 0 || time.Now().After(deadline) {
			t.Fatalf("held start not written alone: job %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if running, err := s.RunningJobs(ctx); err != nil || len(running) != 1 || running[0].ID != job.ID {
		t.Fatalf("running jobs %v (%v), want the job", jobIDs(running), err)
	}
	for { // its run-queue copy goes right after
		queued, err := s.RunnableJobs(ctx, time.Now(), 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(queued) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run-queue copy of a started job stays: %v", jobIDs(queued))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := s.Transition(ctx, started, model.StateCompleted, Change{}, "srv"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetJob(ctx, job.ID); err != nil || got.State != model.StateCompleted || got.Version != 2 {
		t.Fatalf("after the end: %+v (%v), want completed at version 2", got, err)
	}
	if running, err := s.RunningJobs(ctx); err != nil || len(running) != 0 {
		t.Errorf("running jobs after the end %v (%v), want none", jobIDs(running), err)
	}
}

// TestHeldStartExcludesOthers: while a start is held, the job is stored at
// the version the start moves it from, and no other transition from that
// version can be made (the start's claim decides it).
func TestHeldStartExcludesOthers(t *testing.T) {
	dbtest.RequireFerretDB(t)
	holdFor(t, time.Minute)
	ctx := context.Background()
	s := openInternal(t)
	job := insertQueued(t, s, 50)
	started, err := s.StartHeld(ctx, job, Change{Server: new("a")}, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transition(ctx, job, model.StateAborted, Change{}, "b"); err == nil {
		t.Fatal("a transition from the held start's version was made")
	}
	if _, err := s.Transition(ctx, started, model.StateQueued, Change{ClearServer: true}, "a"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetJob(ctx, job.ID)
	if err != nil || got.State != model.StateQueued || got.Version != 2 || got.Server != "" {
		t.Fatalf("after a give-back: %+v (%v), want queued at version 2 without a server", got, err)
	}
}

// TestMergeUpdates: the merged update makes the first update, then the
// second: the second's $set and $unset win for the fields both name.
func TestMergeUpdates(t *testing.T) {
	a := bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: "running"}, {Key: "server", Value: "s"}, {Key: "x", Value: 1}}},
		{Key: "$unset", Value: bson.D{{Key: "failure", Value: ""}, {Key: "y", Value: ""}}}}
	b := bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: "queued"}, {Key: "y", Value: 2}}},
		{Key: "$unset", Value: bson.D{{Key: "server", Value: ""}}}}
	got := mergeUpdates(a, b)
	want := bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}, {Key: "state", Value: "queued"}, {Key: "y", Value: 2}}},
		{Key: "$unset", Value: bson.D{{Key: "failure", Value: ""}, {Key: "server", Value: ""}}}}
	gb, _ := bson.Marshal(got)
	wb, _ := bson.Marshal(want)
	if !slices.Equal(gb, wb) {
		t.Errorf("mergeUpdates = %v, want %v", got, want)
	}
}
