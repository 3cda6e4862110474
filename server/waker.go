package server

import (
	"context"
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
type waker struct {
	ticker
	store *store.Store
	sel   *selector
	last  bson.ObjectID
	polls int
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
	token, err := w.store.WakeToken(ctx)
	if err != nil || token == w.last {
		return
	}
	w.last = token
	w.sel.invalidate()
	if w.sel.idle.Load() > 0 {
		w.sel.wake()
	}
}
