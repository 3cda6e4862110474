package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Reading the live jobs without reading every job (FerretDB).
//
// The rescuer, a server's start and the housekeeping used to read the jobs
// collection whole (running jobs of a dead server, sliced jobs with slices,
// the run queue's repair), which FerretDB filters in Go: seconds at 20,000
// jobs, and more as completed jobs pile up. They read instead:
//
//   - the state index's running entries (liststate.go) for the running
//     jobs: every running job, simple or sliced, has one, written before
//     the job write that makes it running, so a writer that dies right after
//     the write still leaves it;
//   - the work database's collection names for the sliced jobs that have
//     slices (slices_<id>_input, kept until the job completes);
//   - queue intents for the run queue: a write that makes jobs runnable
//     (a new job, a requeue, a retry, a resume) first records their ids in
//     queue_intents, and removes that record once their run-queue copies
//     are written. A record left behind names jobs whose writer died between
//     the two: RepairIntents gives them their copies.
//
// Each costs as much as there are live jobs, not jobs.

const (
	intentsCollection = "queue_intents"
	// intentAge is how old an intent must be before RepairIntents takes its
	// writer for dead (a write and its copies take milliseconds).
	intentAge = 30 * time.Second
)

// queueIntent records jobs whose run-queue copies are being written.
type queueIntent struct {
	ID   bson.ObjectID   `bson:"_id"`
	At   time.Time       `bson:"at"`
	Jobs []bson.ObjectID `bson:"jobs"`
}

func (s *Store) intents() *mongo.Collection { return s.jobsDB.Collection(intentsCollection) }

// intend records, before a write that makes jobs runnable, that their
// run-queue copies are to be written. It returns the record's id, to give
// to intended once they are, or the zero id (no job, or a failure: the
// write goes on, as it did before intents existed). The claims strategy
// alone keeps intents.
func (s *Store) intend(ctx context.Context, ids []bson.ObjectID) bson.ObjectID {
	if len(ids) == 0 {
		return bson.ObjectID{}
	}
	in := queueIntent{ID: bson.NewObjectID(), At: time.Now().UTC(), Jobs: ids}
	err := retry(ctx, func() error {
		_, err := s.intents().InsertOne(ctx, in)
		if isDup(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return bson.ObjectID{}
	}
	return in.ID
}

// intended removes an intent whose copies are written.
func (s *Store) intended(ctx context.Context, id bson.ObjectID) {
	if id.IsZero() {
		return
	}
	_ = retry(ctx, func() error {
		_, err := s.intents().DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		return err
	})
}

// RepairIntents gives their run-queue copies (and state index entries) to
// the jobs of intents older than a writer takes, whose writer died between
// the job write and the copies, and removes those intents. It returns how
// many copies it wrote. It reads the intents left behind, not the jobs:
// run it once a minute. The conditional strategy (MongoDB) keeps no
// intents: 0.
func (s *Store) RepairIntents(ctx context.Context, now time.Time) (int, error) {
	return s.jobsStrategy.repairIntents(ctx, s, now)
}

// repairIntents is RepairIntents of the claims strategy.
func (s *Store) repairIntents(ctx context.Context, now time.Time) (int, error) {
	left, err := findAll[queueIntent](ctx, s.intents(), bson.D{})
	if err != nil {
		return 0, fmt.Errorf("reading queue intents: %w", err)
	}
	fixed := 0
	for _, in := range left {
		if now.Sub(in.At) < intentAge {
			continue
		}
		for _, id := range in.Jobs {
			job, err := s.GetJob(ctx, id)
			if errors.Is(err, model.ErrJobNotFound) {
				continue // never written, or destroyed since
			}
			if err != nil {
				return fixed, err
			}
			s.syncStates(ctx, nil, job)
			if runnable(job) {
				wrote, err := s.putQueued(ctx, job)
				if err != nil {
					return fixed, err
				}
				if wrote {
					fixed++
				}
			}
		}
		s.intended(ctx, in.ID)
	}
	if fixed > 0 {
		s.Wake(ctx)
	}
	return fixed, nil
}

// stateEntryIDs returns the ids of the state index entries of the given
// states, at every priority.
func (s *Store) stateEntryIDs(ctx context.Context, states ...model.State) ([]bson.ObjectID, error) {
	names, err := collectionNames(ctx, s.jobsDB)
	if err != nil {
		return nil, err
	}
	var ids []bson.ObjectID
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, statePrefix)
		if !ok {
			continue
		}
		state, _, ok := strings.Cut(rest, "_p")
		if !ok || !slices.Contains(states, model.State(state)) {
			continue
		}
		docs, err := findAll[struct {
			ID bson.ObjectID `bson:"_id"`
		}](ctx, s.jobsDB.Collection(name), bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			ids = append(ids, d.ID)
		}
	}
	return ids, nil
}

// slicedJobIDs returns the ids of the jobs that have input slices (sliced
// jobs not completed yet), from the work database's collection names.
func (s *Store) slicedJobIDs(ctx context.Context) ([]bson.ObjectID, error) {
	names, err := s.WorkCollections(ctx)
	if err != nil {
		return nil, err
	}
	var ids []bson.ObjectID
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, "slices_")
		if !ok {
			continue
		}
		hex, ok := strings.CutSuffix(rest, "_input")
		if !ok {
			continue
		}
		if id, err := bson.ObjectIDFromHex(hex); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// readJobs reads the jobs of ids by _id, a few at once, and returns those
// that exist and keep(job) accepts, in id order.
func (s *Store) readJobs(ctx context.Context, ids []bson.ObjectID, keep func(*model.Job) bool) ([]model.Job, error) {
	slices.SortFunc(ids, compareIDs)
	ids = slices.Compact(ids)
	var out []model.Job
	for start := 0; start < len(ids); start += listLookups {
		chunk := ids[start:min(start+listLookups, len(ids))]
		jobs, errs := s.getJobs(ctx, chunk)
		for i := range chunk {
			if errors.Is(errs[i], model.ErrJobNotFound) {
				continue
			}
			if errs[i] != nil {
				return nil, errs[i]
			}
			if keep(jobs[i]) {
				out = append(out, *jobs[i])
			}
		}
	}
	return out, nil
}

// RunningJobs returns the running jobs: on FerretDB from the state index's
// running entries (each read by _id), so its cost follows the number of
// running jobs, not of jobs.
func (s *Store) RunningJobs(ctx context.Context) ([]model.Job, error) {
	return s.jobsStrategy.runningJobs(ctx, s)
}

// SlicedJobsWithSlices returns the sliced jobs that are running, paused or
// failed and may have slices in flight: on FerretDB those with input
// slices, found by the work database's collection names.
func (s *Store) SlicedJobsWithSlices(ctx context.Context) ([]model.Job, error) {
	return s.jobsStrategy.slicedJobsWithSlices(ctx, s)
}

// liveSliced reports whether j is a sliced job that may have slices in
// flight: running, paused or failed.
func liveSliced(j *model.Job) bool {
	return j.Kind == model.KindSliced && (j.State == model.StateRunning || j.State == model.StatePaused || j.State == model.StateFailed)
}

// ClaimDeepSweep reports whether this call is the one to reconcile the
// whole run queue with the jobs (ReconcileQueue, which reads every job) in
// the current hour, across the cluster. The conditional strategy has no
// run queue to reconcile: false.
func (s *Store) ClaimDeepSweep(ctx context.Context, now time.Time) (bool, error) {
	return s.jobsStrategy.claimDeepSweep(ctx, s, now)
}
