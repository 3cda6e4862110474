package rocketjob_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

func TestRunNowMakesAScheduledJobDue(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	later, err := c.Enqueue(ctx, "send_email", emailArgs{To: "a"}, &rocketjob.EnqueueOptions{RunAt: time.Now().Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	job, err := c.RunNow(ctx, later.ID.Hex())
	if err != nil {
		t.Fatal(err)
	}
	if job.State != rocketjob.StateQueued || job.RunAt.Before(before) || job.RunAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("after RunNow: %s, run at %s, want queued and due now", job.State, job.RunAt)
	}
	if _, err := c.Pause(ctx, later.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	var it *rocketjob.InvalidTransitionError
	if _, err := c.RunNow(ctx, later.ID.Hex()); !errors.As(err, &it) {
		t.Fatalf("RunNow on a paused job: %v, want an InvalidTransitionError", err)
	}
}

func TestEditChangesDescriptionAndRefusesBadCaps(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	j, err := c.Enqueue(ctx, "send_email", emailArgs{To: "a"}, &rocketjob.EnqueueOptions{Description: "old"})
	if err != nil {
		t.Fatal(err)
	}
	desc := "new text"
	got, err := c.Edit(ctx, j.ID.Hex(), rocketjob.JobEdit{Description: &desc})
	if err != nil || got.Description != desc {
		t.Fatalf("Edit description: %v, %v", got, err)
	}
	if again, err := c.Get(ctx, j.ID.Hex()); err != nil || again.Description != desc {
		t.Fatalf("stored description: %v, %v", again, err)
	}
	two, neg := 2, -1
	if _, err := c.Edit(ctx, j.ID.Hex(), rocketjob.JobEdit{MaxWorkers: &two}); !errors.Is(err, rocketjob.ErrBadArgs) {
		t.Fatalf("max workers on a simple job: %v, want ErrBadArgs", err)
	}
	if _, err := c.Edit(ctx, j.ID.Hex(), rocketjob.JobEdit{MaxWorkers: &neg}); !errors.Is(err, rocketjob.ErrBadArgs) {
		t.Fatalf("negative max workers: %v, want ErrBadArgs", err)
	}
	if _, err := c.Abort(ctx, j.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	var it *rocketjob.InvalidTransitionError
	if _, err := c.Edit(ctx, j.ID.Hex(), rocketjob.JobEdit{Description: &desc}); !errors.As(err, &it) {
		t.Fatalf("Edit of an aborted job: %v, want an InvalidTransitionError", err)
	}
}

func TestPauseAllAndResumeAllByType(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	for range 3 {
		if _, err := c.Enqueue(ctx, "send_email", emailArgs{To: "a"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.PauseAll(ctx, "other_type"); err != nil || n != 0 {
		t.Fatalf("PauseAll of another type: %d, %v, want 0", n, err)
	}
	if n, err := c.PauseAll(ctx, "send_email"); err != nil || n != 3 {
		t.Fatalf("PauseAll: %d, %v, want 3", n, err)
	}
	paused, err := c.List(ctx, &rocketjob.ListOptions{States: []rocketjob.State{rocketjob.StatePaused}})
	if err != nil || len(paused) != 3 {
		t.Fatalf("paused jobs: %d, %v, want 3", len(paused), err)
	}
	if n, err := c.ResumeAll(ctx, ""); err != nil || n != 3 {
		t.Fatalf("ResumeAll: %d, %v, want 3", n, err)
	}
	queued, err := c.List(ctx, &rocketjob.ListOptions{States: []rocketjob.State{rocketjob.StateQueued}})
	if err != nil || len(queued) != 3 {
		t.Fatalf("queued jobs after ResumeAll: %d, %v, want 3", len(queued), err)
	}
}
