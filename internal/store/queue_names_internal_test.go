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
