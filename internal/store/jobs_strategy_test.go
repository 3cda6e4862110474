package store_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// The job operations' conformance suite, one file per operation
// (jobs_<operation>_test.go): each test runs against both job strategies
// (store.WithJobStrategy) on whatever database the tests use, the claims
// strategy (FerretDB's: a claim insert decides, selections and listings
// read the run queue and the state index) and the conditional one
// (MongoDB's: version-conditioned updates, queries on the jobs collection).
// Both must give the same answers. The conditional strategy is not atomic
// on FerretDB: these tests write from one goroutine.

// forEachJobStrategy runs fn once per job strategy, on new databases.
func forEachJobStrategy(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	for _, strategy := range []struct {
		name   string
		claims bool
	}{{"claims", true}, {"conditional", false}} {
		t.Run(strategy.name, func(t *testing.T) {
			s := open(t).WithJobStrategy(strategy.claims)
			if err := s.MarkNewStateIndex(context.Background()); err != nil {
				t.Fatal(err)
			}
			fn(t, s)
		})
	}
}

func insertJobs(t *testing.T, s *store.Store, jobs ...*model.Job) {
	t.Helper()
	for _, j := range jobs {
		if err := s.InsertJob(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
}

// newSliced returns a queued sliced job with the given priority, due now.
func newSliced(priority int) *model.Job {
	j := newJob(priority)
	j.Kind = model.KindSliced
	return j
}

// doOp applies op to job and checks what every named operation must do on
// both strategies: the job moves one version on, to the op's state (its own
// for an update); the job returned is the job as stored; and the same op
// from the version job had is ErrConflict, changing nothing. It returns the
// job as stored.
func doOp(t *testing.T, s *store.Store, job *model.Job, op store.Op) *model.Job {
	t.Helper()
	ctx := context.Background()
	got, err := s.Do(ctx, job, op, "test")
	if err != nil {
		t.Fatalf("%+v from %s: %v", op, job.State, err)
	}
	stored, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := op.To()
	if want == "" {
		want = job.State
	}
	if stored.State != want || stored.Version != job.Version+1 {
		t.Fatalf("stored after the op: %s at version %d, want %s at version %d", stored.State, stored.Version, want, job.Version+1)
	}
	if !reflect.DeepEqual(got, stored) {
		t.Errorf("the op returned\n%+v\nthe store holds\n%+v", got, stored)
	}
	if _, err := s.Do(ctx, job, op, "test"); !errors.Is(err, model.ErrConflict) {
		t.Errorf("the op again from version %d: %v, want ErrConflict", job.Version, err)
	}
	if again, err := s.GetJob(ctx, job.ID); err != nil || again.Version != stored.Version {
		t.Errorf("after the conflicting op: %+v (%v), want version %d", again, err, stored.Version)
	}
	return stored
}

// isRunnable reports whether the selection offers job id now (or at, when
// given).
func isRunnable(t *testing.T, s *store.Store, id bson.ObjectID, at ...time.Time) bool {
	t.Helper()
	now := time.Now()
	if len(at) > 0 {
		now = at[0]
	}
	jobs, err := s.RunnableJobs(context.Background(), now, 50, nil)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(jobs, func(j model.Job) bool { return j.ID == id })
}

// listed reports whether a limited listing of state lists job id (from
// the state index on the claims strategy).
func listed(t *testing.T, s *store.Store, state model.State, id bson.ObjectID) bool {
	t.Helper()
	jobs, err := s.ListJobs(context.Background(), store.JobFilter{States: []model.State{state}, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(jobs, func(j model.Job) bool { return j.ID == id })
}

// sameTime reports whether a stored time is at, to the millisecond the
// database keeps.
func sameTime(stored *time.Time, at time.Time) bool {
	return stored != nil && stored.Equal(at.Truncate(time.Millisecond))
}

// failure returns a failure recorded now by server s1.
func failure(msg string) *model.Failure {
	return &model.Failure{Message: msg, At: time.Now().UTC().Truncate(time.Millisecond), Server: "s1"}
}
