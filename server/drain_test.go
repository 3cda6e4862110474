package server_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// drain runs a draining server until it stops by itself (the test fails if
// it has not within a minute) and returns it.
func (b *bundle) drain(t *testing.T, workers int) *server.Server {
	t.Helper()
	srv, err := server.New(b.newClient(t), &server.Config{
		Name: "drainer", Workers: workers, PollInterval: 50 * time.Millisecond, ReCheck: 200 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, DeadAfter: time.Second, ShutdownTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Drain: true,
	})
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the draining server did not stop within a minute")
	}
	return srv
}

// A draining server runs every due job, sliced ones to their after step,
// then stops; a job scheduled later stays queued.
func TestDrainRunsWhatIsDueThenStops(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var due []*rocketjob.Job
	for range 5 {
		j, err := b.client.Enqueue(ctx, "count", nil, nil)
		must(t, err)
		due = append(due, j)
	}
	up, err := sliced.Upload(ctx, b.client, "after_once", strings.NewReader(lines(50, func(i int) string { return "r" })), nil)
	must(t, err)
	due = append(due, up)
	later, err := b.client.Enqueue(ctx, "count", nil, &rocketjob.EnqueueOptions{RunAt: time.Now().Add(time.Hour)})
	must(t, err)

	srv := b.drain(t, 2)
	for _, j := range due {
		if got := mustGet(t, b, j.ID.Hex()); got.State != rocketjob.StateCompleted {
			t.Errorf("job %s (%s) is %s after the drain, want completed", got.ID.Hex(), got.Type, got.State)
		}
	}
	if n := b.afterCalls.Load(); n != 1 {
		t.Errorf("after hook ran %d times, want 1", n)
	}
	if got := mustGet(t, b, later.ID.Hex()); got.State != rocketjob.StateQueued {
		t.Errorf("the job scheduled in an hour is %s, want queued", got.State)
	}
	if n := srv.FailedJobs(); n != 0 {
		t.Errorf("FailedJobs = %d, want 0", n)
	}
	list, err := b.client.Servers(ctx)
	must(t, err)
	if len(list) != 0 {
		t.Errorf("the drained server left its document: %v", list)
	}
}

// FailedJobs counts the jobs a server failed (after their retries).
func TestDrainCountsFailedJobs(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	zero := 0
	_, err := b.client.Enqueue(ctx, "nap", examples.NapArgs{Fail: true}, &rocketjob.EnqueueOptions{RetryLimit: &zero})
	must(t, err)
	_, err = b.client.Enqueue(ctx, "nap", examples.NapArgs{}, nil)
	must(t, err)
	if n := b.drain(t, 1).FailedJobs(); n != 1 {
		t.Errorf("FailedJobs = %d, want 1", n)
	}
}
