package store_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// An instance that ends twice (it ran again after its server was declared
// dead) proposes a successor for a later tick the second time: the chain
// must not fork, the first successor stands.
func TestCronSuccessorIsRecordedOncePerInstance(t *testing.T) {
	s, jobsDB := openNamed(t)
	ctx := context.Background()
	const spec = "*/2 * * * * *"
	tick := time.Now().UTC().Truncate(time.Second)
	instance := model.CronJobID("count", spec, tick)
	proposal := func(at time.Time) *model.Job {
		return &model.Job{ID: model.CronJobID("count", spec, at), Type: "count", Kind: model.KindSimple, State: model.StateQueued,
			Priority: 50, Cron: spec, RunAt: at, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	}
	if err := s.InsertJob(ctx, proposal(tick)); err != nil {
		t.Fatal(err)
	}
	first, err := s.EnqueueCronSuccessor(ctx, instance, proposal(tick.Add(2*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.EnqueueCronSuccessor(ctx, instance, proposal(tick.Add(6*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || !again.RunAt.Equal(first.RunAt) {
		t.Fatalf("second end of the instance enqueued %s at %s, want the recorded %s at %s", again.ID.Hex(), again.RunAt, first.ID.Hex(), first.RunAt)
	}
	jobs, err := s.ListJobs(ctx, store.JobFilter{Type: "count"})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].ID != instance && jobs[1].ID != instance || jobs[0].ID != first.ID && jobs[1].ID != first.ID {
		t.Fatalf("jobs after two ends of one instance: %d (%v), want the instance and its first successor", len(jobs), jobs)
	}
	// Deleting the instance's successor record with the instance: a new
	// chain at the same tick starts clean.
	if err := s.DeleteJob(ctx, instance); err != nil {
		t.Fatal(err)
	}
	other := model.CronJobID("count", spec, tick.Add(time.Hour))
	if got, err := s.EnqueueCronSuccessor(ctx, other, proposal(tick.Add(time.Hour+2*time.Second))); err != nil || got.ID == first.ID {
		t.Fatalf("another instance's successor: %v, %v", got, err)
	}
	n, err := dbtest.Client(t).Database(jobsDB).Collection("cron_successors").CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Fatalf("%d successor records after deleting one instance, want 1 (err %v)", n, err)
	}
}
