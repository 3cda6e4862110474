package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
)

// bulkQueued stores n new queued simple jobs of priority with InsertJobs:
// their copies go to one segment when n >= segmentMin, two halves from
// 2*segmentMin to InsertBatch.
func bulkQueued(t *testing.T, s *Store, n, priority int) []*model.Job {
	t.Helper()
	jobs := make([]*model.Job, n)
	for i := range jobs {
		jobs[i] = queuedSimple(priority)
	}
	if written, err := s.InsertJobs(context.Background(), jobs); err != nil || written != n {
		t.Fatalf("InsertJobs: %d written (%v), want %d", written, err, n)
	}
	return jobs
}

// segmentNames lists the run queue's segments.
func segmentNames(t *testing.T, s *Store) []string {
	t.Helper()
	names, err := s.queueCollNames(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range names {
		if _, c, ok := parseQueueName(name); ok && c.segment {
			out = append(out, name)
		}
	}
	return out
}

// earlierSegmentName is the name a build before the run-queue database gave
// a segment, in the jobs database: queue_p<NNN>_<first>_<Unix ms>.
func earlierSegmentName(priority int, first bson.ObjectID, born time.Time) string {
	return fmt.Sprintf("%s%03d_%s_%013d", queuePrefix, priority, first.Hex(), born.UnixMilli())
}

// offeredJobs is the copies a selection of s offers now (up to 1,000).
func offeredJobs(t *testing.T, s *Store) []model.Job {
	t.Helper()
	jobs, err := s.RunnableJobs(context.Background(), time.Now(), 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

// runnableIDs is the ids of the jobs a selection offers now.
func runnableIDs(t *testing.T, s *Store) []bson.ObjectID {
	t.Helper()
	return jobIDs(offeredJobs(t, s))
}

func sortedIDs(jobs []*model.Job) []bson.ObjectID {
	out := make([]bson.ObjectID, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	slices.SortFunc(out, compareIDs)
	return out
}

// runAll starts and completes each job, as a server does (a held start,
// then the end), from the copies a selection offered.
func runAll(t *testing.T, s *Store, offered []model.Job, by string) {
	t.Helper()
	ctx := context.Background()
	for i := range offered {
		started, err := s.StartHeld(ctx, &offered[i], Change{Server: new(by)}, by)
		if err != nil {
			t.Fatalf("starting %s: %v", offered[i].ID.Hex(), err)
		}
		if _, err := s.Transition(ctx, started, model.StateCompleted, Change{CompletedAt: new(time.Now())}, by); err != nil {
			t.Fatalf("completing %s: %v", offered[i].ID.Hex(), err)
		}
	}
}

// TestBulkEnqueueRunsFromASegment: the copies of a bulk enqueue of simple
// jobs go to a sealed segment of their own (not the priority's main queue
// collection); every job is offered, runs once, and once every offer is
// taken the next selection drops the segment (no delete per job).
func TestBulkEnqueueRunsFromASegment(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	jobs := bulkQueued(t, s, segmentMin, 50)
	segs := segmentNames(t, s)
	if len(segs) != 1 || !strings.HasPrefix(segs[0], segmentPrefix+"050_") {
		t.Fatalf("segments after a bulk enqueue of %d: %v, want one of priority 50", segmentMin, segs)
	}
	// In the run-queue database, not the jobs database (whose schema the
	// segments would make every statement re-read).
	if jobsNames, err := collectionNames(ctx, s.jobsDB); err != nil || slices.Contains(jobsNames, segs[0]) {
		t.Fatalf("segment %s in the jobs database (%v), want it in %s only", segs[0], err, s.runqDB.Name())
	}
	if want := s.jobsDB.Name() + "_runq"; s.runqDB.Name() != want {
		t.Fatalf("run-queue database %s, want %s", s.runqDB.Name(), want)
	}
	if n, err := s.queue(50).CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Fatalf("main queue collection: %d copies (%v), want none", n, err)
	}
	if n := intentCount(t, s); n != 0 {
		t.Fatalf("%d queue intents left after the enqueue, want 0", n)
	}
	offered := offeredJobs(t, s)
	if got := jobIDs(offered); !slices.Equal(got, sortedIDs(jobs)) {
		t.Fatalf("offered %d jobs, want the %d enqueued", len(got), len(jobs))
	}
	runAll(t, s, offered, "srv")
	if got := runnableIDs(t, s); len(got) != 0 {
		t.Fatalf("offered %d jobs after every job completed, want none", len(got))
	}
	if segs := segmentNames(t, s); len(segs) != 0 {
		t.Fatalf("segments after every offer was taken: %v, want none", segs)
	}
	// A marks write that lands after its segment was dropped leaves a
	// collection that the next selection drops.
	late := s.runQueueColl(marksPrefix + segs[0])
	if _, err := late.InsertOne(ctx, bson.D{{Key: "ids", Value: bson.A{jobs[0].ID}}}); err != nil {
		t.Fatal(err)
	}
	runnableIDs(t, s)
	if names, err := s.queueCollNames(ctx); err != nil || slices.Contains(names, late.Name()) {
		t.Fatalf("marks of a dropped segment after a selection: still there (%v)", err)
	}
	for _, j := range jobs {
		stored, err := s.GetJob(ctx, j.ID)
		if err != nil || stored.State != model.StateCompleted {
			t.Fatalf("job %s after its run: %+v (%v), want completed", j.ID.Hex(), stored, err)
		}
	}
	// A small bulk enqueue goes to the main collection, as single ones do.
	small := bulkQueued(t, s, segmentMin-1, 50)
	if segs := segmentNames(t, s); len(segs) != 0 {
		t.Fatalf("segments after a bulk enqueue of %d: %v, want none", len(small), segs)
	}
	if got := runnableIDs(t, s); !slices.Equal(got, sortedIDs(small)) {
		t.Fatalf("offered %d jobs, want the %d enqueued", len(got), len(small))
	}
}

// TestSegmentOfAnEarlierBuild: a segment that a build before the run-queue
// database wrote into the jobs database (queue_p<NNN>_..., its marks
// beside it) is offered as this build's are: an offer that another server
// took and marked there is not offered again, the others run once, and
// the segment and its marks are dropped from the jobs database once every
// offer is taken.
func TestSegmentOfAnEarlierBuild(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	a := openInternal(t)
	jobs := make([]*model.Job, 10)
	docs := make([]any, len(jobs))
	for i := range jobs {
		jobs[i] = queuedSimple(50)
		docs[i] = jobs[i]
	}
	if _, _, err := insertMany(ctx, a.jobs(), docs); err != nil {
		t.Fatal(err)
	}
	name := earlierSegmentName(50, jobs[0].ID, time.Now())
	if _, _, err := insertMany(ctx, a.jobsDB.Collection(name), append(docs, bson.D{{Key: "_id", Value: sealID}})); err != nil {
		t.Fatal(err)
	}
	// Another server runs the first job; its next selection marks the take.
	b := openSecond(t, a)
	offered := offeredJobs(t, b)
	if len(offered) != len(jobs) {
		t.Fatalf("offered %d jobs of an earlier build's segment, want %d", len(offered), len(jobs))
	}
	runAll(t, b, offered[:1], "b")
	offeredJobs(t, b)
	marks := marksPrefix + name
	if names, err := collectionNames(ctx, a.jobsDB); err != nil || !slices.Contains(names, marks) {
		t.Fatalf("marks %s in the jobs database: missing (%v), want them beside their segment", marks, err)
	}
	rest := offeredJobs(t, a)
	if got, want := jobIDs(rest), sortedIDs(jobs[1:]); !slices.Equal(got, want) {
		t.Fatalf("offered %d jobs after another server took one, want the other %d", len(got), len(want))
	}
	runAll(t, a, rest, "a")
	if got := runnableIDs(t, a); len(got) != 0 {
		t.Fatalf("offered %d jobs after every job completed, want none", len(got))
	}
	names, err := collectionNames(ctx, a.jobsDB)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, name) || slices.Contains(names, marks) {
		t.Fatalf("jobs database after every offer was taken: %v, want the segment and its marks dropped", names)
	}
	for _, j := range jobs {
		if stored, err := a.GetJob(ctx, j.ID); err != nil || stored.State != model.StateCompleted || stored.Version != 2 {
			t.Fatalf("job %s: %+v (%v), want completed once (version 2)", j.ID.Hex(), stored, err)
		}
	}
}

// TestSegmentsOfEarlierBuilds: segments that builds before bundles wrote in
// the run-queue database (runq_p<NNN>_..., each copy a whole job;
// runqb_p<NNN>_..., each copy the job packed in a binary) are offered as
// this build's are, their jobs run once with the arguments they were
// enqueued with, and they are dropped once every offer is taken; this
// build's copies are bundled, under a name such builds do not read, and
// listed and reconciled like the others.
func TestSegmentsOfEarlierBuilds(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	for _, kind := range []struct {
		prefix string
		copyOf func(raw bson.Raw) any
	}{
		{wholePrefix, func(raw bson.Raw) any { return raw }},
		{packedPrefix, func(raw bson.Raw) any {
			return bson.D{{Key: "_id", Value: raw.Lookup("_id")}, {Key: "state", Value: raw.Lookup("state")},
				{Key: "type", Value: raw.Lookup("type")}, {Key: "version", Value: raw.Lookup("version")},
				{Key: "p", Value: bson.Binary{Data: raw}}}
		}},
	} {
		jobs := make([]*model.Job, 10)
		docs, copies := make([]any, len(jobs)), make([]any, len(jobs))
		for i := range jobs {
			jobs[i] = queuedSimple(50)
			params, err := bson.Marshal(bson.D{{Key: "n", Value: i}})
			if err != nil {
				t.Fatal(err)
			}
			jobs[i].Params = params
			raw, err := bson.Marshal(jobs[i])
			if err != nil {
				t.Fatal(err)
			}
			docs[i], copies[i] = jobs[i], kind.copyOf(raw)
		}
		if _, _, err := insertMany(ctx, s.jobs(), docs); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%s%03d_%s_%s_%013d", kind.prefix, 50, jobs[0].ID.Hex(), jobs[len(jobs)-1].ID.Hex(), time.Now().UnixMilli())
		if _, _, err := insertMany(ctx, s.runqDB.Collection(name), append(copies, bson.D{{Key: "_id", Value: sealID}})); err != nil {
			t.Fatal(err)
		}
		listed, err := s.ListJobs(ctx, JobFilter{States: []model.State{model.StateQueued}, Limit: 50})
		if err != nil || len(listed) != len(jobs) {
			t.Fatalf("%s: listed %d queued jobs (%v), want %d", kind.prefix, len(listed), err, len(jobs))
		}
		offered := offeredJobs(t, s)
		if got, want := jobIDs(offered), sortedIDs(jobs); !slices.Equal(got, want) {
			t.Fatalf("%s: offered %d jobs of a segment of whole copies, want %d", kind.prefix, len(got), len(want))
		}
		for i := range offered {
			if !bytes.Equal(offered[i].Params, jobs[i].Params) {
				t.Fatalf("%s: offered job %s with params %s, want %s", kind.prefix, offered[i].ID.Hex(), offered[i].Params, jobs[i].Params)
			}
		}
		runAll(t, s, offered, "srv")
		if got := runnableIDs(t, s); len(got) != 0 { // the selection that drops the segment
			t.Fatalf("%s: offered %d jobs after every job completed, want none", kind.prefix, len(got))
		}
		if segs := segmentNames(t, s); len(segs) != 0 {
			t.Fatalf("%s: segments after every offer was taken: %v, want none", kind.prefix, segs)
		}
		for _, j := range jobs {
			if stored, err := s.GetJob(ctx, j.ID); err != nil || stored.State != model.StateCompleted || stored.Version != 2 {
				t.Fatalf("%s: job %s: %+v (%v), want completed once (version 2)", kind.prefix, j.ID.Hex(), stored, err)
			}
		}
	}

	// This build's copies are bundled.
	n := 2*segmentMin - 1 // one segment (bulkQueued)
	bundled := bulkQueued(t, s, n, 50)
	segs := segmentNames(t, s)
	if len(segs) != 1 || !strings.HasPrefix(segs[0], segmentPrefix) {
		t.Fatalf("segments of a bulk enqueue: %v, want one named %s...", segs, segmentPrefix)
	}
	docs, err := findAll[bson.Raw](ctx, s.runQueueColl(segs[0]), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	bundles := (n + bundleMax - 1) / bundleMax
	if len(docs) != bundles+1 { // and the seal
		t.Fatalf("a segment of %d copies holds %d documents, want %d bundles and the seal", n, len(docs), bundles)
	}
	held := 0
	for _, d := range docs[:bundles] {
		copies, err := unbundle(d)
		if _, _, ok := d.Lookup("b").BinaryOK(); !ok || err != nil || len(copies) > bundleMax {
			t.Fatalf("a document of a segment of this build: %d copies (%v), want a bundle of at most %d", len(copies), err, bundleMax)
		}
		held += len(copies)
	}
	if held != n {
		t.Fatalf("the bundles hold %d copies, want %d", held, n)
	}
	if got := jobIDs(offeredJobs(t, s)); !slices.Equal(got, sortedIDs(bundled)) {
		t.Fatalf("offered %d jobs of a bundled segment, want %d", len(got), len(bundled))
	}
	listed, err := s.ListJobs(ctx, JobFilter{States: []model.State{model.StateQueued}, Limit: 50})
	if err != nil || len(listed) != 50 || listed[0].ID != sortedIDs(bundled)[0] {
		t.Fatalf("listed %d queued jobs (%v), want the first 50 of the bundles", len(listed), err)
	}
	if fixed, err := s.ReconcileQueue(ctx); err != nil || fixed != 0 {
		t.Fatalf("a reconcile of a bundled segment fixed %d (%v), want 0", fixed, err)
	}

	// Another server takes an offer; its marks hold the ids packed, and
	// this one no longer offers it (it reads the marks at every selection
	// here, not only once none of its own is due).
	s.segments.marksEvery = 0
	b := openSecond(t, s)
	first := offeredJobs(t, b)[:1]
	runAll(t, b, first, "b")
	offeredJobs(t, b) // publishes the take
	marks, err := findAll[bson.Raw](ctx, s.runQueueColl(marksPrefix+segs[0]), bson.D{})
	if err != nil || len(marks) != 1 {
		t.Fatalf("marks of a bundled segment: %d documents (%v), want 1", len(marks), err)
	}
	if _, packed, ok := marks[0].Lookup("b").BinaryOK(); !ok || !bytes.Equal(packed, first[0].ID[:]) {
		t.Fatalf("marks of a bundled segment: %s, want the id taken packed in b", marks[0])
	}
	if got := jobIDs(offeredJobs(t, s)); len(got) != n-1 || slices.Contains(got, first[0].ID) {
		t.Fatalf("offered %d jobs after another server took one, want the other %d", len(got), n-1)
	}
}

// TestRunQueueDBName: the run-queue database is named after the jobs
// database, unless that name would be longer than FerretDB accepts.
func TestRunQueueDBName(t *testing.T) {
	if got := RunQueueDB("rocketjob"); got != "rocketjob_runq" {
		t.Errorf("RunQueueDB(rocketjob) = %s, want rocketjob_runq", got)
	}
	long := strings.Repeat("j", maxDBName-len(runqSuffix)+1)
	if got := RunQueueDB(long); got != long {
		t.Errorf("RunQueueDB of a %d-character name = %s, want the name itself", len(long), got)
	}
	fits := long[1:]
	if got := RunQueueDB(fits); len(got) != maxDBName {
		t.Errorf("RunQueueDB of a %d-character name = %s (%d characters), want %d", len(fits), got, len(got), maxDBName)
	}
}

// TestBulkEnqueueInHalves: an InsertJobs of InsertBatch jobs or fewer, at
// least 2*segmentMin, is written in two halves (so the second half's jobs
// go in while the first half's copies do), each half's copies a segment of
// its own; every job is offered once.
func TestBulkEnqueueInHalves(t *testing.T) {
	dbtest.RequireFerretDB(t)
	s := openInternal(t)
	jobs := bulkQueued(t, s, 2*segmentMin+1, 50)
	segs := segmentNames(t, s)
	if len(segs) != 2 {
		t.Fatalf("segments after a bulk enqueue of %d: %v, want two halves", len(jobs), segs)
	}
	for _, name := range segs {
		copies, err := s.runQueueCopies(context.Background(), name, bson.D{{Key: "state", Value: model.StateQueued}}, nil)
		if n := len(copies); err != nil || n < segmentMin {
			t.Fatalf("segment %s: %d copies (%v), want at least segmentMin (%d)", name, n, err, segmentMin)
		}
	}
	if got := runnableIDs(t, s); !slices.Equal(got, sortedIDs(jobs)) {
		t.Fatalf("offered %d jobs, want the %d enqueued", len(got), len(jobs))
	}
}

// openSecond opens another Store on s's databases: another server.
func openSecond(t *testing.T, s *Store) *Store {
	t.Helper()
	ctx := context.Background()
	b, err := Open(ctx, Config{URI: dbtest.URI(), DB: s.jobsDB.Name(), WorkDB: s.workDB.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(ctx) })
	return b
}

// TestSegmentOffersTakenElsewhere: two Stores (two servers) read the same
// segment. The jobs one runs are published in the segment's marks at its
// next selection and no longer offered to the other; a job paused
// meanwhile keeps its stale offer, which a start trips over (and learns
// from) but never runs; the segment goes once every offer is taken.
func TestSegmentOffersTakenElsewhere(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	a := openInternal(t)
	a.segments.marksEvery = 0 // a reads the marks at every selection, with offers of its own due or not
	b := openSecond(t, a)
	jobs := bulkQueued(t, a, segmentMin, 50)
	paused, err := a.Transition(ctx, jobs[0], model.StatePaused, Change{}, "client")
	if err != nil {
		t.Fatal(err)
	}
	if got := runnableIDs(t, a); len(got) != segmentMin {
		t.Fatalf("a is offered %d jobs, want %d (offers are hints)", len(got), segmentMin)
	}
	offeredB := offeredJobs(t, b)
	half := slices.DeleteFunc(offeredB, func(j model.Job) bool { return compareIDs(j.ID, jobs[segmentMin/2].ID) < 0 })
	runAll(t, b, half, "b")
	offeredJobs(t, b) // b's next selection publishes its takes
	offeredA := offeredJobs(t, a)
	if want := segmentMin / 2; len(offeredA) != want {
		t.Fatalf("a is offered %d jobs after b published its %d, want %d", len(offeredA), len(half), want)
	}
	conflicts := 0
	for i := range offeredA {
		job := &offeredA[i]
		started, err := a.StartHeld(ctx, job, Change{Server: new("a")}, "a")
		if errors.Is(err, model.ErrConflict) {
			conflicts++
			if err := a.RepairQueued(ctx, job); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if job.ID == paused.ID {
			t.Fatalf("the paused job %s started from its stale offer", job.ID.Hex())
		}
		if _, err := a.Transition(ctx, started, model.StateCompleted, Change{}, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if conflicts != 1 {
		t.Fatalf("%d starts conflicted, want 1 (the paused job)", conflicts)
	}
	if got := runnableIDs(t, a); len(got) != 0 {
		t.Fatalf("a is offered %d jobs after every offer was taken, want none", len(got))
	}
	if segs := segmentNames(t, a); len(segs) != 0 {
		t.Fatalf("segments after a saw every offer taken: %v, want none", segs)
	}
	if got := runnableIDs(t, b); len(got) != 0 {
		t.Fatalf("b is offered %d jobs after the segment was dropped, want none", len(got))
	}
	if stored, err := a.GetJob(ctx, paused.ID); err != nil || stored.State != model.StatePaused {
		t.Fatalf("paused job: %+v (%v), want still paused", stored, err)
	}
}

// TestSegmentMarksReadWhenNeeded: a Store that takes every job reads a
// segment's marks at most every marksEvery while offers are due for it
// there (the others' takes it has not read stay in its list); one that
// shares the jobs out reads them at every selection. Once every offer is
// seen taken the segment goes, without another read.
func TestSegmentMarksReadWhenNeeded(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	a := openInternal(t)
	a.segments.marksEvery = time.Hour
	b := openSecond(t, a)
	jobs := bulkQueued(t, a, segmentMin, 50)
	half := sortedIDs(jobs)[segmentMin/2]
	older := func(j *model.Job) bool { return compareIDs(j.ID, half) < 0 }
	if got := offeredJobs(t, a); len(got) != segmentMin {
		t.Fatalf("a is offered %d jobs, want %d", len(got), segmentMin)
	}
	reads := a.marksReads.Load()

	// b runs the younger half and publishes its takes.
	younger := slices.DeleteFunc(offeredJobs(t, b), func(j model.Job) bool { return older(&j) })
	runAll(t, b, younger, "b")
	offeredJobs(t, b)

	if got := offeredJobs(t, a); len(got) != segmentMin {
		t.Fatalf("a is offered %d jobs within marksEvery, want %d (b's takes not read)", len(got), segmentMin)
	}
	if got := a.marksReads.Load() - reads; got != 0 {
		t.Fatalf("a read the marks %d times within marksEvery, offers due, want none", got)
	}
	shared, err := a.RunnableShare(ctx, time.Now(), 1000, nil, older)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.marksReads.Load() - reads; got != 1 {
		t.Fatalf("a sharing the jobs out read the marks %d times, want 1", got)
	}
	if len(shared) != segmentMin/2 || slices.ContainsFunc(shared, func(j model.Job) bool { return !older(&j) }) {
		t.Fatalf("a sharing the jobs out is offered %d jobs, want its %d: b's takes read", len(shared), segmentMin/2)
	}
	runAll(t, a, shared, "a")

	if got := offeredJobs(t, a); len(got) != 0 {
		t.Fatalf("a is offered %d jobs once every offer was taken, want none", len(got))
	}
	if segs := segmentNames(t, a); len(segs) != 0 {
		t.Fatalf("segments once a saw every offer taken: %v, want none", segs)
	}
	if got := a.marksReads.Load() - reads; got != 1 {
		t.Fatalf("a read the marks %d times in all, want 1", got)
	}
}

// TestSegmentMarksSkippedWhenNothingListed: a Store that shares the jobs
// out walks the segments in age order, and once it has as many of the
// others' offers as it wants, a segment where none of its own was due
// lists nothing: it does not read that segment's marks (within
// marksEvery), and still reads those of the segments it lists from.
func TestSegmentMarksSkippedWhenNothingListed(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	a := openInternal(t)
	a.segments.marksEvery = time.Hour
	bulkQueued(t, a, segmentMin, 50)                     // the others' offers, enough for the quota
	bulkQueued(t, a, segmentMin, 50)                     // the others' too: nothing listed from it
	third := sortedIDs(bulkQueued(t, a, segmentMin, 50)) // this Store's share
	if segs := segmentNames(t, a); len(segs) != 3 {
		t.Fatalf("segments: %v, want 3", segs)
	}
	mine := func(j *model.Job) bool { return slices.Contains(third, j.ID) }
	const limit = 10
	selectOwn := func() {
		t.Helper()
		got, err := a.RunnableShare(ctx, time.Now(), limit, nil, mine)
		if err != nil {
			t.Fatal(err)
		}
		own := slices.DeleteFunc(slices.Clone(got), func(j model.Job) bool { return !mine(&j) })
		if len(own) != limit || len(got) != 2*limit {
			t.Fatalf("listed %d jobs, %d of them its own, want %d and %d", len(got), len(own), 2*limit, limit)
		}
	}
	before := a.marksReads.Load()
	selectOwn()
	if got := a.marksReads.Load() - before; got != 3 {
		t.Fatalf("the first selection read the marks of %d segments, want all 3", got)
	}
	before = a.marksReads.Load()
	selectOwn()
	if got := a.marksReads.Load() - before; got != 2 {
		t.Fatalf("the next selection read the marks of %d segments, want 2 (not the second's)", got)
	}
}

// TestHeldStartKeepsItsOffer: a start held back is claimed but not written,
// and should its server die, the job (still stored queued) is found only
// by the servers that trip over its claim and roll it forward. So neither
// the claim nor a conflict with it takes the offer: it is offered to the
// others, and the segment stays, until the start is written.
func TestHeldStartKeepsItsOffer(t *testing.T) {
	ctx := context.Background()
	a, b, jobs := twoStoresHoldingStarts(t)
	offeredB := offeredJobs(t, b)
	var held []*model.Job // b's runs, started (held) but not ended
	for i := range offeredB {
		started, err := b.StartHeld(ctx, &offeredB[i], Change{Server: new("b")}, "b")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, started)
	}
	if got := runnableIDs(t, b); len(got) != 0 {
		t.Fatalf("b is offered %d of the jobs it holds, want none", len(got))
	}
	offeredA := offeredJobs(t, a)
	if len(offeredA) != len(jobs) {
		t.Fatalf("a is offered %d jobs while b holds their starts, want %d", len(offeredA), len(jobs))
	}
	first := &offeredA[0]
	if _, err := a.StartHeld(ctx, first, Change{Server: new("a")}, "a"); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("a's start of a job b holds: %v, want a conflict", err)
	}
	if err := a.RepairQueued(ctx, first); err != nil {
		t.Fatal(err)
	}
	// (The repair may also have given the job, stored queued, a copy in
	// the main collection.)
	if got := slices.Compact(runnableIDs(t, a)); !slices.Equal(got, sortedIDs(jobs)) {
		t.Fatalf("a is offered %d jobs after a conflict with a held start, want the %d (the start is not written)", len(got), len(jobs))
	}
	if segs := segmentNames(t, a); len(segs) != 1 {
		t.Fatalf("segments while starts are held: %v, want the one", segs)
	}
	for _, j := range held {
		if _, err := b.Transition(ctx, j, model.StateCompleted, Change{}, "b"); err != nil {
			t.Fatal(err)
		}
	}
	offeredJobs(t, b) // publishes b's takes, and drops the segment
	// Left: at most the main collection's stale copy that a's repair wrote,
	// which the next start trips over and removes.
	stale := offeredJobs(t, a)
	for i := range stale {
		if stale[i].ID != first.ID {
			t.Fatalf("a is offered job %s after b ended it", stale[i].ID.Hex())
		}
		if _, err := a.StartHeld(ctx, &stale[i], Change{Server: new("a")}, "a"); !errors.Is(err, model.ErrConflict) {
			t.Fatalf("a's start from a stale copy: %v, want a conflict", err)
		}
		if err := a.RepairQueued(ctx, &stale[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got := runnableIDs(t, a); len(got) != 0 {
		t.Fatalf("a is offered %d jobs after b ended them, want none", len(got))
	}
	if segs := segmentNames(t, a); len(segs) != 0 {
		t.Fatalf("segments after every start was written: %v, want none", segs)
	}
}

// twoStoresHoldingStarts opens two Stores on one embedded database, with
// the starts of simple jobs held until their ends (startHold an hour, for
// the test), and enqueues segmentMin jobs of priority 50 in one segment.
func twoStoresHoldingStarts(t *testing.T) (a, b *Store, jobs []*model.Job) {
	t.Helper()
	dbtest.RequireFerretDB(t)
	hold := startHold
	t.Cleanup(func() { startHold = hold })
	startHold = time.Hour // written with the end only
	a = openInternal(t)
	b = openSecond(t, a)
	return a, b, bulkQueued(t, a, segmentMin, 50)
}

// TestUnsealedSegmentIsKept: a segment without its seal may still be being
// written (its insertMany not all visible, or its collection just
// created), so a reader that saw every offer in it taken keeps it, and
// offers what appears in it later, until it has settled.
func TestUnsealedSegmentIsKept(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	name := segmentName(50, bson.NewObjectID(), bson.NewObjectID(), time.Now())
	coll := s.runQueueColl(name)
	// offer stores a new job whose only copy is in the segment.
	offer := func() *model.Job {
		j := queuedSimple(50)
		if err := s.InsertJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		if _, err := s.queue(50).DeleteOne(ctx, bson.D{{Key: "_id", Value: j.ID}}); err != nil {
			t.Fatal(err)
		}
		if _, err := coll.InsertOne(ctx, j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	first := offer()
	offered := offeredJobs(t, s)
	if got := jobIDs(offered); !slices.Equal(got, []bson.ObjectID{first.ID}) {
		t.Fatalf("offered %v, want %s", got, first.ID.Hex())
	}
	runAll(t, s, offered, "srv")
	if got := runnableIDs(t, s); len(got) != 0 {
		t.Fatalf("offered %d jobs after the only job ran, want none", len(got))
	}
	if segs := segmentNames(t, s); !slices.Contains(segs, name) {
		t.Fatalf("an unsealed segment was dropped before it settled: %v", segs)
	}
	late := offer()
	if got := runnableIDs(t, s); !slices.Equal(got, []bson.ObjectID{late.ID}) {
		t.Fatalf("offered %v after a late copy landed in the unsealed segment, want %s", got, late.ID.Hex())
	}
}

// TestLateSealKeepsTheIntent: a segment sealed later than half of
// segmentSettle may have been cached by a reader without some of its
// offers (and be dropped with them), so its writer keeps the jobs' queue
// intent: the minute's repair writes their copies in the main collection.
func TestLateSealKeepsTheIntent(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	defer func(d time.Duration) { segmentSettle = d }(segmentSettle)
	segmentSettle = 0 // every seal is late
	jobs := bulkQueued(t, s, segmentMin, 50)
	if n := intentCount(t, s); n != 1 {
		t.Fatalf("%d queue intents after a late seal, want 1", n)
	}
	if _, err := s.RepairIntents(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if v := copyVersion(t, s, j); v != j.Version {
			t.Fatalf("job %s after the intents' repair: copy version %d in the main collection, want %d", j.ID.Hex(), v, j.Version)
		}
	}
}

// TestTripOverAMainCopyBesideAnOffer: a job can have a copy in the main
// collection at the version of its offer (a repair wrote one while the job
// waited for a roll-forward). A start from that copy that conflicts, once
// the job moved on, must remove the copy as for any stale copy, not only
// take the offer: else every selection lists it again.
func TestTripOverAMainCopyBesideAnOffer(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	a := openInternal(t)
	b := openSecond(t, a)
	jobs := bulkQueued(t, a, segmentMin, 50)
	job := jobs[0]
	if _, err := a.putQueued(ctx, job); err != nil { // the main copy, at the offer's version
		t.Fatal(err)
	}
	if got := runnableIDs(t, a); len(got) != segmentMin+1 {
		t.Fatalf("a is offered %d copies, want %d (the offers and the main copy)", len(got), segmentMin+1)
	}
	offeredB := offeredJobs(t, b)
	runAll(t, b, slices.DeleteFunc(offeredB, func(j model.Job) bool { return j.ID != job.ID })[:1], "b")
	stale := *job
	if _, err := a.StartHeld(ctx, &stale, Change{Server: new("a")}, "a"); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("a's start from the stale copy: %v, want a conflict", err)
	}
	if err := a.RepairQueued(ctx, &stale); err != nil {
		t.Fatal(err)
	}
	if v := copyVersion(t, a, job); v != -1 {
		t.Fatalf("main copy of the job b ran: version %d, want none", v)
	}
	if got := runnableIDs(t, a); slices.Contains(got, job.ID) {
		t.Fatalf("a is still offered the job b ran")
	}
}

// TestListingQueuedAcrossSegments: a listing of queued jobs reads the
// segments by their smallest job id and stops at the first that cannot
// hold a job among the first it lists; jobs whose ids interleave across
// segments (two enqueuers at once) are still listed in id order.
func TestListingQueuedAcrossSegments(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	all := make([]*model.Job, 4*segmentMin)
	for i := range all {
		all[i] = queuedSimple(50)
	}
	var even, odd []*model.Job // interleaved ids
	for i, j := range all[:2*segmentMin] {
		if i%2 == 0 {
			even = append(even, j)
		} else {
			odd = append(odd, j)
		}
	}
	for _, batch := range [][]*model.Job{all[3*segmentMin:], odd, even, all[2*segmentMin : 3*segmentMin]} {
		if _, err := s.InsertJobs(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if segs := segmentNames(t, s); len(segs) != 4 {
		t.Fatalf("segments: %v, want 4", segs)
	}
	for _, n := range []int{10, 3 * segmentMin} {
		got, err := s.ListJobs(ctx, JobFilter{States: []model.State{model.StateQueued}, Limit: int64(n)})
		if err != nil {
			t.Fatal(err)
		}
		want := sortedIDs(all)[:n]
		if ids := jobIDs(got); !slices.Equal(ids, want) || !slices.IsSortedFunc(got, func(a, b model.Job) int { return compareIDs(a.ID, b.ID) }) {
			t.Fatalf("queued listing, limit %d: %d jobs, not the %d oldest in order", n, len(got), n)
		}
	}
}

// TestListingQueuedSkipsTakenOffers: a segment is dropped only once every
// offer in it is taken, so a listing of queued jobs may meet a segment
// whose first offers are all jobs that moved on. It reads the segment's
// marks and leaves those out instead of reading their jobs (nor reads any
// job twice as its window grows), and reads past them at once: a Store that
// ran nothing lists the jobs still queued reading the segment once and
// about as many jobs as it lists.
func TestListingQueuedSkipsTakenOffers(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	a := openInternal(t)
	jobs := bulkQueued(t, a, 4*segmentMin, 50)
	offered := offeredJobs(t, a)
	slices.SortFunc(offered, func(x, y model.Job) int { return compareIDs(x.ID, y.ID) })
	ran := 3 * segmentMin
	runAll(t, a, offered[:ran], "a")
	offeredJobs(t, a) // publishes a's takes in the segment's marks
	if segs := segmentNames(t, a); len(segs) != 1 {
		t.Fatalf("segments: %v, want the one, its last offers untaken", segs)
	}
	b := openSecond(t, a)
	const limit = 10
	before, segReads := b.listJobReads.Load(), b.segmentListReads.Load()
	got, err := b.ListJobs(ctx, JobFilter{States: []model.State{model.StateQueued}, Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	if want := sortedIDs(jobs)[ran : ran+limit]; !slices.Equal(jobIDs(got), want) {
		t.Fatalf("queued listing: %d jobs, not the %d oldest still queued in order", len(got), limit)
	}
	if reads := b.listJobReads.Load() - before; reads > 2*limit {
		t.Fatalf("the listing read %d jobs for %d, want at most %d (taken offers left out)", reads, limit, 2*limit)
	}
	if reads := b.segmentListReads.Load() - segReads; reads != 1 {
		t.Fatalf("the listing read the segment %d times, want once (past its taken offers)", reads)
	}
}

// TestListingQueuedAcrossOverlappingSegments: three segments at priority 50
// whose id ranges interleave (concurrent bulk enqueues): A (ids 10i) whose
// jobs all moved to priority 60 (their offers stay, untaken), C (10i+1)
// and B (10i+5, i >= 30). A most-urgent listing of 40 queued jobs must
// give what queryJobs gives: C's first 30, then B's and C's interleaved,
// not C's alone past B's first id (the window's first candidates, A's,
// having moved on). (Found by a review.)
func TestListingQueuedAcrossOverlappingSegments(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	made := time.Now().Add(-time.Hour)
	group := func(from, to, off int) []*model.Job {
		var jobs []*model.Job
		for i := from; i < to; i++ {
			j := queuedSimple(50)
			j.ID = idAt(made, 10*i+off)
			jobs = append(jobs, j)
		}
		if _, err := s.InsertJobs(ctx, jobs); err != nil {
			t.Fatal(err)
		}
		return jobs
	}
	a := group(0, 64, 0)
	group(0, 64, 1)
	group(30, 94, 5)
	if n := len(segmentNames(t, s)); n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
	for _, j := range a {
		stored, err := s.GetJob(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(ctx, stored, Change{Priority: new(60)}, "cli"); err != nil {
			t.Fatal(err)
		}
	}
	f := JobFilter{States: []model.State{model.StateQueued}, Limit: 40}
	got, err := s.ListJobs(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.queryJobsMerged(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(jobs []model.Job) []bson.ObjectID {
		out := make([]bson.ObjectID, len(jobs))
		for i, j := range jobs {
			out[i] = j.ID
		}
		return out
	}
	if g, w := ids(got), ids(want); !slices.Equal(g, w) {
		missing := 0
		for _, id := range w {
			if !slices.Contains(g, id) {
				missing++
			}
		}
		t.Fatalf("ListJobs gave %d jobs, %d of queryJobs' %d missing (last listed %x, last expected %x)",
			len(g), missing, len(w), g[len(g)-1][:], w[len(w)-1][:])
	}
}
