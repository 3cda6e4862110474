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

// waker reads the wake-up token (store.Wake) every interval while some of
// this server's workers are idle, and wakes them, with a fresh list of
// jobs, when it changed: a job enqueued, resumed, retried or requeued
// anywhere starts within the interval instead of the poll interval, and an
// idle server reads one small document instead of looking for work.
type waker struct {
	ticker
	store *store.Store
	sel   *selector
	last  bson.ObjectID
}

func newWaker(st *store.Store, sel *selector, interval time.Duration) *waker {
	w := &waker{store: st, sel: sel}
	w.ticker = ticker{interval: interval, pass: w.pass}
	return w
}

func (w *waker) pass(ctx context.Context) {
	if w.sel.idle.Load() == 0 {
		return // busy workers look again after every slice and job
	}
	token, err := w.store.WakeToken(ctx)
	if err != nil || token == w.last {
		return
	}
	w.last = token
	w.sel.invalidate()
	w.sel.wake()
}
