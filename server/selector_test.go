package server

import (
	"context"
	"hash/fnv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// TestStripeIsFNV1a checks that a job's stripe is the FNV-1a hash of its id
// modulo the stripes, as hash/fnv computes it: servers of different builds
// share the jobs out by it.
func TestStripeIsFNV1a(t *testing.T) {
	for i := range 1000 {
		id := bson.NewObjectID()
		h := fnv.New32a()
		_, _ = h.Write(id[:])
		of := 1 + i%7
		if got, want := stripe(id, of), int(h.Sum32()%uint32(of)); got != want {
			t.Fatalf("stripe(%s, %d) = %d, want %d", id.Hex(), of, got, want)
		}
	}
}

// TestSelectorStripes checks that two live servers share the simple jobs of
// one priority without taking the same ones (each its own stripe), that
// together they take every job, that a more urgent job of the other stripe
// still comes before a server's own less urgent ones, and that a server
// takes the other stripe's jobs once none of its own is left.
func TestSelectorStripes(t *testing.T) {
	ctx := context.Background()
	st := serviceStore(t)
	now := time.Now().UTC()
	for _, name := range []string{"stripe-a", "stripe-b"} {
		if _, err := st.Heartbeat(ctx, &model.Server{Name: name, State: model.ServerRunning, HeartbeatAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 40
	var jobs []*model.Job
	for range n {
		jobs = append(jobs, newQueuedJob())
	}
	if _, err := st.InsertJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	selA := newSelector(st, time.Hour, time.Hour)
	selA.identify("stripe-a", time.Minute, time.Time{})
	selB := newSelector(st, time.Hour, time.Hour)
	selB.identify("stripe-b", time.Minute, time.Time{})

	// drain takes jobs from sel until it offers none, reading its list again
	// whenever it ran out after taking some, as a worker does.
	drain := func(sel *selector) []*model.Job {
		t.Helper()
		var got []*model.Job
		for {
			if err := sel.refresh(ctx, time.Hour); err != nil {
				t.Fatal(err)
			}
			job := sel.next()
			if job == nil && sel.consumed() {
				sel.invalidate()
				if err := sel.refresh(ctx, time.Hour); err != nil {
					t.Fatal(err)
				}
				job = sel.next()
			}
			if job == nil {
				return got
			}
			got = append(got, job)
		}
	}
	// Both read the same list; neither has taken anything yet.
	if err := selA.refresh(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := selB.refresh(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if selA.of != 2 || selB.of != 2 || selA.rank == selB.rank {
		t.Fatalf("stripes: a is %d of %d, b is %d of %d; want 0 and 1 of 2", selA.rank, selA.of, selB.rank, selB.of)
	}
	// Each takes its own stripe first: the first jobs each takes are all
	// its own, and the two sets are disjoint.
	ownA, ownB := 0, 0
	for _, j := range jobs {
		if stripe(j.ID, 2) == selA.rank {
			ownA++
		} else {
			ownB++
		}
	}
	if ownA == 0 || ownB == 0 {
		t.Fatalf("%d jobs all in one stripe (%d, %d): the hash does not spread them", n, ownA, ownB)
	}
	takenA := map[any]bool{}
	for range ownA {
		j := selA.next()
		if j == nil {
			t.Fatalf("a offered nothing after %d of its %d jobs", len(takenA), ownA)
		}
		if stripe(j.ID, 2) != selA.rank {
			t.Fatalf("a took job %s of b's stripe while it had jobs of its own", j.ID.Hex())
		}
		takenA[j.ID] = true
	}
	for range ownB {
		j := selB.next()
		if j == nil {
			t.Fatal("b offered nothing while it had jobs of its own")
		}
		if takenA[j.ID] || stripe(j.ID, 2) != selB.rank {
			t.Fatalf("b took job %s: taken by a or of a's stripe", j.ID.Hex())
		}
	}
	// Out of its own jobs, a offers none from the list it took them from
	// (it reads again first) ...
	if j := selA.next(); j != nil {
		t.Fatalf("a took b's job %s from the list it had already taken its own from", j.ID.Hex())
	}
	// ... and after reading again, b's jobs, which b is slow to start.
	selA.invalidate()
	for _, j := range drain(selA) {
		if stripe(j.ID, 2) == selA.rank {
			t.Fatalf("a took its own job %s twice", j.ID.Hex())
		}
		takenA[j.ID] = true
	}
	if len(takenA) != n {
		t.Fatalf("a took %d distinct jobs in all, want every one of the %d", len(takenA), n)
	}

	// A more urgent job comes first across the cluster: b offers a's
	// priority-10 job before its own priority-50 ones.
	urgent := newQueuedJob()
	urgent.Priority = 10
	for stripe(urgent.ID, 2) != selA.rank {
		urgent = newQueuedJob()
		urgent.Priority = 10
	}
	more := []*model.Job{urgent}
	for range 10 {
		more = append(more, newQueuedJob())
	}
	if _, err := st.InsertJobs(ctx, more); err != nil {
		t.Fatal(err)
	}
	selB2 := newSelector(st, time.Hour, time.Hour)
	selB2.identify("stripe-b", time.Minute, time.Time{})
	if err := selB2.refresh(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if j := selB2.next(); j == nil || j.ID != urgent.ID {
		t.Fatalf("b offered %v first, want a's priority-10 job %s", j, urgent.ID.Hex())
	}

	// Alone, a server takes every stripe.
	solo := newSelector(st, time.Hour, time.Hour)
	if err := solo.refresh(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if solo.of > 1 {
		t.Fatalf("an unidentified selector uses %d stripes", solo.of)
	}
}

// TestSelectorJoiningServerHolds checks that a server that finds an older
// live server at its first read of the servers takes no simple job for
// joinHold (the older one takes them meanwhile, until it reads the servers
// again), that its idle workers wait for the hold's end rather than the
// poll interval, and that it then takes the jobs of its stripe; the older
// server never holds.
func TestSelectorJoiningServerHolds(t *testing.T) {
	ctx := context.Background()
	st := serviceStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	elderStart, youngStart := now.Add(-time.Minute), now
	for name, started := range map[string]time.Time{"elder": elderStart, "young": youngStart} {
		if _, err := st.Heartbeat(ctx, &model.Server{Name: name, State: model.ServerRunning, StartedAt: started, HeartbeatAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	var jobs []*model.Job
	for range 20 {
		jobs = append(jobs, newQueuedJob())
	}
	if _, err := st.InsertJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	elder := newSelector(st, time.Hour, time.Hour)
	elder.identify("elder", time.Minute, elderStart)
	young := newSelector(st, time.Hour, time.Hour)
	young.identify("young", time.Minute, youngStart)
	for _, sel := range []*selector{elder, young} {
		if err := sel.refresh(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if young.of != 2 || elder.of != 2 {
		t.Fatalf("stripes: young of %d, elder of %d; want 2", young.of, elder.of)
	}
	if j := elder.next(); j == nil {
		t.Fatal("the older server holds its jobs")
	}
	young.mu.Lock()
	until := young.holdUntil
	young.mu.Unlock()
	if until.IsZero() {
		t.Fatal("the joining server does not hold its simple jobs")
	}
	if j := young.next(); j != nil && time.Now().Before(until) {
		t.Fatalf("the joining server took job %s during its hold", j.ID.Hex())
	}
	// An idle worker waits for the hold's end, not the poll interval (an
	// hour here).
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	young.wait(waitCtx)
	if waitCtx.Err() != nil {
		t.Fatal("an idle worker of the joining server waited past its hold")
	}
	if err := young.refresh(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	j := young.next()
	if j == nil {
		t.Fatal("the joining server takes nothing after its hold")
	}
	if stripe(j.ID, 2) != young.rank {
		t.Fatalf("after its hold the joining server took job %s of the older one's stripe", j.ID.Hex())
	}
}

// TestWakerRefreshesBusyServer checks that a wake-up reaches a server whose
// workers are all busy: its list of jobs is dropped, so the next worker to
// finish reads the new (say, urgent) job instead of the jobs left listed.
func TestWakerRefreshesBusyServer(t *testing.T) {
	st := serviceStore(t)
	ctx := context.Background()
	if err := st.InsertJob(ctx, newQueuedJob()); err != nil {
		t.Fatal(err)
	}
	sel := newSelector(st, time.Hour, time.Hour)
	w := newWaker(st, sel, 20*time.Millisecond)
	w.passed = make(chan struct{})
	startStop(t, w)
	passes(t, w.passed, 2) // the token as it is now is known
	if err := sel.refresh(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if len(sel.jobs) != 1 {
		t.Fatalf("%d jobs listed, want 1", len(sel.jobs))
	}
	urgent := newQueuedJob()
	urgent.Priority = 1
	if err := st.InsertJob(ctx, urgent); err != nil {
		t.Fatal(err)
	}
	// No worker is idle; a worker that finishes refreshes with the poll
	// interval (an hour) as its bound.
	deadline := time.Now().Add(30 * time.Second)
	for {
		passes(t, w.passed, 1)
		if err := sel.refresh(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		if j := sel.next(); j != nil && j.ID == urgent.ID {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a busy server's list was not read again after a wake-up: the urgent job was not offered")
		}
	}
}
