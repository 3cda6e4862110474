package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

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
	stores, _ := insertStores(t, 2)
	const n = 8 * 512 // eight input chunks
	job := bson.NewObjectID()
	upload(t, stores[0], job, n)
	feeders := []store.Feeder{stores[0].NewFeeder(job, "server-a", n), stores[1].NewFeeder(job, "server-b", n)}
	owner := make([]int, n+1) // slice -> 1 + the feeder that finished it
	for idle := 0; idle < 2; {
		idle = 0
		for i, f := range feeders {
			if !finishNext(t, stores[i], f, job, owner, i) {
				idle++
			}
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

// TestAllDoneAcrossProcesses asks a process that finished no slice itself
// (so it knows nothing from memory) whether a job is done, before and
// after another process finishes its last slice: the quick "not yet" of
// the collection's statistics must never hide the last slice.
func TestAllDoneAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	a, b := twoProcesses(t)
	const n = 40
	job := bson.NewObjectID()
	upload(t, a, job, n)
	claims := claimAll(t, b.NewFeeder(job, "worker", n))
	if len(claims) != n {
		t.Fatalf("claimed %d slices, want %d", len(claims), n)
	}
	for i, c := range claims {
		for range 2 { // quick answers, from the collection's statistics
			done, err := a.AllDone(ctx, job, n)
			if err != nil {
				t.Fatal(err)
			}
			if done {
				t.Fatalf("all done with %d of %d slices finished", i, n)
			}
		}
		if !complete(t, b, job, c, 0) {
			t.Fatalf("slice %d not finished", c.Num)
		}
	}
	done, err := a.AllDone(ctx, job, n)
	if err != nil || !done {
		t.Fatalf("all %d slices finished, AllDone says %v (%v)", n, done, err)
	}
}

// TestFeederTakesWhatOthersLeft runs three servers' feeders of one job in
// lockstep; two of them stop part-way (giving back what they hold), in
// the middle of chunks the third left to them. The third must take every
// slice they did not finish: slices deferred to another server are not
// forgotten.
func TestFeederTakesWhatOthersLeft(t *testing.T) {
	ctx := context.Background()
	stores, _ := insertStores(t, 3)
	const n = 6*512 + 100
	job := bson.NewObjectID()
	upload(t, stores[0], job, n)
	feeders := make([]store.Feeder, 3)
	for i := range feeders {
		feeders[i] = stores[i].NewFeeder(job, fmt.Sprintf("server-%d", i), n)
	}
	stopAfter := []int{-1, 40, 300} // slices each finishes before it stops (-1: never)
	finished := make([]int, 3)
	owner := make([]int, n+1)
	live := []bool{true, true, true}
	for idle := 0; idle < 1; {
		for i, f := range feeders {
			if !live[i] {
				continue
			}
			if finished[i] == stopAfter[i] {
				if err := f.Close(ctx); err != nil {
					t.Fatal(err)
				}
				live[i] = false
				continue
			}
			if finishNext(t, stores[i], f, job, owner, i) {
				finished[i]++
			} else if i == 0 {
				idle++
			}
		}
	}
	// ErrNoWork holds for a moment after a pass finds nothing: ask again
	// until the first feeder has taken everything.
	for deadline := time.Now().Add(time.Minute); ; {
		if time.Now().After(deadline) {
			missing := 0
			for num := 1; num <= n; num++ {
				missing += btoi(owner[num] == 0)
			}
			t.Fatalf("%d slices never handed out: the slices left by the stopped feeders were lost", missing)
		}
		if finishNext(t, stores[0], feeders[0], job, owner, 0) {
			finished[0]++
			continue
		}
		if done, err := stores[0].AllDone(ctx, job, n); err != nil {
			t.Fatal(err)
		} else if done {
			break
		}
		time.Sleep(100 * time.Millisecond) // ErrNoWork is believed for rescanAfter
	}
	_ = feeders[0].Close(ctx)
	for num := 1; num <= n; num++ {
		if owner[num] == 0 {
			t.Fatalf("slice %d was never finished", num)
		}
	}
	t.Logf("slices finished per feeder: %v", finished)
	if finished[1] != 40 || finished[2] != 300 {
		t.Errorf("the stopping feeders finished %d and %d slices, want 40 and 300", finished[1], finished[2])
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestFeederTakesWhatADeadServerNeverClaimed: another server claimed the
// first block of the first chunk and died before claiming more (nobody
// requeued its block: no rescuer here). The feeder loses its first block
// to it, leaves it the rest of the chunk, and must still take that rest
// when its pass ends: nothing but the dead server's block stays unfinished.
func TestFeederTakesWhatADeadServerNeverClaimed(t *testing.T) {
	ctx := context.Background()
	stores, work := insertStores(t, 1)
	sl := stores[0]
	const n, ghost = 3 * 512, 16
	job := bson.NewObjectID()
	upload(t, sl, job, n)
	f := sl.NewFeeder(job, "live", n)
	first, err := f.Next(ctx) // reads the first chunk, claims its first block
	if err != nil {
		t.Fatal(err)
	}
	if first.Num != 1 {
		t.Fatalf("first slice handed out: %d, want 1", first.Num)
	}
	// The dead server's block: the 16 slices after the live feeder's
	// first block and the one it claims ahead.
	c, err := mongo.Connect(options.Client().ApplyURI(dbtest.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Disconnect(ctx) }()
	claims := c.Database(work).Collection("slices_" + job.Hex() + "_claims")
	var docs []any
	for num := 33; num < 33+ghost; num++ {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("%09d:1", num)}, {Key: "server", Value: "dead"}})
	}
	if _, err := claims.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	got := map[int64]bool{first.Num: true}
	for deadline := time.Now().Add(time.Minute); len(got) < n-ghost; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d slices handed out: slices left to the dead server were lost", len(got), n-ghost)
		}
		c, err := f.Next(ctx)
		if errors.Is(err, store.ErrNoWork) {
			time.Sleep(100 * time.Millisecond) // ErrNoWork is believed for rescanAfter
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got[c.Num] || c.Num >= 33 && c.Num < 33+ghost {
			t.Fatalf("slice %d handed out twice or taken from the dead server", c.Num)
		}
		got[c.Num] = true
	}
	_ = f.Close(ctx)
}

// insertStores opens k stores on the same test databases with the insert
// claim strategy (FerretDB's, on any database), as k server processes, and
// returns them with the name of their work database.
func insertStores(t *testing.T, k int) ([]store.SliceStore, string) {
	t.Helper()
	jobs, work := dbtest.DBNames(t)
	var out []store.SliceStore
	for range k {
		s, err := store.Open(context.Background(), store.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, ClaimStrategy: store.StrategyInsert})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		out = append(out, s.Slices())
	}
	return out, work
}

// finishNext hands out the next slice of f and finishes it on s, noting
// who finished it in owner (1 + i); it reports false on ErrNoWork.
func finishNext(t *testing.T, s store.SliceStore, f store.Feeder, job bson.ObjectID, owner []int, i int) bool {
	t.Helper()
	ctx := context.Background()
	c, err := f.Next(ctx)
	if errors.Is(err, store.ErrNoWork) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	ok, err := s.Complete(ctx, job, c, store.Result{Output: []byte("x"), OutputCount: c.Count})
	if err != nil {
		t.Fatal(err)
	}
	if !ok || owner[c.Num] != 0 {
		t.Fatalf("slice %d handed out twice", c.Num)
	}
	owner[c.Num] = i + 1
	return true
}
