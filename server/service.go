package server

import (
	"context"
	"errors"
	"sync"
	"time"
)

// The server is a set of services wired by Server.Run: the heartbeat, the
// rescuer, the housekeeper, the retainer, the watcher, the waker, the
// completer, the worker pool, when draining the drainer and, with Dirmon
// roots, Dirmon (dirmon.go).
// Each has its own type and file, a small config with named defaults, and
// the same lifecycle: Start(ctx) launches it on its own goroutines and
// returns; Stop(ctx) ends it and waits for the pass in progress (or until ctx
// ends). Both are idempotent, and each service can be started alone in a
// test.

// errNotStarted is returned by Stop on a service that never started (it is
// not an error to stop it; callers that care can tell).
var errNotStarted = errors.New("service was not started")

// ticker is the lifecycle of the periodic services: pass runs every interval
// on one goroutine, from Start until Stop or the end of Start's context.
// After each pass it signals passed (tests), without blocking.
type ticker struct {
	interval time.Duration
	pass     func(ctx context.Context)
	passed   chan struct{}

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start launches the loop; a second Start does nothing.
func (t *ticker) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done != nil {
		return nil
	}
	ctx, t.cancel = context.WithCancel(ctx)
	t.done = make(chan struct{})
	go t.loop(ctx, t.done)
	return nil
}

func (t *ticker) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	tk := time.NewTicker(t.interval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		t.pass(ctx)
		if t.passed != nil {
			select {
			case t.passed <- struct{}{}:
			default:
			}
		}
	}
}

// Stop ends the loop and waits for the pass in progress, or for ctx.
func (t *ticker) Stop(ctx context.Context) error {
	t.mu.Lock()
	cancel, done := t.cancel, t.done
	t.mu.Unlock()
	if done == nil {
		return errNotStarted
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
