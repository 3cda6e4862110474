package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Retention of finished jobs: which jobs have been finished for longer than
// they are to be kept (ExpiredJobs), and whose turn it is to delete them
// (ClaimRetention). Deleting them is the caller's: the same path as
// destroying a job (DeleteJob, then the slices), so that the run queue, the
// state index and the transition claims go with the job.

// FinishedStates are the states retention applies to. A failed job may be
// retried, but one left failed is kept only as long as its retention says.
var FinishedStates = []model.State{model.StateCompleted, model.StateFailed, model.StateAborted}

// Retention says how long finished jobs are kept, counted from the time
// they ended (completed_at). A negative duration keeps them forever; zero
// deletes them at the next pass.
type Retention struct {
	// Keep is the default, per finished state; a state missing from the
	// map keeps its jobs forever.
	Keep map[model.State]time.Duration
	// Types overrides Keep for job types, per state; a state missing from
	// a type's map takes Keep's.
	Types map[string]map[model.State]time.Duration
}

// keep returns how long jobs of type typ that ended in state st are kept,
// and false when they are kept forever.
func (r *Retention) keep(typ string, st model.State) (time.Duration, bool) {
	d, ok := r.Types[typ][st]
	if !ok {
		d, ok = r.Keep[st]
	}
	return d, ok && d >= 0
}

// retentionIndex serves ExpiredJobs on MongoDB (FerretDB reads the state
// index instead and never uses secondary indexes).
func retentionIndex() mongo.IndexModel {
	return mongo.IndexModel{
		Keys:    bson.D{{Key: "state", Value: 1}, {Key: "completed_at", Value: 1}},
		Options: options.Index().SetName("state_completed_at"),
	}
}

// retentionWindow is how many state index entries ExpiredJobs reads from
// the head of each state and priority on FerretDB, at least.
const retentionWindow = 1000

// ExpiredJobs returns up to limit finished jobs (FinishedStates) that ended
// longer ago than r keeps them, as of now, oldest first within a state.
//
// On MongoDB it is one indexed query per state ({state, completed_at}). On
// FerretDB, where any filter reads the whole jobs collection, it reads the
// first entries (at least retentionWindow, and twice limit) of each state
// index collection (liststate.go): entries come in the order jobs entered
// their state, so the head holds the jobs that ended first. An entry is
// looked up by _id only when it may have expired: a job cannot end before
// its id's time (its creation, or a cron instance's run), so an id younger
// than the cutoff is skipped unread. The window bounds the cost of a call
// whatever the number of jobs; the price is that jobs kept longer (another
// type's longer retention, or forever) that fill the head of a state and
// priority hold back the deletion of the jobs behind them until they expire
// themselves.
func (s *Store) ExpiredJobs(ctx context.Context, r Retention, now time.Time, limit int) ([]model.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []model.Job
	for _, st := range FinishedStates {
		var (
			jobs []model.Job
			err  error
		)
		jobs, err = s.jobsStrategy.expiredJobs(ctx, s, r, st, now, limit-len(out))
		if err != nil {
			return out, fmt.Errorf("looking for expired %s jobs: %w", st, err)
		}
		out = append(out, jobs...)
		if len(out) >= limit {
			break
		}
	}
	return out, nil
}

// expiredQuery is ExpiredJobs of one state on MongoDB.
func (s *Store) expiredQuery(ctx context.Context, r Retention, st model.State, now time.Time, limit int) ([]model.Job, error) {
	before := func(d time.Duration) bson.D {
		return bson.D{{Key: "$lt", Value: now.Add(-d)}}
	}
	var or bson.A
	overridden := bson.A{}
	for typ := range r.Types {
		if _, ok := r.Types[typ][st]; !ok {
			continue // takes the default
		}
		overridden = append(overridden, typ)
		if d, ok := r.keep(typ, st); ok {
			or = append(or, bson.D{{Key: "type", Value: typ}, {Key: "completed_at", Value: before(d)}})
		}
	}
	if d, ok := r.Keep[st]; ok && d >= 0 {
		or = append(or, bson.D{{Key: "type", Value: bson.D{{Key: "$nin", Value: overridden}}}, {Key: "completed_at", Value: before(d)}})
	}
	if len(or) == 0 {
		return nil, nil
	}
	filter := bson.D{{Key: "state", Value: st}, {Key: "$or", Value: or}}
	opts := options.Find().SetSort(bson.D{{Key: "completed_at", Value: 1}}).SetLimit(int64(limit))
	return findAll[model.Job](ctx, s.jobs(), filter, opts)
}

// expiredIndexed is ExpiredJobs of one state on FerretDB, from the heads of
// the state's index collections, most urgent priority first.
func (s *Store) expiredIndexed(ctx context.Context, r Retention, st model.State, now time.Time, limit int) ([]model.Job, error) {
	if err := s.ensureStateIndex(ctx); err != nil {
		return nil, err
	}
	names, err := collectionNames(ctx, s.jobsDB)
	if err != nil {
		return nil, err
	}
	var prios []int
	for _, name := range names {
		if p, ok := strings.CutPrefix(name, statePrefix+string(st)+"_p"); ok {
			if n, err := strconv.Atoi(p); err == nil {
				prios = append(prios, n)
			}
		}
	}
	slices.Sort(prios)
	window := max(retentionWindow, 2*limit)
	var out []model.Job
	for _, p := range prios {
		entries, err := findAll[stateEntry](ctx, s.stateColl(st, p), bson.D{}, options.Find().SetLimit(int64(window)).SetBatchSize(int32(window)))
		if err != nil {
			return out, err
		}
		for _, e := range entries {
			d, ok := r.keep(e.Type, st)
			if !ok {
				continue
			}
			cutoff := now.Add(-d)
			if !e.ID.Timestamp().Before(cutoff) {
				continue // it cannot have ended before its id's time
			}
			job, err := s.GetJob(ctx, e.ID)
			if errors.Is(err, model.ErrJobNotFound) {
				_ = s.dropState(ctx, st, p, e.ID, math.MaxInt64) // a stale entry
				continue
			}
			if err != nil {
				return out, err
			}
			if job.State != st || job.Priority != p || job.CompletedAt == nil || !job.CompletedAt.Before(cutoff) {
				continue // out of date (listings repair it), or not expired
			}
			out = append(out, *job)
			if len(out) >= limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// ClaimRetention reports whether this call is the one to run the cluster's
// retention pass of the current period of length every (by the wall clock,
// so that servers agree whatever clock they judge ages by). It removes the
// claim of two periods ago.
func (s *Store) ClaimRetention(ctx context.Context, now time.Time, every time.Duration) (bool, error) {
	every = max(every, time.Millisecond)
	period := now.UnixNano() / int64(every)
	key := func(p int64) string { return fmt.Sprintf("retention:%d:%d", every.Milliseconds(), p) }
	return s.claimPeriod(ctx, key, period)
}
