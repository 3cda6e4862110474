package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// endsCollection holds one document per handled end of a job with end
// hooks or a webhook: {_id: EndKey, server, at}. Inserting it (unique _id)
// is how exactly one server takes an end; it is small (one document per
// ended job that asked for it).
const endsCollection = "job_ends"

func (s *Store) ends() *mongo.Collection { return s.jobsDB.Collection(endsCollection) }

// endsDueCollection holds a small document per job that just ended with end
// hooks or a webhook, {_id, job}, written by whoever ended it: the servers'
// enders read the job by its id instead of looking through the jobs (which
// FerretDB would read one by one, all of them). A document stays until a
// server that knows the job's type handled the end (or another took it),
// or the job is gone, or it is older than the window in which ends are
// handled; the collection stays tiny.
const endsDueCollection = "job_ends_due"

func (s *Store) endsDue() *mongo.Collection { return s.jobsDB.Collection(endsDueCollection) }

// MarkEndDue records that job just ended and has end hooks or a webhook.
func (s *Store) MarkEndDue(ctx context.Context, job bson.ObjectID) error {
	return retry(ctx, func() error {
		_, err := s.endsDue().InsertOne(ctx, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "job", Value: job}})
		return err
	})
}

// EndDue is one end-due document: a job that ended (ID.Timestamp() is when
// it was marked).
type EndDue struct {
	ID  bson.ObjectID `bson:"_id"`
	Job bson.ObjectID `bson:"job"`
}

// EndsDue returns the end-due documents (nil when none).
func (s *Store) EndsDue(ctx context.Context) ([]EndDue, error) {
	docs, err := findAll[EndDue](ctx, s.endsDue(), bson.D{}, options.Find())
	if err != nil {
		return nil, fmt.Errorf("listing due job ends: %w", err)
	}
	return docs, nil
}

// ClearEndsDue removes end-due documents once handled, one by one by _id
// (the only filter FerretDB hands to SQLite).
func (s *Store) ClearEndsDue(ctx context.Context, ids []bson.ObjectID) error {
	for _, id := range ids {
		err := retry(ctx, func() error {
			_, err := s.endsDue().DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// EndKey names one end (outcome) of a job: the job, its final state and
// when it got there. A job retried and ending again has a new key.
func EndKey(job *model.Job) string {
	var at int64
	if job.CompletedAt != nil {
		at = job.CompletedAt.UnixNano()
	} else {
		at = job.Version // a final state without a time (older versions)
	}
	return fmt.Sprintf("%s:%s:%d", job.ID.Hex(), job.State, at)
}

// EndedJobs returns the jobs with end hooks or a webhook that reached a
// final state (completed, failed or aborted) since since, handled or not.
// On MongoDB it is one query on the {state, completed_at} index; FerretDB
// would read every job, so there it returns ErrNotFlat and the enders rely
// on the end-due documents alone.
func (s *Store) EndedJobs(ctx context.Context, since time.Time) ([]model.Job, error) {
	if s.ferret {
		return nil, ErrNotFlat
	}
	filter := bson.D{
		{Key: "state", Value: bson.D{{Key: "$in", Value: bson.A{model.StateCompleted, model.StateFailed, model.StateAborted}}}},
		{Key: "completed_at", Value: bson.D{{Key: "$gte", Value: since}}},
		{Key: "end_hooks", Value: true},
	}
	jobs, err := findAll[model.Job](ctx, s.jobs(), filter, options.Find())
	if err != nil {
		return nil, fmt.Errorf("listing ended jobs: %w", err)
	}
	return jobs, nil
}

// ErrNotFlat is returned by a query that would read every job of the
// collection on this database.
var ErrNotFlat = errors.New("this query reads every job on FerretDB")

// EndTaken reports whether a server took the end named key.
func (s *Store) EndTaken(ctx context.Context, key string) (bool, error) {
	var taken bool
	err := retry(ctx, func() error {
		err := s.ends().FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Err()
		taken = err == nil
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil
		}
		return err
	})
	return taken, err
}

// TakeEnd claims the end key of job for server by a unique insert: true
// for the one caller that wins, false when another server took it.
func (s *Store) TakeEnd(ctx context.Context, job bson.ObjectID, key, server string) (bool, error) {
	won, tries := false, 0
	err := retry(ctx, func() error {
		tries++
		_, err := s.ends().InsertOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "job", Value: job}, {Key: "server", Value: server}, {Key: "at", Value: time.Now().UTC()}})
		switch {
		case err == nil:
			won = true
			return nil
		case isDup(err) && tries > 1:
			// Maybe this server's own earlier try, whose answer was lost.
			var d struct {
				Server string `bson:"server"`
			}
			if err := s.ends().FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&d); err != nil {
				return err
			}
			won = d.Server == server
			return nil
		case isDup(err):
			return nil
		}
		return err
	})
	return won, err
}

// DropEnds removes what the enders recorded about job (a destroyed job).
func (s *Store) DropEnds(ctx context.Context, job bson.ObjectID) error {
	return retry(ctx, func() error {
		if _, err := s.ends().DeleteMany(ctx, bson.D{{Key: "job", Value: job}}); err != nil {
			return err
		}
		_, err := s.endsDue().DeleteMany(ctx, bson.D{{Key: "job", Value: job}})
		return err
	})
}
