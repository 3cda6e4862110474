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
)

// filteredServer starts a server with the tests' short intervals that runs
// only the types include/exclude leave.
func (b *bundle) filteredServer(t *testing.T, name string, include, exclude []string) {
	t.Helper()
	b.runServer(t, server.Config{
		Name: name, Workers: 2, PollInterval: 50 * time.Millisecond, ReCheck: 200 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, DeadAfter: time.Second, ShutdownTimeout: 5 * time.Second,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Include: include, Exclude: exclude,
	})
}

// A server limited to one type runs it even below a more urgent job of a
// type it does not run, which stays queued; a server for the other types
// runs that one.
func TestServerRunsOnlyIncludedTypes(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	nap, err := b.client.Enqueue(ctx, "nap", examples.NapArgs{}, &rocketjob.EnqueueOptions{Priority: 1})
	must(t, err)
	count, err := b.client.Enqueue(ctx, "count", nil, &rocketjob.EnqueueOptions{Priority: 90})
	must(t, err)
	b.filteredServer(t, "counts-only", []string{"count"}, nil)
	if got := b.wait(t, count.ID.Hex()); got.State != rocketjob.StateCompleted || got.Server != "counts-only" {
		t.Fatalf("count job: %s on %q, want completed on counts-only", got.State, got.Server)
	}
	// The server took the less urgent count job: had it offered itself the
	// nap job, it would have taken that first.
	if got := mustGet(t, b, nap.ID.Hex()); got.State != rocketjob.StateQueued {
		t.Fatalf("nap job is %s on %q, want queued (its type is not included)", got.State, got.Server)
	}
	b.filteredServer(t, "no-counts", nil, []string{"count"})
	if got := b.wait(t, nap.ID.Hex()); got.State != rocketjob.StateCompleted || got.Server != "no-counts" {
		t.Fatalf("nap job: %s on %q, want completed on no-counts", got.State, got.Server)
	}
}

// More urgent jobs of an excluded type than a server reads in one selection
// do not hide a job of a type it runs.
func TestExcludedTypesDoNotCrowdOut(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	args := make([]examples.NapArgs, 80)
	_, err := rocketjob.EnqueueManyOf(ctx, b.client, "nap", args, &rocketjob.EnqueueOptions{Priority: 1})
	must(t, err)
	count, err := b.client.Enqueue(ctx, "count", nil, &rocketjob.EnqueueOptions{Priority: 90})
	must(t, err)
	b.filteredServer(t, "s1", nil, []string{"nap"})
	if got := b.wait(t, count.ID.Hex()); got.State != rocketjob.StateCompleted {
		t.Fatalf("count job is %s, want completed", got.State)
	}
	queued, err := b.client.List(ctx, &rocketjob.ListOptions{States: []rocketjob.State{rocketjob.StateQueued}})
	must(t, err)
	if len(queued) != len(args) {
		t.Fatalf("%d jobs queued, want the %d excluded nap jobs", len(queued), len(args))
	}
}

func TestIncludeExcludeAreChecked(t *testing.T) {
	b := setup(t)
	for _, tc := range []struct {
		include, exclude []string
		want             string
	}{
		{[]string{"nosuch"}, nil, `unknown job type "nosuch"`},
		{nil, []string{"nosuch"}, `unknown job type "nosuch"`},
		{[]string{"nap"}, []string{"nap"}, "no job type left to run"},
	} {
		_, err := server.New(b.client, &server.Config{Include: tc.include, Exclude: tc.exclude})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("include %v exclude %v: %v, want an error containing %q", tc.include, tc.exclude, err, tc.want)
		}
	}
}
