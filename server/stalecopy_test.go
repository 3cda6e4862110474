package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// TestStaleRunQueueCopyDoesNotStallAJob: a server killed between a job
// write and its run-queue copy leaves a copy that still says the job is
// in its before step on that server, while the job went on to its slices.
// Servers must not leave the job alone on the word of that copy: the job
// completes.
func TestStaleRunQueueCopyDoesNotStallAJob(t *testing.T) {
	b, st, before, copies := ghostBeforeStep(t)
	ctx := context.Background()
	var stale bson.Raw
	must(t, copies.FindOne(ctx, bson.D{{Key: "_id", Value: before.ID}}).Decode(&stale))
	if _, err := st.Transition(ctx, before, model.StateRunning, store.Change{Step: new(model.StepProcessing), ClearServer: true}, "ghost"); err != nil {
		t.Fatal(err)
	}
	// The ghost dies before its copy follows: the copy is the one of the before step.
	if _, err := copies.ReplaceOne(ctx, bson.D{{Key: "_id", Value: before.ID}}, stale); err != nil {
		t.Fatal(err)
	}
	b.startServer(t, "s1", 2)
	if got := b.wait(t, before.ID.Hex()); got.State != rocketjob.StateCompleted || got.ProcessedCount != 6 {
		t.Fatalf("job %s with %d records processed, want completed with 6", got.State, got.ProcessedCount)
	}
}

// TestLostRunQueueCopyIsOfferedAgain: a running sliced job whose run-queue
// copy is gone (its writer killed, a write that raced) is offered again by
// the minute's sweep, not left until the hourly reconciliation: the job
// completes.
func TestLostRunQueueCopyIsOfferedAgain(t *testing.T) {
	b, st, before, copies := ghostBeforeStep(t)
	ctx := context.Background()
	if _, err := st.Transition(ctx, before, model.StateRunning, store.Change{Step: new(model.StepProcessing), ClearServer: true}, "ghost"); err != nil {
		t.Fatal(err)
	}
	if res, err := copies.DeleteOne(ctx, bson.D{{Key: "_id", Value: before.ID}}); err != nil || res.DeletedCount != 1 {
		t.Fatalf("deleting the copy: %v %v", res, err)
	}
	b.startServer(t, "s1", 2)
	if got := b.wait(t, before.ID.Hex()); got.State != rocketjob.StateCompleted || got.ProcessedCount != 6 {
		t.Fatalf("job %s with %d records processed, want completed with 6", got.State, got.ProcessedCount)
	}
}

// ghostBeforeStep uploads a sliced job of 3 slices whose before step a
// server "ghost" (never started) holds, with the hour's full reconciliation
// of the run queue (which would mend any copy) already claimed: servers
// must mend copies when they meet them. It returns the job as stored and
// the run queue's collection of its priority.
func ghostBeforeStep(t *testing.T) (*bundle, *store.Store, *model.Job, *mongo.Collection) {
	t.Helper()
	dbtest.RequireFerretDB(t)
	b := setup(t)
	ctx := context.Background()
	st := clientstore.Of(b.client)
	if won, err := st.ClaimDeepSweep(ctx, time.Now()); err != nil || !won {
		t.Fatalf("claiming the hour's reconciliation: %v %v", won, err)
	}
	job, err := sliced.Upload(ctx, b.client, "sleep", strings.NewReader(strings.Repeat("1\n", 6)), &sliced.UploadOptions{SliceSize: 2})
	must(t, err)
	before, err := st.Transition(ctx, (*model.Job)(job), model.StateRunning, store.Change{Step: new(model.StepBefore), Server: new("ghost")}, "ghost")
	must(t, err)
	return b, st, before, dbtest.Client(t).Database(b.jobs).Collection("queue_p050")
}
