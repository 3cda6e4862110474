package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

func TestExpiredJobNeverRuns(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	expired, err := b.client.Enqueue(ctx, "count", nil, &rocketjob.EnqueueOptions{ExpiresAt: time.Now().Add(-time.Millisecond)})
	must(t, err)
	fresh, err := b.client.Enqueue(ctx, "count", nil, &rocketjob.EnqueueOptions{ExpiresAt: time.Now().Add(time.Hour)})
	must(t, err)
	b.startServer(t, "s1", 1)
	got := b.wait(t, expired.ID.Hex())
	if got.State != rocketjob.StateAborted || got.Failure == nil || !strings.HasPrefix(got.Failure.Message, "expired") {
		t.Fatalf("expired job: %s %+v", got.State, got.Failure)
	}
	if got := b.wait(t, fresh.ID.Hex()); got.State != rocketjob.StateCompleted {
		t.Fatalf("job expiring later: %s", got.State)
	}
	if _, ran := b.runs.Load(expired.ID.Hex()); ran {
		t.Fatal("the expired job ran")
	}
}

func TestDependenciesRunInOrder(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	first, err := b.client.Enqueue(ctx, "nap", examples.NapArgs{MS: 300}, &rocketjob.EnqueueOptions{Priority: 90})
	must(t, err)
	// Higher priority than its dependency, yet it must wait for it.
	then, err := b.client.Enqueue(ctx, "count", nil, &rocketjob.EnqueueOptions{Priority: 1, DependsOn: []string{first.ID.Hex()}})
	must(t, err)
	failing, err := b.client.Enqueue(ctx, "nap", examples.NapArgs{MS: 1, Fail: true}, nil)
	must(t, err)
	doomed, err := sliced.Upload(ctx, b.client, "copy", strings.NewReader("a\n"), &sliced.UploadOptions{DependsOn: []string{failing.ID.Hex()}})
	must(t, err)
	if _, err := b.client.Enqueue(ctx, "count", nil, &rocketjob.EnqueueOptions{DependsOn: []string{"000000000000000000000000"}}); err == nil {
		t.Fatal("a dependency on a job that does not exist was accepted")
	}
	b.startServer(t, "s1", 2)
	f, th := b.wait(t, first.ID.Hex()), b.wait(t, then.ID.Hex())
	if th.State != rocketjob.StateCompleted || th.StartedAt.Before(*f.CompletedAt) {
		t.Fatalf("dependent job %s started %s, its dependency completed %s", th.State, th.StartedAt, f.CompletedAt)
	}
	got := b.wait(t, doomed.ID.Hex())
	if got.State != rocketjob.StateFailed || got.Failure == nil || !strings.Contains(got.Failure.Message, "dependency "+failing.ID.Hex()+" is failed") {
		t.Fatalf("job depending on a failed one: %s %+v", got.State, got.Failure)
	}
}

// A job left running on a server that no longer exists (its claim was rolled
// forward after the server was rescued and removed) is requeued and runs.
func TestJobOfAVanishedServerIsRequeued(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	job, err := b.client.Enqueue(ctx, "count", nil, nil)
	must(t, err)
	// What a rolled-forward claim of server "ghost" leaves behind.
	_, err = clientstore.Of(b.client).Transition(ctx, (*model.Job)(job), rocketjob.StateRunning, store.Change{
		Server: new("ghost"), Attempt: new(1)}, "ghost")
	must(t, err)
	b.startServer(t, "s1", 1)
	if got := b.wait(t, job.ID.Hex()); got.State != rocketjob.StateCompleted || got.Attempt != 2 {
		t.Fatalf("job of a vanished server: %s, attempt %d", got.State, got.Attempt)
	}
}
