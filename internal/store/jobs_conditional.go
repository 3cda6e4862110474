package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// conditionalJobs is the job strategy of MongoDB, where an update
// conditioned on a document's fields is atomic: a transition is one update
// of the job conditioned on its version, and selections and listings are
// queries of the jobs collection on its indexes ({state, priority, _id},
// {type, state}, and retention's {state, completed_at}). It keeps nothing
// besides the jobs: no run queue, state index, intents or transition
// claims.
//
// It is not atomic on FerretDB (two conditional updates of one version can
// both match there): only the conformance tests use it on FerretDB, from
// one writer at a time (Store.WithJobStrategy).
type conditionalJobs struct{}

// insertJob writes the job document: there is nothing else to write.
func (conditionalJobs) insertJob(ctx context.Context, s *Store, job *model.Job) error {
	return s.insertJobDoc(ctx, job)
}

// insertJobs writes the jobs with one unordered insertMany per InsertBatch.
func (conditionalJobs) insertJobs(ctx context.Context, s *Store, jobs []*model.Job) (int, error) {
	written := 0
	for len(jobs) > 0 {
		batch := jobs[:min(InsertBatch, len(jobs))]
		jobs = jobs[len(batch):]
		docs := make([]any, len(batch))
		for i, j := range batch {
			raw, err := bson.Marshal(j)
			if err != nil {
				return written, fmt.Errorf("inserting job %s: %w", j.ID.Hex(), err)
			}
			docs[i] = bson.Raw(raw)
		}
		if _, _, err := insertMany(ctx, s.jobs(), docs); err != nil {
			return written, fmt.Errorf("inserting jobs: %w", err)
		}
		written += len(batch)
	}
	return written, nil
}

// write updates the job conditioned on its _id and version: no match is
// another writer's move first (ErrConflict).
func (conditionalJobs) write(ctx context.Context, s *Store, job *model.Job, w jobWrite, _ string) (*model.Job, error) {
	var matched int64
	err := retry(ctx, func() error {
		res, err := s.jobs().UpdateOne(ctx, bson.D{{Key: "_id", Value: job.ID}, {Key: "version", Value: job.Version}}, w.update)
		if err == nil {
			matched = res.MatchedCount
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", job.ID.Hex(), err)
	}
	if matched == 0 {
		return nil, fmt.Errorf("job %s: %w", job.ID.Hex(), model.ErrConflict)
	}
	// The update was conditioned on the version we read, so the stored job
	// is exactly job with the change applied: apply it here rather than
	// read it again.
	return applied(job, w.set, w.unset)
}

// deleteJob removes the job, its cron successor record and its transition
// claims (one regex delete: MongoDB runs it on the _id index).
func (conditionalJobs) deleteJob(ctx context.Context, s *Store, id bson.ObjectID) error {
	if err := s.removeJob(ctx, id); err != nil {
		return err
	}
	s.dropCronSuccessor(ctx, id)
	return retry(ctx, func() error {
		_, err := s.jobClaims().DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^" + id.Hex() + ":"}}}})
		return err
	})
}

// deleteJobAt deletes the job if it is still at version (one conditional
// delete), then what deleteJob deletes with it.
func (c conditionalJobs) deleteJobAt(ctx context.Context, s *Store, id bson.ObjectID, version int64) error {
	var deleted int64
	err := retry(ctx, func() error {
		res, err := s.jobs().DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "version", Value: version}})
		if err == nil {
			deleted = res.DeletedCount
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting job %s: %w", id.Hex(), err)
	}
	if deleted == 0 {
		if _, err := s.GetJob(ctx, id); errors.Is(err, model.ErrJobNotFound) {
			// Deleted meanwhile, or by this delete if its answer was
			// lost: what goes with it, again (harmless if done).
			return c.deleteJob(ctx, s, id)
		}
		return fmt.Errorf("job %s: %w", id.Hex(), model.ErrConflict)
	}
	return c.deleteJob(ctx, s, id)
}

// listJobs queries the jobs collection, sorted by the database.
func (conditionalJobs) listJobs(ctx context.Context, s *Store, f JobFilter) ([]model.Job, error) {
	return s.queryJobs(ctx, f)
}

// runnableJobs queries the index {state, priority, _id}: the first limit
// jobs, whoever's share they are in (mine is not read).
func (conditionalJobs) runnableJobs(ctx context.Context, s *Store, now time.Time, limit int64, types []string, _ func(*model.Job) bool) ([]model.Job, error) {
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

// runningJobs queries the running jobs.
func (conditionalJobs) runningJobs(ctx context.Context, s *Store) ([]model.Job, error) {
	return s.ListJobs(ctx, JobFilter{States: []model.State{model.StateRunning}})
}

// jobsOfServer queries the running jobs of server.
func (conditionalJobs) jobsOfServer(ctx context.Context, s *Store, server string) ([]model.Job, error) {
	return findAll[model.Job](ctx, s.jobs(), bson.D{{Key: "state", Value: model.StateRunning}, {Key: "server", Value: server}})
}

// slicedJobsWithSlices queries the running, paused and failed jobs and
// keeps the sliced ones.
func (conditionalJobs) slicedJobsWithSlices(ctx context.Context, s *Store) ([]model.Job, error) {
	all, err := s.ListJobs(ctx, JobFilter{States: []model.State{model.StateRunning, model.StatePaused, model.StateFailed}})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(j model.Job) bool { return !liveSliced(&j) }), nil
}

// expiredJobs queries the index {state, completed_at} (expiredQuery).
func (conditionalJobs) expiredJobs(ctx context.Context, s *Store, r Retention, st model.State, now time.Time, limit int) ([]model.Job, error) {
	return s.expiredQuery(ctx, r, st, now, limit)
}

// The conditional strategy keeps no run queue, state index or intents:
// nothing to repair.

func (conditionalJobs) repairIntents(context.Context, *Store, time.Time) (int, error) { return 0, nil }
func (conditionalJobs) repairQueued(context.Context, *Store, *model.Job) error        { return nil }
func (conditionalJobs) reconcileQueue(context.Context, *Store) (int, error)           { return 0, nil }
func (conditionalJobs) claimDeepSweep(context.Context, *Store, time.Time) (bool, error) {
	return false, nil
}
func (conditionalJobs) markNewStateIndex(context.Context, *Store) error { return nil }
