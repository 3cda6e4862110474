package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// Two servers finish a sliced job's last slices: W claimed the move to the
// after step and has not written it yet (its update is batched with its
// workers', or W was killed in between). L's maybeFinish loses to the claim
// at every look; that is no error (it was logged as ERROR "finishing a
// job: job was changed by another process"): W, or the roll-forward of its
// claim, finishes the job, and a worker that selects the job and finds no
// slice looks again.
func TestMaybeFinishLosingToAPendingAfterStepIsNoError(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	c, st, _, jobs := dirmonSetup(t) // a client with a sliced type (upcase)
	up, err := sliced.Upload(ctx, c, "upcase", strings.NewReader("a\nb\nc\n"), &sliced.UploadOptions{SliceSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	job, err := st.GetJob(ctx, up.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if job, err = st.Do(ctx, job, store.EnterStep(model.StepBefore, "x", &now), "x"); err != nil {
		t.Fatal(err)
	}
	if job, err = st.Do(ctx, job, store.StartProcessing(nil), "x"); err != nil {
		t.Fatal(err)
	}
	cl, err := st.Slices().NewFeeder(job.ID, "x", job.SliceCount).Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Slices().Complete(ctx, job.ID, cl, store.Result{}); err != nil {
		t.Fatal(err)
	}
	upd, _ := bson.Marshal(bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: job.Version + 1}, {Key: "step", Value: model.StepAfter}, {Key: "server", Value: "W"}}}})
	_, err = dbtest.Client(t).Database(jobs).Collection("job_claims").InsertOne(ctx, bson.D{
		{Key: "_id", Value: fmt.Sprintf("%s:%d", job.ID.Hex(), job.Version)}, {Key: "by", Value: "W"},
		{Key: "at", Value: time.Now()}, {Key: "update", Value: bson.Binary{Data: upd}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(c, &Config{Name: "L"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.maybeFinish(ctx, nil, job.ID); err != nil {
		t.Fatalf("maybeFinish: %v (logged as ERROR 'finishing a job')", err)
	}
	got, err := st.GetJob(ctx, job.ID)
	if err != nil || got.Version != job.Version || got.Step != model.StepProcessing {
		t.Fatalf("the job after L lost: %+v, %v; want it untouched at version %d (W's claim holds it)", got, err, job.Version)
	}
}
