package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// cronSuccessorsCollection holds, per finished cron instance, the successor
// it enqueued: {_id: instance id, job: successor document}.
const cronSuccessorsCollection = "cron_successors"

// EnqueueCronSuccessor writes the next instance of a cron chain after
// instance, exactly once per instance: the first call records proposed as
// the successor and inserts it; a later call for the same instance (the
// instance ran again after its server was declared dead, or a crash came
// between the two writes) inserts the recorded successor again (a no-op
// when it exists) instead of its own proposal, which may be for a later
// tick. Without this a re-run instance forked the chain. It returns the
// successor written.
func (s *Store) EnqueueCronSuccessor(ctx context.Context, instance bson.ObjectID, proposed *model.Job) (*model.Job, error) {
	coll := s.jobsDB.Collection(cronSuccessorsCollection)
	err := retry(ctx, func() error {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: instance}, {Key: "job", Value: proposed}})
		if isDup(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("recording the successor of cron job %s: %w", instance.Hex(), err)
	}
	var rec struct {
		Job model.Job `bson:"job"`
	}
	err = retry(ctx, func() error {
		return coll.FindOne(ctx, bson.D{{Key: "_id", Value: instance}}).Decode(&rec)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("the successor record of cron job %s vanished", instance.Hex())
	}
	if err != nil {
		return nil, fmt.Errorf("reading the successor of cron job %s: %w", instance.Hex(), err)
	}
	if err := s.InsertJob(ctx, &rec.Job); err != nil {
		return nil, err
	}
	return &rec.Job, nil
}

// dropCronSuccessor removes the successor record of a deleted job (best
// effort: a leftover record only costs its few bytes).
func (s *Store) dropCronSuccessor(ctx context.Context, instance bson.ObjectID) {
	_ = retry(ctx, func() error {
		_, err := s.jobsDB.Collection(cronSuccessorsCollection).DeleteOne(ctx, bson.D{{Key: "_id", Value: instance}})
		return err
	})
}
