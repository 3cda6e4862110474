package store

import (
	"context"
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
// hooks or a webhook, written by whoever ended it: it tells the servers'
// enders to look now instead of at their next full look, which reads every
// job. It stays tiny (documents are removed once looked at).
const endsDueCollection = "job_ends_due"

func (s *Store) endsDue() *mongo.Collection { return s.jobsDB.Collection(endsDueCollection) }

// MarkEndDue records that job just ended and has end hooks or a webhook.
func (s *Store) MarkEndDue(ctx context.Context, job bson.ObjectID) error {
	return retry(ctx, func() error {
		_, err := s.endsDue().InsertOne(ctx, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "job", Value: job}})
		return err
	})
}

// EndsDue returns the ids of the end-due documents (nil when none).
func (s *Store) EndsDue(ctx context.Context) ([]bson.ObjectID, error) {
	docs, err := findAll[struct {
		ID bson.ObjectID `bson:"_id"`
	}](ctx, s.endsDue(), bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("listing due job ends: %w", err)
	}
	ids := make([]bson.ObjectID, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}

// ClearEndsDue removes end-due documents once looked at.
func (s *Store) ClearEndsDue(ctx context.Context, ids []bson.ObjectID) error {
	if len(ids) == 0 {
		return nil
	}
	return retry(ctx, func() error {
		_, err := s.endsDue().DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		return err
	})
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
func (s *Store) EndedJobs(ctx context.Context, since time.Time) ([]model.Job, error) {
	filter := bson.D{
		{Key: "end_hooks", Value: true},
		{Key: "state", Value: bson.D{{Key: "$in", Value: bson.A{model.StateCompleted, model.StateFailed, model.StateAborted}}}},
		{Key: "completed_at", Value: bson.D{{Key: "$gte", Value: since}}},
	}
	jobs, err := findAll[model.Job](ctx, s.jobs(), filter, options.Find())
	if err != nil {
		return nil, fmt.Errorf("listing ended jobs: %w", err)
	}
	return jobs, nil
}

// HandledEnds returns the keys of the ends already taken by a server.
func (s *Store) HandledEnds(ctx context.Context) (map[string]bool, error) {
	docs, err := findAll[struct {
		ID string `bson:"_id"`
	}](ctx, s.ends(), bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("listing handled job ends: %w", err)
	}
	keys := make(map[string]bool, len(docs))
	for _, d := range docs {
		keys[d.ID] = true
	}
	return keys, nil
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
