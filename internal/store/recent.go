package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Newest-first listings (FerretDB only).
//
// The run queue and the state index give a listing the jobs of a state in
// the order they entered it, oldest first: a find with a limit reads the
// first rows of a collection and stops. Nothing reads the last rows that
// cheaply (FerretDB v1.24.2 sorts in Go, even by $natural, after reading
// every row), so "the 50 newest failed jobs" would read every entry.
//
// So each state also has a window of the jobs that entered it last,
// recent_<state>: an entry {_id, v, at} per job, written with the job's
// state index entry or run-queue copy (batched the same way; a bulk
// enqueue writes the last recentKeep of its jobs once, at its end), and
// trimmed back to recentKeep entries, oldest first, once it holds more
// than recentTrimAt. A newest-first listing reads the windows of the states
// asked for whole (a few thousand entries at most, whatever the number of
// jobs), orders them by _id (creation time), newest first, and reads each
// job by _id, skipping the entries that are out of date (the job moved on
// or is gone; those are removed). When the windows run out before the
// listing is full, and a window may lack entries (it was trimmed, or the
// database had jobs before windows existed), the listing reads the jobs
// collection instead: slower, never short.
//
// A job that entered its state before the last recentKeep others to enter
// it is not in the window: with a window trimmed, a listing can miss a job
// created after the ones it shows only if that job entered its state
// before hundreds of older ones entered theirs.

const (
	recentPrefix = "recent_"
	// recentKeep is how many entries a trim leaves in a window.
	recentKeep = 400
	// recentTrimAt is how many entries a window holds before a trim.
	recentTrimAt = 1000
	// recentTrimEvery is how many entries a process adds to a window
	// between its looks at the window's size.
	recentTrimEvery = 300
	// recentMarker, in the state index's marker collection, says that the
	// windows have had every job's entries since the database was new.
	recentMarker = "recent"
	// trimmedMarker + state says that the state's window was trimmed.
	trimmedMarker = "trimmed_"
)

func (s *Store) recentColl(state model.State) *mongo.Collection {
	return s.jobsDB.Collection(recentPrefix + string(state))
}

// recentEntry is a job's entry in a window: v is the job's version when
// it entered the state, at when its entry was written (trims cut by it).
type recentEntry struct {
	ID      bson.ObjectID `bson:"_id"`
	Version int64         `bson:"v"`
	At      time.Time     `bson:"at"`
}

// recentAdded counts, per Store and state, the entries added since the
// Store last looked at the window's size (weakly keyed, like the state
// batchers).
var recentAdded sync.Map // recentKey -> *atomic.Int64

type recentKey struct {
	s     weak.Pointer[Store]
	state model.State
}

// noteRecent adds jobs to the window of their state (the state each is in
// now), as its newest entries: an entry already there (the job was in
// the state before) is replaced. Of many jobs entering one state at once
// (a bulk enqueue), only the last recentKeep are written, and the window
// is marked trimmed. A failure leaves an entry out (the windows are
// hints, like the state index).
func (s *Store) noteRecent(ctx context.Context, jobs ...*model.Job) {
	now := time.Now().UTC()
	byState := map[model.State][]any{}
	for _, j := range jobs {
		if j != nil {
			byState[j.State] = append(byState[j.State], recentEntry{j.ID, j.Version, now})
		}
	}
	for state, docs := range byState {
		if len(docs) > recentKeep {
			if s.markRecent(ctx, trimmedMarker+string(state)) != nil {
				continue
			}
			docs = docs[len(docs)-recentKeep:]
		}
		coll := s.recentColl(state)
		dup, _, err := insertMany(ctx, coll, docs)
		if err != nil {
			continue
		}
		var again []any
		var ids []bson.ObjectID
		for i, d := range dup {
			if d {
				again, ids = append(again, docs[i]), append(ids, docs[i].(recentEntry).ID)
			}
		}
		if len(again) > 0 && s.dropRecent(ctx, state, ids) == nil {
			_, _, _ = insertMany(ctx, coll, again)
		}
		c, _ := recentAdded.LoadOrStore(recentKey{weak.Make(s), state}, new(atomic.Int64))
		n := c.(*atomic.Int64)
		if n.Add(int64(len(docs))) >= recentTrimEvery {
			n.Store(0)
			_ = s.trimRecent(ctx, state)
		}
	}
}

// enteredQueue reports whether a job write made the job queued.
func enteredQueue(before, after *model.Job) bool {
	return after != nil && after.State == model.StateQueued && (before == nil || before.State != model.StateQueued)
}

// trimRecent removes the oldest entries of state's window when it holds
// more than recentTrimAt, leaving about recentKeep (those written at the
// same instant as the last one kept stay too), and marks the window
// trimmed. It cuts by the time entries were written, a filter the
// database checks cheaply on each entry.
func (s *Store) trimRecent(ctx context.Context, state model.State) error {
	entries, err := findAll[recentEntry](ctx, s.recentColl(state), bson.D{}, options.Find().SetProjection(bson.D{{Key: "at", Value: 1}}))
	if err != nil || len(entries) <= recentTrimAt {
		return err
	}
	if err := s.markRecent(ctx, trimmedMarker+string(state)); err != nil {
		return err
	}
	at := make([]time.Time, len(entries))
	for i, e := range entries {
		at[i] = e.At
	}
	slices.SortFunc(at, time.Time.Compare)
	cut := at[len(at)-recentKeep]
	return retry(ctx, func() error {
		_, err := s.recentColl(state).DeleteMany(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: cut}}}})
		return err
	})
}

// recentIDs reads state's window, oldest entry first.
func (s *Store) recentIDs(ctx context.Context, state model.State) ([]bson.ObjectID, error) {
	entries, err := findAll[recentEntry](ctx, s.recentColl(state), bson.D{})
	if err != nil {
		return nil, err
	}
	ids := make([]bson.ObjectID, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	return ids, nil
}

// dropRecent removes entries from state's window.
func (s *Store) dropRecent(ctx context.Context, state model.State, ids []bson.ObjectID) error {
	if len(ids) == 0 {
		return nil
	}
	return retry(ctx, func() error {
		_, err := s.recentColl(state).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		return err
	})
}

// dropStaleRecent removes from state's window the entries of jobs that
// left it, each at the version it was read at (the key's version): an
// entry the job wrote since, entering the state again, is kept.
func (s *Store) dropStaleRecent(ctx context.Context, state model.State, seen map[bson.ObjectID]int64) error {
	if len(seen) == 0 {
		return nil
	}
	var or bson.A
	for id, v := range seen {
		or = append(or, bson.D{{Key: "_id", Value: id}, {Key: "v", Value: bson.D{{Key: "$lt", Value: v}}}})
	}
	return retry(ctx, func() error {
		_, err := s.recentColl(state).DeleteMany(ctx, bson.D{{Key: "$or", Value: or}})
		return err
	})
}

// markRecent writes a marker of the windows (recentMarker, or a trimmed
// window's) once.
func (s *Store) markRecent(ctx context.Context, id string) error {
	return retry(ctx, func() error {
		_, err := s.jobsDB.Collection(stateIndexColl).InsertOne(ctx, bson.D{{Key: "_id", Value: id}})
		if isDup(err) {
			return nil
		}
		return err
	})
}

// completeWindows returns the states whose windows hold every job that
// entered them and is still there: the windows were written from the
// database's first job on, and never trimmed.
func (s *Store) completeWindows(ctx context.Context) (map[model.State]bool, error) {
	markers, err := findAll[struct {
		ID any `bson:"_id"`
	}](ctx, s.jobsDB.Collection(stateIndexColl), bson.D{})
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, m := range markers {
		if id, ok := m.ID.(string); ok {
			have[id] = true
		}
	}
	complete := map[model.State]bool{}
	if have[recentMarker] {
		for _, st := range model.States {
			complete[st] = !have[trimmedMarker+string(st)]
		}
	}
	return complete, nil
}

// listNewest is ListJobs newest first with a limit on FerretDB: from the
// windows of the states asked for (see above), or, when those cannot fill
// the listing and may lack entries, from the jobs collection.
func (s *Store) listNewest(ctx context.Context, f JobFilter) ([]model.Job, error) {
	states := f.States
	if len(states) == 0 {
		states = model.States
	}
	complete, err := s.completeWindows(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	// Each job once, with the windows it is in (a job that moved on may
	// still be in its old state's).
	in := map[bson.ObjectID][]model.State{}
	var cands []bson.ObjectID
	whole := true
	for _, st := range states {
		ids, err := s.recentIDs(ctx, st)
		if err != nil {
			return nil, fmt.Errorf("listing jobs: %w", err)
		}
		for _, id := range ids {
			if in[id] == nil {
				cands = append(cands, id)
			}
			in[id] = append(in[id], st)
		}
		whole = whole && complete[st]
	}
	slices.SortFunc(cands, func(a, b bson.ObjectID) int { return -bytes.Compare(a[:], b[:]) })

	need := int(f.Skip + f.Limit)
	var out []model.Job
	stale := map[model.State]map[bson.ObjectID]int64{} // entries out of date, and the version that says so
	drop := func(st model.State, id bson.ObjectID, version int64) {
		if stale[st] == nil {
			stale[st] = map[bson.ObjectID]int64{}
		}
		stale[st][id] = version
	}
	for start := 0; start < len(cands) && len(out) < need; start += listLookups {
		chunk := cands[start:min(start+listLookups, len(cands))]
		jobs := make([]*model.Job, len(chunk))
		errs := make([]error, len(chunk))
		var wg sync.WaitGroup
		for i, id := range chunk {
			wg.Go(func() { jobs[i], errs[i] = s.GetJob(ctx, id) })
		}
		wg.Wait()
		for i, id := range chunk {
			job, err := jobs[i], errs[i]
			if err != nil && !errors.Is(err, model.ErrJobNotFound) {
				return nil, fmt.Errorf("listing jobs: %w", err)
			}
			listed := false
			for _, st := range in[id] {
				switch {
				case job == nil:
					drop(st, id, math.MaxInt64) // gone
				case job.State != st:
					drop(st, id, job.Version) // moved on
				default:
					listed = true
				}
			}
			if listed && (f.Type == "" || job.Type == f.Type) && len(out) < need {
				out = append(out, *job)
			}
		}
	}
	for st, seen := range stale {
		_ = s.dropStaleRecent(ctx, st, seen)
	}
	if len(out) < need && !whole {
		return s.queryJobs(ctx, f) // the windows may lack what is missing
	}
	if int(f.Skip) >= len(out) {
		return nil, nil
	}
	out = out[f.Skip:]
	return out[:min(len(out), int(f.Limit))], nil
}

// keepNewest appends jobs to last and keeps the last recentKeep+1 of each
// state: noteRecent writes recentKeep, and the one more tells it that the
// state had more (its window is then marked trimmed).
func keepNewest(last, jobs []*model.Job) []*model.Job {
	last = append(last, jobs...)
	count := map[model.State]int{}
	for i := len(last) - 1; i >= 0; i-- {
		count[last[i].State]++
		if count[last[i].State] > recentKeep+1 {
			last[i] = nil
		}
	}
	return slices.DeleteFunc(last, func(j *model.Job) bool { return j == nil })
}
