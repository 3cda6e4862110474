package store

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// insertMany inserts docs unordered and reports which were duplicates (lost
// to an earlier insert of the same _id). When it had to retry after a
// transient error (retried), a duplicate may be one of its own earlier
// inserts: callers that care look at the stored document.
func insertMany(ctx context.Context, coll *mongo.Collection, docs []any) (dup []bool, retried bool, err error) {
	return insertWith(ctx, docs, func() error {
		_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		return err
	})
}

// insertFerret is insertMany for a collection of FerretDB, where most of
// a server's writes are inserts of small documents (claims, end records,
// state index entries, slices). It sends the insert command itself: the
// driver's InsertMany reads each document's _id through a decoder of its
// own, with a 4 KB buffer (a tenth of what a server of short simple jobs
// allocates, with its garbage collection). Every document must have an
// _id (so that a retried insert finds its earlier documents as
// duplicates); a batch without one, or too large for one command, goes
// through insertMany. Not for MongoDB: the command leaves out the
// database's write concern and the driver's retryable writes.
func insertFerret(ctx context.Context, coll *mongo.Collection, docs []any) (dup []bool, retried bool, err error) {
	raws := make(bson.A, len(docs))
	size := 0
	for i, d := range docs {
		raw, err := bson.Marshal(d)
		if err != nil {
			return nil, false, err
		}
		if _, err := bson.Raw(raw).LookupErr("_id"); err != nil {
			return insertMany(ctx, coll, docs)
		}
		if size += len(raw); size > maxInsertCommand {
			return insertMany(ctx, coll, docs)
		}
		raws[i] = bson.Raw(raw)
	}
	cmd := bson.D{{Key: "insert", Value: coll.Name()}, {Key: "documents", Value: raws}, {Key: "ordered", Value: false}}
	return insertWith(ctx, docs, func() error {
		err := coll.Database().RunCommand(ctx, cmd).Err()
		// The driver reports the reply's write errors as a WriteException;
		// insertWith and the callers read them as InsertMany reports them.
		var we mongo.WriteException
		if errors.As(err, &we) {
			bwe := mongo.BulkWriteException{WriteConcernError: we.WriteConcernError, Labels: we.Labels}
			for _, e := range we.WriteErrors {
				bwe.WriteErrors = append(bwe.WriteErrors, mongo.BulkWriteError{WriteError: e})
			}
			return bwe
		}
		return err
	})
}

// maxInsertCommand bounds the bytes of documents insertFerret sends in one
// command, well under the 16 MB a command document may hold.
const maxInsertCommand = 8 << 20

// insertWith runs insert (an unordered insert of docs) until it succeeds or
// fails for a reason other than duplicates, marking the duplicates.
func insertWith(ctx context.Context, docs []any, insert func() error) (dup []bool, retried bool, err error) {
	tries := 0
	err = retry(ctx, func() error {
		tries++
		dup = make([]bool, len(docs))
		err := insert()
		if err == nil {
			return nil
		}
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
			return err
		}
		for _, we := range bwe.WriteErrors {
			if we.Code != 11000 {
				return err
			}
			dup[we.Index] = true
		}
		return nil
	})
	return dup, tries > 1, err
}

// insertOn inserts docs into coll as insertFerret does when its database
// is FerretDB (ferret), else as insertMany does.
func insertOn(ctx context.Context, ferret bool, coll *mongo.Collection, docs []any) (dup []bool, retried bool, err error) {
	if ferret {
		return insertFerret(ctx, coll, docs)
	}
	return insertMany(ctx, coll, docs)
}

// insert inserts docs into coll, a collection of the jobs or run-queue
// database (insertOn).
func (s *Store) insert(ctx context.Context, coll *mongo.Collection, docs []any) (dup []bool, retried bool, err error) {
	return insertOn(ctx, s.ferret, coll, docs)
}

// insertDocs inserts docs into coll, a collection of the work database
// (insertOn).
func (f *ferretSlices) insertDocs(ctx context.Context, coll *mongo.Collection, docs []any) (dup []bool, retried bool, err error) {
	return insertOn(ctx, f.ferret, coll, docs)
}
