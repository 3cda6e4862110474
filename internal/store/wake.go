package store

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// The wake-up document: one small document in the jobs database whose token
// changes whenever a job becomes runnable (a new job, a resume, a retry, a
// requeue). Idle servers read it often (one lookup by _id) and look for work
// only when it changed, so new work starts within that interval instead of
// the poll interval, without every idle server scanning for work. Any writer
// may overwrite any other: only the change matters, so FerretDB's
// non-atomic updates cannot lose a wake-up.
const (
	wakeCollection = "wakeup"
	wakeID         = "work"
)

func (s *Store) wakeups() *mongo.Collection { return s.jobsDB.Collection(wakeCollection) }

// Wake tells idle servers that a job became runnable. A failure is
// harmless: servers still look for work every poll interval.
func (s *Store) Wake(ctx context.Context) {
	_, _ = s.wakeups().ReplaceOne(ctx, bson.D{{Key: "_id", Value: wakeID}},
		bson.D{{Key: "_id", Value: wakeID}, {Key: "token", Value: bson.NewObjectID()}},
		options.Replace().SetUpsert(true))
}

// WakeToken returns the current wake-up token (the zero id before the
// first wake-up).
func (s *Store) WakeToken(ctx context.Context) (bson.ObjectID, error) {
	var doc struct {
		Token bson.ObjectID `bson:"token"`
	}
	err := s.wakeups().FindOne(ctx, bson.D{{Key: "_id", Value: wakeID}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return bson.ObjectID{}, nil
	}
	return doc.Token, err
}

// ErrNoChangeStreams is returned by WatchWake on FerretDB, which has no
// change streams.
var ErrNoChangeStreams = errors.New("no change streams on FerretDB")

// WatchWake opens a change stream of what makes work runnable, on MongoDB
// (a replica set): a change of the wake-up document, a job inserted or
// replaced as queued, a job updated to queued, a job resumed (updated to
// running without a server, as Client.Resume does; a server's own start
// sets one), and a priority change. Idle servers then need not read the
// wake-up document every interval. On FerretDB it returns
// ErrNoChangeStreams; a standalone mongod refuses change streams with an
// error.
func (s *Store) WatchWake(ctx context.Context) (*mongo.ChangeStream, error) {
	if s.ferret {
		return nil, ErrNoChangeStreams
	}
	jobs := func(more ...bson.E) bson.D {
		return append(bson.D{{Key: "ns.coll", Value: jobsCollection}}, more...)
	}
	updated := func(field string) string { return "updateDescription.updatedFields." + field }
	match := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "ns.coll", Value: wakeCollection}},
		jobs(bson.E{Key: "operationType", Value: bson.D{{Key: "$in", Value: bson.A{"insert", "replace"}}}},
			bson.E{Key: "fullDocument.state", Value: model.StateQueued}),
		jobs(bson.E{Key: "operationType", Value: "update"}, bson.E{Key: updated("state"), Value: model.StateQueued}),
		jobs(bson.E{Key: "operationType", Value: "update"}, bson.E{Key: updated("state"), Value: model.StateRunning},
			bson.E{Key: updated("server"), Value: bson.D{{Key: "$exists", Value: false}}}),
		jobs(bson.E{Key: "operationType", Value: "update"}, bson.E{Key: updated("priority"), Value: bson.D{{Key: "$exists", Value: true}}}),
	}}}
	return s.jobsDB.Watch(ctx, mongo.Pipeline{{{Key: "$match", Value: match}}})
}
