package server

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// A slice whose give-back failed (the database was unreachable) is kept and
// given back by a later retry, so it never stays claimed by a live server
// that no longer works on it.
func TestGiveBackRetriesWhatFailed(t *testing.T) {
	ctx := context.Background()
	jobs, work := dbtest.DBNames(t)
	reg := rocketjob.NewRegistry()
	if err := sliced.RegisterLines(reg, "same", func(_ context.Context, l string) (string, error) { return l, nil }, nil); err != nil {
		t.Fatal(err)
	}
	open := func() *rocketjob.Client {
		c, err := rocketjob.NewClient(ctx, rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	live := open()
	defer live.Close(ctx)
	job, err := sliced.Upload(ctx, live, "same", strings.NewReader("a\nb\nc\n"), &sliced.UploadOptions{SliceSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	c, err := clientstore.Of(live).Slices().NewFeeder(job.ID, "s1", job.SliceCount).Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A connection that is gone: the give-back fails and is kept.
	gone := open()
	_ = gone.Close(ctx)
	g := giveBack{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := clientstore.Of(gone).Slices().Release(ctx, job.ID, c); err == nil {
		t.Fatal("release on a closed connection succeeded")
	} else {
		g.slice(job.ID, c, err)
	}
	g.retry(ctx, clientstore.Of(gone))
	if g.pending() != 1 {
		t.Fatalf("%d give-backs pending after a failed retry, want 1", g.pending())
	}
	claimed := func() int64 {
		p, err := live.Progress(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		return p.Slices.Claimed + p.Slices.Running
	}
	if n := claimed(); n == 0 {
		t.Fatal("the slice is not claimed before the retry")
	}
	g.retry(ctx, clientstore.Of(live))
	if g.pending() != 0 || claimed() != 0 {
		t.Fatalf("after the retry: %d pending, %d claimed", g.pending(), claimed())
	}
}
