package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Collections of the jobs database.
const (
	jobsCollection      = "jobs"
	jobClaimsCollection = "job_claims"
)

// rollForwardAfter is how old a transition claim must be, with the job still at
// the claimed version, before another process applies it (its claimer died
// between the claim and the update).
const rollForwardAfter = 10 * time.Second

func (s *Store) jobs() *mongo.Collection      { return s.jobsDB.Collection(jobsCollection) }
func (s *Store) jobClaims() *mongo.Collection { return s.jobsDB.Collection(jobClaimsCollection) }

// InsertJob writes a new job document.
func (s *Store) InsertJob(ctx context.Context, job *model.Job) error {
	var intent bson.ObjectID
	if runnable(job) {
		intent = s.intend(ctx, []bson.ObjectID{job.ID})
	}
	err := retry(ctx, func() error {
		_, err := s.jobs().InsertOne(ctx, job)
		if isDup(err) {
			return nil // an earlier try went through
		}
		return err
	})
	if err == nil && s.syncQueue(ctx, nil, job) == nil {
		s.intended(ctx, intent) // else left for RepairIntents
	}
	return err
}

// GetJob reads one job.
func (s *Store) GetJob(ctx context.Context, id bson.ObjectID) (*model.Job, error) {
	var job model.Job
	err := retry(ctx, func() error {
		return s.jobs().FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&job)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("job %s: %w", id.Hex(), model.ErrJobNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading job %s: %w", id.Hex(), err)
	}
	return &job, nil
}

// JobFilter selects jobs for ListJobs.
type JobFilter struct {
	States []model.State
	Type   string
	Limit  int64
	Skip   int64
}

// ListJobs returns jobs ordered by priority, then age. On FerretDB a listing
// with a limit reads the run queue and the state index (liststate.go)
// instead of every job, so its cost does not grow with the number of jobs;
// among the jobs of one priority it orders by age the entries it reads,
// which come in the order the jobs entered their state (a job resumed or
// retried long after younger ones may be listed after them).
func (s *Store) ListJobs(ctx context.Context, f JobFilter) ([]model.Job, error) {
	if s.claims && f.Limit > 0 {
		return s.listFlat(ctx, f)
	}
	filter := bson.D{}
	if len(f.States) > 0 {
		filter = append(filter, bson.E{Key: "state", Value: bson.D{{Key: "$in", Value: f.States}}})
	}
	if f.Type != "" {
		filter = append(filter, bson.E{Key: "type", Value: f.Type})
	}
	opts := options.Find().SetSort(bson.D{{Key: "priority", Value: 1}, {Key: "_id", Value: 1}})
	if f.Limit > 0 {
		opts.SetLimit(f.Limit)
	}
	if f.Skip > 0 {
		opts.SetSkip(f.Skip)
	}
	jobs, err := findAll[model.Job](ctx, s.jobs(), filter, opts)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	return jobs, nil
}

// RunnableJobs returns up to limit jobs that may have work now: queued, or
// running sliced jobs, due, ordered by priority then age: on MongoDB from the index
// {state, priority, _id}, on FerretDB from the run queue (queue.go). When
// types is not nil, only jobs of those types are returned (a server asks
// for the types it runs, so that jobs it cannot run never crowd out those
// it can).
func (s *Store) RunnableJobs(ctx context.Context, now time.Time, limit int64, types []string) ([]model.Job, error) {
	if s.claims {
		return s.queuedRunnable(ctx, now, int(limit), types)
	}
	// A running simple job is one server's until it ends: only queued jobs
	// and running sliced jobs (whose slices every worker shares) are offered.
	filter := bson.D{
		{Key: "state", Value: bson.D{{Key: "$in", Value: bson.A{model.StateQueued, model.StateRunning}}}},
		{Key: "run_at", Value: bson.D{{Key: "$lte", Value: now}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "state", Value: model.StateQueued}},
			bson.D{{Key: "kind", Value: bson.D{{Key: "$ne", Value: model.KindSimple}}}},
		}},
	}
	if types != nil {
		filter = append(filter, bson.E{Key: "type", Value: bson.D{{Key: "$in", Value: types}}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "priority", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(limit)
	return findAll[model.Job](ctx, s.jobs(), filter, opts)
}

// JobsOfServer returns the running jobs whose current run or step belongs
// to server. On FerretDB it reads the running jobs from the state index
// (RunningJobs), not every job.
func (s *Store) JobsOfServer(ctx context.Context, server string) ([]model.Job, error) {
	if !s.claims {
		return findAll[model.Job](ctx, s.jobs(), bson.D{{Key: "state", Value: model.StateRunning}, {Key: "server", Value: server}})
	}
	running, err := s.RunningJobs(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(running, func(j model.Job) bool { return j.Server != server }), nil
}

// Transition moves job to state to, applying change, if and only if nobody has
// moved the job since it was read (its version). It returns the updated job,
// an *model.InvalidTransitionError for an illegal move, or model.ErrConflict
// when another process moved it first.
//
// On MongoDB the update conditioned on the version is atomic. On FerretDB it is
// not, so a unique insert of "<job>:<version>" into job_claims decides first;
// the claim holds the update so that, if its writer dies before applying it,
// another process rolls it forward.
func (s *Store) Transition(ctx context.Context, job *model.Job, to model.State, change Change, by string) (*model.Job, error) {
	if !model.CanTransition(job.State, to) {
		return nil, &model.InvalidTransitionError{JobID: job.ID.Hex(), From: job.State, To: to}
	}
	return s.apply(ctx, job, to, change, by, false)
}

// StartHeld is Transition to running for the start of a simple job by the
// server that will run it: on FerretDB the start may be held back for up to
// startHold, to be written with the job's next transition (see Held starts
// in jobs_batch.go). The returned job is the job started, as for
// Transition; but until the start is written, the stored job stays at the
// version the start moves it from (job.Version): the caller must accept
// that version as its own run's, and make the run's next transition from
// the returned job, as usual. Elsewhere it is Transition.
func (s *Store) StartHeld(ctx context.Context, job *model.Job, change Change, by string) (*model.Job, error) {
	if !model.CanTransition(job.State, model.StateRunning) {
		return nil, &model.InvalidTransitionError{JobID: job.ID.Hex(), From: job.State, To: model.StateRunning}
	}
	return s.apply(ctx, job, model.StateRunning, change, by, true)
}

// Update changes fields of a job (its priority, say) without changing its
// state, guarded by its version exactly like a transition.
func (s *Store) Update(ctx context.Context, job *model.Job, change Change, by string) (*model.Job, error) {
	return s.apply(ctx, job, job.State, change, by, false)
}

// apply makes a transition (see Transition); hold lets a simple job's start
// be held (StartHeld).
func (s *Store) apply(ctx context.Context, job *model.Job, to model.State, change Change, by string, hold bool) (*model.Job, error) {
	set := append(bson.D{{Key: "state", Value: to}, {Key: "version", Value: job.Version + 1}}, change.set()...)
	update := bson.D{{Key: "$set", Value: set}}
	cleared := change.unset()
	if len(cleared) > 0 {
		unset := bson.D{}
		for _, f := range cleared {
			unset = append(unset, bson.E{Key: f, Value: ""})
		}
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	var (
		claim func() error // makes the transition's claim: nil, model.ErrConflict or another error
		fresh *heldStart   // the job's held start, never written, that this transition is written with
	)
	if s.claims {
		// The update is kept as bytes: stored field names cannot start with "$".
		raw, err := bson.Marshal(update)
		if err != nil {
			return nil, err
		}
		claim = func() error {
			err := s.jobWriters().claims.do(ctx, bson.D{ // with other workers' claims
				{Key: "_id", Value: claimID(job)},
				{Key: "by", Value: by},
				{Key: "at", Value: time.Now()},
				{Key: "update", Value: bson.Binary{Data: raw}},
			})
			if isDup(err) || errors.Is(err, errClaimTaken) {
				s.rollForward(ctx, job)
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
		}
	}
	// On FerretDB the job's new running entry in the state index is written
	// before the job (so that a running job always has its entry, which the
	// rescuer reads), and so is an intent when the job becomes runnable (so
	// that its run-queue copy is written even if this process dies after the
	// write; an intent is removed once the copy is, and left behind on a
	// failure).
	var (
		moved  *model.Job
		intent bson.ObjectID
		held   bool // a simple job's start, held back (holdStart)
	)
	if s.claims {
		var err error
		if moved, err = applied(job, set, cleared); err != nil {
			return nil, err
		}
		held = hold && started(job, moved)
		if !runnable(job) && runnable(moved) {
			intent = s.intend(ctx, []bson.ObjectID{job.ID})
		}
		if ahead(job, moved) && !held { // a held start's entry is held with it
			s.syncStatesPart(ctx, job, moved, statePut)
		}
	}
	claimedAt := time.Now()
	var matched int64
	var err error
	neverRan := false // the job was never stored running: its start was held and is written with this
	if s.claims {
		// Written with other workers' updates, the job named by _id alone
		// while the claim is young (jobUpdate.filter); a simple job's start
		// is held back to be written with its next transition (holdStart).
		var res updateResult
		u := jobUpdate{id: job.ID, version: job.Version, to: job.Version + 1, claimedAt: claimedAt, update: update}
		res, neverRan = s.writeJobUpdate(ctx, job, moved, u, held, fresh, claim)
		matched, err = res.matched, res.err
	} else {
		err = retry(ctx, func() error {
			res, err := s.jobs().UpdateOne(ctx, bson.D{{Key: "_id", Value: job.ID}, {Key: "version", Value: job.Version}}, update)
			if err == nil {
				matched = res.MatchedCount
			}
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", job.ID.Hex(), err)
	}
	if matched == 0 && s.claims {
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
	}
	if matched == 0 {
		return nil, fmt.Errorf("job %s: %w", job.ID.Hex(), model.ErrConflict)
	}
	// The update was conditioned on the version we read (by its filter, or
	// on FerretDB by the claim), so the stored job is exactly job with the
	// change applied: apply it here rather than read it again.
	if !s.claims {
		return applied(job, set, cleared)
	}
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
func (s *Store) writeJobUpdate(ctx context.Context, before, after *model.Job, u jobUpdate, hold bool, fresh *heldStart, claim func() error) (updateResult, bool) {
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

// takenBack reports whether a transition makes a running simple job
// runnable again (a rescuer's requeue, a shutdown's give-back). Its intent
// is then left for RepairIntents to check once the writers are done: the
// server that started the run may still be removing the job's run-queue
// copy of its start (dropStarted names the copy by _id alone), and a
// removal that lands after this write's copy would leave a queued job that
// no selection finds. The server repairs that itself when it notices
// (worker.go), unless it dies first; the intent covers that case.
func takenBack(before, after *model.Job) bool {
	return before.Kind == model.KindSimple && before.State == model.StateRunning && runnable(after)
}

// ahead reports whether a transition writes the job's new state index
// entry before the job: when the job starts running (the rescuer finds
// running jobs by their entries). Other entries are written with the
// removal of the old one after the job write, in one batch; a writer that
// dies in between leaves an entry out of date, which listings repair.
func ahead(before, after *model.Job) bool {
	return indexedState(after) == model.StateRunning && indexedState(before) != model.StateRunning
}

// applied returns a copy of job with the top-level fields of set assigned
// and those of unset removed, as the database stored them.
func applied(job *model.Job, set bson.D, unset []string) (*model.Job, error) {
	raw, err := bson.Marshal(job)
	if err != nil {
		return nil, err
	}
	var doc bson.D
	if err := bson.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	drop := map[string]bool{}
	for _, k := range unset {
		drop[k] = true
	}
	for _, e := range set {
		drop[e.Key] = true
	}
	out := doc[:0]
	for _, e := range doc {
		if !drop[e.Key] {
			out = append(out, e)
		}
	}
	out = append(out, set...)
	raw, err = bson.Marshal(out)
	if err != nil {
		return nil, err
	}
	var moved model.Job
	if err := bson.Unmarshal(raw, &moved); err != nil {
		return nil, err
	}
	return &moved, nil
}

func claimID(job *model.Job) string { return fmt.Sprintf("%s:%d", job.ID.Hex(), job.Version) }

// rollForward applies a transition claim whose writer died before applying it.
// When the update gave the job's run (or step) to its claimer and the
// claimer's server document is gone (it was declared dead and rescued before
// this roll-forward), nobody would ever finish that run: it is given back at
// once, as the rescuer would have, instead of waiting for the orphan sweep.
func (s *Store) rollForward(ctx context.Context, job *model.Job) {
	var claim struct {
		At     time.Time `bson:"at"`
		By     string    `bson:"by"`
		Update []byte    `bson:"update"`
	}
	if err := s.jobClaims().FindOne(ctx, bson.D{{Key: "_id", Value: claimID(job)}}).Decode(&claim); err != nil {
		return
	}
	if time.Since(claim.At) < rollForwardAfter {
		return
	}
	res, err := s.jobs().UpdateOne(ctx, bson.D{{Key: "_id", Value: job.ID}, {Key: "version", Value: job.Version}}, bson.Raw(claim.Update))
	if err != nil || res.ModifiedCount == 0 {
		return
	}
	_ = s.RepairQueued(ctx, job)
	moved, err := s.GetJob(ctx, job.ID)
	if err != nil || moved.State != model.StateRunning || moved.Server == "" || moved.Server != claim.By {
		return
	}
	if _, err := s.GetServer(ctx, moved.Server); !errors.Is(err, model.ErrServerNotFound) {
		return // alive (or unknown): its rescuer will requeue it if it dies
	}
	to := model.StateQueued // a simple job runs again
	if moved.Kind == model.KindSliced {
		to = model.StateRunning // its before or after step runs again
	}
	_, _ = s.Transition(ctx, moved, to, Change{ClearServer: true}, "rescuer")
}

// DeleteJob removes a job document, its copy in the run queue and its
// transition claims.
func (s *Store) DeleteJob(ctx context.Context, id bson.ObjectID) error {
	var before *model.Job
	if s.claims {
		var err error
		if before, err = s.GetJob(ctx, id); errors.Is(err, model.ErrJobNotFound) {
			return nil
		} else if err != nil {
			return err
		}
	}
	err := retry(ctx, func() error {
		_, err := s.jobs().DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting job %s: %w", id.Hex(), err)
	}
	_ = s.syncQueue(ctx, before, nil) // nothing to put: the job is gone
	if before == nil || before.Cron != "" {
		s.dropCronSuccessor(ctx, id)
	}
	if !s.claims {
		return retry(ctx, func() error {
			_, err := s.jobClaims().DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^" + id.Hex() + ":"}}}})
			return err
		})
	}
	// One claim per version, each deleted by _id: FerretDB would run a regex
	// over every claim of every job in Go.
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
