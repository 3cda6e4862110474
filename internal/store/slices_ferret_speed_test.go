package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// twoProcesses opens two stores on the same databases, as two processes
// would: what one knows from memory the other reads from the database.
func twoProcesses(t *testing.T) (a, b store.SliceStore) {
	t.Helper()
	jobs, work := dbtest.DBNames(t)
	open := func() store.SliceStore {
		s, err := store.Open(context.Background(), store.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		return s.Slices()
	}
	return open(), open()
}

// finishedState is what AllDone, Progress and Totals say of a job.
type finishedState struct {
	All    bool
	P      store.Progress
	Totals store.Totals
}

func stateOf(t *testing.T, s store.SliceStore, job bson.ObjectID, slices int64) finishedState {
	t.Helper()
	ctx := context.Background()
	var st finishedState
	var err error
	if st.All, err = s.AllDone(ctx, job, slices); err != nil {
		t.Fatal(err)
	}
	if st.P, err = s.Progress(ctx, job, slices, slices*10); err != nil {
		t.Fatal(err)
	}
	if st.Totals, err = s.Totals(ctx, job); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestFinishedSlicesKnownInMemory: a process that finished every slice of a
// job itself answers AllDone, Progress and Totals from memory (see
// knownJobs); its answers must be those another process reads from the
// database, through retries of failed slices and slices finished
// elsewhere.
func TestFinishedSlicesKnownInMemory(t *testing.T) {
	if dbtest.OnMongoDB() {
		t.Skip("the FerretDB strategy's memory of finished slices")
	}
	ctx := context.Background()
	a, b := twoProcesses(t)
	const n = 70 // more than one word of the bitmap
	job := bson.NewObjectID()
	finish := func(s store.SliceStore, c *store.Claimed, failed int) {
		t.Helper()
		r := store.Result{Output: fmt.Appendf(nil, "out-%d", c.Num), OutputCount: c.Count - failed,
			Batch: &store.BatchResult{Statistics: map[string]int64{"rows": int64(c.Count)}, Dropped: 1,
				Categories: []store.CategoryOutput{{Name: "even", Count: 2, Records: []byte("x")}}}}
		if failed > 0 {
			r.Failed, r.FailedCount = []byte("f"), failed
		}
		won, err := s.CompleteMany(ctx, job, []store.Completion{{Claimed: c, Result: r}})
		if err != nil || !won[0] {
			t.Fatalf("completing slice %d: %v %v", c.Num, won, err)
		}
	}
	upload(t, a, job, n)
	claims := claimAll(t, a.NewFeeder(job, "a", n))
	if len(claims) != n {
		t.Fatalf("claimed %d, want %d", len(claims), n)
	}
	check := func(when string, wantAll bool) {
		t.Helper()
		mem, db := stateOf(t, a, job, n), stateOf(t, b, job, n)
		if !reflect.DeepEqual(mem, db) {
			t.Fatalf("%s: the finishing process says %+v, another reads %+v", when, mem, db)
		}
		if mem.All != wantAll {
			t.Fatalf("%s: all done %v, want %v", when, mem.All, wantAll)
		}
	}
	for _, c := range claims[:n-1] {
		failed := 0
		if c.Num == 5 {
			failed = 3
		}
		finish(a, c, failed)
	}
	check("one slice left", false)
	finish(a, claims[n-1], 0)
	check("one slice with failed records", true)

	// The failed slice is retried and finished cleanly: now this process
	// finished every slice itself.
	if k, err := a.RetryFailed(ctx, job); err != nil || k != 1 {
		t.Fatalf("retry: %d %v", k, err)
	}
	check("after the retry", false)
	again := claimAll(t, a.NewFeeder(job, "a", n))
	if len(again) != 1 || again[0].Num != 5 {
		t.Fatalf("claimed %v after the retry", again)
	}
	finish(a, again[0], 0)
	check("retried slice finished", true)
	if p := stateOf(t, a, job, n).P; p.Done != n || p.Processed != n*10 || p.FailedRecords != 0 || p.Running != 0 {
		t.Fatalf("progress: %+v", p)
	}

	// Another job: one slice is finished by the other process.
	job = bson.NewObjectID()
	upload(t, a, job, n)
	claims = claimAll(t, a.NewFeeder(job, "a", n))
	for _, c := range claims[1:] {
		finish(a, c, 0)
	}
	check("one slice left on the other job", false)
	finish(b, claims[0], 0)
	check("one slice finished elsewhere", true)
}

// TestFeederReadsAndClaimsAhead: feeders shared by several workers, on two
// servers, over a job of several input chunks (read ahead) with claims made
// ahead while the workers process; one server gives its claimed-ahead
// slices back halfway. Every slice must be finished exactly once, and
// nothing may stay claimed.
func TestFeederReadsAndClaimsAhead(t *testing.T) {
	ctx := context.Background()
	a, b := twoProcesses(t)
	const n, workers = 1300, 3 // three input chunks on FerretDB
	job := bson.NewObjectID()
	upload(t, a, job, n)
	var mu sync.Mutex
	won := map[int64]int{}
	var wg sync.WaitGroup
	for i, s := range []store.SliceStore{a, b} {
		f := s.NewFeeder(job, fmt.Sprintf("server-%d", i), n)
		var handed atomic.Int64
		for range workers {
			wg.Go(func() {
				for {
					c, err := f.Next(ctx)
					if errors.Is(err, store.ErrNoWork) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					if handed.Add(1) == n/4 && i == 1 {
						if err := f.Release(ctx); err != nil { // leaves the job and comes back
							t.Error(err)
						}
					}
					ok, err := s.Complete(ctx, job, c, store.Result{Output: []byte("x"), OutputCount: c.Count})
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						mu.Lock()
						won[c.Num]++
						mu.Unlock()
					}
				}
			})
		}
		defer func() {
			if err := f.Close(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// A slice given back is claimed again by the next pass of either feeder.
	for _, s := range []store.SliceStore{a, b} {
		f := s.NewFeeder(job, "late", n)
		for _, c := range claimAll(t, f) {
			if ok, err := s.Complete(ctx, job, c, store.Result{Output: []byte("x"), OutputCount: c.Count}); err != nil {
				t.Fatal(err)
			} else if ok {
				won[c.Num]++
			}
		}
		_ = f.Close(ctx)
	}
	if len(won) != n {
		t.Fatalf("%d slices finished, want %d", len(won), n)
	}
	for num, k := range won {
		if k != 1 {
			t.Fatalf("slice %d finished %d times", num, k)
		}
	}
	p, err := b.Progress(ctx, job, n, n*10)
	if err != nil {
		t.Fatal(err)
	}
	if p.Done != n || p.Running != 0 || p.Processed != n*10 {
		t.Fatalf("progress: %+v", p)
	}
}

// TestFeedersSpreadOverTheInput runs two servers' feeders of one job in
// lockstep, as two servers' workers take slices at the same pace: each
// must end up with long runs of consecutive slices, not every other block.
// Feeders that read the chunks in the same order raced for every block of
// every chunk (each read each chunk, half of the claim inserts refused);
// a feeder that loses a block now leaves the chunk to its winner and goes
// on halfway down its pass.
func TestFeedersSpreadOverTheInput(t *testing.T) {
	ctx := context.Background()
	jobs, work := dbtest.DBNames(t)
	open := func() store.SliceStore {
		s, err := store.Open(ctx, store.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, ClaimStrategy: store.StrategyInsert})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		return s.Slices()
	}
	a, b := open(), open()
	const n = 8 * 512 // eight input chunks
	job := bson.NewObjectID()
	upload(t, a, job, n)
	stores := []store.SliceStore{a, b}
	feeders := []store.Feeder{a.NewFeeder(job, "server-a", n), b.NewFeeder(job, "server-b", n)}
	owner := make([]int, n+1) // slice -> 1 + the feeder that finished it
	for idle := 0; idle < 2; {
		idle = 0
		for i, f := range feeders {
			c, err := f.Next(ctx)
			if errors.Is(err, store.ErrNoWork) {
				idle++
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			ok, err := stores[i].Complete(ctx, job, c, store.Result{Output: []byte("x"), OutputCount: c.Count})
			if err != nil {
				t.Fatal(err)
			}
			if !ok || owner[c.Num] != 0 {
				t.Fatalf("slice %d handed out twice", c.Num)
			}
			owner[c.Num] = i + 1
		}
	}
	for _, f := range feeders {
		if err := f.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runs, got := 0, [2]int{}
	for num := 1; num <= n; num++ {
		if owner[num] == 0 {
			t.Fatalf("slice %d was never handed out", num)
		}
		got[owner[num]-1]++
		if num == 1 || owner[num] != owner[num-1] {
			runs++
		}
	}
	t.Logf("%d runs of consecutive slices; slices per feeder %v", runs, got)
	// Racing for every block gives about n/16 = 256 runs; spread, a few
	// per collision, a few collisions per chunk boundary at most.
	if runs > 40 {
		t.Errorf("%d runs of consecutive slices by one feeder, want at most 40: the feeders raced for the same blocks", runs)
	}
	if got[0] < n/4 || got[1] < n/4 {
		t.Errorf("slices per feeder %v: one of them did almost nothing", got)
	}
}
