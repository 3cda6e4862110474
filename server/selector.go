package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// candidateLimit is how many runnable jobs one selection query reads.
const candidateLimit = 50

// selector keeps this server's view of the runnable jobs, ordered by priority
// then age, refreshed by one query at most every pollInterval (when workers
// are idle) or reCheck (when they are busy), so workers never query per slice.
type selector struct {
	store        *store.Store
	reCheck      time.Duration
	pollInterval time.Duration
	types        func() []string // the job types to offer; nil offers all

	mu        sync.Mutex
	jobs      []model.Job
	fetchedAt time.Time
	taken     bool                      // a worker took a simple job from the list since it was read
	idle      atomic.Int32              // workers waiting in wait
	skip      map[bson.ObjectID]skipped // jobs with nothing to claim here, for now
	wakeCh    chan struct{}
}

func newSelector(s *store.Store, reCheck, poll time.Duration) *selector {
	return &selector{store: s, reCheck: reCheck, pollInterval: poll, skip: map[bson.ObjectID]skipped{}, wakeCh: make(chan struct{})}
}

// refresh re-reads the runnable jobs when the cached list is older than maxAge.
func (sel *selector) refresh(ctx context.Context, maxAge time.Duration) error {
	sel.mu.Lock()
	fresh := time.Since(sel.fetchedAt) < maxAge
	sel.mu.Unlock()
	if fresh {
		return nil
	}
	var types []string
	if sel.types != nil {
		types = sel.types()
	}
	jobs, err := sel.store.RunnableJobs(ctx, time.Now(), candidateLimit, types)
	if err != nil {
		return err
	}
	sel.mu.Lock()
	sel.jobs, sel.fetchedAt, sel.taken = jobs, time.Now(), false
	sel.mu.Unlock()
	return nil
}

// consumed reports whether the list ran out because this server's workers
// took its simple jobs: then it is worth reading again at once instead of
// waiting for the poll interval.
func (sel *selector) consumed() bool {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	return sel.taken
}

// invalidate makes the next refresh query the database.
func (sel *selector) invalidate() {
	sel.mu.Lock()
	sel.fetchedAt = time.Time{}
	sel.mu.Unlock()
}

// next returns the most urgent job that is not skipped, or nil.
func (sel *selector) next() *model.Job {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	now := time.Now()
	for i := range sel.jobs {
		j := &sel.jobs[i]
		if sk, ok := sel.skip[j.ID]; ok {
			if now.Before(sk.until) && sk.version == j.Version {
				continue
			}
			delete(sel.skip, j.ID)
		}
		if j.State == model.StateQueued || j.State == model.StateRunning {
			job := *j
			if j.Kind == model.KindSimple {
				// One worker per simple job: the others take the next
				// candidate instead of racing this one for the same job.
				sel.skip[j.ID] = skipped{until: now.Add(sel.pollInterval), version: j.Version}
				sel.taken = true
			}
			return &job
		}
	}
	return nil
}

// better reports whether a job other than current should be worked on now:
// current is no longer runnable, or a more urgent job has work.
func (sel *selector) better(current *model.Job) bool {
	cur, ok := sel.current(current.ID)
	if !ok {
		// Gone from the runnable list: paused, aborted, failed or destroyed
		// (or behind candidateLimit more urgent jobs). Leave it even when no
		// other job waits: the job's controls must reach running work.
		return true
	}
	best := sel.next()
	if best == nil || best.ID == current.ID {
		return false
	}
	return best.Priority < cur.Priority // cur carries a priority changed meanwhile
}

// current returns the cached copy of a job, if it is still runnable.
func (sel *selector) current(id bson.ObjectID) (model.Job, bool) {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	for _, j := range sel.jobs {
		if j.ID == id {
			return j, true
		}
	}
	return model.Job{}, false
}

// skipped hides a job from this server until a time, or until the job
// changes (a new version: resumed, retried, re-prioritised), whichever comes
// first.
type skipped struct {
	until   time.Time
	version int64
}

// skipFor hides a job from this server for d (it has nothing to claim here),
// unless it changes meanwhile.
func (sel *selector) skipFor(job *model.Job, d time.Duration) {
	sel.mu.Lock()
	sel.skip[job.ID] = skipped{until: time.Now().Add(d), version: job.Version}
	sel.mu.Unlock()
}

// wait blocks an idle worker for the poll interval, or until woken.
func (sel *selector) wait(ctx context.Context) {
	sel.idle.Add(1)
	defer sel.idle.Add(-1)
	sel.mu.Lock()
	ch := sel.wakeCh
	sel.mu.Unlock()
	t := time.NewTimer(sel.pollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-ch:
	case <-t.C:
	}
}

// wake releases every idle worker.
func (sel *selector) wake() {
	sel.mu.Lock()
	close(sel.wakeCh)
	sel.wakeCh = make(chan struct{})
	sel.mu.Unlock()
}
