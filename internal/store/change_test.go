package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestChangeFieldsAreStored checks that every field of a Change lands in
// the stored job under the field the job is read from, that the job a
// transition returns is the job as stored, and that the Clear fields
// remove what they name.
func TestChangeFieldsAreStored(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	job := newJob(50)
	job.Kind = model.KindSliced
	if err := s.InsertJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	ch := store.Change{
		Server: new("s1"), Step: new(model.StepAfter), Attempt: new(3), Priority: new(7),
		Description: new("nightly"), MaxWorkers: new(4), RunAt: new(at.Add(time.Hour)),
		StartedAt: new(at), CompletedAt: new(at.Add(time.Minute)),
		Failure:    &model.Failure{Message: "boom", At: at, Server: "s1"},
		Statistics: map[string]int64{"rows": 9}, HookStatistics: map[string]int64{"mails": 1},
		Totals: &store.JobTotals{Processed: 10, FailedRecords: 1, Dropped: 2, Outputs: 7, Categories: map[string]int64{"good": 7}},
		KeyID:  new("k2"), SealedHeader: []byte("sealed"),
	}
	job, err := s.Transition(ctx, job, model.StateRunning, store.Change{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	moved, err := s.Transition(ctx, job, model.StateFailed, ch, "test")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(moved, stored) {
		t.Errorf("the transition returned\n%+v\nthe store holds\n%+v", moved, stored)
	}
	want := *job
	want.State, want.Version = model.StateFailed, job.Version+1
	want.Server, want.Step, want.Attempt, want.Priority = "s1", model.StepAfter, 3, 7
	want.Description, want.MaxWorkers, want.RunAt = "nightly", 4, at.Add(time.Hour)
	want.StartedAt, want.CompletedAt = new(at), new(at.Add(time.Minute))
	want.Failure = ch.Failure
	want.Statistics, want.HookStatistics = ch.Statistics, ch.HookStatistics
	want.ProcessedCount, want.FailedRecordCount, want.DroppedCount, want.OutputCount = 10, 1, 2, 7
	want.Totals, want.Categories = true, ch.Totals.Categories
	want.KeyID, want.SealedHeader = "k2", []byte("sealed")
	want.RunAt, want.CreatedAt = want.RunAt.UTC(), stored.CreatedAt
	if !reflect.DeepEqual(stored, &want) {
		t.Errorf("stored\n%+v\nwant\n%+v", stored, &want)
	}

	cleared, err := s.Transition(ctx, stored, model.StateQueued, store.Change{ClearServer: true, ClearFailure: true, ClearCompletedAt: true}, "test")
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Server != "" || again.Failure != nil || again.CompletedAt != nil || cleared.Server != "" || cleared.Failure != nil || cleared.CompletedAt != nil {
		t.Errorf("cleared: stored server %q failure %v completed %v; returned server %q failure %v completed %v",
			again.Server, again.Failure, again.CompletedAt, cleared.Server, cleared.Failure, cleared.CompletedAt)
	}
	if again.Priority != 7 || again.Description != "nightly" {
		t.Errorf("a change without those fields changed them: priority %d, description %q", again.Priority, again.Description)
	}
}
