package server_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// A cron job on three servers runs once per tick and misses none.
func TestCronRunsOncePerTickAcrossServers(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	const every, tick = "*/2 * * * * *", 2 * time.Second // every other second
	if _, err := b.client.Enqueue(ctx, "count", nil, &rocketjob.EnqueueOptions{Cron: "61 * * * *"}); !errors.Is(err, rocketjob.ErrBadCron) {
		t.Fatalf("bad schedule: %v", err)
	}
	first, err := b.client.Enqueue(ctx, "count", nil, &rocketjob.EnqueueOptions{Cron: every})
	must(t, err)
	if _, err := b.client.Enqueue(ctx, "count", nil, &rocketjob.EnqueueOptions{Cron: every}); err == nil {
		t.Fatal("a second chain of the same schedule was accepted")
	}
	for _, name := range []string{"s1", "s2", "s3"} {
		b.startServer(t, name, 2)
	}
	var done []rocketjob.Job
	waitFor(t, "three runs", func() bool {
		jobs, err := b.client.List(ctx, &rocketjob.ListOptions{Type: "count", States: []rocketjob.State{rocketjob.StateCompleted}})
		done = jobs
		return err == nil && len(jobs) >= 3
	})
	live, err := b.client.List(ctx, &rocketjob.ListOptions{Type: "count", States: []rocketjob.State{rocketjob.StateQueued, rocketjob.StateRunning}})
	must(t, err)
	for _, j := range live {
		_, _ = b.client.Abort(ctx, j.ID.Hex()) // end the chain
	}
	// An instance enqueues its successor before it ends: one running and
	// one queued is one chain; two queued (or two running) is a fork.
	perState := map[rocketjob.State]int{}
	for _, j := range live {
		perState[j.State]++
	}
	if perState[rocketjob.StateQueued] > 1 || perState[rocketjob.StateRunning] > 1 {
		t.Fatalf("live instances of one cron job: %v", perState)
	}
	sort.Slice(done, func(i, k int) bool { return done[i].RunAt.Before(done[k].RunAt) })
	if !done[0].RunAt.Equal(first.RunAt) {
		t.Fatalf("first completed run at %s, want the first instance's %s", done[0].RunAt, first.RunAt)
	}
	for i, j := range done {
		if runs := b.ran(j.ID.Hex()); runs.count() != 1 {
			t.Fatalf("instance %s ran %v, want once", j.ID.Hex(), runs)
		}
		if i > 0 {
			if gap := j.RunAt.Sub(done[i-1].RunAt); gap != tick {
				t.Fatalf("instances at %s and %s: %s apart, want one tick (none missed)", done[i-1].RunAt, j.RunAt, gap)
			}
		}
	}
}
