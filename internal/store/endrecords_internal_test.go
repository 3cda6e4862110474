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

// storedJob reads the job document of id as stored, without its end
// records.
func storedJob(t *testing.T, s *Store, id bson.ObjectID) *model.Job {
	t.Helper()
	var j model.Job
	if err := s.jobs().FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&j); err != nil {
		t.Fatalf("reading the stored job %s: %v", id.Hex(), err)
	}
	return &j
}

// recordsOf returns the _ids of the end records of job id.
func recordsOf(t *testing.T, s *Store, id bson.ObjectID) []string {
	t.Helper()
	recs, err := findAll[endRecord](context.Background(), s.endRecords(), bson.D{{Key: "job", Value: id}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}

// runShort runs the queued job as a server does a short one (a held start,
// then its end within startHold: end) and returns the job as it ended.
func runShort(t *testing.T, s *Store, job *model.Job, by string, end Op) *model.Job {
	t.Helper()
	ctx := context.Background()
	started, err := s.DoHeld(ctx, job, StartRun(by, job.Attempt+1, time.Now()), by)
	if err != nil {
		t.Fatalf("starting %s: %v", job.ID.Hex(), err)
	}
	ended, err := s.Do(ctx, started, end, by)
	if err != nil {
		t.Fatalf("ending %s: %v", job.ID.Hex(), err)
	}
	return ended
}

func completed() Op { return Complete(time.Now(), Counts{}) }

// listed reports whether a listing holds job id.
func listed(t *testing.T, s *Store, f JobFilter, id bson.ObjectID) bool {
	t.Helper()
	jobs, err := s.ListJobs(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(jobs, func(j model.Job) bool { return j.ID == id })
}

// A short simple job's end is an end record: its document stays as it was
// enqueued, and every reader (GetJob, limited and unlimited listings, the
// selection, the hourly reconcile) sees it failed. A rerun writes the
// record into the document first, the job runs and ends by a record
// again, and deleting the job removes its records.
func TestShortRunEndsByRecord(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	job := insertQueued(t, s, 50)
	other := insertQueued(t, s, 50) // stays queued
	ended := runShort(t, s, job, "srv", Fail(&model.Failure{Message: "boom"}, time.Now(), Counts{}))
	if ended.State != model.StateFailed || ended.Version != job.Version+2 {
		t.Fatalf("ended: %s at version %d, want failed at %d", ended.State, ended.Version, job.Version+2)
	}

	if stored := storedJob(t, s, job.ID); stored.State != model.StateQueued || stored.Version != job.Version {
		t.Errorf("stored job after a short run: %s at version %d, want queued at %d (the end is a record)", stored.State, stored.Version, job.Version)
	}
	if got, want := recordsOf(t, s, job.ID), []string{endRecordID(job.ID, job.Version)}; !slices.Equal(got, want) {
		t.Errorf("end records: %v, want %v", got, want)
	}
	got, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != model.StateFailed || got.Version != ended.Version || got.Failure == nil || got.Failure.Message != "boom" {
		t.Errorf("GetJob: %s at version %d (failure %+v), want the ended job", got.State, got.Version, got.Failure)
	}
	for _, f := range []JobFilter{
		{States: []model.State{model.StateFailed}, Limit: 10},
		{States: []model.State{model.StateFailed}},
		{States: []model.State{model.StateFailed}, Limit: 10, Newest: true},
		{},
	} {
		if !listed(t, s, f, job.ID) {
			t.Errorf("listing %+v: the ended job is missing", f)
		}
	}
	for _, f := range []JobFilter{
		{States: []model.State{model.StateQueued}, Limit: 10},
		{States: []model.State{model.StateQueued}},
		{States: []model.State{model.StateQueued, model.StateRunning}, Type: "nap"},
	} {
		if listed(t, s, f, job.ID) {
			t.Errorf("listing %+v holds the ended job", f)
		}
		if !listed(t, s, f, other.ID) {
			t.Errorf("listing %+v: the queued job is missing", f)
		}
	}
	all, err := s.ListJobs(ctx, JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range all {
		if j.ID == job.ID && j.State != model.StateFailed {
			t.Errorf("unlimited listing: the ended job is %s", j.State)
		}
	}
	// The hourly reconcile writes no copy for it: nothing offers it again.
	if _, err := s.ReconcileQueue(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := runnableIDs(t, s); !slices.Equal(ids, []bson.ObjectID{other.ID}) {
		t.Errorf("offered after the reconcile: %v, want only %s", ids, other.ID.Hex())
	}

	// A rerun: the record is written into the document first.
	rerun, err := s.Do(ctx, got, Rerun(time.Now()), "client")
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if stored := storedJob(t, s, job.ID); stored.State != model.StateQueued || stored.Version != rerun.Version || stored.Failure != nil || stored.Attempt != 0 {
		t.Errorf("stored job after the rerun: %s at version %d (failure %+v, attempt %d), want queued at %d", stored.State, stored.Version, stored.Failure, stored.Attempt, rerun.Version)
	}
	again := runShort(t, s, rerun, "srv2", completed())
	if got, want := recordsOf(t, s, job.ID), []string{endRecordID(job.ID, job.Version), endRecordID(job.ID, rerun.Version)}; !slices.Equal(got, want) {
		t.Errorf("end records after the second run: %v, want %v", got, want)
	}
	if got, err := s.GetJob(ctx, job.ID); err != nil || got.Version != again.Version || got.State != model.StateCompleted || got.Server != "srv2" {
		t.Errorf("GetJob after the second run: %+v, %v; want completed at %d by srv2", got, err, again.Version)
	}

	if err := s.DeleteJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetJob(ctx, job.ID); !errors.Is(err, model.ErrJobNotFound) {
		t.Errorf("GetJob after the delete: %v, want ErrJobNotFound", err)
	}
	if recs := recordsOf(t, s, job.ID); len(recs) != 0 {
		t.Errorf("end records after the delete: %v", recs)
	}
}

// A start claim rolled forward by another process while its holder wrote
// the run's end record (the holder stalled past rollForwardAfter) leaves
// the job stored running one version on: the record of the version before
// still supersedes it, so the job reads as it ended, not as a run that
// nobody finishes.
func TestEndRecordOfARolledForwardStart(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	job := insertQueued(t, s, 50)
	ended := runShort(t, s, job, "srv", completed())
	// What the roll-forward of the start claim writes.
	var claim struct {
		Update []byte `bson:"update"`
	}
	if err := s.jobClaims().FindOne(ctx, bson.D{{Key: "_id", Value: claimID(job)}}).Decode(&claim); err != nil {
		t.Fatal(err)
	}
	if _, err := s.jobs().UpdateOne(ctx, bson.D{{Key: "_id", Value: job.ID}}, bson.Raw(claim.Update)); err != nil {
		t.Fatal(err)
	}
	if stored := storedJob(t, s, job.ID); stored.State != model.StateRunning || stored.Version != job.Version+1 {
		t.Fatalf("stored after the roll-forward: %s at %d, want running at %d", stored.State, stored.Version, job.Version+1)
	}
	got, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != model.StateCompleted || got.Version != ended.Version {
		t.Errorf("GetJob: %s at %d, want completed at %d", got.State, got.Version, ended.Version)
	}
	if !listed(t, s, JobFilter{States: []model.State{model.StateCompleted}}, job.ID) {
		t.Error("unlimited listing of completed jobs: the job is missing")
	}
}

// A long run's start is written alone (its hold ended): its end is an
// update of the job, as before end records.
func TestLongRunEndsByUpdate(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	job := insertQueued(t, s, 50)
	started, err := s.DoHeld(ctx, job, StartRun("srv", 1, time.Now()), "srv")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for storedJob(t, s, job.ID).State != model.StateRunning {
		if time.Now().After(deadline) {
			t.Fatal("the held start was never written alone")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ended, err := s.Do(ctx, started, Complete(time.Now(), Counts{}), "srv")
	if err != nil {
		t.Fatal(err)
	}
	if stored := storedJob(t, s, job.ID); stored.State != model.StateCompleted || stored.Version != ended.Version {
		t.Errorf("stored after a long run: %s at %d, want completed at %d", stored.State, stored.Version, ended.Version)
	}
	if recs := recordsOf(t, s, job.ID); len(recs) != 0 {
		t.Errorf("end records of a long run: %v", recs)
	}
}

// The claim of a transition from an ended job's record (a rerun) whose
// writer died before applying it is rolled forward onto the record's job:
// the roll-forward writes the record into the document first, or its
// update would meet the job as it was enqueued and match nothing, leaving
// the job held by the claim for good.
func TestRollForwardFromAnEndRecord(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	job := insertQueued(t, s, 50)
	failed := runShort(t, s, job, "srv", Fail(&model.Failure{Message: "boom"}, time.Now(), Counts{}))
	// The claim of a rerun, as its writer left it (made a minute ago).
	op := Rerun(time.Now())
	update := bson.D{{Key: "$set", Value: append(bson.D{{Key: "state", Value: op.to}, {Key: "version", Value: failed.Version + 1}}, op.change.set()...)}}
	if unset := op.change.unset(); len(unset) > 0 {
		fields := bson.D{}
		for _, f := range unset {
			fields = append(fields, bson.E{Key: f, Value: ""})
		}
		update = append(update, bson.E{Key: "$unset", Value: fields})
	}
	raw, err := bson.Marshal(update)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.jobClaims().InsertOne(ctx, bson.D{{Key: "_id", Value: claimID(failed)}, {Key: "by", Value: "client"},
		{Key: "at", Value: time.Now().Add(-time.Minute)}, {Key: "update", Value: bson.Binary{Data: raw}}})
	if err != nil {
		t.Fatal(err)
	}
	claimJobs{}.rollForward(ctx, s, failed)
	got, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != model.StateQueued || got.Version != failed.Version+1 || got.Failure != nil {
		t.Errorf("after the roll-forward: %s at %d (failure %+v), want queued at %d", got.State, got.Version, got.Failure, failed.Version+1)
	}
	if stored := storedJob(t, s, job.ID); stored.Version != failed.Version+1 {
		t.Errorf("stored job after the roll-forward: version %d, want %d", stored.Version, failed.Version+1)
	}
}

// An end record holds its job packed in a binary value; a record of the
// first builds that wrote them, an embedded document, is read too (by
// GetJob and by an unlimited listing).
func TestEndRecordFormats(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	job := insertQueued(t, s, 50)
	ended := runShort(t, s, job, "test", completed())
	var rec bson.Raw
	if err := s.endRecords().FindOne(ctx, bson.D{{Key: "job", Value: job.ID}}).Decode(&rec); err != nil {
		t.Fatal(err)
	}
	if typ := rec.Lookup("doc").Type; typ != bson.TypeBinary {
		t.Fatalf("the record's doc is a %s, want a binary", typ)
	}

	// The same end as an earlier build wrote it.
	older := insertQueued(t, s, 50)
	olderEnded := runShort(t, s, older, "test", completed())
	raw, err := bson.Marshal(olderEnded)
	if err != nil {
		t.Fatal(err)
	}
	id := endRecordID(older.ID, older.Version)
	if _, err := s.endRecords().ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{
		{Key: "job", Value: older.ID}, {Key: "version", Value: olderEnded.Version}, {Key: "doc", Value: bson.Raw(raw)}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []*model.Job{ended, olderEnded} {
		got, err := s.GetJob(ctx, want.ID)
		if err != nil || got.State != model.StateCompleted || got.Version != want.Version {
			t.Errorf("GetJob %s: %+v, %v; want completed at version %d", want.ID.Hex(), got, err, want.Version)
		}
	}
	all, err := s.queryJobsMerged(ctx, JobFilter{States: []model.State{model.StateCompleted}})
	if err != nil || len(all) != 2 {
		t.Fatalf("unlimited listing of completed jobs: %d jobs, %v; want 2", len(all), err)
	}
}
