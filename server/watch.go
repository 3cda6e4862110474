package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// watcher re-reads, every interval, the jobs this server's workers are on,
// and tells them when a job is no longer theirs to run: it was paused,
// aborted, destroyed, or requeued by another server. A worker on a sliced
// job's slices leaves the job before its next slice; a simple job's Perform
// and a before/after hook see their context cancelled with the cause
// (model.ErrAborted, ...). This is what makes the operator's controls reach
// running work whether or not any other job is waiting.
type watcher struct {
	ticker
	store *store.Store
	log   *slog.Logger

	mu   sync.Mutex
	runs map[*watch]struct{}
}

// watch is one tracked run: a simple job's Perform, a hook, or one worker's
// stay on a sliced job's slices.
type watch struct {
	w      *watcher
	id     bson.ObjectID
	holds  func(*model.Job) bool  // whether the job is still this run's
	why    func(*model.Job) error // why it is not, when holds turns false
	cancel context.CancelCauseFunc

	mu    sync.Mutex
	cause error
}

// newWatcher returns a watcher that checks the watched jobs every interval
// (the server's re-check interval).
func newWatcher(s *store.Store, interval time.Duration, log *slog.Logger) *watcher {
	w := &watcher{store: s, log: log, runs: map[*watch]struct{}{}}
	w.ticker = ticker{interval: interval, pass: w.check}
	return w
}

// track starts watching job for a run that lasts while holds(job) is true.
// job must be fresh (just returned by a transition) or fresh=false, in which
// case it is read once now. The returned context is ctx, cancelled with the
// cause once holds is false; Done must be called when the run ends.
//
// cause says why the run ends when holds turns false (nil: leaveCause).
func (w *watcher) track(ctx context.Context, job *model.Job, fresh bool, holds func(*model.Job) bool, cause func(*model.Job) error) (context.Context, *watch) {
	rctx, cancel := context.WithCancelCause(ctx)
	if cause == nil {
		cause = leaveCause
	}
	wt := &watch{w: w, id: job.ID, holds: holds, why: cause, cancel: cancel}
	if !fresh {
		cur, err := w.store.GetJob(ctx, job.ID)
		switch {
		case errors.Is(err, model.ErrJobNotFound):
			wt.end(nil)
		case err == nil:
			if !holds(cur) {
				wt.end(cur)
			}
		}
		// On another error the next pass decides.
	}
	w.mu.Lock()
	w.runs[wt] = struct{}{}
	w.mu.Unlock()
	return rctx, wt
}

// watching reports whether a run of job id is tracked here now.
func (w *watcher) watching(id bson.ObjectID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for wt := range w.runs {
		if wt.id == id {
			return true
		}
	}
	return false
}

// Err returns why the run must end (model.ErrPaused, ErrAborted, ErrDestroyed
// or ErrTakenAway), or nil while it may go on.
func (wt *watch) Err() error {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	return wt.cause
}

// Done stops watching and releases the run's context.
func (wt *watch) Done() {
	wt.w.mu.Lock()
	delete(wt.w.runs, wt)
	wt.w.mu.Unlock()
	wt.cancel(context.Canceled)
}

// end records why the run must end (job is nil when it was destroyed) and
// cancels its context.
func (wt *watch) end(job *model.Job) {
	cause := wt.why(job)
	wt.mu.Lock()
	if wt.cause == nil {
		wt.cause = cause
	}
	wt.mu.Unlock()
	wt.cancel(cause)
}

// leaveCause says why a job (nil: destroyed) no longer holds for a run.
func leaveCause(job *model.Job) error {
	switch {
	case job == nil:
		return model.ErrDestroyed
	case job.State == model.StateAborted:
		return model.ErrAborted
	case job.State == model.StatePaused:
		return model.ErrPaused
	default:
		return model.ErrTakenAway
	}
}

// errMovedOn: the job went on to its next step or ended (its last slices
// were finished, possibly by other servers), so there is nothing left here.
var errMovedOn = errors.New("job moved on to its next step")

// sliceCause is why a worker on a job's slices leaves it: paused, aborted or
// destroyed, else the job simply moved on (its after step, or its end).
func sliceCause(job *model.Job) error {
	if job == nil || job.State == model.StateAborted || job.State == model.StatePaused {
		return leaveCause(job)
	}
	return errMovedOn
}

// check reads each watched job once and ends the runs it no longer holds for.
func (w *watcher) check(ctx context.Context) {
	w.mu.Lock()
	byJob := map[bson.ObjectID][]*watch{}
	for wt := range w.runs {
		if wt.Err() == nil {
			byJob[wt.id] = append(byJob[wt.id], wt)
		}
	}
	w.mu.Unlock()
	for id, runs := range byJob {
		job, err := w.store.GetJob(ctx, id)
		if errors.Is(err, model.ErrJobNotFound) {
			job, err = nil, nil
		}
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("re-reading a running job", "job", id.Hex(), "err", err)
			}
			continue
		}
		for _, wt := range runs {
			if job == nil || !wt.holds(job) {
				wt.end(job)
			}
		}
	}
}

// ownedJobs counts, by job, the runs and steps this server is inside (a
// simple job's run, a sliced job's before or after step), from the
// transition that starts them to the one that ends them: the housekeeper
// gives back the jobs said to run here that are in none.
type ownedJobs struct {
	mu sync.Mutex
	n  map[bson.ObjectID]int
}

// enter notes a run or step of job id; the function returned notes its end.
func (b *ownedJobs) enter(id bson.ObjectID) (leave func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n == nil {
		b.n = map[bson.ObjectID]int{}
	}
	b.n[id]++
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.n[id]--; b.n[id] <= 0 {
			delete(b.n, id)
		}
	}
}

// in reports whether a run or step of job id is under way here.
func (b *ownedJobs) in(id bson.ObjectID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n[id] > 0
}
