package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
)

// pickOffer returns job id's copy among offered.
func pickOffer(t *testing.T, offered []model.Job, id bson.ObjectID) model.Job {
	t.Helper()
	for _, j := range offered {
		if j.ID == id {
			return j
		}
	}
	t.Fatalf("job %s not offered", id.Hex())
	return model.Job{}
}

// TestCheckOffersRepairsAJobMovedOnWithoutItsCopy: a client's update of a
// queued job (run now, an edit, a priority change: queued to queued, so no
// queue intent) whose writer is killed after the job write and before its
// copy write leaves a stale copy, which the next start trips over and
// repairs. When the stale copy is a segment offer, checkOffers (after any
// trip in the segment) must repair it too before taking it: else the
// segment is dropped with the job's last copy and no server offers the
// queued job again (until the hourly ReconcileQueue). From a review.
func TestCheckOffersRepairsAJobMovedOnWithoutItsCopy(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	a := openInternal(t)
	b := openSecond(t, a)
	client := openSecond(t, a)
	jobs := bulkQueued(t, a, segmentMin, 50)
	x, y := jobs[0], jobs[1]
	offeredA := offeredJobs(t, a)
	offeredB := offeredJobs(t, b)
	// The client's RunNow of x: the job is written (still queued, v+1) ...
	if _, err := client.Do(ctx, x, SetRunAt(time.Now()), "client"); err != nil {
		t.Fatal(err)
	}
	// ... and the client is killed before its copy lands in the main collection.
	if _, err := a.queue(50).DeleteOne(ctx, bson.D{{Key: "_id", Value: x.ID}}); err != nil {
		t.Fatal(err)
	}
	// b runs y and is killed before its next selection publishes the take.
	runAll(t, b, []model.Job{pickOffer(t, offeredB, y.ID)}, "b")
	// a trips over y's offer, and repairs.
	stale := pickOffer(t, offeredA, y.ID)
	if _, err := a.StartHeld(ctx, &stale, Change{Server: new("a")}, "a"); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("a's start of y: %v, want a conflict", err)
	}
	if err := a.RepairQueued(ctx, &stale); err != nil {
		t.Fatal(err)
	}
	lostAtA := !slices.Contains(runnableIDs(t, a), x.ID) // a's next selection: checkOffers
	// a runs what it is offered; the segment is dropped.
	rest := offeredJobs(t, a)
	runAll(t, a, slices.DeleteFunc(rest, func(j model.Job) bool { return j.ID == x.ID }), "a")
	runnableIDs(t, a) // publishes, drops the segment
	runnableIDs(t, a)
	stored, err := a.GetJob(ctx, x.ID)
	if err != nil || stored.State != model.StateQueued {
		t.Fatalf("x: %+v (%v), want queued", stored, err)
	}
	fresh := openSecond(t, a) // any server
	if lostAtA || !slices.Contains(runnableIDs(t, fresh), x.ID) {
		t.Fatalf("queued job x (v%d) is not offered: by a after its checkOffers: lost=%v; by any server after a dropped the segment (segments left %v): offered=%v",
			stored.Version, lostAtA, segmentNames(t, a), slices.Contains(runnableIDs(t, fresh), x.ID))
	}
}

// TestUnsureClaimRepairsAJobMovedOnWithoutItsCopy: the same through the
// claimed offers of segmentDue. A server process's own client (the server
// shares its client's Store) updates a queued job read from a segment
// (run now: queued to queued, no intent); the job is written but its copy
// write fails (the database restarted past the retry budget). Once the
// claim is older than rollForwardAfter the offer is read again, found
// moved on, and must be repaired before it is taken. From a review.
func TestUnsureClaimRepairsAJobMovedOnWithoutItsCopy(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	a := openInternal(t)
	jobs := bulkQueued(t, a, segmentMin, 50)
	x := jobs[0]
	if got := runnableIDs(t, a); len(got) != segmentMin {
		t.Fatalf("offered %d, want %d", len(got), segmentMin)
	}
	if _, err := a.Do(ctx, x, SetRunAt(time.Now()), "client"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.queue(50).DeleteOne(ctx, bson.D{{Key: "_id", Value: x.ID}}); err != nil { // the copy write that failed
		t.Fatal(err)
	}
	a.segments.mu.Lock() // the claim, rollForwardAfter later
	a.segments.byJob[x.ID].claimed[x.ID] = time.Now().Add(-2 * rollForwardAfter)
	a.segments.mu.Unlock()
	rest := offeredJobs(t, a) // the unsure path reads x, moved on: taken
	lostAtA := !slices.Contains(jobIDs(rest), x.ID)
	runAll(t, a, slices.DeleteFunc(rest, func(j model.Job) bool { return j.ID == x.ID }), "a")
	runnableIDs(t, a)
	runnableIDs(t, a)
	fresh := openSecond(t, a)
	if stored, err := a.GetJob(ctx, x.ID); err != nil || stored.State != model.StateQueued {
		t.Fatalf("x: %+v (%v), want queued", stored, err)
	}
	if got := runnableIDs(t, fresh); lostAtA || !slices.Contains(got, x.ID) {
		t.Fatalf("queued job x not offered: by a after the unsure re-read: lost=%v; by any server after the drop (segments %v): offered=%v",
			lostAtA, segmentNames(t, a), slices.Contains(got, x.ID))
	}
}

// TestLateSealLeavesNoStaleMainCopies: after a late seal the intents'
// repair gives every job a main-collection copy at its offer's version. A
// start that takes the offer must remove that copy too (the Store saw it
// beside the offer: twin): else each stays, offered to every server, and
// costs a conflict and a repair per job. From a review.
func TestLateSealLeavesNoStaleMainCopies(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	defer func(d time.Duration) { segmentSettle = d }(segmentSettle)
	segmentSettle = 0
	bulkQueued(t, s, segmentMin, 50)
	if _, err := s.RepairIntents(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	segmentSettle = time.Minute
	offered := offeredJobs(t, s)
	seen := map[bson.ObjectID]bool{}
	offered = slices.DeleteFunc(offered, func(j model.Job) bool { d := seen[j.ID]; seen[j.ID] = true; return d })
	runAll(t, s, offered, "srv")
	// (A start's removal goes through the drops batcher, with the end.)
	if n, err := s.queue(50).CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Fatalf("main queue after every job ran: %d stale copies (%v), want 0; offered now: %d", n, err, len(runnableIDs(t, s)))
	}
}

// TestReconcileReadsSegmentsWrittenWhileItRuns: a bulk enqueue whose ids
// were made before a reconcile began, written after the reconcile read the
// queue and before it read the jobs, gets no main-collection copy beside
// its offers: the reconcile reads the segments created meanwhile too.
func TestReconcileReadsSegmentsWrittenWhileItRuns(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	late := make([]*model.Job, segmentMin)
	for i := range late {
		late[i] = queuedSimple(50)
	}
	defer func() { reconcileQueueRead = nil }()
	reconcileQueueRead = func() {
		if _, err := s.InsertJobs(ctx, late); err != nil {
			t.Error(err)
		}
	}
	n, err := s.ReconcileQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if segs := segmentNames(t, s); len(segs) != 1 {
		t.Fatalf("segments: %v, want the batch's one", segs)
	}
	copies, err := s.queue(50).CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || copies != 0 {
		t.Fatalf("the reconcile fixed %d copies and the main collection holds %d; want none (the batch's offers are its copies)", n, copies)
	}
	if got := runnableIDs(t, s); !slices.Equal(got, sortedIDs(late)) {
		t.Fatalf("offered %d jobs, want the batch's %d once each", len(got), len(late))
	}
}

// TestCheckOffersReadsTheOldestUntaken: a server killed before it
// published its takes leaves them at the front of its stripe. The start
// that trips over one makes the next selection check the segment's offers
// against their jobs: the oldest segmentCheckMax untaken ones, which hold
// the dead server's takes, and not the whole segment (a read per offer,
// up to segmentMax of them, most never taken).
func TestCheckOffersReadsTheOldestUntaken(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	a := openInternal(t)
	b := openSecond(t, a)
	const n, ran = 300, 10
	jobs := bulkQueued(t, a, n, 50)
	ids := sortedIDs(jobs)
	offeredA := offeredJobs(t, a)
	offeredB := offeredJobs(t, b)
	// b runs the oldest jobs and is killed before it publishes the takes.
	var oldest []model.Job
	for _, id := range ids[:ran] {
		oldest = append(oldest, pickOffer(t, offeredB, id))
	}
	runAll(t, b, oldest, "b")
	// a trips over the first.
	first := pickOffer(t, offeredA, ids[0])
	if _, err := a.StartHeld(ctx, &first, Change{Server: new("a")}, "a"); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("a's start of a job b ran: %v, want a conflict", err)
	}
	if err := a.RepairQueued(ctx, &first); err != nil {
		t.Fatal(err)
	}
	before := a.offersChecked.Load()
	offered := runnableIDs(t, a) // checks the offers first
	if checked := a.offersChecked.Load() - before; checked != segmentCheckMax {
		t.Errorf("the check after a trip read %d jobs of the segment's %d untaken offers, want the oldest %d", checked, n-1, segmentCheckMax)
	}
	for _, id := range ids[:ran] {
		if slices.Contains(offered, id) {
			t.Errorf("job %s, run by b, is still offered to a after its check", id.Hex())
		}
	}
	if len(offered) != n-ran {
		t.Errorf("a is offered %d jobs, want the %d b did not run", len(offered), n-ran)
	}
}
