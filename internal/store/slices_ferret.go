package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ferretSlices is the FerretDB strategy. FerretDB's updates are not atomic
// across connections and every _id lookup scans the collection, so:
//
//   - input slices are written once and never updated or looked up by _id;
//   - a claim is a unique insert of "<slice>:<attempt>" into the claims
//     collection (exactly one inserter wins), made while streaming the input;
//   - a slice is finished by a unique insert of "<slice>" into the done
//     collection, after its output "<slice>:<attempt>" is written; a duplicate
//     means another attempt finished first, whose output alone counts;
//   - a requeue (zombie, graceful stop, retry) inserts "<slice>:<attempt+1>"
//     into the requeue collection, which makes that attempt claimable.
type ferretSlices struct {
	db *mongo.Database
}

func (f *ferretSlices) coll(job bson.ObjectID, kind string) *mongo.Collection {
	return sliceColl(f.db, job, kind)
}

func (f *ferretSlices) InsertInput(ctx context.Context, job bson.ObjectID, in []InputSlice) error {
	return insertInput(ctx, f.coll(job, "input"), in, nil)
}

// insertInput bulk-inserts slices (unordered, so a retry after a partial
// success only reports duplicates, which it ignores).
func insertInput(ctx context.Context, coll *mongo.Collection, in []InputSlice, extra bson.D) error {
	docs := make([]any, len(in))
	for i, s := range in {
		d := bson.D{{Key: "_id", Value: sliceID(s.Num)}, {Key: "first", Value: s.First}, {Key: "count", Value: s.Count},
			{Key: "records", Value: bson.Binary{Data: s.Records}}}
		docs[i] = append(d, extra...)
	}
	return retry(ctx, func() error {
		_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		if err != nil && onlyDuplicates(err) {
			return nil
		}
		return err
	})
}

func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}

func (f *ferretSlices) insert(ctx context.Context, job bson.ObjectID, kind string, doc bson.D) error {
	return retry(ctx, func() error {
		_, err := f.coll(job, kind).InsertOne(ctx, doc)
		return err
	})
}

type inputDoc struct {
	ID      string `bson:"_id"`
	First   int64  `bson:"first"`
	Count   int    `bson:"count"`
	Records []byte `bson:"records"`
}

type doneDoc struct {
	ID        string `bson:"_id"`
	Attempt   int    `bson:"attempt"`
	Processed int64  `bson:"processed"`
	Failed    int64  `bson:"failed"`
	Output    bool   `bson:"output"`
}

// jobState is a snapshot of a job's claims, requeues and finished slices.
type jobState struct {
	done     map[int64]doneDoc
	claimed  map[int64]int    // highest attempt claimed
	owner    map[int64]string // server of the highest claimed attempt
	requeued map[int64]int    // highest attempt made claimable
}

func (f *ferretSlices) loadState(ctx context.Context, job bson.ObjectID) (*jobState, error) {
	st := &jobState{done: map[int64]doneDoc{}, claimed: map[int64]int{}, owner: map[int64]string{}, requeued: map[int64]int{}}
	err := stream(ctx, f.coll(job, "done"), func(raw bson.Raw) error {
		var d doneDoc
		if err := bson.Unmarshal(raw, &d); err != nil {
			return err
		}
		n, err := parseSliceID(d.ID)
		if err != nil {
			return err
		}
		st.done[n] = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = stream(ctx, f.coll(job, "claims"), func(raw bson.Raw) error {
		var c struct {
			ID     string `bson:"_id"`
			Server string `bson:"server"`
		}
		if err := bson.Unmarshal(raw, &c); err != nil {
			return err
		}
		n, a, err := parseAttemptID(c.ID)
		if err != nil {
			return err
		}
		if a > st.claimed[n] {
			st.claimed[n], st.owner[n] = a, c.Server
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = stream(ctx, f.coll(job, "requeue"), func(raw bson.Raw) error {
		n, a, err := parseAttemptID(raw.Lookup("_id").StringValue())
		if err != nil {
			return err
		}
		st.requeued[n] = max(st.requeued[n], a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// stream reads a whole collection in natural order.
func stream(ctx context.Context, coll *mongo.Collection, fn func(bson.Raw) error) error {
	return retry(ctx, func() error {
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
		if err != nil {
			return err
		}
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			if err := fn(cur.Current); err != nil {
				return err
			}
		}
		return cur.Err()
	})
}

func (f *ferretSlices) NewFeeder(job bson.ObjectID, server string) Feeder {
	return &ferretFeeder{f: f, job: job, server: server}
}

type ferretFeeder struct {
	f      *ferretSlices
	job    bson.ObjectID
	server string

	mu      sync.Mutex
	cur     *mongo.Cursor
	st      *jobState
	claimed int // claims made in the current pass
}

func (ff *ferretFeeder) Next(ctx context.Context) (*Claimed, error) {
	ff.mu.Lock()
	defer ff.mu.Unlock()
	restarts := 0
	for {
		if ff.cur == nil {
			if err := ff.startPass(ctx); err != nil {
				return nil, err
			}
		}
		if !ff.cur.Next(ctx) {
			err := ff.cur.Err()
			_ = ff.cur.Close(ctx)
			ff.cur = nil
			if err != nil {
				if ctx.Err() != nil || restarts > 3 {
					return nil, fmt.Errorf("reading input slices: %w", err)
				}
				restarts++ // a lost cursor: start a new pass, claims keep it exact
				continue
			}
			if ff.claimed == 0 {
				return nil, ErrNoWork
			}
			continue // claimed something this pass: look again for requeued slices
		}
		var in inputDoc
		if err := ff.cur.Decode(&in); err != nil {
			return nil, fmt.Errorf("decoding input slice: %w", err)
		}
		num, err := parseSliceID(in.ID)
		if err != nil {
			return nil, err
		}
		if _, done := ff.st.done[num]; done {
			continue
		}
		want := max(1, ff.st.requeued[num])
		if ff.st.claimed[num] >= want {
			continue
		}
		claim := bson.D{{Key: "_id", Value: attemptID(num, want)}, {Key: "server", Value: ff.server}, {Key: "at", Value: time.Now()}}
		err = ff.f.insert(ctx, ff.job, "claims", claim)
		ff.st.claimed[num] = want
		if isDup(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("claiming slice %d: %w", num, err)
		}
		ff.claimed++
		return &Claimed{InputSlice: InputSlice{Num: num, First: in.First, Count: in.Count, Records: in.Records}, Attempt: want}, nil
	}
}

func (ff *ferretFeeder) startPass(ctx context.Context) error {
	st, err := ff.f.loadState(ctx, ff.job)
	if err != nil {
		return fmt.Errorf("loading slice state: %w", err)
	}
	var cur *mongo.Cursor
	err = retry(ctx, func() error {
		var err error
		cur, err = ff.f.coll(ff.job, "input").Find(ctx, bson.D{}, options.Find().SetBatchSize(16))
		return err
	})
	if err != nil {
		return fmt.Errorf("reading input slices: %w", err)
	}
	ff.st, ff.cur, ff.claimed = st, cur, 0
	return nil
}

func (ff *ferretFeeder) Close(ctx context.Context) error {
	ff.mu.Lock()
	defer ff.mu.Unlock()
	if ff.cur == nil {
		return nil
	}
	err := ff.cur.Close(ctx)
	ff.cur = nil
	return err
}

func (f *ferretSlices) Complete(ctx context.Context, job bson.ObjectID, c *Claimed, r Result) (bool, error) {
	id := attemptID(c.Num, c.Attempt)
	if r.Output != nil {
		err := f.insert(ctx, job, "output", bson.D{{Key: "_id", Value: id}, {Key: "count", Value: r.OutputCount},
			{Key: "records", Value: bson.Binary{Data: r.Output}}})
		if err != nil && !isDup(err) {
			return false, fmt.Errorf("writing output of slice %d: %w", c.Num, err)
		}
	}
	if r.FailedCount > 0 {
		err := f.insert(ctx, job, "failed", bson.D{{Key: "_id", Value: id}, {Key: "count", Value: r.FailedCount},
			{Key: "records", Value: bson.Binary{Data: r.Failed}}})
		if err != nil && !isDup(err) {
			return false, fmt.Errorf("writing failed records of slice %d: %w", c.Num, err)
		}
	}
	err := f.insert(ctx, job, "done", bson.D{{Key: "_id", Value: sliceID(c.Num)}, {Key: "attempt", Value: c.Attempt},
		{Key: "processed", Value: int64(c.Count)}, {Key: "failed", Value: int64(r.FailedCount)}, {Key: "output", Value: r.Output != nil}})
	if isDup(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("finishing slice %d: %w", c.Num, err)
	}
	return true, nil
}

func (f *ferretSlices) requeue(ctx context.Context, job bson.ObjectID, num int64, attempt int) error {
	err := f.insert(ctx, job, "requeue", bson.D{{Key: "_id", Value: attemptID(num, attempt)}, {Key: "at", Value: time.Now()}})
	if isDup(err) {
		return nil
	}
	return err
}

func (f *ferretSlices) Release(ctx context.Context, job bson.ObjectID, c *Claimed) error {
	return f.requeue(ctx, job, c.Num, c.Attempt+1)
}

func (f *ferretSlices) RequeueServer(ctx context.Context, job bson.ObjectID, server string) (int, error) {
	st, err := f.loadState(ctx, job)
	if err != nil {
		return 0, err
	}
	n := 0
	for num, owner := range st.owner {
		if owner != server {
			continue
		}
		if _, done := st.done[num]; done || st.requeued[num] > st.claimed[num] {
			continue
		}
		if err := f.requeue(ctx, job, num, st.claimed[num]+1); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (f *ferretSlices) RetryFailed(ctx context.Context, job bson.ObjectID) (int, error) {
	st, err := f.loadState(ctx, job)
	if err != nil {
		return 0, err
	}
	n := 0
	for num, d := range st.done {
		if d.Failed == 0 {
			continue
		}
		if err := f.requeue(ctx, job, num, max(st.claimed[num], st.requeued[num])+1); err != nil {
			return n, err
		}
		err := retry(ctx, func() error {
			_, err := f.coll(job, "done").DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}})
			return err
		})
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (f *ferretSlices) Progress(ctx context.Context, job bson.ObjectID, _, _ int64) (Progress, error) {
	var p Progress
	st, err := f.loadState(ctx, job)
	if err != nil {
		return p, err
	}
	for _, d := range st.done {
		p.Done++
		p.Processed += d.Processed
		p.FailedRecords += d.Failed
		if d.Failed > 0 {
			p.Failed++
		}
	}
	for num, a := range st.claimed {
		if _, done := st.done[num]; !done && st.requeued[num] <= a {
			p.Running++
		}
	}
	return p, nil
}

func (f *ferretSlices) StreamOutput(ctx context.Context, job bson.ObjectID, fn func(OutputSlice) error) error {
	return f.streamFinished(ctx, job, "output", func(d doneDoc) bool { return d.Output }, fn)
}

func (f *ferretSlices) StreamFailed(ctx context.Context, job bson.ObjectID, fn func(OutputSlice) error) error {
	return f.streamFinished(ctx, job, "failed", func(d doneDoc) bool { return d.Failed > 0 }, fn)
}

// streamFinished streams kind ("output" or "failed") in natural order, keeps
// only the attempt that finished each slice, and hands the slices to fn in
// slice order through a bounded reorder buffer.
func (f *ferretSlices) streamFinished(ctx context.Context, job bson.ObjectID, kind string, has func(doneDoc) bool, fn func(OutputSlice) error) error {
	st, err := f.loadState(ctx, job)
	if err != nil {
		return err
	}
	var expected []int64
	for num, d := range st.done {
		if has(d) {
			expected = append(expected, num)
		}
	}
	slices.Sort(expected)
	ro := newReorder(expected, fn)
	defer ro.close()
	cur, err := f.coll(job, kind).Find(ctx, bson.D{}, options.Find().SetBatchSize(64))
	if err != nil {
		return fmt.Errorf("reading %s slices: %w", kind, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d struct {
			ID      string `bson:"_id"`
			Count   int    `bson:"count"`
			Records []byte `bson:"records"`
		}
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("decoding %s slice: %w", kind, err)
		}
		num, attempt, err := parseAttemptID(d.ID)
		if err != nil {
			return err
		}
		if done, ok := st.done[num]; !ok || done.Attempt != attempt {
			continue // an attempt that lost, or a slice requeued for retry
		}
		if err := ro.add(OutputSlice{Num: num, Count: d.Count, Records: d.Records}); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("reading %s slices: %w", kind, err)
	}
	return ro.finish(kind)
}

func (f *ferretSlices) DropInput(ctx context.Context, job bson.ObjectID) error {
	return dropAll(ctx, f.db, job, "input claims requeue")
}

func (f *ferretSlices) Drop(ctx context.Context, job bson.ObjectID) error {
	return dropAll(ctx, f.db, job, sliceKinds)
}
