package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/jobrun"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/scope"
	"github.com/rocketjob-go/rocketjob/internal/slice"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// runSliced does whatever a sliced job needs next: its before step, slices,
// or its after step.
func (s *Server) runSliced(ctx context.Context, job *model.Job) error {
	spec, err := s.reg.Lookup(job.Type)
	if err != nil || spec.Kind != model.KindSliced {
		s.sel.skipFor(job, s.cfg.ReCheck) // another server may know the type
		return nil
	}
	switch {
	case job.State == model.StateQueued, job.Step == model.StepBefore && job.Server == "":
		return s.runBefore(ctx, spec, job)
	case job.Step == model.StepProcessing:
		return s.processSlices(ctx, spec, job)
	case job.Step == model.StepAfter && job.Server == "":
		job, err = s.store.Do(ctx, job, store.Take(s.cfg.Name), s.cfg.Name)
		if err != nil {
			return err
		}
		return s.runAfter(ctx, spec, job)
	default:
		// Another server runs its before or after step, as this copy from
		// the run queue says. A server killed between a job write and the
		// copy's leaves the copy naming it while the job went on (to its
		// slices, say): nobody would take the job from such a copy, so it
		// is checked against the job (and repaired) each time.
		if err := s.store.RepairQueued(ctx, job); err != nil {
			s.log.Warn("repairing the run queue", "job", job.ID.Hex(), "err", err)
		}
		s.sel.skipFor(job, s.cfg.PollInterval)
		return nil
	}
}

// runBefore claims the before step, runs the Before hook and opens the job's
// slices to every worker.
func (s *Server) runBefore(ctx context.Context, spec *rocketjob.TypeSpec, job *model.Job) error {
	defer s.owned.enter(job.ID)()
	var typeSlot string
	if spec.MaxRunningJobs > 0 && job.State == model.StateQueued {
		// The job holds a running-job slot of its type until it ends.
		slot, err := s.store.AcquireTypeSlot(ctx, job.Type, spec.MaxRunningJobs, job.ID)
		if err != nil || slot == "" {
			s.sel.skipFor(job, s.cfg.PollInterval)
			return err
		}
		typeSlot = slot
	}
	var startedAt *time.Time // the job's first before step starts it
	if job.StartedAt == nil {
		startedAt = new(time.Now())
	}
	started, err := s.store.Do(ctx, job, store.EnterStep(model.StepBefore, s.cfg.Name, startedAt), s.cfg.Name)
	if err != nil {
		if typeSlot != "" {
			s.releaseTypeSlot(ctx, job, typeSlot) // another server started it
		}
		return err
	}
	job = started
	s.sel.invalidate()
	var hookCounters map[string]int64
	if spec.Before != nil {
		hookCtx, w := s.watchStep(ctx, job)
		hookCtx, counters := scope.New(hookCtx)
		err := call(func() error { return spec.Before(jobrun.WithJob(hookCtx, public(job)), public(job)) })
		w.Done()
		hookCounters = counters.Counters()
		if cause := w.Err(); cause != nil {
			s.log.Info("before hook cancelled", "job", job.ID.Hex(), "cause", cause)
			return nil
		}
		rctx := context.WithoutCancel(ctx)
		if ctx.Err() != nil {
			_, err = s.ownerMove(rctx, job, store.GiveBack(job.Kind))
			return err
		}
		if err != nil {
			_, err = s.ownerMove(rctx, job, s.fail("before hook: "+err.Error(), store.Counts{}))
			s.endDue(rctx, job, err)
			s.releaseTypeSlot(rctx, job, "")
			return err
		}
	}
	_, err = s.ownerMove(ctx, job, store.StartProcessing(withCounters(job.HookStatistics, hookCounters)))
	s.sel.invalidate()
	return err
}

// processSlices claims and processes slices of job until it has none left
// here, a more urgent job has work, or the server stops or pauses. Results go
// to the completer, which writes them in batches; a slice counts as in
// flight until its completion is written.
func (s *Server) processSlices(ctx context.Context, spec *rocketjob.TypeSpec, job *model.Job) error {
	f, err := s.feeder(job)
	if err != nil {
		s.log.Warn("skipping job", "job", job.ID.Hex(), "err", err)
		s.sel.skipFor(job, s.cfg.ReCheck)
		return nil
	}
	if job.MaxWorkers > 0 {
		// Throttled: hold one of the job's worker slots, or leave the job to
		// others and take the next one.
		slot, err := s.store.AcquireSlot(ctx, job.ID, job.MaxWorkers, s.cfg.Name)
		if err != nil {
			return err
		}
		if slot == nil {
			s.sel.skipFor(job, s.cfg.PollInterval)
			return nil
		}
		defer func() {
			if err := s.store.ReleaseSlot(context.WithoutCancel(ctx), slot); err != nil {
				s.log.Warn("releasing a worker slot", "job", job.ID.Hex(), "err", err)
			}
		}()
	}
	// The worker stays while the job is processing: a pause, abort or
	// destroy (seen within the re-check interval) makes it leave before its
	// next slice.
	_, w := s.watch.track(ctx, job, false, func(j *model.Job) bool {
		return j.State == model.StateRunning && j.Step == model.StepProcessing
	}, sliceCause)
	defer w.Done()
	f.workers.Add(1)
	defer func() {
		// The last worker to leave gives back the slices claimed ahead, so
		// other servers can take them while this one works elsewhere (or,
		// when the job was destroyed, removes what was written since).
		if f.workers.Add(-1) == 0 {
			s.leaveJob(context.WithoutCancel(ctx), job.ID, f)
		}
	}()
	for {
		if s.stopping.Load() || s.paused.Load() {
			return nil
		}
		if f.stale.Load() {
			return nil // this server was declared dead: its claims were requeued
		}
		if v := f.failedAt.Load(); v > 0 && v >= job.Version {
			// A slice failed and the job stops on error: the completer is
			// failing it; the other workers leave at once, not when they
			// see it failed.
			s.sel.skipFor(job, s.cfg.ReCheck)
			return nil
		}
		if cause := w.Err(); cause != nil {
			if errors.Is(cause, model.ErrDestroyed) {
				f.gone.Store(true)
			}
			if !errors.Is(cause, errMovedOn) {
				s.log.Info("leaving job", "job", job.ID.Hex(), "cause", cause)
			}
			s.sel.skipFor(job, s.cfg.ReCheck)
			s.sel.invalidate()
			return nil
		}
		if ok, err := s.rateToken(ctx, spec, job); err != nil || !ok {
			return err
		}
		c, err := f.Next(ctx)
		if errors.Is(err, store.ErrNoWork) {
			f.exhausted.Store(true)
			s.sel.skipFor(job, s.cfg.ReCheck)
			if f.inFlight.Load() == 0 {
				return s.maybeFinish(ctx, spec, job.ID)
			}
			return nil // the completer finishes the job after the last write
		}
		if err != nil {
			return err
		}
		f.exhausted.Store(false)
		f.inFlight.Add(1)
		job.Header = f.header
		began := time.Now()
		f.processing.Add(1)
		res, firstErr, sealErr := s.processSlice(ctx, spec, job, f.codec, c)
		f.processing.Add(-1)
		s.sliceSeconds.WithLabelValues(job.Type).Observe(time.Since(began).Seconds())
		if ctx.Err() != nil || sealErr != nil {
			// Cut short by the shutdown deadline: the results may be errors
			// caused by the cancellation, so give the slice back instead.
			if rerr := s.store.Slices().Release(context.WithoutCancel(ctx), job.ID, c); rerr != nil {
				s.giveBack.slice(job.ID, c, rerr)
			}
			f.inFlight.Add(-1)
			return sealErr
		}
		s.completer.submit(completion{job: *job, spec: spec, feeder: f, c: c, r: res, firstErr: firstErr})
		if res.FailedCount > 0 && job.StopOnError {
			f.failedAt.Store(job.Version)
			return nil // the completer fails the job once the slice is written
		}
		if err := s.sel.refresh(ctx, s.cfg.ReCheck); err != nil {
			return err
		}
		if s.sel.better(job) || !s.inWindow(job) {
			return nil
		}
		if cur, ok := s.sel.current(job.ID); ok {
			job = &cur
		}
	}
}

// leaveJob is run by the last of this server's workers to leave a job: it
// gives back the slices claimed ahead, or, when the job was destroyed and
// nothing is in flight here, drops whatever this server wrote after the
// destroy (the completer drops results that arrive later).
func (s *Server) leaveJob(ctx context.Context, id bson.ObjectID, f *jobFeeder) {
	if !f.gone.Load() {
		// Workers also leave a job the selector no longer lists, which may
		// mean it was destroyed: giving slices back would write into it.
		if _, err := s.store.GetJob(ctx, id); errors.Is(err, model.ErrJobNotFound) {
			f.gone.Store(true)
		}
	}
	if f.gone.Load() {
		s.dropGone(ctx, id, f)
		return
	}
	if err := f.Release(ctx); err != nil {
		s.giveBack.feeder(id, f.Feeder, err)
	} else if _, err := s.store.GetJob(ctx, id); errors.Is(err, model.ErrJobNotFound) {
		// Destroyed while the slices were given back: the give-back may
		// have written (a requeue) after the destroy dropped the job's
		// collections.
		f.gone.Store(true)
		s.dropGone(ctx, id, f)
	}
	if f.stale.Load() {
		s.dropStaleFeeder(id, f)
	}
}

// dropGone drops the slices of destroyed job id that this server wrote
// after the destroy, once nothing of it is in flight here.
func (s *Server) dropGone(ctx context.Context, id bson.ObjectID, f *jobFeeder) {
	if f.inFlight.Load() != 0 || !f.dropped.CompareAndSwap(false, true) {
		return
	}
	s.dropFeeder(ctx, id)
	if err := s.store.Slices().Drop(ctx, id); err != nil {
		s.log.Warn("dropping the slices of a destroyed job", "job", id.Hex(), "err", err)
	}
}

// watchStep watches a before or after hook: it runs while the job stays
// running at that step on this server.
func (s *Server) watchStep(ctx context.Context, job *model.Job) (context.Context, *watch) {
	step := job.Step
	return s.watch.track(ctx, job, true, func(j *model.Job) bool {
		return j.State == model.StateRunning && j.Step == step && j.Server == s.cfg.Name
	}, nil)
}

// processSlice runs the type's function on every record of a slice. A record
// whose function fails (or panics) becomes a failed record; the others go on.
// It returns the sealed result, the message of the first failed record for
// the job document, and an error when the result could not be sealed.
func (s *Server) processSlice(ctx context.Context, spec *rocketjob.TypeSpec, job *model.Job, codec *encryption.Codec, c *store.Claimed) (store.Result, string, error) {
	task := slice.Task{
		Job: job.ID.Hex(), Codec: codec, Slice: c.InputSlice, Collect: job.CollectOutput,
		Fn: func(ctx context.Context, rec []byte) ([]byte, error) {
			return spec.PerformRecord(ctx, public(job), rec)
		},
	}
	if spec.PerformOutputs != nil {
		task.Categories = job.CategoryNames
		task.Outputs = func(ctx context.Context, rec []byte, emit func(string, []byte)) error {
			outs, err := spec.PerformOutputs(ctx, public(job), rec)
			if err != nil {
				return err
			}
			for _, o := range outs {
				emit(o.Category, o.Record)
			}
			return nil
		}
	}
	plan, err := s.applyRetryPlan(ctx, job, codec, c, &task) // fixes.go
	if err != nil {
		return store.Result{}, "", err
	}
	p, err := slice.Process(jobrun.WithJob(ctx, public(job)), task)
	plan.finish(&p.Result)
	return p.Result, firstFailure(job, p.First), err
}

// firstFailure is the job document's message about a slice's first failed
// record, or "" when none failed. An encrypted job's record errors stay out
// of it: they may quote the record.
func firstFailure(job *model.Job, f *slice.Outcome) string {
	switch {
	case f == nil:
		return ""
	case job.Encrypt && !f.Unreadable:
		return fmt.Sprintf("record %d failed (its error is stored encrypted with the failed records)", f.Number)
	default:
		return fmt.Sprintf("record %d: %v", f.Number, f.Err)
	}
}

// stopOnError fails a stop_on_error job at its first failed record.
func (s *Server) stopOnError(ctx context.Context, id bson.ObjectID, first string) error {
	job, err := s.store.GetJob(ctx, id)
	if err != nil || job.State != model.StateRunning {
		return err
	}
	defer func() { s.endDue(ctx, job, err) }()
	_, err = s.moveWhile(ctx, job, s.fail("stopped at the first failed record: "+first, store.Counts{}),
		func(j *model.Job) bool { return j.State == model.StateRunning })
	s.releaseTypeSlot(ctx, job, "")
	s.sel.invalidate()
	return err
}

// maybeFinish completes a job when all its slices are done: the one process
// whose transition to the after step wins runs the After hook. Losing that
// transition is no error: the winner finishes the job (another server that
// ran its last slices, typically); the job is read again, and left alone
// once it is past its processing step. A job still in its processing step
// after a few conflicts (a winner's claim not yet written, or never: its
// server died in between) is left to the next worker that selects it and
// finds no slice (it calls this again), or to the rescuer.
func (s *Server) maybeFinish(ctx context.Context, spec *rocketjob.TypeSpec, id bson.ObjectID) error {
	const looks = 3 // a job changed meanwhile by other writes (priority, progress) is looked at again
	for range looks {
		job, err := s.store.GetJob(ctx, id)
		if errors.Is(err, model.ErrJobNotFound) {
			s.dropFeeder(ctx, id)
			_ = s.store.Slices().Drop(ctx, id) // destroyed while we worked: remove what we wrote since
			return nil
		}
		if err != nil {
			return err
		}
		if job.State != model.StateRunning || job.Step != model.StepProcessing {
			return nil
		}
		var done bool
		if done, err = s.store.Slices().AllDone(ctx, id, job.SliceCount); err != nil {
			return err
		}
		if !done {
			return nil // slices in flight elsewhere, or requeued: their finisher checks again
		}
		job, err = s.store.Do(ctx, job, store.EnterStep(model.StepAfter, s.cfg.Name, nil), s.cfg.Name)
		if errors.Is(err, model.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		s.dropFeeder(ctx, id)
		return s.runAfter(ctx, spec, job)
	}
	return nil
}

// runAfter finishes a job whose slices are all done (this server holds the
// after step): when records failed, the job fails (and can be retried);
// otherwise the After hook runs and the job completes.
func (s *Server) runAfter(ctx context.Context, spec *rocketjob.TypeSpec, job *model.Job) error {
	defer s.owned.enter(job.ID)()
	rctx := context.WithoutCancel(ctx)
	p, err := s.store.Slices().Progress(rctx, job.ID, job.SliceCount, job.RecordCount)
	if err != nil {
		return err
	}
	if p.Done < job.SliceCount {
		// Fail closed: a slice counted as finished when the job entered its
		// after step is queued or running again. A claim that is not atomic
		// did that: findAndModify on FerretDB (now refused there,
		// ErrClaimStrategyUnsafe) reads the slice, then writes it back
		// whole, so a claim read before another worker finished the slice
		// could land after it, erasing the slice's failed state. So does
		// a server that died between requeueing the slices with failed
		// records (RetryFailed, below) and moving the job back to its
		// processing step. Ending the job now would drop that slice's
		// records and their failures (it would complete with 0 failed
		// records): give the job back to its processing step; the slice's
		// finisher, or the next worker to find no slice, ends it.
		s.log.Warn("a slice is unfinished again at the job's after step; the job goes back to processing",
			"job", job.ID.Hex(), "done", p.Done, "slices", job.SliceCount)
		_, err = s.ownerMove(rctx, job, store.StartProcessing(nil))
		s.sel.invalidate()
		return err
	}
	tot, err := s.store.Slices().Totals(rctx, job.ID)
	if err != nil {
		return err
	}
	final := &store.JobTotals{Processed: p.Processed, FailedRecords: p.FailedRecords, Dropped: tot.Dropped}
	if job.CollectOutput && len(job.CategoryNames) == 0 {
		final.Outputs = p.Processed - p.FailedRecords - tot.Dropped
	}
	if len(job.CategoryNames) > 0 {
		final.Categories = map[string]int64{}
		for _, name := range job.CategoryNames {
			final.Categories[name] = tot.Categories[name]
		}
	}
	// The job's totals, final until a retry, and what its slices and hooks
	// counted.
	totals := func(hooks map[string]int64) store.Counts {
		return store.Counts{Totals: final, Statistics: scope.Add(hooks, tot.Statistics)}
	}
	if p.FailedRecords > 0 && job.Attempt < job.SliceRetryLimit {
		// Retry the slices with failed records before failing the job.
		n, err := s.store.Slices().RetryFailed(rctx, job.ID)
		if err != nil {
			return err
		}
		_, err = s.ownerMove(rctx, job, store.RetrySlices(job.Attempt+1))
		s.sel.invalidate()
		s.log.Info("retrying failed slices", "job", job.ID.Hex(), "slices", n, "retry", job.Attempt+1, "of", job.SliceRetryLimit)
		return err
	}
	if p.FailedRecords > 0 {
		failure := s.lastError(fmt.Sprintf("%d of %d records failed", p.FailedRecords, job.RecordCount))
		_, err = s.ownerMove(rctx, job, store.FailRecords(failure, time.Now(), totals(job.HookStatistics)))
		s.endDue(rctx, job, err)
		s.sel.invalidate()
		s.releaseTypeSlot(rctx, job, "")
		return err
	}
	hooks := job.HookStatistics
	var ranHooks map[string]int64 // hook statistics with the After hook's, when it counted
	if spec.After != nil {
		hookCtx, w := s.watchStep(ctx, job)
		hookCtx, counters := scope.New(hookCtx)
		err := call(func() error { return spec.After(jobrun.WithJob(hookCtx, public(job)), public(job)) })
		w.Done()
		if run := counters.Counters(); run != nil {
			hooks = scope.Add(hooks, run)
			ranHooks = hooks
		}
		if cause := w.Err(); cause != nil {
			s.log.Info("after hook cancelled", "job", job.ID.Hex(), "cause", cause)
			return nil
		}
		if ctx.Err() != nil {
			_, err = s.ownerMove(rctx, job, store.GiveBack(job.Kind))
			return err
		}
		if err != nil {
			c := totals(hooks)
			c.HookStatistics = ranHooks
			_, err = s.ownerMove(rctx, job, s.fail("after hook: "+err.Error(), c))
			s.endDue(rctx, job, err)
			return err
		}
	}
	done := totals(hooks)
	done.HookStatistics = ranHooks
	if _, err = s.ownerMove(rctx, job, store.CompleteSliced(time.Now(), done)); err != nil {
		return err
	}
	s.endDue(rctx, job, nil)
	s.releaseTypeSlot(rctx, job, "")
	s.sel.invalidate()
	s.log.Info("job completed", "job", job.ID.Hex(), "type", job.Type, "records", job.RecordCount)
	if job.DestroyOnComplete {
		if err := s.store.DeleteJob(rctx, job.ID); err != nil {
			return err
		}
		return s.store.Slices().Drop(rctx, job.ID)
	}
	return s.store.Slices().DropInput(rctx, job.ID)
}
