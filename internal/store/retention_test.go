package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
)

// endedJob returns a job of type typ in state st that ended at ended, with
// an id of the time it was created (an hour before).
func endedJob(typ string, st model.State, priority int, ended time.Time) *model.Job {
	ended = ended.UTC().Truncate(time.Millisecond)
	created := ended.Add(-time.Hour)
	id := bson.NewObjectID()
	id[0], id[1], id[2], id[3] = byte(created.Unix()>>24), byte(created.Unix()>>16), byte(created.Unix()>>8), byte(created.Unix())
	j := &model.Job{ID: id, Type: typ, Kind: model.KindSimple, State: st, Priority: priority,
		RunAt: created, CreatedAt: created, Version: 3}
	if st == model.StateCompleted || st == model.StateFailed || st == model.StateAborted {
		j.CompletedAt = &ended
	}
	return j
}

// TestExpiredJobs checks which finished jobs ExpiredJobs returns, on both
// paths: the state index (FerretDB, the test database) and the query on
// {state, completed_at} (MongoDB; FerretDB runs it too, slowly).
func TestExpiredJobs(t *testing.T) {
	ctx := context.Background()
	jobsDB, workDB := dbtest.DBNames(t)
	s, err := Open(ctx, Config{URI: dbtest.URI(), DB: jobsDB, WorkDB: workDB})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if !s.ferret {
		t.Skip("the test database is not FerretDB")
	}
	now := time.Now().Add(100 * 24 * time.Hour) // every job below ended before now
	day := 24 * time.Hour
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	r := Retention{
		Keep: map[model.State]time.Duration{model.StateCompleted: 7 * day, model.StateFailed: 30 * day, model.StateAborted: 30 * day},
		Types: map[string]map[model.State]time.Duration{
			"tick":  {model.StateCompleted: time.Hour, model.StateFailed: -1, model.StateAborted: 30 * day},
			"audit": {model.StateCompleted: -1, model.StateFailed: 30 * day, model.StateAborted: 30 * day},
		},
	}
	type tc struct {
		job     *model.Job
		expired bool
	}
	cases := []tc{
		{endedJob("nap", model.StateCompleted, 50, ago(8*day)), true},
		{endedJob("nap", model.StateCompleted, 10, ago(8*day)), true},
		{endedJob("nap", model.StateCompleted, 50, ago(6*day)), false},
		{endedJob("nap", model.StateFailed, 50, ago(31*day)), true},
		{endedJob("nap", model.StateFailed, 50, ago(8*day)), false},
		{endedJob("nap", model.StateAborted, 90, ago(31*day)), true},
		{endedJob("nap", model.StateAborted, 90, ago(29*day)), false},
		// Per type: an hour for completed ticks, failed ones forever.
		{endedJob("tick", model.StateCompleted, 50, ago(2*time.Hour)), true},
		{endedJob("tick", model.StateCompleted, 50, ago(30*time.Minute)), false},
		{endedJob("tick", model.StateFailed, 50, ago(90*day)), false},
		{endedJob("audit", model.StateCompleted, 50, ago(90*day)), false},
		{endedJob("audit", model.StateAborted, 50, ago(31*day)), true},
		// Live jobs, however old, are never expired.
		{endedJob("nap", model.StateQueued, 50, ago(90*day)), false},
		{endedJob("nap", model.StateRunning, 50, ago(90*day)), false},
		{endedJob("nap", model.StatePaused, 50, ago(90*day)), false},
	}
	var want []bson.ObjectID
	for _, c := range cases {
		if err := s.InsertJob(ctx, c.job); err != nil {
			t.Fatal(err)
		}
		if c.expired {
			want = append(want, c.job.ID)
		}
	}
	mongoPath := s.WithJobStrategy(false)
	for name, st := range map[string]*Store{"state index": s, "query": mongoPath} {
		got, err := st.ExpiredJobs(ctx, r, now, 100)
		if err != nil {
			t.Fatal(name, err)
		}
		if ids := idsOf(got); !sameIDs(ids, want) {
			t.Errorf("%s: expired %v, want %v", name, ids, want)
		}
		if got, err := st.ExpiredJobs(ctx, r, now, 2); err != nil || len(got) != 2 {
			t.Errorf("%s: limit 2: %d jobs, %v", name, len(got), err)
		}
	}

	// Deleting a job removes its state index entry with it; an entry left
	// behind by a job deleted behind the store's back is dropped.
	gone := cases[0].job
	if err := s.DeleteJob(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	behind := cases[3].job
	if _, err := s.jobs().DeleteOne(ctx, bson.D{{Key: "_id", Value: behind.ID}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ExpiredJobs(ctx, r, now, 100)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.DeleteFunc(want, func(id bson.ObjectID) bool { return id == gone.ID || id == behind.ID })
	if ids := idsOf(got); !sameIDs(ids, want) {
		t.Errorf("after deletions: expired %v, want %v", ids, want)
	}
	for _, j := range []*model.Job{gone, behind} {
		if n, err := s.stateColl(j.State, j.Priority).CountDocuments(ctx, bson.D{{Key: "_id", Value: j.ID}}); err != nil || n != 0 {
			t.Errorf("state index entry of deleted job %s: %d, %v", j.ID.Hex(), n, err)
		}
	}
}

// TestClaimRetention: one claim per period across callers.
func TestClaimRetention(t *testing.T) {
	ctx := context.Background()
	jobsDB, workDB := dbtest.DBNames(t)
	s, err := Open(ctx, Config{URI: dbtest.URI(), DB: jobsDB, WorkDB: workDB})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	at := time.Unix(60*20_000, 0)
	for i, c := range []struct {
		at  time.Time
		won bool
	}{{at, true}, {at.Add(30 * time.Second), false}, {at.Add(time.Minute), true}, {at.Add(time.Minute), false}, {at.Add(2 * time.Minute), true}} {
		won, err := s.ClaimRetention(ctx, c.at, time.Minute)
		if err != nil || won != c.won {
			t.Fatalf("claim %d: won %v, %v; want %v", i, won, err, c.won)
		}
	}
	// The claim of two periods before the last one won was removed.
	if won, err := s.ClaimRetention(ctx, at, time.Minute); err != nil || !won {
		t.Fatalf("the claim of two periods ago was kept: %v, %v", won, err)
	}
}

func idsOf(jobs []model.Job) []bson.ObjectID {
	var out []bson.ObjectID
	for _, j := range jobs {
		out = append(out, j.ID)
	}
	return out
}

func sameIDs(a, b []bson.ObjectID) bool {
	key := func(x, y bson.ObjectID) int { return slices.Compare(x[:], y[:]) }
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, key)
	slices.SortFunc(b, key)
	return slices.Equal(a, b)
}
