package store_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// claimFor writes, behind the store's back, the transition claim a server
// made just before it was killed: the job is still at the claimed version.
func claimFor(t *testing.T, jobsDB string, job *model.Job, by string, at time.Time, set bson.D) {
	t.Helper()
	update, err := bson.Marshal(bson.D{{Key: "$set", Value: append(bson.D{{Key: "version", Value: job.Version + 1}}, set...)}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dbtest.Client(t).Database(jobsDB).Collection("job_claims").InsertOne(context.Background(), bson.D{
		{Key: "_id", Value: job.ID.Hex() + ":" + strconv.FormatInt(job.Version, 10)}, {Key: "by", Value: by}, {Key: "at", Value: at},
		{Key: "update", Value: bson.Binary{Data: update}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A start claimed by a server that was killed before applying it, and
// rescued (its document removed) before anyone rolled the claim forward:
// the roll-forward gives the run straight back instead of leaving the job
// running on a server that no longer exists until the once-a-minute sweep.
func TestRollForwardOntoAGoneServerRequeues(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s, jobsDB := openNamed(t)
	job := newJob(50)
	if err := s.InsertJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	claimFor(t, jobsDB, job, "dead", time.Now().Add(-time.Minute), bson.D{
		{Key: "state", Value: model.StateRunning}, {Key: "server", Value: "dead"}})
	// Another worker tries to start the job from the version it read.
	_, err := s.Transition(ctx, job, model.StateRunning, store.Change{Server: new("live")}, "live")
	if !errors.Is(err, model.ErrConflict) {
		t.Fatalf("transition over a pending claim: %v, want a conflict", err)
	}
	got, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != model.StateQueued || got.Server != "" || got.Version != job.Version+2 {
		t.Fatalf("job after the roll-forward: %s on %q at version %d, want queued, no server, version %d",
			got.State, got.Server, got.Version, job.Version+2)
	}
}

// TestDeleteJobAtRollsADeadWritersClaimForward: a deleter (retention at a
// shutdown, say) or a server died between its claim of a job's version and
// its write. Nobody else moves a finished job, so the deletion that meets
// that claim rolls it forward, as a transition would, and the next try
// (Client.Destroy reads the job again) deletes the job.
func TestDeleteJobAtRollsADeadWritersClaimForward(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s, jobsDB := openNamed(t)
	job := newJob(50)
	if err := s.InsertJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	claimFor(t, jobsDB, job, "destroy", time.Now().Add(-time.Hour), nil)
	if err := s.DeleteJobAt(ctx, job.ID, job.Version); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("deleting a job held by a dead writer's claim: %v, want ErrConflict (the claim rolled forward)", err)
	}
	cur, err := s.GetJob(ctx, job.ID)
	if err != nil || cur.Version != job.Version+1 {
		t.Fatalf("job after the deletion met the dead claim: %+v (%v), want it at version %d", cur, err, job.Version+1)
	}
	if err := s.DeleteJobAt(ctx, cur.ID, cur.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetJob(ctx, job.ID); !errors.Is(err, model.ErrJobNotFound) {
		t.Fatalf("job after the second try: %v, want it gone", err)
	}
}
