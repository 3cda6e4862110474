package server_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// A job written without its copy in the run queue into a database whose
// run queue is not known whole (written by a build from before the run
// queue) is found by the reconcile that the first server runs at once (on
// other databases one server an hour runs it), and runs.
func TestJobWithoutRunQueueCopyRuns(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	now := time.Now().UTC()
	job := model.Job{ID: bson.NewObjectID(), Type: "count", Kind: model.KindSimple, State: model.StateQueued,
		Priority: 50, RunAt: now, CreatedAt: now}
	_, err := dbtest.Client(t).Database(b.jobs).Collection("jobs").InsertOne(ctx, job)
	must(t, err)
	if got, err := clientstore.Of(b.client).RunnableJobs(ctx, now, 50, nil); err != nil || len(got) != 0 {
		t.Fatalf("before any server ran: %d runnable, %v; want none (no copy)", len(got), err)
	}
	b.startServer(t, "s1", 1)
	if got := b.wait(t, job.ID.Hex()); got.State != rocketjob.StateCompleted {
		t.Fatalf("job without a run-queue copy: %s", got.State)
	}
}
