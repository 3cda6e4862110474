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

// TestSelectionsSeeNewQueueCollections: a Store selects from the
// collection names it read while the wake-up token is unchanged. A
// collection created with a wake-up is selected from at once; one created
// without (a writer of an earlier build) within queueNamesTTL.
func TestSelectionsSeeNewQueueCollections(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	insertQueued(t, s, 50)
	offered := func(id bson.ObjectID) bool {
		jobs, err := s.RunnableJobs(ctx, time.Now(), 50, nil)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(jobs, func(j model.Job) bool { return j.ID == id })
	}
	// rawQueued writes a job and its copy into its priority's collection,
	// new, as a writer that does not wake would.
	rawQueued := func(priority int) *model.Job {
		job := queuedSimple(priority)
		if _, err := s.jobs().InsertOne(ctx, job); err != nil {
			t.Fatal(err)
		}
		if _, err := s.queue(priority).InsertOne(ctx, job); err != nil {
			t.Fatal(err)
		}
		return job
	}
	offered(bson.NilObjectID) // the names are read, and kept

	woken := rawQueued(30)
	s.Wake(ctx)
	if !offered(woken.ID) {
		t.Fatal("a job in a new collection, the servers woken, is not offered at once")
	}

	silent := rawQueued(20)
	start := time.Now()
	for !offered(silent.ID) {
		if time.Since(start) > 10*queueNamesTTL {
			t.Fatalf("a job in a new collection written without a wake-up is not offered after %v", time.Since(start))
		}
		time.Sleep(queueNamesTTL / 10)
	}
}

// TestPriorityMoveRepairedFirstIsOfferedAtOnce: a priority change 50 -> 10
// (into a collection no selection has listed yet) whose copy a worker's
// repair wrote first (it tripped over the stale copy at 50): the writer's
// sync finds the copy there and still wakes the servers, so the next
// selection offers the job first. (Found by a review.)
func TestPriorityMoveRepairedFirstIsOfferedAtOnce(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	for range 3 {
		insertQueued(t, s, 50)
	}
	job := insertQueued(t, s, 50)
	if got := runnableIDs(t, s); len(got) != 4 { // the names are read, and kept
		t.Fatalf("offered %d, want 4", len(got))
	}
	// The writer's job write (its claim won the version).
	if _, err := s.jobs().UpdateOne(ctx, bson.D{{Key: "_id", Value: job.ID}}, bson.D{{Key: "$set",
		Value: bson.D{{Key: "priority", Value: 10}, {Key: "version", Value: job.Version + 1}}}}); err != nil {
		t.Fatal(err)
	}
	moved, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RepairQueued(ctx, job); err != nil { // a worker trips over the copy at 50 first
		t.Fatal(err)
	}
	if err := s.syncQueue(ctx, job, moved); err != nil { // the writer's sync: the copy is there
		t.Fatal(err)
	}
	jobs, err := s.RunnableJobs(ctx, time.Now(), 10, nil)
	if err != nil || len(jobs) == 0 || jobs[0].ID != job.ID {
		t.Fatalf("the next selection offers %d jobs (%v), not the priority-10 job first", len(jobs), err)
	}
}

// TestOrphanInfoWakesNobody: the reconcile's deletes of the info of
// segments gone long ago (dropped by an earlier build) do not wake the
// servers: no Store lists those segments. (Found by a review.)
func TestOrphanInfoWakesNobody(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	s.Wake(ctx)
	before, err := s.WakeToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		name := segmentName(50, bson.NewObjectID(), bson.NewObjectID(), time.Now().Add(-2*segmentSettle))
		if _, err := s.jobsDB.Collection(segmentInfoColl).InsertOne(ctx, segmentInfo{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.dropOrphanInfo(ctx); err != nil {
		t.Fatal(err)
	}
	if infos, err := s.segmentInfos(ctx); err != nil || len(infos) != 0 {
		t.Fatalf("orphan info left: %d (%v)", len(infos), err)
	}
	if after, err := s.WakeToken(ctx); err != nil || after != before {
		t.Fatalf("deleting orphan info woke the servers (token %s -> %s, %v)", before.Hex(), after.Hex(), err)
	}
}
