package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rocketjob-go/rocketjob/internal/model"
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

// Type slots cap the running jobs of one type across servers: a job holds
// "type:<name>:<k>" from its start until it completes, fails or is aborted.
// A slot whose job no longer runs (its release was lost in a crash) is
// reclaimed when the slots run out.

// AcquireTypeSlot takes one of max running-job slots of type typ for job and
// returns its id; "" when all are held by running jobs.
func (s *Store) AcquireTypeSlot(ctx context.Context, typ string, max int, job bson.ObjectID) (string, error) {
	for round := 0; round < 2; round++ {
		for k := range max {
			id := fmt.Sprintf("type:%s:%d", typ, k)
			err := retry(ctx, func() error {
				_, err := s.slots().InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "type", Value: typ},
					{Key: "job", Value: job}, {Key: "at", Value: time.Now()}})
				return err
			})
			if err == nil {
				return id, nil
			}
			if !isDup(err) {
				return "", err
			}
		}
		if round == 0 {
			if n, err := s.reclaimTypeSlots(ctx, typ); err != nil || n == 0 {
				return "", err
			}
		}
	}
	return "", nil
}

// reclaimGrace is how long a slot must have been held before another
// process may reclaim it: far longer than a holder takes to release it.
const reclaimGrace = 30 * time.Second

// reclaimTypeSlots deletes the slots of typ held for longer than the grace
// period by jobs that no longer run (their holder died before releasing).
// A delete on FerretDB is not atomic (it finds, then deletes by _id), so a
// delete racing a new holder of the same slot could remove the new holder's
// document: a unique insert first makes exactly one process reclaim a given
// stale holding, and the holding is stale, so nobody else deletes it.
func (s *Store) reclaimTypeSlots(ctx context.Context, typ string) (int, error) {
	cur, err := s.slots().Find(ctx, bson.D{{Key: "type", Value: typ}})
	if err != nil {
		return 0, err
	}
	var held []struct {
		ID  string        `bson:"_id"`
		Job bson.ObjectID `bson:"job"`
		At  time.Time     `bson:"at"`
	}
	if err := cur.All(ctx, &held); err != nil {
		return 0, err
	}
	n := 0
	for _, h := range held {
		if time.Since(h.At) < reclaimGrace {
			continue
		}
		j, err := s.GetJob(ctx, h.Job)
		if err == nil && (j.State == model.StateRunning || j.State == model.StatePaused || j.State == model.StateQueued) {
			continue
		}
		if err != nil && !errors.Is(err, model.ErrJobNotFound) {
			return n, err
		}
		won, err := s.claimOnce(ctx, fmt.Sprintf("reclaim:%s:%s:%d", h.ID, h.Job.Hex(), h.At.UnixMilli()))
		if err != nil || !won {
			return n, err
		}
		if _, err := s.slots().DeleteOne(ctx, bson.D{{Key: "_id", Value: h.ID}, {Key: "job", Value: h.Job}}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// claimOnce reports whether this call is the first to claim key: a unique
// insert into the claims collection, for one-time actions of any process.
func (s *Store) claimOnce(ctx context.Context, key string) (bool, error) {
	return insertOnce(ctx, s.jobClaims(), key)
}

// claimPeriod claims period of a recurring chore whose claims are named
// key(period): of any number of callers, one gets true, and it removes the
// claim of two periods before (the one before stays: a caller late into
// the period still meets it).
func (s *Store) claimPeriod(ctx context.Context, key func(period int64) string, period int64) (bool, error) {
	won, err := s.claimOnce(ctx, key(period))
	if won {
		_ = retry(ctx, func() error {
			_, err := s.jobClaims().DeleteOne(ctx, bson.D{{Key: "_id", Value: key(period - 2)}})
			return err
		})
	}
	return won, err
}

// insertOnce inserts {_id: key, at: now} into coll and reports whether this
// insert was the one that went in.
func insertOnce(ctx context.Context, coll *mongo.Collection, key string) (bool, error) {
	err := retry(ctx, func() error {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "at", Value: time.Now()}})
		return err
	})
	if isDup(err) {
		return false, nil
	}
	return err == nil, err
}

// ClaimSweep reports whether this call is the one to run the cluster's
// housekeeping of the current minute (RepairIntents, orphaned jobs; the
// hourly ReconcileQueue has its own claim, ClaimDeepSweep). It removes the
// claim of two minutes ago.
func (s *Store) ClaimSweep(ctx context.Context, now time.Time) (bool, error) {
	return s.claimPeriod(ctx, func(minute int64) string { return fmt.Sprintf("sweep:%d", minute) }, now.Unix()/60)
}

// ClaimRescue reports whether this call is the one to rescue the server
// with this name and last heartbeat in the current minute: rescues by
// several live servers at once would race on FerretDB's non-atomic deletes,
// and a rescuer that died half-way is taken over the next minute.
func (s *Store) ClaimRescue(ctx context.Context, server string, heartbeat time.Time) (bool, error) {
	return s.claimOnce(ctx, fmt.Sprintf("rescue:%s:%d:%d", server, heartbeat.UnixMilli(), time.Now().Unix()/60))
}

// ReleaseTypeSlot gives back the running-job slot slot (from
// AcquireTypeSlot) of job, or every slot the job holds when slot is "".
func (s *Store) ReleaseTypeSlot(ctx context.Context, job bson.ObjectID, slot string) error {
	filter := bson.D{{Key: "job", Value: job}}
	if slot != "" {
		filter = append(filter, bson.E{Key: "_id", Value: slot})
	}
	return retry(ctx, func() error {
		_, err := s.slots().DeleteMany(ctx, filter)
		return err
	})
}

// TakeRateToken takes one of perSecond tokens of key for the current second
// (a unique insert of "rate:<key>:<second>:<k>"), and reports false when the
// second's tokens are gone. Tokens are never reused, so deleting old ones is
// safe even with FerretDB's non-atomic deletes.
func (s *Store) TakeRateToken(ctx context.Context, key string, perSecond int, now time.Time) (bool, error) {
	sec := now.Unix()
	start := int(now.UnixNano() % int64(perSecond)) // spread processes over the tokens
	for i := range perSecond {
		k := (start + i) % perSecond
		won, err := insertOnce(ctx, s.rateTokens(), fmt.Sprintf("rate:%s:%d:%d", key, sec, k))
		if err != nil || won {
			return won, err
		}
	}
	return false, nil
}

// rateTokens holds the rate tokens, apart from the job claims: pruning
// them is a filtered delete, which FerretDB evaluates over the whole
// collection, and the job claims grow with the jobs (each server pruned by
// reading every claim of every job once a minute, under the tests'
// 200 ms heartbeat every 2.4 s: seconds of the database's time at 20,000
// jobs).
func (s *Store) rateTokens() *mongo.Collection { return s.jobsDB.Collection("rate_tokens") }

// PruneRateTokens deletes the rate tokens of seconds before cutoff. Tokens
// taken before they had a collection of their own stay among the job
// claims, a few per second of rate-limited work, until their jobs go.
func (s *Store) PruneRateTokens(ctx context.Context, cutoff time.Time) error {
	return retry(ctx, func() error {
		_, err := s.rateTokens().DeleteMany(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: cutoff}}}})
		return err
	})
}
