package server

import (
	"context"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// drainer ends a server started with Config.Drain once it has nothing left
// to do: every worker idle and no due job it could run, seen on
// drainQuietPasses passes in a row (a job that a worker has just finished
// or a follow-up that is still being written shows up between two passes).
// Jobs outside their processing window and encrypted jobs whose key this
// server lacks do not keep it up; running sliced jobs do (the server helps
// with their slices, and runs their after step if it falls to it).
type drainer struct {
	ticker
	store   *store.Store
	workers int32
	idle    func() int32              // workers waiting for work
	types   func() []string           // the types the server runs
	usable  func(job *model.Job) bool // false: the server cannot run it now or ever (window, key)
	drained func()                    // called once, when drained
	quiet   int
	done    bool
}

// drainQuietPasses is how many passes in a row must find nothing to do.
const drainQuietPasses = 2

func newDrainer(st *store.Store, interval time.Duration, workers int) *drainer {
	d := &drainer{store: st, workers: int32(workers)}
	d.ticker = ticker{interval: interval, pass: d.pass}
	return d
}

func (d *drainer) pass(ctx context.Context) {
	if d.done {
		return
	}
	if d.idle() < d.workers || d.hasWork(ctx) {
		d.quiet = 0
		return
	}
	if d.quiet++; d.quiet >= drainQuietPasses {
		d.done = true
		d.drained()
	}
}

// hasWork reports whether a due job this server could run exists (an error
// counts as work: the drain waits for the database rather than exit early).
func (d *drainer) hasWork(ctx context.Context) bool {
	jobs, err := d.store.RunnableJobs(ctx, time.Now(), candidateLimit, d.types())
	if err != nil {
		return true
	}
	for i := range jobs {
		if d.usable(&jobs[i]) {
			return true
		}
	}
	return false
}
