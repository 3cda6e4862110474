package store

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
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

// WatchWake opens a change stream on the wake-up document: on a MongoDB
// replica set each new token arrives as it is written, so idle servers need
// not read it every interval. On FerretDB it returns ErrNoChangeStreams; a
// standalone mongod refuses change streams with an error.
func (s *Store) WatchWake(ctx context.Context) (*mongo.ChangeStream, error) {
	if s.ferret {
		return nil, ErrNoChangeStreams
	}
	return s.wakeups().Watch(ctx, mongo.Pipeline{})
}
