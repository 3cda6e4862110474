package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

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

// jobStrategy is how a jobs database's jobs are written, selected and
// listed, chosen per database at Open (like the slice strategies of the
// work database): claimJobs on FerretDB (jobs_claims.go), where no update
// is atomic and any filter but _id is a scan in Go, and conditionalJobs on
// MongoDB (jobs_conditional.go). Each method is one job operation of Store
// (the Store method of that name says what it does) and takes the Store it
// works for: a strategy holds no state of its own.
type jobStrategy interface {
	insertJob(ctx context.Context, s *Store, job *model.Job) error
	insertJobs(ctx context.Context, s *Store, jobs []*model.Job) (int, error)
	// write makes one transition or update of job, from the version job
	// has, and returns the job as stored after it.
	write(ctx context.Context, s *Store, job *model.Job, w jobWrite, by string) (*model.Job, error)
	deleteJob(ctx context.Context, s *Store, id bson.ObjectID) error
	// deleteJobAt is deleteJob decided like a transition from version.
	deleteJobAt(ctx context.Context, s *Store, id bson.ObjectID, version int64) error

	listJobs(ctx context.Context, s *Store, f JobFilter) ([]model.Job, error)
	runnableJobs(ctx context.Context, s *Store, now time.Time, limit int64, types []string, mine func(*model.Job) bool) ([]model.Job, error)
	runningJobs(ctx context.Context, s *Store) ([]model.Job, error)
	jobsOfServer(ctx context.Context, s *Store, server string) ([]model.Job, error)
	slicedJobsWithSlices(ctx context.Context, s *Store) ([]model.Job, error)
	// expiredJobs is ExpiredJobs for one finished state.
	expiredJobs(ctx context.Context, s *Store, r Retention, st model.State, now time.Time, limit int) ([]model.Job, error)

	// The upkeep of what the claims strategy keeps besides the jobs (run
	// queue, state index, queue intents); nothing to do for the
	// conditional one.
	repairIntents(ctx context.Context, s *Store, now time.Time) (int, error)
	repairQueued(ctx context.Context, s *Store, stale *model.Job) error
	reconcileQueue(ctx context.Context, s *Store) (int, error)
	claimDeepSweep(ctx context.Context, s *Store, now time.Time) (bool, error)
	markNewStateIndex(ctx context.Context, s *Store) error
}

func (s *Store) jobs() *mongo.Collection      { return s.jobsDB.Collection(jobsCollection) }
func (s *Store) jobClaims() *mongo.Collection { return s.jobsDB.Collection(jobClaimsCollection) }

// InsertJob writes a new job document (and, with the claims strategy, its
// run-queue copy or state index entry). A job already written (a retried
// insert) counts as written.
func (s *Store) InsertJob(ctx context.Context, job *model.Job) error {
	return s.jobsStrategy.insertJob(ctx, s, job)
}

// insertJobDoc writes a new job document; a job already there (an earlier
// try went through) counts as written.
func (s *Store) insertJobDoc(ctx context.Context, job *model.Job) error {
	return retry(ctx, func() error {
		_, err := s.jobs().InsertOne(ctx, job)
		if isDup(err) {
			return nil // an earlier try went through
		}
		return err
	})
}

// GetJob reads one job: on FerretDB, the end record that supersedes its
// document, if any (endrecords.go).
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
	ended, err := s.superseding(ctx, &job)
	if err != nil || ended != nil {
		return ended, err
	}
	return &job, nil
}

// getJobs reads the jobs ids by _id, at once (listings read a few at a
// time: listLookups): jobs[i] and errs[i] are GetJob's answer for ids[i].
func (s *Store) getJobs(ctx context.Context, ids []bson.ObjectID) (jobs []*model.Job, errs []error) {
	jobs, errs = make([]*model.Job, len(ids)), make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { jobs[i], errs[i] = s.GetJob(ctx, id) })
	}
	wg.Wait()
	return jobs, errs
}

// JobFilter selects jobs for ListJobs.
type JobFilter struct {
	States []model.State
	Type   string
	Limit  int64
	Skip   int64
	// Newest lists the most recently created jobs first, whatever their
	// priority.
	Newest bool
}

// ListJobs returns jobs ordered by priority, then age, or newest first
// (f.Newest). On FerretDB a listing with a limit reads the run queue and
// the state index (liststate.go), or for newest first the windows of the
// states' newest entries (recent.go), instead of every job, so its cost
// does not grow with the number of jobs; among the jobs of one priority it
// orders by age the entries it reads, which come in the order the jobs
// entered their state (a job resumed or retried long after younger ones
// may be listed after them).
func (s *Store) ListJobs(ctx context.Context, f JobFilter) ([]model.Job, error) {
	return s.jobsStrategy.listJobs(ctx, s, f)
}

// queryJobs is ListJobs as one query of the jobs collection, sorted by the
// database (every listing of the conditional strategy; the claims
// strategy's listings without a limit).
func (s *Store) queryJobs(ctx context.Context, f JobFilter) ([]model.Job, error) {
	filter := bson.D{}
	if len(f.States) > 0 {
		filter = append(filter, bson.E{Key: "state", Value: bson.D{{Key: "$in", Value: f.States}}})
	}
	if f.Type != "" {
		filter = append(filter, bson.E{Key: "type", Value: f.Type})
	}
	opts := options.Find().SetSort(bson.D{{Key: "priority", Value: 1}, {Key: "_id", Value: 1}})
	if f.Newest {
		opts.SetSort(bson.D{{Key: "_id", Value: -1}})
	}
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
	return s.jobsStrategy.runnableJobs(ctx, s, now, limit, types, nil)
}

// RunnableShare is RunnableJobs for a server that shares the simple jobs
// out with others (server/selector.go: stripes) and takes those of its
// share (mine) first: on FerretDB, limit counts the jobs of its share
// alone, and the others are listed among them up to as many. A server
// whose share is ahead of another's in age order then still lists its
// own, instead of a list full of the other share's oldest jobs (`bench
// --simple` with two servers: one of them read its list every 20 ms, none
// of its own in it, for a second at a time). A nil mine is RunnableJobs:
// every job is the caller's. On MongoDB the index read lists the first
// limit jobs of either.
func (s *Store) RunnableShare(ctx context.Context, now time.Time, limit int64, types []string, mine func(*model.Job) bool) ([]model.Job, error) {
	return s.jobsStrategy.runnableJobs(ctx, s, now, limit, types, mine)
}

// JobsOfServer returns the running jobs whose current run or step belongs
// to server. On FerretDB it reads the running jobs from the state index
// (RunningJobs), not every job.
func (s *Store) JobsOfServer(ctx context.Context, server string) ([]model.Job, error) {
	return s.jobsStrategy.jobsOfServer(ctx, s, server)
}

// PendingTransition reports whether a transition of job from its version
// was claimed and not applied (FerretDB: its claimer died, or is writing
// it now), by whom, and from when another process may roll it forward
// (any transition attempt from that version does, rollForwardAfter after
// the claim). Until then the job cannot move.
func (s *Store) PendingTransition(ctx context.Context, job *model.Job) (by string, due time.Time, ok bool, err error) {
	var claim struct {
		By string    `bson:"by"`
		At time.Time `bson:"at"`
	}
	err = retry(ctx, func() error {
		return s.jobClaims().FindOne(ctx, bson.D{{Key: "_id", Value: claimID(job)}}).Decode(&claim)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", time.Time{}, false, nil
	}
	if err != nil {
		return "", time.Time{}, false, err
	}
	return claim.By, claim.At.Add(rollForwardAfter), true, nil
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
	return s.transition(ctx, job, to, change, by, false)
}

// StartHeld is Transition to running for the start of a simple job by the
// server that will run it: with the claims strategy (FerretDB's) the start
// may be held back for up to startHold, to be written with the job's next
// transition (see Held starts in jobs_batch.go). The returned job is the
// job started, as for Transition; but until the start is written, the
// stored job stays at the version the start moves it from (job.Version):
// the caller must accept that version as its own run's, and make the run's
// next transition from the returned job, as usual. Elsewhere it is
// Transition. DoHeld is the same with a named operation (StartRun), which
// the server uses.
func (s *Store) StartHeld(ctx context.Context, job *model.Job, change Change, by string) (*model.Job, error) {
	return s.transition(ctx, job, model.StateRunning, change, by, true)
}

// transition is Transition; hold lets a simple job's start be held
// (StartHeld, DoHeld).
func (s *Store) transition(ctx context.Context, job *model.Job, to model.State, change Change, by string, hold bool) (*model.Job, error) {
	if !model.CanTransition(job.State, to) {
		return nil, &model.InvalidTransitionError{JobID: job.ID.Hex(), From: job.State, To: to}
	}
	return s.apply(ctx, job, to, change, by, hold)
}

// Update changes fields of a job (its priority, say) without changing its
// state, guarded by its version exactly like a transition.
func (s *Store) Update(ctx context.Context, job *model.Job, change Change, by string) (*model.Job, error) {
	return s.apply(ctx, job, job.State, change, by, false)
}

// apply builds the write of a transition or update and hands it to the job
// strategy, which decides it (a version-conditioned update, or a claim) and
// returns the job as stored; hold lets a simple job's start be held
// (StartHeld, DoHeld).
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
	return s.jobsStrategy.write(ctx, s, job, jobWrite{set: set, unset: cleared, update: update, hold: hold}, by)
}

// jobWrite is one write of a job, moving it one version on: the top-level
// fields it sets (state and version included) and removes, and the update
// document made of them. hold lets the write be held back when it starts
// a simple job (StartHeld, DoHeld): the claims strategy's held starts
// (jobs_batch.go); the conditional strategy never holds.
type jobWrite struct {
	set    bson.D
	unset  []string
	update bson.D
	hold   bool
}

// applied returns a copy of job with the top-level fields of set assigned
// and those of unset removed, as the database stored them. It works on the
// encoded documents (the job's elements not replaced, then set's), so that
// a transition decodes the job once: this runs twice per simple job, and
// walks the elements in place rather than listing them.
func applied(job *model.Job, set bson.D, unset []string) (*model.Job, error) {
	raw, err := bson.Marshal(job)
	if err != nil {
		return nil, err
	}
	setRaw, err := bson.Marshal(set)
	if err != nil {
		return nil, err
	}
	replaced := func(key []byte) bool { // compared in place: string(key) is not allocated
		for _, u := range unset {
			if string(key) == u {
				return true
			}
		}
		for _, e := range set {
			if string(key) == e.Key {
				return true
			}
		}
		return false
	}
	doc := make([]byte, 4, len(raw)+len(setRaw))
	if doc, err = appendElements(doc, raw, replaced); err != nil {
		return nil, err
	}
	if doc, err = appendElements(doc, setRaw, nil); err != nil {
		return nil, err
	}
	doc = append(doc, 0)
	binary.LittleEndian.PutUint32(doc, uint32(len(doc)))
	var moved model.Job
	if err := bson.Unmarshal(doc, &moved); err != nil {
		return nil, err
	}
	return &moved, nil
}

// appendElements appends to dst the elements of the BSON document doc
// whose keys skip (unless nil) does not report.
func appendElements(dst, doc []byte, skip func(key []byte) bool) ([]byte, error) {
	if len(doc) < 5 {
		return nil, fmt.Errorf("a BSON document of %d bytes", len(doc))
	}
	for rest := doc[4 : len(doc)-1]; len(rest) > 0; {
		e, more, ok := bsoncore.ReadElement(rest)
		if !ok {
			return nil, fmt.Errorf("a malformed BSON element at byte %d", len(doc)-1-len(rest))
		}
		if skip == nil || !skip(e.KeyBytes()) {
			dst = append(dst, e...)
		}
		rest = more
	}
	return dst, nil
}

// DeleteJob removes a job document, its copy in the run queue and its
// transition claims.
func (s *Store) DeleteJob(ctx context.Context, id bson.ObjectID) error {
	return s.jobsStrategy.deleteJob(ctx, s, id)
}

// DeleteJobAt removes a job as DeleteJob does, if it is still at version:
// the deletion is decided as a transition from that version is (by its
// claim on FerretDB, a conditional delete on MongoDB), so of a deletion and
// a transition from one version (a rerun of a job that retention found
// expired, say) exactly one happens. It returns model.ErrConflict when the
// job moved on, and nil when it is gone.
func (s *Store) DeleteJobAt(ctx context.Context, id bson.ObjectID, version int64) error {
	return s.jobsStrategy.deleteJobAt(ctx, s, id, version)
}

// removeJob deletes the job document of id (none is not an error).
func (s *Store) removeJob(ctx context.Context, id bson.ObjectID) error {
	err := retry(ctx, func() error {
		_, err := s.jobs().DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting job %s: %w", id.Hex(), err)
	}
	return nil
}
