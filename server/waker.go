package server

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/store"
)

// DefaultWakePoll is how often a server with idle workers reads the wake-up
// token (at most its poll interval).
const DefaultWakePoll = 100 * time.Millisecond

// busyWakeEvery is how many wake polls a server whose workers are all busy
// lets pass between two reads of the token (every 500 ms by default): its
// workers take the next job when they finish theirs anyway, and the read
// costs a database call.
const busyWakeEvery = 5

// waker reads the wake-up token (store.Wake) every interval and, when it
// changed (a job enqueued, resumed, retried or requeued anywhere), drops
// this server's list of jobs and wakes its idle workers: idle workers start
// the new job within the interval instead of the poll interval, and busy
// ones read a fresh list when they finish their current job, so an urgent
// job enqueued behind thousands of others starts after the job a worker is
// on, not after the jobs left on the server's list. An idle server reads
// one small document instead of looking for work.
//
// On MongoDB the waker also follows a change stream of what makes work
// runnable (store.WatchWake: new, requeued, resumed and re-prioritised
// jobs, and the wake-up document; wakestream.go): while the stream is up, a
// change wakes the server as it happens and the token is read only every
// streamedWakeEvery polls, as a safety net; when the stream cannot open or
// breaks, polling goes on as on FerretDB.
type waker struct {
	ticker
	store *store.Store
	sel   *selector
	last  bson.ObjectID
	polls int

	streaming atomic.Bool // the change stream is up
	stream    streamLoop
}

func newWaker(st *store.Store, sel *selector, interval time.Duration) *waker {
	w := &waker{store: st, sel: sel}
	w.ticker = ticker{interval: interval, pass: w.pass}
	return w
}

func (w *waker) pass(ctx context.Context) {
	w.polls++
	if w.sel.idle.Load() == 0 && w.polls%busyWakeEvery != 0 {
		return
	}
	if w.streaming.Load() && w.polls%streamedWakeEvery != 0 {
		return
	}
	token, err := w.store.WakeToken(ctx)
	if err != nil || token == w.last {
		return
	}
	w.last = token
	w.changed()
}

// changed drops the server's list of jobs and wakes its idle workers: the
// wake-up token changed.
func (w *waker) changed() {
	w.sel.invalidate()
	if w.sel.idle.Load() > 0 {
		w.sel.wake()
	}
}

// Start starts the polling and, on MongoDB, the change stream.
func (w *waker) Start(ctx context.Context) error {
	if !w.store.Ferret() {
		w.stream.start(ctx, w.watch)
	}
	return w.ticker.Start(ctx)
}

// Stop stops both.
func (w *waker) Stop(ctx context.Context) error {
	return errors.Join(w.ticker.Stop(ctx), w.stream.stop(ctx))
}
