package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Fixes of failed records, retry plans and the job history.
//
// An operator's fix of a failed record (a corrected record, or the record
// deleted) is stored in slices_<job>_fixes (work database, the record
// sealed like the job's slices), keyed by record number: the last fix of a
// record wins. Fixes take effect when the job is retried: PrepareRetry
// writes, for each finished slice with failed records, a plan into
// slices_<job>_retry: that slice's output and failed records as its last
// attempt stored them (sealed, copied as they are) and the fixes of its
// records. A server running a slice that has a plan runs only the failed
// records (fixed, or skipped when deleted) and keeps the other records'
// outputs, so the slice's new output is in input order and, stored under
// the slice like any output, exactly once. Both collections are small and
// dropped with the job (DropFixes).
//
// The job history (job_history, jobs database) is insert-only: who changed
// what of a job, and when.

const historyCollection = "job_history"

// RecordFix is an operator's fix of one failed record.
type RecordFix struct {
	Number int64 `bson:"_id"`
	Slice  int64 `bson:"slice"`
	// Delete drops the record: it gives no output and no failure (it
	// counts as dropped).
	Delete bool `bson:"delete,omitempty"`
	// Record is the corrected record, sealed (slice.Fix, slot: the record
	// number).
	Record []byte    `bson:"record,omitempty"`
	User   string    `bson:"user,omitempty"`
	At     time.Time `bson:"at"`
}

// RetryPlan is how a server re-runs one slice of a retried job: only the
// failed records, fixed as the operator said.
type RetryPlan struct {
	Slice int64 `bson:"-"`
	// Output and Failed are the slice's sealed output and failed records
	// from its last attempt (Output nil when the job collects no output).
	Output []byte      `bson:"output,omitempty"`
	Failed []byte      `bson:"failed"`
	Fixes  []RecordFix `bson:"fixes,omitempty"`
}

// HistoryEntry is one change of a job made by someone.
type HistoryEntry struct {
	ID     bson.ObjectID `bson:"_id"`
	Job    bson.ObjectID `bson:"job"`
	At     time.Time     `bson:"at"`
	User   string        `bson:"user,omitempty"`
	Action string        `bson:"action"`
	Record int64         `bson:"record,omitempty"`
	Detail string        `bson:"detail,omitempty"`
}

func (s *Store) history() *mongo.Collection { return s.jobsDB.Collection(historyCollection) }

// AddHistory records e (its ID and time filled in when zero).
func (s *Store) AddHistory(ctx context.Context, e *HistoryEntry) error {
	if e.ID.IsZero() {
		e.ID = bson.NewObjectID()
	}
	if e.At.IsZero() {
		e.At = time.Now().UTC().Truncate(time.Millisecond)
	}
	insert := func() error {
		return retry(ctx, func() error {
			_, err := s.history().InsertOne(ctx, e)
			if isDup(err) {
				return nil // this call's own insert, before a transient error
			}
			return err
		})
	}
	err := insert()
	if err != nil && ctx.Err() == nil {
		// The first insert into a new collection can lose a race to create
		// it with another process's: create it, then try once more.
		if cerr := ensureCollections(ctx, s.jobsDB, historyCollection); cerr == nil {
			err = insert()
		}
	}
	return err
}

// JobHistory returns the history of job, oldest first.
func (s *Store) JobHistory(ctx context.Context, job bson.ObjectID) ([]HistoryEntry, error) {
	out, err := findAll[HistoryEntry](ctx, s.history(), bson.D{{Key: "job", Value: job}})
	slices.SortFunc(out, func(a, b HistoryEntry) int { return a.ID.Timestamp().Compare(b.ID.Timestamp()) })
	return out, err
}

// DropFixes removes a job's fixes, retry plans and history (job destroyed).
func (s *Store) DropFixes(ctx context.Context, job bson.ObjectID) error {
	return errors.Join(
		dropAll(ctx, s.workDB, job, "fixes retry"),
		retry(ctx, func() error {
			_, err := s.history().DeleteMany(ctx, bson.D{{Key: "job", Value: job}})
			return err
		}))
}

// SetRecordFix stores f, replacing an earlier fix of the same record.
func (s *Store) SetRecordFix(ctx context.Context, job bson.ObjectID, f *RecordFix) error {
	return retry(ctx, func() error {
		_, err := sliceColl(s.workDB, job, "fixes").ReplaceOne(ctx, bson.D{{Key: "_id", Value: f.Number}}, f, options.Replace().SetUpsert(true))
		return err
	})
}

// RecordFixes returns the fixes of job's failed records, by record number.
func (s *Store) RecordFixes(ctx context.Context, job bson.ObjectID) ([]RecordFix, error) {
	out, err := findAll[RecordFix](ctx, sliceColl(s.workDB, job, "fixes"), bson.D{})
	slices.SortFunc(out, func(a, b RecordFix) int { return cmp.Compare(a.Number, b.Number) })
	return out, err
}

// PrepareRetry writes the retry plans of job: one per finished slice with
// failed records, from its stored output and failed records and the fixes
// of its records (replacing the plans of an earlier retry). Call it before
// the slices are requeued (RetryFailed), while their last attempt is the
// finished one. It returns the number of plans and of fixes they carry.
func (s *Store) PrepareRetry(ctx context.Context, job bson.ObjectID) (plans, fixes int, err error) {
	byNum := map[int64]*RetryPlan{}
	err = s.slices.StreamFailed(ctx, job, func(o OutputSlice) error {
		byNum[o.Num] = &RetryPlan{Slice: o.Num, Failed: o.Records}
		return nil
	})
	if err != nil || len(byNum) == 0 {
		return 0, 0, err
	}
	err = s.slices.StreamOutput(ctx, job, func(o OutputSlice) error {
		if p := byNum[o.Num]; p != nil && o.Records != nil {
			p.Output = o.Records
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	all, err := s.RecordFixes(ctx, job)
	if err != nil {
		return 0, 0, err
	}
	for _, f := range all {
		if p := byNum[f.Slice]; p != nil {
			p.Fixes = append(p.Fixes, f)
			fixes++
		}
	}
	coll := sliceColl(s.workDB, job, "retry")
	for num, p := range byNum {
		err := retry(ctx, func() error {
			_, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: sliceID(num)}}, p, options.Replace().SetUpsert(true))
			return err
		})
		if err != nil {
			return 0, 0, fmt.Errorf("writing the retry plan of slice %d: %w", num, err)
		}
	}
	return len(byNum), fixes, nil
}

// RewrapFixes rewrites the sealed records of job's fixes and retry plans
// with fn (a key rotation), which gets what each one is: "fix" (slot: the
// record number), or a plan's copy of its slice's "output" or "failed"
// records (slot: the slice number). The job must not be processing. It
// returns the number of fixes and plans rewritten.
func (s *Store) RewrapFixes(ctx context.Context, job bson.ObjectID, fn func(kind string, slot int64, sealed []byte) ([]byte, error)) (int, error) {
	rewrap := func(fixes []RecordFix) error {
		for i := range fixes {
			if fixes[i].Record == nil {
				continue // a deleted record
			}
			out, err := fn("fix", fixes[i].Number, fixes[i].Record)
			if err != nil {
				return fmt.Errorf("the fix of record %d: %w", fixes[i].Number, err)
			}
			fixes[i].Record = out
		}
		return nil
	}
	fixes, err := s.RecordFixes(ctx, job)
	if err != nil {
		return 0, err
	}
	if err := rewrap(fixes); err != nil {
		return 0, err
	}
	n := 0
	for i := range fixes {
		if err := s.SetRecordFix(ctx, job, &fixes[i]); err != nil {
			return n, err
		}
		n++
	}
	type storedPlan struct {
		ID        string `bson:"_id"`
		RetryPlan `bson:",inline"`
	}
	coll := sliceColl(s.workDB, job, "retry")
	plans, err := findAll[storedPlan](ctx, coll, bson.D{})
	if err != nil {
		return n, err
	}
	for _, p := range plans {
		num, err := parseSliceID(p.ID)
		if err != nil {
			return n, err
		}
		if p.Output != nil {
			if p.Output, err = fn("output", num, p.Output); err != nil {
				return n, fmt.Errorf("the retry plan of slice %d: %w", num, err)
			}
		}
		if p.Failed, err = fn("failed", num, p.Failed); err != nil {
			return n, fmt.Errorf("the retry plan of slice %d: %w", num, err)
		}
		if err := rewrap(p.Fixes); err != nil {
			return n, err
		}
		err = retry(ctx, func() error {
			_, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: p.ID}}, p.RetryPlan)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("rewriting the retry plan of slice %d: %w", num, err)
		}
		n++
	}
	return n, nil
}

// HasRetryPlans reports whether job has retry plans.
func (s *Store) HasRetryPlans(ctx context.Context, job bson.ObjectID) (bool, error) {
	var n int64
	err := retry(ctx, func() error {
		var err error
		n, err = sliceColl(s.workDB, job, "retry").CountDocuments(ctx, bson.D{}, options.Count().SetLimit(1))
		return err
	})
	return n > 0, err
}

// GetRetryPlan returns the retry plan of slice num of job, or nil.
func (s *Store) GetRetryPlan(ctx context.Context, job bson.ObjectID, num int64) (*RetryPlan, error) {
	list, err := findAll[RetryPlan](ctx, sliceColl(s.workDB, job, "retry"), bson.D{{Key: "_id", Value: sliceID(num)}})
	if err != nil || len(list) == 0 {
		return nil, err
	}
	list[0].Slice = num
	return &list[0], nil
}
