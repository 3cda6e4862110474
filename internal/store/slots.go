package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// slotsCollection holds the worker slots of throttled jobs: a job with
// max_workers N has slots "<job>:0" .. "<job>:N-1"; a worker holds one while
// it processes the job's slices. Taking a slot is a unique insert, so it is
// exclusive on FerretDB too.
const slotsCollection = "job_slots"

func (s *Store) slots() *mongo.Collection { return s.jobsDB.Collection(slotsCollection) }

// Slot is a held worker slot; Release gives it back.
type Slot struct {
	id string
}

// AcquireSlot takes one of the job's max worker slots for server, or
// returns nil when all are taken.
func (s *Store) AcquireSlot(ctx context.Context, job bson.ObjectID, max int, server string) (*Slot, error) {
	for k := range max {
		id := fmt.Sprintf("%s:%d", job.Hex(), k)
		err := retry(ctx, func() error {
			_, err := s.slots().InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "server", Value: server}, {Key: "at", Value: time.Now()}})
			return err
		})
		if err == nil {
			return &Slot{id: id}, nil
		}
		if !isDup(err) {
			return nil, err
		}
	}
	return nil, nil
}

// ReleaseSlot gives a slot back.
func (s *Store) ReleaseSlot(ctx context.Context, slot *Slot) error {
	return retry(ctx, func() error {
		_, err := s.slots().DeleteOne(ctx, bson.D{{Key: "_id", Value: slot.id}})
		return err
	})
}

// ReleaseSlotsOf gives back every slot a (dead) server held.
func (s *Store) ReleaseSlotsOf(ctx context.Context, server string) (int64, error) {
	var n int64
	err := retry(ctx, func() error {
		res, err := s.slots().DeleteMany(ctx, bson.D{{Key: "server", Value: server}})
		if err == nil {
			n = res.DeletedCount
		}
		return err
	})
	return n, err
}
