package server_test

import (
	"context"
	"testing"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// TestLiveServerGivesBackAPhantomRun: a job says it runs on a live server
// that does not run it (its start's claim went in, the job update failed
// in a database outage, and another process rolled the claim forward
// later). Rescuers only look at dead servers' jobs; the server itself must
// notice and give the job back, which then runs and completes.
func TestLiveServerGivesBackAPhantomRun(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	st := clientstore.Of(b.client)
	job, err := b.client.Enqueue(ctx, "nap", examples.NapArgs{}, nil)
	must(t, err)
	if _, err := st.Transition(ctx, (*model.Job)(job), model.StateRunning, store.Change{Server: new("s1"), Attempt: new(1)}, "s1"); err != nil {
		t.Fatal(err)
	}
	b.startServer(t, "s1", 2)
	got := b.wait(t, job.ID.Hex())
	if got.State != rocketjob.StateCompleted {
		t.Fatalf("job %s, want completed", got.State)
	}
	if got.Attempt < 2 {
		t.Fatalf("job completed at attempt %d: it was not run again after it was given back", got.Attempt)
	}
}
