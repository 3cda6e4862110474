package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func open(t *testing.T) *store.Store {
	t.Helper()
	s, _ := openNamed(t)
	return s
}

// openNamed opens a store on new databases and returns the jobs database's name.
func openNamed(t *testing.T) (*store.Store, string) {
	t.Helper()
	jobs, work := dbtest.DBNames(t)
	s, err := store.Open(context.Background(), store.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if s.Ferret() == dbtest.OnMongoDB() {
		t.Fatalf("FerretDB detected: %v; the tests run on MongoDB: %v", s.Ferret(), dbtest.OnMongoDB())
	}
	return s, jobs
}

// strategies runs a test against both slice strategies. On FerretDB the
// MongoDB one runs single-worker only (FerretDB cannot make its updates
// atomic); on MongoDB ($ROCKETJOB_TEST_MONGODB_URI) both run fully.
func strategies(t *testing.T, test func(t *testing.T, s store.SliceStore)) {
	for _, mongo := range []bool{false, true} {
		name := "ferretdb"
		if mongo {
			name = "mongodb"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open(t).WithSlices(mongo).Slices())
		})
	}
}

func upload(t *testing.T, s store.SliceStore, job bson.ObjectID, n int) {
	t.Helper()
	in := make([]store.InputSlice, n)
	for i := range in {
		in[i] = store.InputSlice{Num: int64(i + 1), First: int64(i*10 + 1), Count: 10, Records: fmt.Appendf(nil, "slice-%d", i+1)}
	}
	if err := s.InsertInput(context.Background(), job, in); err != nil {
		t.Fatal(err)
	}
}

// claimAll claims until ErrNoWork and returns the claims.
func claimAll(t *testing.T, f store.Feeder) []*store.Claimed {
	t.Helper()
	var out []*store.Claimed
	for {
		c, err := f.Next(context.Background())
		if errors.Is(err, store.ErrNoWork) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func complete(t *testing.T, s store.SliceStore, job bson.ObjectID, c *store.Claimed, failed int) bool {
	t.Helper()
	r := store.Result{Output: fmt.Appendf(nil, "out-%d-%d", c.Num, c.Attempt), OutputCount: c.Count - failed}
	if failed > 0 {
		r.Failed, r.FailedCount = fmt.Appendf(nil, "failed-%d", c.Num), failed
	}
	ok, err := s.Complete(context.Background(), job, c, r)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func outputs(t *testing.T, s store.SliceStore, job bson.ObjectID) []string {
	t.Helper()
	var out []string
	err := s.StreamOutput(context.Background(), job, func(o store.OutputSlice) error {
		out = append(out, fmt.Sprintf("%d:%s", o.Num, o.Records))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestClaimEverySliceOnce(t *testing.T) {
	strategies(t, func(t *testing.T, s store.SliceStore) {
		ctx := context.Background()
		job := bson.NewObjectID()
		upload(t, s, job, 25)
		claims := claimAll(t, s.NewFeeder(job, "a", 25))
		if len(claims) != 25 {
			t.Fatalf("claimed %d slices, want 25", len(claims))
		}
		seen := map[int64]bool{}
		for _, c := range claims {
			if seen[c.Num] {
				t.Fatalf("slice %d claimed twice", c.Num)
			}
			seen[c.Num] = true
			if want := fmt.Sprintf("slice-%d", c.Num); string(c.Records) != want || c.First != (c.Num-1)*10+1 || c.Count != 10 {
				t.Fatalf("slice %d: records %q first %d count %d", c.Num, c.Records, c.First, c.Count)
			}
		}
		p, err := s.Progress(ctx, job, 25, 250)
		if err != nil {
			t.Fatal(err)
		}
		if p.Running != 25 || p.Done != 0 {
			t.Fatalf("progress while claimed: %+v", p)
		}
		for _, c := range claims {
			if !complete(t, s, job, c, 0) {
				t.Fatalf("slice %d: completion refused", c.Num)
			}
		}
		if p, _ = s.Progress(ctx, job, 25, 250); p.Done != 25 || p.Running != 0 || p.Processed != 250 {
			t.Fatalf("progress when done: %+v", p)
		}
		out := outputs(t, s, job)
		if len(out) != 25 {
			t.Fatalf("%d outputs, want 25", len(out))
		}
		for i, o := range out {
			if want := fmt.Sprintf("%d:out-%d-1", i+1, i+1); o != want {
				t.Fatalf("output %d = %q, want %q (in slice order)", i, o, want)
			}
		}
		if c, err := s.NewFeeder(job, "b", 25).Next(ctx); !errors.Is(err, store.ErrNoWork) {
			t.Fatalf("claimed %v after all done, err %v", c, err)
		}
	})
}

func TestFailedSlicesRetry(t *testing.T) {
	strategies(t, func(t *testing.T, s store.SliceStore) {
		ctx := context.Background()
		job := bson.NewObjectID()
		upload(t, s, job, 5)
		for _, c := range claimAll(t, s.NewFeeder(job, "a", 5)) {
			failed := 0
			if c.Num == 3 {
				failed = 2
			}
			complete(t, s, job, c, failed)
		}
		p, _ := s.Progress(ctx, job, 5, 50)
		if p.Done != 5 || p.Failed != 1 || p.FailedRecords != 2 {
			t.Fatalf("progress: %+v", p)
		}
		var failed []string
		_ = s.StreamFailed(ctx, job, func(o store.OutputSlice) error {
			failed = append(failed, fmt.Sprintf("%d:%s:%d", o.Num, o.Records, o.Count))
			return nil
		})
		if len(failed) != 1 || failed[0] != "3:failed-3:2" {
			t.Fatalf("failed slices: %v", failed)
		}
		n, err := s.RetryFailed(ctx, job)
		if err != nil || n != 1 {
			t.Fatalf("retry: %d, %v", n, err)
		}
		again := claimAll(t, s.NewFeeder(job, "b", 5))
		if len(again) != 1 || again[0].Num != 3 {
			t.Fatalf("after retry claimed %v", again)
		}
		complete(t, s, job, again[0], 0)
		if p, _ = s.Progress(ctx, job, 5, 50); p.Done != 5 || p.Failed != 0 || p.FailedRecords != 0 {
			t.Fatalf("progress after retry: %+v", p)
		}
		out := outputs(t, s, job)
		if len(out) != 5 || out[2] != fmt.Sprintf("3:out-3-%d", again[0].Attempt) {
			t.Fatalf("outputs after retry: %v", out)
		}
	})
}

func TestRequeueServerAndRelease(t *testing.T) {
	strategies(t, func(t *testing.T, s store.SliceStore) {
		ctx := context.Background()
		job := bson.NewObjectID()
		upload(t, s, job, 6)
		fa, fab := s.NewFeeder(job, "a", 6), s.NewFeeder(job, "ab", 6)
		var mine, theirs []*store.Claimed
		for range 3 {
			c, err := fa.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mine = append(mine, c)
		}
		// A feeder may have claimed ahead: give those back.
		if err := fa.Release(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			c, err := fab.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			theirs = append(theirs, c)
		}
		if err := fab.Release(ctx); err != nil {
			t.Fatal(err)
		}
		complete(t, s, job, mine[0], 0) // finished before its server died: never requeued
		n, err := s.RequeueServer(ctx, job, "a")
		if err != nil || n != 2 {
			t.Fatalf("requeue of server a: %d, %v (want 2: exact name, unfinished only)", n, err)
		}
		if err := s.Release(ctx, job, theirs[0]); err != nil {
			t.Fatal(err)
		}
		got := map[int64]bool{}
		for _, c := range claimAll(t, s.NewFeeder(job, "c", 6)) {
			got[c.Num] = true
			complete(t, s, job, c, 0)
		}
		want := map[int64]bool{mine[1].Num: true, mine[2].Num: true, theirs[0].Num: true, 6: true}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("server c claimed %v, want %v", got, want)
		}
		// The zombie finishing late never duplicates output.
		if complete(t, s, job, mine[1], 0) {
			t.Logf("late completion accepted (MongoDB replaces by slice id)")
		}
		complete(t, s, job, theirs[1], 0)
		if out := outputs(t, s, job); len(out) != 6 {
			t.Fatalf("outputs: %v", out)
		}
	})
}

// TestClaimsUnderConcurrency races 8 feeders, each on its own client
// connection, over the same slices: every slice must be claimed exactly
// once. It runs the insert strategy everywhere and the findAndModify one on
// MongoDB, where its updates are atomic.
func TestClaimsUnderConcurrency(t *testing.T) {
	t.Run("insert", func(t *testing.T) { claimsUnderConcurrency(t, store.StrategyInsert) })
	t.Run("findandmodify", func(t *testing.T) {
		dbtest.RequireMongoDB(t)
		claimsUnderConcurrency(t, store.StrategyFindAndModify)
	})
}

func claimsUnderConcurrency(t *testing.T, strategy string) {
	jobs, work := dbtest.DBNames(t)
	const slices, feeders = 300, 8
	job := bson.NewObjectID()
	cfg := store.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, ClaimStrategy: strategy}
	first, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close(context.Background())
	upload(t, first.Slices(), job, slices)
	var mu sync.Mutex
	claims := map[int64]int{}
	var wg sync.WaitGroup
	for i := range feeders {
		s, err := store.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		wg.Go(func() {
			f := s.Slices().NewFeeder(job, fmt.Sprintf("server-%d", i), slices)
			for {
				c, err := f.Next(context.Background())
				if errors.Is(err, store.ErrNoWork) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				claims[c.Num]++
				mu.Unlock()
				if _, err := s.Slices().Complete(context.Background(), job, c, store.Result{Output: []byte("x"), OutputCount: 1}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(claims) != slices {
		t.Fatalf("%d slices claimed, want %d", len(claims), slices)
	}
	for num, n := range claims {
		if n != 1 {
			t.Fatalf("slice %d claimed %d times", num, n)
		}
	}
}

func TestOrphanSliceJobs(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	old := bson.NewObjectIDFromTimestamp(time.Now().Add(-48 * time.Hour))
	recent := bson.NewObjectID()
	withJob := bson.NewObjectIDFromTimestamp(time.Now().Add(-48 * time.Hour))
	for _, id := range []bson.ObjectID{old, recent, withJob} {
		upload(t, s.Slices(), id, 2)
	}
	if err := s.InsertJob(ctx, &model.Job{ID: withJob, Type: "copy", Kind: model.KindSliced, State: model.StateQueued}); err != nil {
		t.Fatal(err)
	}
	orphans, err := s.OrphanSliceJobs(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(orphans) != 1 || orphans[0] != old {
		t.Fatalf("orphans %v, want only %s (old, no job document)", orphans, old.Hex())
	}
}
