package server_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// A job with a processing window runs only inside it, judged by the
// server's clock (a fake one here).
func TestProcessingWindowWithAFakeClock(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var now atomic.Int64
	set := func(h, m int) {
		now.Store(day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute).UnixNano())
	}
	set(1, 0)
	window := &rocketjob.Window{Start: "02:00", Duration: time.Hour}
	simple, err := b.client.Enqueue(ctx, "count", nil, &rocketjob.EnqueueOptions{Window: window})
	must(t, err)
	slicedJob, err := sliced.Upload(ctx, b.client, "sleep", strings.NewReader(strings.Repeat("2\n", 300)),
		&sliced.UploadOptions{Window: window, SliceSize: 1})
	must(t, err)

	srv, err := server.New(b.newClient(t), &server.Config{Name: "s1", Workers: 2, PollInterval: 20 * time.Millisecond,
		ReCheck: 50 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return time.Unix(0, now.Load()) }})
	must(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	defer func() { cancel(); must(t, <-done) }()

	// Outside the window: nothing starts, over many polls.
	for range 20 {
		if j := mustGet(t, b, simple.ID.Hex()); j.State != rocketjob.StateQueued {
			t.Fatalf("simple job %s outside its window", j.State)
		}
		if j := mustGet(t, b, slicedJob.ID.Hex()); j.State != rocketjob.StateQueued {
			t.Fatalf("sliced job %s outside its window", j.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	set(2, 30) // inside
	if j := b.wait(t, simple.ID.Hex()); j.State != rocketjob.StateCompleted {
		t.Fatalf("simple job in its window: %s", j.State)
	}
	waitFor(t, "some slices", func() bool {
		p, err := b.client.Progress(ctx, mustGet(t, b, slicedJob.ID.Hex()))
		return err == nil && p.Slices.Done >= 20
	})
	set(3, 0) // the window closes: slices stop after the ones in hand
	// quiet waits for the workers to leave, then checks that nothing moves
	// over three more heartbeats.
	if p := quiet(t, b, slicedJob.ID.Hex()); p.Slices.Done >= 300 {
		t.Fatalf("slices went on outside the window: all %d done", p.Slices.Done)
	}
	set(26, 5) // the next day's window
	if j := b.wait(t, slicedJob.ID.Hex()); j.State != rocketjob.StateCompleted {
		t.Fatalf("sliced job after the window reopened: %s", j.State)
	}
}
