package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Input slice states of the MongoDB strategy.
const (
	sliceQueued  = "queued"
	sliceRunning = "running"
	sliceFailed  = "failed"
)

// mongoSlices is the MongoDB strategy: input slices carry a state, a worker
// claims one with an atomic findOneAndUpdate on the index {state, _id}; a
// finished slice's output is written under the slice's _id (so a re-run
// replaces, never duplicates) and its input is deleted, or marked failed when
// it has failed records.
type mongoSlices struct {
	db *mongo.Database
}

func (m *mongoSlices) coll(job bson.ObjectID, kind string) *mongo.Collection {
	return sliceColl(m.db, job, kind)
}

// Prepare creates the claim index of the job's input slices.
func (m *mongoSlices) Prepare(ctx context.Context, job bson.ObjectID) error {
	coll := m.coll(job, "input")
	return retry(ctx, func() error {
		return ensureIndexes(ctx, coll, []mongo.IndexModel{
			{Keys: bson.D{{Key: "state", Value: 1}, {Key: "_id", Value: 1}}, Options: options.Index().SetName("state_id")}})
	})
}

func (m *mongoSlices) InsertInput(ctx context.Context, job bson.ObjectID, in []InputSlice) error {
	return insertInput(ctx, m.coll(job, "input"), in, bson.D{{Key: "state", Value: sliceQueued}, {Key: "attempts", Value: 0}})
}

func (m *mongoSlices) NewFeeder(job bson.ObjectID, server string, _ int64) Feeder {
	return &mongoFeeder{m: m, job: job, server: server}
}

type mongoFeeder struct {
	m      *mongoSlices
	job    bson.ObjectID
	server string
}

func (mf *mongoFeeder) Next(ctx context.Context) (*Claimed, error) {
	var doc struct {
		ID       string `bson:"_id"`
		First    int64  `bson:"first"`
		Count    int    `bson:"count"`
		Records  []byte `bson:"records"`
		Attempts int    `bson:"attempts"`
	}
	err := retry(ctx, func() error {
		return mf.m.coll(mf.job, "input").FindOneAndUpdate(ctx,
			bson.D{{Key: "state", Value: sliceQueued}},
			bson.D{
				{Key: "$set", Value: bson.D{{Key: "state", Value: sliceRunning}, {Key: "server", Value: mf.server}, {Key: "started_at", Value: time.Now()}}},
				{Key: "$inc", Value: bson.D{{Key: "attempts", Value: 1}}},
			},
			options.FindOneAndUpdate().SetReturnDocument(options.After),
		).Decode(&doc)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNoWork
	}
	if err != nil {
		return nil, fmt.Errorf("claiming a slice: %w", err)
	}
	num, err := parseSliceID(doc.ID)
	if err != nil {
		return nil, err
	}
	return &Claimed{InputSlice: InputSlice{Num: num, First: doc.First, Count: doc.Count, Records: doc.Records}, Attempt: doc.Attempts}, nil
}

// Release has nothing to do: the MongoDB feeder claims one slice at a time.
func (mf *mongoFeeder) Release(context.Context) error { return nil }

func (mf *mongoFeeder) Close(context.Context) error { return nil }

func (m *mongoSlices) CompleteMany(ctx context.Context, job bson.ObjectID, done []Completion) ([]bool, error) {
	won := make([]bool, len(done))
	for i, d := range done {
		var err error
		if won[i], err = m.Complete(ctx, job, d.Claimed, d.Result); err != nil {
			return won, err
		}
	}
	return won, nil
}

func (m *mongoSlices) Complete(ctx context.Context, job bson.ObjectID, c *Claimed, r Result) (bool, error) {
	id := sliceID(c.Num)
	byID := bson.D{{Key: "_id", Value: id}}
	if r.Output != nil || r.Batch != nil {
		// A batch type's categories and counters go with the output: a
		// slice that runs again replaces them, so they count once.
		doc := bson.D{{Key: "_id", Value: id}, {Key: "count", Value: r.OutputCount}}
		if r.Output != nil {
			doc = append(doc, bson.E{Key: "records", Value: bson.Binary{Data: r.Output}})
		}
		if cats := r.Batch.categoryDocs(); cats != nil {
			doc = append(doc, bson.E{Key: "categories", Value: cats})
		}
		doc = append(doc, r.Batch.fields()...)
		err := retry(ctx, func() error {
			_, err := m.coll(job, "output").ReplaceOne(ctx, byID, doc, options.Replace().SetUpsert(true))
			return err
		})
		if err != nil {
			return false, fmt.Errorf("writing output of slice %d: %w", c.Num, err)
		}
	}
	err := retry(ctx, func() error {
		if r.FailedCount == 0 {
			_, err := m.coll(job, "failed").DeleteOne(ctx, byID)
			return err
		}
		_, err := m.coll(job, "failed").ReplaceOne(ctx, byID,
			bson.D{{Key: "_id", Value: id}, {Key: "count", Value: r.FailedCount}, {Key: "records", Value: bson.Binary{Data: r.Failed}}},
			options.Replace().SetUpsert(true))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("writing failed records of slice %d: %w", c.Num, err)
	}
	// Release the input only if this attempt still owns it.
	mine := bson.D{{Key: "_id", Value: id}, {Key: "state", Value: sliceRunning}, {Key: "attempts", Value: c.Attempt}}
	var n int64
	err = retry(ctx, func() error {
		if r.FailedCount > 0 {
			res, err := m.coll(job, "input").UpdateOne(ctx, mine, bson.D{{Key: "$set", Value: bson.D{
				{Key: "state", Value: sliceFailed}, {Key: "failed", Value: r.FailedCount}}}})
			if err == nil {
				n = res.ModifiedCount
			}
			return err
		}
		res, err := m.coll(job, "input").DeleteOne(ctx, mine)
		if err == nil {
			n = res.DeletedCount
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("finishing slice %d: %w", c.Num, err)
	}
	return n == 1, nil
}

func (m *mongoSlices) Release(ctx context.Context, job bson.ObjectID, c *Claimed) error {
	return retry(ctx, func() error {
		_, err := m.coll(job, "input").UpdateOne(ctx,
			bson.D{{Key: "_id", Value: sliceID(c.Num)}, {Key: "state", Value: sliceRunning}, {Key: "attempts", Value: c.Attempt}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: sliceQueued}}}, {Key: "$unset", Value: bson.D{{Key: "server", Value: ""}}}})
		return err
	})
}

func (m *mongoSlices) RequeueServer(ctx context.Context, job bson.ObjectID, server string) (int, error) {
	var n int64
	err := retry(ctx, func() error {
		res, err := m.coll(job, "input").UpdateMany(ctx,
			bson.D{{Key: "state", Value: sliceRunning}, {Key: "server", Value: server}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: sliceQueued}}}, {Key: "$unset", Value: bson.D{{Key: "server", Value: ""}}}})
		if err == nil {
			n = res.ModifiedCount
		}
		return err
	})
	return int(n), err
}

func (m *mongoSlices) RetryFailed(ctx context.Context, job bson.ObjectID) (int, error) {
	var n int64
	err := retry(ctx, func() error {
		res, err := m.coll(job, "input").UpdateMany(ctx,
			bson.D{{Key: "state", Value: sliceFailed}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: sliceQueued}}}, {Key: "$unset", Value: bson.D{{Key: "server", Value: ""}, {Key: "failed", Value: ""}}}})
		if err == nil {
			n = res.ModifiedCount
		}
		return err
	})
	return int(n), err
}

// AllDone: finished slices without failed records are deleted from the
// input and those with failed records stay, marked failed; so all are done
// when none is queued or running (an indexed count).
func (m *mongoSlices) AllDone(ctx context.Context, job bson.ObjectID, _ int64) (bool, error) {
	var n int64
	err := retry(ctx, func() error {
		var err error
		n, err = m.coll(job, "input").CountDocuments(ctx, bson.D{{Key: "state", Value: bson.D{{Key: "$in", Value: bson.A{sliceQueued, sliceRunning}}}}})
		return err
	})
	return n == 0, err
}

func (m *mongoSlices) Progress(ctx context.Context, job bson.ObjectID, sliceCount, recordCount int64) (Progress, error) {
	var p Progress
	var pending int64 // records in queued and running slices
	err := retry(ctx, func() error {
		p, pending = Progress{}, 0
		cur, err := m.coll(job, "input").Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "state", Value: 1}, {Key: "count", Value: 1}, {Key: "failed", Value: 1}}))
		if err != nil {
			return err
		}
		defer closeCursor(ctx, cur)
		for cur.Next(ctx) {
			var d struct {
				State  string `bson:"state"`
				Count  int64  `bson:"count"`
				Failed int64  `bson:"failed"`
			}
			if err := cur.Decode(&d); err != nil {
				return err
			}
			switch d.State {
			case sliceRunning:
				p.Running++
				pending += d.Count
			case sliceFailed:
				p.Failed++
				p.FailedRecords += d.Failed
			default:
				p.Done-- // counted down from sliceCount below
				pending += d.Count
			}
		}
		return cur.Err()
	})
	if err != nil {
		return p, err
	}
	// Finished slices without failures are gone from the input.
	p.Done += sliceCount - p.Running
	p.Processed = recordCount - pending
	return p, nil
}

// Totals sums the batch fields of the output documents (one per slice,
// replaced when a slice runs again), without their records.
func (m *mongoSlices) Totals(ctx context.Context, job bson.ObjectID) (Totals, error) {
	var t Totals
	err := retry(ctx, func() error {
		t = Totals{}
		proj := bson.D{{Key: "cats", Value: 1}, {Key: "stats", Value: 1}, {Key: "dropped", Value: 1}}
		cur, err := m.coll(job, "output").Find(ctx, bson.D{}, options.Find().SetProjection(proj))
		if err != nil {
			return err
		}
		defer closeCursor(ctx, cur)
		for cur.Next(ctx) {
			var d struct {
				Categories map[string]int64 `bson:"cats"`
				Statistics map[string]int64 `bson:"stats"`
				Dropped    int64            `bson:"dropped"`
			}
			if err := cur.Decode(&d); err != nil {
				return err
			}
			t.add(d.Categories, d.Statistics, d.Dropped)
		}
		return cur.Err()
	})
	return t, err
}

func (m *mongoSlices) StreamOutput(ctx context.Context, job bson.ObjectID, fn func(OutputSlice) error) error {
	return streamSorted(ctx, m.coll(job, "output"), fn)
}

func (m *mongoSlices) StreamFailed(ctx context.Context, job bson.ObjectID, fn func(OutputSlice) error) error {
	return streamSorted(ctx, m.coll(job, "failed"), fn)
}

func streamSorted(ctx context.Context, coll *mongo.Collection, fn func(OutputSlice) error) error {
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(64))
	if err != nil {
		return err
	}
	defer closeCursor(ctx, cur)
	for cur.Next(ctx) {
		var d struct {
			ID         string           `bson:"_id"`
			Count      int              `bson:"count"`
			Records    []byte           `bson:"records"`
			Categories []CategoryOutput `bson:"categories"`
		}
		if err := cur.Decode(&d); err != nil {
			return err
		}
		num, err := parseSliceID(d.ID)
		if err != nil {
			return err
		}
		if err := fn(OutputSlice{Num: num, Count: d.Count, Records: d.Records, Categories: d.Categories}); err != nil {
			return err
		}
	}
	return cur.Err()
}

func (m *mongoSlices) DropInput(ctx context.Context, job bson.ObjectID) error {
	return dropAll(ctx, m.db, job, "input")
}

func (m *mongoSlices) Drop(ctx context.Context, job bson.ObjectID) error {
	return dropAll(ctx, m.db, job, sliceKinds)
}
