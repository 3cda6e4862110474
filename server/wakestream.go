package server

import (
	"context"
	"sync"
	"time"
)

// streamedWakeEvery is how many wake polls a server lets pass between two
// reads of the wake-up token while its change stream is up (every 5 s by
// default): the stream brings the changes, the read only guards against a
// stream that stalls without an error.
const streamedWakeEvery = 50

// streamRetry is how long the waker waits before it opens the change
// stream again after it could not open or broke.
const streamRetry = 10 * time.Second

// watch follows the wake-up document's change stream until ctx ends,
// reopening it after streamRetry when it fails; while it is up, every
// change runs w.changed and the polling slows down (see pass).
func (w *waker) watch(ctx context.Context) {
	for ctx.Err() == nil {
		cs, err := w.store.WatchWake(ctx)
		if err == nil {
			w.streaming.Store(true)
			for cs.Next(ctx) {
				w.changed()
			}
			w.streaming.Store(false)
			_ = cs.Close(context.WithoutCancel(ctx))
		}
		select {
		case <-ctx.Done():
		case <-time.After(streamRetry):
		}
	}
}

// streamLoop runs one goroutine until stopped.
type streamLoop struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// start runs fn on its own goroutine with a context that stop cancels; a
// second start does nothing.
func (l *streamLoop) start(ctx context.Context, fn func(context.Context)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		return
	}
	ctx, l.cancel = context.WithCancel(ctx)
	l.done = make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		fn(ctx)
	}(l.done)
}

// stop cancels the goroutine and waits for it (or for ctx); nil when it
// never started.
func (l *streamLoop) stop(ctx context.Context) error {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
