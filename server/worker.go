package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/jobrun"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/scope"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// poolConfig configures the worker pool.
type poolConfig struct {
	// Workers is the number of workers (default DefaultWorkers).
	Workers int
}

func (c *poolConfig) defaults() {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
}

// workerPool runs cfg.Workers copies of work, each on its own goroutine,
// under a context of their own: Stop first asks them to stop (stopping),
// waits for them until its ctx ends (the shutdown deadline), then cancels
// that context, so work cut short gives itself back, and waits again.
type workerPool struct {
	cfg      poolConfig
	work     func(ctx context.Context, worker int)
	stopping func() // tells the workers to take no new work

	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newWorkerPool(cfg poolConfig, work func(context.Context, int), stopping func()) *workerPool {
	cfg.defaults()
	return &workerPool{cfg: cfg, work: work, stopping: stopping}
}

// Start launches the workers. Their context outlives ctx's cancellation:
// only Stop ends it, so work in flight can finish.
func (p *workerPool) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx != nil {
		return nil
	}
	p.ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for i := range p.cfg.Workers {
		p.wg.Go(func() { p.work(p.ctx, i) })
	}
	return nil
}

// workCtx is the context job code runs under (nil before Start).
func (p *workerPool) workCtx() context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ctx
}

// Stop asks the workers to stop and waits for them; when ctx ends first, it
// cancels their context and waits for them to give their work back.
func (p *workerPool) Stop(ctx context.Context) error {
	p.mu.Lock()
	cancel := p.cancel
	p.mu.Unlock()
	if cancel == nil {
		return errNotStarted
	}
	p.stopping()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		cancel()
		<-done
		return ctx.Err()
	}
}

// abort cancels the workers' context (the shutdown deadline passed).
func (p *workerPool) abort() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		p.cancel()
	}
}

// workerLoop takes the most urgent job with work, works on it, and looks again.
func (s *Server) workerLoop(ctx context.Context, id int) {
	log := s.log.With("worker", id)
	s.sel.identify(s.cfg.Name, s.cfg.DeadAfter, s.started())
	for !s.stopping.Load() {
		if s.paused.Load() {
			s.sel.wait(ctx)
			continue
		}
		if err := s.sel.refresh(ctx, s.cfg.PollInterval); err != nil {
			log.Warn("reading jobs", "err", err)
			s.sel.wait(ctx)
			continue
		}
		job := s.sel.next()
		if job == nil && s.sel.consumed() && s.sel.awaitAhead() {
			job = s.sel.next() // the list read ahead
		}
		if job == nil && s.sel.consumed() {
			// The workers took every job listed: read the next ones now.
			s.sel.invalidate()
			if err := s.sel.refresh(ctx, 0); err == nil {
				job = s.sel.next()
			}
		}
		if job == nil {
			s.sel.wait(ctx)
			continue
		}
		if s.sel.aheadDue(s.cfg.Workers * maxBlock) {
			s.followUps.Go(func() { s.sel.readAhead(ctx) })
		}
		s.busy.Add(1)
		ok, err := s.mayStart(ctx, job)
		switch {
		case err != nil || !ok:
		case job.Kind == model.KindSimple:
			err = s.runBlock(ctx, log, job)
		default:
			err = s.runSliced(ctx, job)
		}
		s.busy.Add(-1)
		s.afterRun(ctx, log, job, err)
	}
}

// afterRun deals with what working on job returned.
func (s *Server) afterRun(ctx context.Context, log *slog.Logger, job *model.Job, err error) {
	switch {
	case err == nil:
	case errors.Is(err, store.ErrClaimed):
		// Another process holds the job, and its write brings the run
		// queue in line: take the next candidate.
		s.sel.skipFor(job, s.cfg.PollInterval)
		s.sel.restripeSoon()
	case errors.Is(err, model.ErrConflict), errors.Is(err, model.ErrJobNotFound):
		// Another process moved the job first, or the candidate was a
		// stale copy: take the next candidate; the list is re-read at
		// the next poll. The run queue is repaired meanwhile: a burst of
		// conflicts (two servers started together) had every worker wait
		// for its repair's writes.
		s.sel.skipFor(job, s.cfg.PollInterval)
		s.sel.restripeSoon()
		s.followUps.Go(func() {
			if err := s.store.RepairQueued(ctx, job); err != nil {
				log.Warn("repairing the run queue", "job", job.ID.Hex(), "err", err)
			}
		})
	default:
		log.Error("job", "job", job.ID.Hex(), "type", job.Type, "err", err)
		s.sel.skipFor(job, s.cfg.PollInterval)
		s.sel.invalidate()
	}
}

// call runs job code, turning a panic into an error.
func call(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return fn()
}

// fail is the operation that ends a running job as failed now with msg,
// recorded by this server, and what the job counted.
func (s *Server) fail(msg string, c store.Counts) store.Op {
	return store.Fail(s.lastError(msg), time.Now(), c)
}

// lastError is msg as the job's failure, recorded by this server.
func (s *Server) lastError(msg string) *model.Failure {
	return &model.Failure{Message: msg, At: time.Now().UTC(), Server: s.cfg.Name}
}

// runSimple claims a queued simple job, performs it and records the result.
func (s *Server) runSimple(ctx context.Context, job *model.Job) error {
	defer s.owned.enter(job.ID)()
	if job.State != model.StateQueued {
		s.sel.skipFor(job, s.cfg.PollInterval)
		return nil
	}
	spec, err := s.reg.Lookup(job.Type)
	if err != nil {
		s.sel.skipFor(job, s.cfg.ReCheck) // another server may know the type
		return nil
	}
	if ok, err := s.rateToken(ctx, spec, job); err != nil || !ok {
		return err
	}
	if spec.MaxRunningJobs > 0 {
		slot, err := s.store.AcquireTypeSlot(ctx, job.Type, spec.MaxRunningJobs, job.ID)
		if err != nil || slot == "" {
			return err // all slots taken: the job waits, the worker moves on
		}
		defer s.releaseTypeSlot(ctx, job, slot)
	}
	release := s.holdSlot()
	now := time.Now().UTC()
	job, err = s.store.DoHeld(ctx, job, store.StartRun(s.cfg.Name, job.Attempt+1, now), s.cfg.Name)
	if err != nil {
		release()
		return err
	}
	return s.performSimple(ctx, spec, job, now, release)
}

// performSimple runs the code of job, a simple job this server just
// started (at started), and records its result; release frees the job's
// hold slot (holdSlot) once its end is written.
func (s *Server) performSimple(ctx context.Context, spec *rocketjob.TypeSpec, job *model.Job, started time.Time, release func()) error {
	handed := false // release handed to endLater
	defer func() {
		if !handed {
			release()
		}
	}()
	log := s.log.With("job", job.ID.Hex(), "type", job.Type)
	log.Info("job started")
	// The run lasts while the job is running here at this attempt: an abort,
	// a destroy or a requeue by another server cancels its context. On
	// FerretDB the start may not be written yet (store: held starts): the
	// job is then still at the version the start moves it from, which only
	// this start (its claim is ours) can move it from.
	attempt, from := job.Attempt, job.Version-1
	runCtx, w := s.watch.track(ctx, job, true, func(j *model.Job) bool {
		return j.State == model.StateRunning && j.Server == s.cfg.Name && j.Attempt == attempt || j.Version == from
	}, nil)
	runCtx, counters := scope.New(runCtx)
	began := time.Now()
	runErr := call(func() error { return spec.Perform(jobrun.WithJob(runCtx, public(job)), public(job)) })
	s.runTimes.note(job.Type, time.Since(began))
	w.Done()
	run := counters.Counters() // rocketjob.Inc: stored with the run's result
	if cause := w.Err(); cause != nil {
		log.Info("job run cancelled: result dropped", "cause", cause)
		if errors.Is(cause, model.ErrTakenAway) {
			s.repairTakenBack(context.WithoutCancel(ctx), job)
		}
		return nil
	}

	// Record the result even while shutting down.
	rctx := context.WithoutCancel(ctx)
	if ctx.Err() != nil {
		// The shutdown deadline cut the job short: give it back.
		_, err := s.ownerMove(rctx, job, store.GiveBack(job.Kind))
		log.Warn("job requeued at shutdown", "err", err)
		return s.ended(rctx, log, job, err)
	}
	end := func() error { return s.ended(rctx, log, job, s.endRun(rctx, log, job, runErr, run, started)) }
	if spec.MaxRunningJobs > 0 {
		return end() // its type slot is released once the end is written
	}
	handed = true
	s.endLater(job, log, end, release)
	return nil
}

// heldPerWorker is how many simple jobs each worker may hold at once:
// being started (a block of them, runBlock), running, and ended with
// their ends still in flight (endLater). It is more than maxBlock, so that
// workers taking the slots of their blocks one by one never hold them all
// between them: the ends in flight free the rest; and twice as much, so
// that a worker starts its next block while the ends of its last one are
// written (with 12, `bench --simple` workers waited for slots a third of
// their time). It bounds what a kill -9 of the server re-runs.
const heldPerWorker = 32

// holdSlot takes one of the server's slots for a simple job it holds
// (heldPerWorker per worker), waiting for one, and returns what frees it
// (once). A job takes its slot before its start, not when its end is left
// in flight: an end that waited for a slot could find the job's held
// start (store: held starts) written alone, and be a second update.
func (s *Server) holdSlot() (release func()) {
	s.holdSlots <- struct{}{}
	return sync.OnceFunc(func() { <-s.holdSlots })
}

// endLater writes a simple job's end (end) while its worker takes its
// next job: ends written while workers wait for them come one or two to a
// batch; left in flight, they fill the batches (one insert of end records
// for many runs, store: end records). release frees the job's hold slot
// once the end is written: a worker can leave only so many in flight. The
// job stays owned by this server until its end is written (a kill -9
// meanwhile re-runs it, like any run under way); Run waits for the ends in
// flight before it removes the server.
func (s *Server) endLater(job *model.Job, log *slog.Logger, end func() error, release func()) {
	leave := s.owned.enter(job.ID)
	s.followUps.Go(func() {
		defer func() {
			leave()
			release()
		}()
		if err := end(); err != nil {
			log.Error("recording the end of a job", "err", err)
		}
	})
}

// endRun records the end of a simple job's run that was not cut short:
// its retry, failure or completion, and, for the final end of a cron job,
// its next instance.
func (s *Server) endRun(ctx context.Context, log *slog.Logger, job *model.Job, runErr error, run map[string]int64, started time.Time) error {
	var err error
	if (runErr == nil || job.Attempt > job.RetryLimit) && job.Cron != "" {
		if err := s.scheduleNext(ctx, job); err != nil {
			log.Error("scheduling the next run of a cron job", "cron", job.Cron, "err", err)
		}
	}
	switch {
	case runErr != nil && job.Attempt <= job.RetryLimit:
		delay := jobrun.RetryDelay(job.RetryBase, job.Attempt, rand.Float64())
		_, err = s.ownerMove(ctx, job, store.RetryLater(s.lastError(runErr.Error()), time.Now().Add(delay), withCounters(job.Statistics, run)))
		log.Info("job failed; retrying", "err", runErr, "retry", job.Attempt, "of", job.RetryLimit, "in", delay.Round(time.Millisecond))
	case runErr != nil:
		_, err = s.ownerMove(ctx, job, s.fail(runErr.Error(), store.Counts{Statistics: withCounters(job.Statistics, run)}))
		log.Info("job failed", "err", runErr)
	default:
		_, err = s.ownerMove(ctx, job, store.Complete(time.Now(), store.Counts{Statistics: withCounters(job.Statistics, run)}))
		log.Info("job completed", "took", time.Since(started).Round(time.Millisecond))
	}
	return err
}

// ended is what the write of a run's end returned (err): a conflict means
// the job changed while it ran, and the result is dropped.
func (s *Server) ended(ctx context.Context, log *slog.Logger, job *model.Job, err error) error {
	if errors.Is(err, model.ErrConflict) {
		log.Warn("job changed while running (aborted, or requeued by a rescuer): result dropped")
		s.repairTakenBack(ctx, job)
		return nil
	}
	return err
}

// repairTakenBack gives a run-queue copy to a job that another server took
// back while it ran here (requeued it, taking this server for dead): this
// server's removal of the copy of its start may have landed after the
// requeue wrote the new copy (store.takenBack).
func (s *Server) repairTakenBack(ctx context.Context, job *model.Job) {
	if err := s.store.RepairQueued(ctx, job); err != nil {
		s.log.Warn("repairing the run queue", "job", job.ID.Hex(), "err", err)
	}
}

// public views the server's copy of a job as the rocketjob.Job that job code
// and clients see (the same fields; no copy).
func public(job *model.Job) *rocketjob.Job { return (*rocketjob.Job)(job) }
