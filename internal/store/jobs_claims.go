package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// claimJobs is the job strategy of FerretDB, where no update is atomic
// across connections and any filter other than {_id} is a scan in Go:
//
//   - a unique insert of a claim "<job>:<version>" into job_claims decides
//     each transition, then the job is updated by _id (the claim holds the
//     update, so that another process rolls it forward if its writer dies
//     in between: rollForward);
//   - every runnable job has a copy in the run queue (queue.go), which
//     selections read instead of the jobs collection;
//   - every job that is not queued has an entry in the state index
//     (liststate.go), which limited listings, the running jobs and
//     retention read;
//   - a write that makes jobs runnable records a queue intent first
//     (intents.go), so that a writer that dies before writing the copies
//     leaves a trace for RepairIntents.
//
// This file holds the strategy's whole path for each job operation; the
// run queue, the state index and the intents keep their mechanics in
// their own files.
type claimJobs struct{}

// insertJob records a queue intent for a runnable job, writes the job,
// then its run-queue copy or state index entry, and removes the intent.
func (claimJobs) insertJob(ctx context.Context, s *Store, job *model.Job) error {
	var intent bson.ObjectID
	if runnable(job) {
		intent = s.intend(ctx, []bson.ObjectID{job.ID})
	}
	err := s.insertJobDoc(ctx, job)
	if err == nil && s.syncQueue(ctx, nil, job) == nil {
		s.intended(ctx, intent) // else left for RepairIntents
	}
	return err
}

// insertJobs writes the jobs InsertBatch at a time: one unordered
// insertMany of the jobs, then one insertMany of their run-queue copies per
// priority (the batched form of insertJob), the batch's ids recorded as a
// queue intent before and removed after. A job is written before its copy,
// so a worker never finds a copy without its job; the copies of one batch
// are written while the next batch of jobs is, so the database's two cores
// both work.
func (claimJobs) insertJobs(ctx context.Context, s *Store, jobs []*model.Job) (int, error) {
	type copiesOf struct {
		copies []queued
		intent bson.ObjectID
	}
	copies := make(chan copiesOf, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		for batch := range copies {
			if s.queueNew(ctx, batch.copies) == nil {
				s.intended(ctx, batch.intent) // else left for RepairIntents
			}
		}
	}()
	defer func() {
		close(copies)
		<-copied
	}()
	written := 0
	size := InsertBatch
	if n := len(jobs); n <= InsertBatch && n >= 2*segmentMin {
		// One batch's copies would follow its jobs with nothing to overlap:
		// two halves let the second's jobs be written with the first's copies.
		size = (n + 1) / 2
	}
	for len(jobs) > 0 {
		batch := jobs[:min(size, len(jobs))]
		jobs = jobs[len(batch):]
		docs := make([]any, len(batch))
		var runnables []queued
		var ids []bson.ObjectID
		for i, j := range batch {
			// Marshalled once for both collections.
			raw, err := bson.Marshal(j)
			if err != nil {
				return written, fmt.Errorf("inserting job %s: %w", j.ID.Hex(), err)
			}
			docs[i] = bson.Raw(raw)
			if runnable(j) {
				runnables = append(runnables, queued{priority: j.Priority, simple: j.Kind == model.KindSimple, doc: bson.Raw(raw)})
				ids = append(ids, j.ID)
			}
		}
		// Should this process die before the copies are written, the
		// intent tells the housekeeping which jobs lack theirs.
		intent := s.intend(ctx, ids)
		if _, _, err := s.insert(ctx, s.jobs(), docs); err != nil {
			return written, fmt.Errorf("inserting jobs: %w", err)
		}
		written += len(batch)
		if len(runnables) > 0 {
			copies <- copiesOf{runnables, intent}
		}
		// Jobs written in a state other than queued.
		if s.putStatesNew(ctx, batch) == nil {
			s.noteRecent(ctx, batch...) // the windows of newest-first listings (recent.go)
		}
	}
	return written, nil
}

// write decides the transition by a claim insert, then updates the job by
// _id; the state index and the run queue follow, and an intent covers a
// job made runnable until its run-queue copy is written. A simple job's
// start made with w.hold is held back (Held starts, jobs_batch.go), and
// the transition that follows a held start never written is written with
// it, without a claim of its own.
func (c claimJobs) write(ctx context.Context, s *Store, job *model.Job, w jobWrite, by string) (*model.Job, error) {
	set, cleared, update := w.set, w.unset, w.update
	// The update is kept as bytes: stored field names cannot start with "$".
	raw, err := bson.Marshal(update)
	if err != nil {
		return nil, err
	}
	var (
		claim func() error // makes the transition's claim: nil, model.ErrConflict or another error
		fresh *heldStart   // the job's held start, never written, that this transition is written with
	)
	claim = func() error {
		err := s.jobWriters().claims.do(ctx, bson.D{ // with other workers' claims
			{Key: "_id", Value: claimID(job)},
			{Key: "by", Value: by},
			{Key: "at", Value: time.Now()},
			{Key: "update", Value: bson.Binary{Data: raw}},
		})
		if err == nil {
			s.segments.claim(job.ID, job.Version) // its offer, if it had one in a segment, is this process's
		}
		if isDup(err) || errors.Is(err, errClaimTaken) {
			if c.rollForward(ctx, s, job) {
				s.segments.claimedElsewhere(job.ID, job.Version)
				return ErrClaimed
			}
			return model.ErrConflict
		}
		return err
	}
	// The next transition of a held start that was never written needs
	// no claim: nobody else can see the version it moves the job from
	// (takeFreshHeld).
	if fresh = s.takeFreshHeld(job.ID, job.Version); fresh == nil {
		if err := claim(); err != nil {
			return nil, fmt.Errorf("job %s: %w", job.ID.Hex(), err)
		}
		if finished(job) {
			// A job that ended by an end record is stored as it was before
			// its run: the record is written into it first (rare: a rerun,
			// an edit of a finished job), by this claim's holder alone.
			if err := s.fold(ctx, job.ID, false); err != nil {
				return nil, fmt.Errorf("job %s: %w", job.ID.Hex(), err)
			}
		}
	}
	// The job's new running entry in the state index is written before the
	// job (so that a running job always has its entry, which the rescuer
	// reads), and so is an intent when the job becomes runnable (so that
	// its run-queue copy is written even if this process dies after the
	// write; an intent is removed once the copy is, and left behind on a
	// failure).
	var (
		moved  *model.Job
		intent bson.ObjectID
		held   bool // a simple job's start, held back (holdStart)
	)
	if moved, err = applied(job, set, cleared); err != nil {
		return nil, err
	}
	held = w.hold && started(job, moved)
	if !runnable(job) && runnable(moved) {
		intent = s.intend(ctx, []bson.ObjectID{job.ID})
	}
	if ahead(job, moved) && !held { // a held start's entry is held with it
		s.syncStatesPart(ctx, job, moved, statePut)
	}
	claimedAt := time.Now()
	// Written with other workers' updates, the job named by _id alone
	// while the claim is young (jobUpdate.filter); a simple job's start
	// is held back to be written with its next transition (holdStart).
	u := jobUpdate{id: job.ID, version: job.Version, to: job.Version + 1, claimedAt: claimedAt, update: update}
	// neverRan: the job was never stored running (its start was held and
	// is written with this).
	res, neverRan := c.writeJobUpdate(ctx, s, job, moved, u, held, fresh, claim)
	matched, err := res.matched, res.err
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", job.ID.Hex(), err)
	}
	if matched == 0 {
		// A claimer slower than rollForwardAfter may find its own claim
		// rolled forward by another process: the job is then one version on,
		// with exactly this update applied, and the transition did happen.
		// Reporting a conflict would leave a run nobody works on.
		if cur, err := s.GetJob(ctx, job.ID); err == nil && cur.Version == job.Version+1 {
			if s.syncQueue(ctx, job, cur) == nil && !takenBack(job, cur) {
				s.intended(ctx, intent)
			}
			return cur, nil
		}
		return nil, fmt.Errorf("job %s: %w", job.ID.Hex(), model.ErrConflict)
	}
	// The claim made this the only write from the version we read, so the
	// stored job is exactly job with the change applied (moved).
	if held {
		// Its running entry and the removal of its run-queue copy are held
		// with it: until the start is written, the job is queued and keeps
		// its copy (a server killed meanwhile leaves a job that others still
		// find, and roll its claim forward).
		return moved, nil
	}
	part := statePut | stateDrop
	switch {
	case ahead(job, moved):
		part = stateDrop // the new entry is written
	case neverRan:
		part = statePut // no running entry to remove
	}
	if s.syncQueuePart(ctx, job, moved, part) == nil && !takenBack(job, moved) {
		s.intended(ctx, intent) // the run-queue copy is written; else left for RepairIntents
	}
	return moved, nil
}

// writeJobUpdate writes a transition's job update on FerretDB: held back
// when it starts a simple job (hold), together with the job's held start
// when there is one (fresh, taken before the transition's claim, which it
// then did not make; or one found now), else alone (each with other
// workers' updates). claim makes the transition's claim.
// It reports whether the update was written with a held start that had
// written nothing (the job was never stored running).
func (claimJobs) writeJobUpdate(ctx context.Context, s *Store, before, after *model.Job, u jobUpdate, hold bool, fresh *heldStart, claim func() error) (updateResult, bool) {
	w := s.jobWriters()
	if hold {
		s.holdStart(ctx, u, before, after)
		return updateResult{matched: 1}, false
	}
	h, neverRan, claimless := fresh, fresh != nil, fresh != nil
	if h == nil {
		h, neverRan = s.takeHeld(u.id, u.version)
	}
	if h == nil {
		return w.updates.do(ctx, u), false
	}
	if neverRan && endsByRecord(s, after) && claimYoung(h.u.claimedAt) {
		// The run's end, with its start never written: an end record
		// instead of an update (endrecords.go).
		rec, err := endRecordOf(h.u.version, after)
		if err != nil {
			return updateResult{err: err}, false
		}
		res := w.records.do(ctx, rec)
		if res.err == nil {
			s.dropStarted(ctx, h.before)
		}
		return res, true
	}
	res := w.updates.do(ctx, jobUpdate{id: u.id, version: h.u.version, to: u.target(), claimedAt: h.u.claimedAt,
		update: mergeUpdates(h.u.update, u.update)})
	if res.err == nil && res.matched == 0 {
		// The start alone may have been applied meanwhile (rolled forward
		// by another process after rollForwardAfter): then write this
		// update alone, claimed first if it was not.
		cur, err := s.GetJob(ctx, u.id)
		switch {
		case err == nil && cur.Version == u.version:
			if claimless {
				if err := claim(); err != nil {
					return updateResult{err: err}, false
				}
				u.claimedAt = time.Now()
			}
			res = w.updates.do(ctx, u)
			neverRan = false // the roll-forward wrote the running entry
		case claimless:
			// Gone, or moved on by another process's claim after a
			// roll-forward of the start: not this transition.
			return updateResult{err: model.ErrConflict}, false
		}
	}
	if res.err == nil && res.matched > 0 && !runnable(after) {
		// The start's run-queue copy goes with the start (a job made
		// runnable again gets its copy replaced by the caller instead).
		s.dropStarted(ctx, h.before)
	}
	return res, neverRan
}

// takenBack reports whether a transition makes a simple job runnable again
// while the removal of its start's run-queue copy may still be on its way:
// a rescuer's requeue or a shutdown's give-back of its run, a retry, or a
// rerun of a job that ended less than intentAge ago. Its intent is then
// left for RepairIntents to check once the writers are done: dropStarted
// names the copy by _id alone and is sent after the job write that started
// or, for a held start, ended the run, and a removal that lands after this
// write's copy would leave a queued job that no selection finds. The
// server repairs that itself when it notices (worker.go), unless it dies
// first; the intent covers that case and the quick rerun. A resumed job
// (paused while queued) or an old job rerun has no removal on its way, and
// leaves no intent: a bulk resume or rerun would fill the minute's repair.
func takenBack(before, after *model.Job) bool {
	if before.Kind != model.KindSimple || runnable(before) || !runnable(after) {
		return false
	}
	switch before.State {
	case model.StateRunning:
		return true
	case model.StateCompleted, model.StateFailed, model.StateAborted:
		return before.CompletedAt == nil || time.Since(*before.CompletedAt) < intentAge
	}
	return false
}

// ahead reports whether a transition writes the job's new state index
// entry before the job: when the job starts running (the rescuer finds
// running jobs by their entries). Other entries are written with the
// removal of the old one after the job write, in one batch; a writer that
// dies in between leaves an entry out of date, which listings repair.
func ahead(before, after *model.Job) bool {
	return indexedState(after) == model.StateRunning && indexedState(before) != model.StateRunning
}

// claimID is the _id of the claim that decides the transition of job from
// its version.
func claimID(job *model.Job) string { return fmt.Sprintf("%s:%d", job.ID.Hex(), job.Version) }

// ErrClaimed is the conflict of a transition whose claim another process
// made moments ago (younger than rollForwardAfter): that process is moving
// the job, and its write brings the job's run-queue copy in line; the
// caller has nothing to repair. The job's offer in a segment is not
// offered to this Store again until the claim could be rolled forward.
// It is a model.ErrConflict.
var ErrClaimed = fmt.Errorf("%w (a transition another process claimed moments ago)", model.ErrConflict)

// rollForward applies a transition claim whose writer died before applying it.
// When the update gave the job's run (or step) to its claimer and the
// claimer's server document is gone (it was declared dead and rescued before
// this roll-forward), nobody would ever finish that run: it is given back at
// once, as the rescuer would have, instead of waiting for the orphan sweep.
// It reports whether the claim is young: its writer is at work on it.
func (claimJobs) rollForward(ctx context.Context, s *Store, job *model.Job) (young bool) {
	var claim struct {
		At     time.Time `bson:"at"`
		By     string    `bson:"by"`
		Update []byte    `bson:"update"`
	}
	if err := s.jobClaims().FindOne(ctx, bson.D{{Key: "_id", Value: claimID(job)}}).Decode(&claim); err != nil {
		return false
	}
	if time.Since(claim.At) < rollForwardAfter {
		return true
	}
	// Usually the claim was applied long ago (a stale copy): a read by _id
	// tells, where the update's filter on the version is a scan in Go.
	if stored, err := s.GetJob(ctx, job.ID); err != nil || stored.Version != job.Version {
		return false
	}
	if finished(job) && s.fold(ctx, job.ID, true) != nil { // the claim is from an end record's version
		return false
	}
	res, err := s.jobs().UpdateOne(ctx, bson.D{{Key: "_id", Value: job.ID}, {Key: "version", Value: job.Version}}, bson.Raw(claim.Update))
	if err != nil || res.ModifiedCount == 0 {
		return false
	}
	_ = s.RepairQueued(ctx, job)
	moved, err := s.GetJob(ctx, job.ID)
	if err != nil || moved.State != model.StateRunning || moved.Server == "" || moved.Server != claim.By {
		return false
	}
	if _, err := s.GetServer(ctx, moved.Server); !errors.Is(err, model.ErrServerNotFound) {
		return false // alive (or unknown): its rescuer will requeue it if it dies
	}
	_, _ = s.Do(ctx, moved, GiveBack(moved.Kind), "rescuer")
	return false
}

// deleteJob removes the job, then its run-queue copy and state index entry,
// then its transition claims, each by _id: FerretDB would run a regex over
// every claim of every job in Go.
func (claimJobs) deleteJob(ctx context.Context, s *Store, id bson.ObjectID) error {
	before, err := s.GetJob(ctx, id)
	if errors.Is(err, model.ErrJobNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return deleteStored(ctx, s, before)
}

// deleteJobAt claims the transition from version, as any transition of
// the job would (claimJobs.write), then deletes the job. The claim's update
// only moves the version on: rolled forward after its writer died between
// claim and deletion, it leaves the job as it was, and its claim free.
func (c claimJobs) deleteJobAt(ctx context.Context, s *Store, id bson.ObjectID, version int64) error {
	job := &model.Job{ID: id, Version: version}
	raw, err := bson.Marshal(bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: version + 1}}}})
	if err != nil {
		return err
	}
	err = s.jobWriters().claims.do(ctx, bson.D{
		{Key: "_id", Value: claimID(job)},
		{Key: "by", Value: "destroy"},
		{Key: "at", Value: time.Now()},
		{Key: "update", Value: bson.Binary{Data: raw}},
	})
	if isDup(err) || errors.Is(err, errClaimTaken) {
		// Another process's transition, or a writer's that died before
		// applying it: rolled forward when due, as write does (else a
		// finished job held by a dead writer's claim could never be
		// deleted: nobody else moves it).
		if cur, err := s.GetJob(ctx, id); err == nil && cur.Version == version {
			c.rollForward(ctx, s, cur)
		}
		return fmt.Errorf("job %s: %w", id.Hex(), model.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("deleting job %s: %w", id.Hex(), err)
	}
	dropClaim := func() error { // the job is not deleted: the claim must not hold it
		ctx := context.WithoutCancel(ctx) // also when the caller gave up
		return retry(ctx, func() error {
			_, err := s.jobClaims().DeleteOne(ctx, bson.D{{Key: "_id", Value: claimID(job)}})
			return err
		})
	}
	// Nobody else moves the job from version now. It is at a later one
	// only if this claim was rolled forward (this process stalled past
	// rollForwardAfter): then others may move it again, and it is not
	// deleted.
	before, err := s.GetJob(ctx, id)
	switch {
	case errors.Is(err, model.ErrJobNotFound): // deleted meanwhile, or before: the claim would stay behind
		return dropClaim()
	case err != nil:
		return errors.Join(err, dropClaim())
	case before.Version != version:
		return fmt.Errorf("job %s: %w", id.Hex(), model.ErrConflict)
	}
	return deleteStored(ctx, s, before)
}

// deleteStored is deleteJob of the job as read (before).
func deleteStored(ctx context.Context, s *Store, before *model.Job) error {
	id := before.ID
	if err := s.removeJob(ctx, id); err != nil {
		return err
	}
	if err := s.dropEndRecords(ctx, before); err != nil {
		return err
	}
	_ = s.syncQueue(ctx, before, nil) // nothing to put: the job is gone
	if before.Cron != "" {
		s.dropCronSuccessor(ctx, id)
	}
	// One claim per version, each deleted by _id.
	for v := range before.Version + 1 {
		claim := claimID(&model.Job{ID: id, Version: v})
		err := retry(ctx, func() error {
			_, err := s.jobClaims().DeleteOne(ctx, bson.D{{Key: "_id", Value: claim}})
			return err
		})
		if err != nil {
			return fmt.Errorf("deleting job %s: %w", id.Hex(), err)
		}
	}
	return nil
}

// listJobs reads the run queue and the state index for a listing with a
// limit (listFlat), the windows of newest entries for one newest first
// (listNewest), and the jobs collection with the end records for one
// without a limit (queryJobsMerged).
func (claimJobs) listJobs(ctx context.Context, s *Store, f JobFilter) ([]model.Job, error) {
	switch {
	case f.Limit > 0 && f.Newest:
		return s.listNewest(ctx, f)
	case f.Limit > 0:
		return s.listFlat(ctx, f)
	}
	return s.queryJobsMerged(ctx, f)
}

// runnableJobs reads the run queue (queuedRunnable).
func (claimJobs) runnableJobs(ctx context.Context, s *Store, now time.Time, limit int64, types []string, mine func(*model.Job) bool) ([]model.Job, error) {
	return s.queuedRunnable(ctx, now, int(limit), types, mine)
}

// runningJobs reads the state index's running entries, then each job by
// _id, so its cost follows the number of running jobs, not of jobs.
func (claimJobs) runningJobs(ctx context.Context, s *Store) ([]model.Job, error) {
	ids, err := s.stateEntryIDs(ctx, model.StateRunning)
	if err != nil {
		return nil, fmt.Errorf("listing running jobs: %w", err)
	}
	jobs, err := s.readJobs(ctx, ids, func(j *model.Job) bool { return j.State == model.StateRunning })
	if err != nil {
		return nil, fmt.Errorf("listing running jobs: %w", err)
	}
	return jobs, nil
}

// jobsOfServer keeps the server's among the running jobs (runningJobs).
func (claimJobs) jobsOfServer(ctx context.Context, s *Store, server string) ([]model.Job, error) {
	running, err := s.RunningJobs(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(running, func(j model.Job) bool { return j.Server != server }), nil
}

// slicedJobsWithSlices reads the jobs that have input slices, found by the
// work database's collection names.
func (claimJobs) slicedJobsWithSlices(ctx context.Context, s *Store) ([]model.Job, error) {
	ids, err := s.slicedJobIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing sliced jobs: %w", err)
	}
	jobs, err := s.readJobs(ctx, ids, liveSliced)
	if err != nil {
		return nil, fmt.Errorf("listing sliced jobs: %w", err)
	}
	return jobs, nil
}

// expiredJobs reads the heads of the state index (expiredIndexed).
func (claimJobs) expiredJobs(ctx context.Context, s *Store, r Retention, st model.State, now time.Time, limit int) ([]model.Job, error) {
	return s.expiredIndexed(ctx, r, st, now, limit)
}

// The upkeep of the run queue, the state index and the intents: the
// Store methods of these names say what each does (queue.go, intents.go,
// liststate.go).

// repairIntents is RepairIntents (intents.go).
func (claimJobs) repairIntents(ctx context.Context, s *Store, now time.Time) (int, error) {
	return s.repairIntents(ctx, now)
}

// repairQueued is RepairQueued (queue.go).
func (claimJobs) repairQueued(ctx context.Context, s *Store, stale *model.Job) error {
	return s.repairQueued(ctx, stale)
}

// reconcileQueue is ReconcileQueue (queue.go).
func (claimJobs) reconcileQueue(ctx context.Context, s *Store) (int, error) {
	return s.reconcileQueue(ctx)
}

// claimDeepSweep claims the hour's reconciliation of the whole run queue.
// The winner removes the claim of two hours ago.
func (claimJobs) claimDeepSweep(ctx context.Context, s *Store, now time.Time) (bool, error) {
	return s.claimPeriod(ctx, func(hour int64) string { return fmt.Sprintf("deepsweep:%d", hour) }, now.Unix()/3600)
}

// markNewStateIndex marks the state index built when there is no job yet.
func (claimJobs) markNewStateIndex(ctx context.Context, s *Store) error {
	_, err := s.stateIndexBuilt(ctx)
	return err
}
