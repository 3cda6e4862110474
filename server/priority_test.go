package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// A higher-priority job uploaded while two one-worker servers are busy on a
// long low-priority job gets the workers within one slice plus the re-check
// interval, and finishes first.
func TestHigherPriorityJobTakesOverRunningWorkers(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	// 40 slices of one record sleeping 50 ms: about a second per server.
	low, err := sliced.Upload(ctx, b.client, "sleep", strings.NewReader(strings.Repeat("50\n", 40)),
		&sliced.UploadOptions{Priority: 90, SliceSize: 1})
	must(t, err)
	b.startServer(t, "s1", 1)
	b.startServer(t, "s2", 1)
	waitFor(t, "the low-priority job to run", func() bool {
		p, err := b.client.Progress(ctx, mustGet(t, b, low.ID.Hex()))
		return err == nil && p.Slices.Done >= 2
	})
	uploaded := time.Now()
	high, err := sliced.Upload(ctx, b.client, "sleep", strings.NewReader(strings.Repeat("1\n", 4)),
		&sliced.UploadOptions{Priority: 10, SliceSize: 1})
	must(t, err)
	got := b.wait(t, high.ID.Hex())
	switchTime := got.StartedAt.Sub(uploaded)
	// One slice (50 ms) plus the re-check interval (200 ms), with slack for
	// a loaded machine.
	if limit := 50*time.Millisecond + 200*time.Millisecond + time.Second; switchTime > limit {
		t.Fatalf("high-priority job started %s after upload, want within %s", switchTime, limit)
	}
	lowNow := mustGet(t, b, low.ID.Hex())
	if lowNow.State == rocketjob.StateCompleted {
		t.Fatalf("the low-priority job finished first")
	}
	b.wait(t, low.ID.Hex())
	t.Logf("switch after %s", switchTime.Round(time.Millisecond))
}

// Raising a queued job's priority makes it the next one to run.
func TestRaisedPriorityRunsNext(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	busy, err := sliced.Upload(ctx, b.client, "sleep", strings.NewReader(strings.Repeat("30\n", 20)),
		&sliced.UploadOptions{Priority: 50, SliceSize: 1})
	must(t, err)
	a, err := sliced.Upload(ctx, b.client, "sleep", strings.NewReader("1\n"), &sliced.UploadOptions{Priority: 60})
	must(t, err)
	z, err := sliced.Upload(ctx, b.client, "sleep", strings.NewReader("1\n"), &sliced.UploadOptions{Priority: 70})
	must(t, err)
	_, err = b.client.SetPriority(ctx, z.ID.Hex(), 1) // z jumps the queue, ahead of a and the busy job
	must(t, err)
	b.startServer(t, "s1", 1)
	gz, ga := b.wait(t, z.ID.Hex()), b.wait(t, a.ID.Hex())
	if !gz.StartedAt.Before(*ga.StartedAt) {
		t.Fatalf("raised job started %s, the other %s", gz.StartedAt, ga.StartedAt)
	}
	if gb := b.wait(t, busy.ID.Hex()); !gz.CompletedAt.Before(*gb.CompletedAt) {
		t.Fatalf("raised job did not finish before the busy one")
	}
}

func mustGet(t *testing.T, b *bundle, id string) *rocketjob.Job {
	t.Helper()
	j, err := b.client.Get(context.Background(), id)
	must(t, err)
	return j
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
