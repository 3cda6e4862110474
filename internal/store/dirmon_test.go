package store_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// A server killed between claiming the next attempt on a file and writing
// it to the file's record must not hold the file forever: the next server
// to try writes the dead winner's claim to the record (and loses), and the
// one after takes the attempt after it. Before, every later takeover lost
// the claim and skipped the file, which stayed taken by a dead server
// (TestDirmonKill9ExactlyOnce: 23 of 24 files archived after 3 minutes).
func TestDirmonTakeoverOfAWinnerThatDied(t *testing.T) {
	s, jobsDB := openNamed(t)
	ctx := context.Background()
	if err := s.EnsureDirmon(ctx); err != nil {
		t.Fatal(err)
	}
	first := bson.NewObjectID()
	f := &store.DirmonFile{Key: "k1", Entry: "in", Path: "/drop/in/f.txt", JobID: first, Jobs: []bson.ObjectID{first},
		State: store.DirmonTaken, Server: "A", Attempt: 1, TakenAt: time.Now().UTC().Truncate(time.Millisecond)}
	if won, err := s.TakeDirmonFile(ctx, f); err != nil || !won {
		t.Fatalf("take: %v %v", won, err)
	}
	// B won attempt 2 and was killed before it wrote the record.
	bJob := bson.NewObjectID()
	_, err := dbtest.Client(t).Database(jobsDB).Collection("job_claims").InsertOne(ctx, bson.D{
		{Key: "_id", Value: "dirmon-file:k1:2"}, {Key: "server", Value: "B"}, {Key: "job", Value: bJob}, {Key: "at", Value: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	record := func() store.DirmonFile {
		t.Helper()
		list, err := s.DirmonFiles(ctx, "in", 0)
		if err != nil || len(list) != 1 {
			t.Fatalf("records: %v %v", list, err)
		}
		return list[0]
	}

	r := record()
	won, err := s.TakeOverDirmonFile(ctx, &r, "C", bson.NewObjectID())
	if err != nil || won {
		t.Fatalf("C's takeover of attempt 2 (B's): won %v, err %v; want lost", won, err)
	}
	r = record()
	if r.Attempt != 2 || r.Server != "B" || r.JobID != bJob || len(r.Jobs) != 2 || r.Jobs[0] != first || r.Jobs[1] != bJob {
		t.Fatalf("record after C lost: attempt %d by %s, job %s, jobs %v; want attempt 2 by B under %s after %s",
			r.Attempt, r.Server, r.JobID.Hex(), r.Jobs, bJob.Hex(), first.Hex())
	}

	cJob := bson.NewObjectID()
	won, err = s.TakeOverDirmonFile(ctx, &r, "C", cJob)
	if err != nil || !won {
		t.Fatalf("C's takeover of attempt 3: won %v, err %v", won, err)
	}
	r = record()
	if r.Attempt != 3 || r.Server != "C" || r.JobID != cJob || len(r.Jobs) != 3 {
		t.Fatalf("record after C won: attempt %d by %s, job %s, jobs %v; want attempt 3 by C under %s", r.Attempt, r.Server, r.JobID.Hex(), r.Jobs, cJob.Hex())
	}
	// B's progress (attempt 2) is refused now.
	stale := r
	stale.Attempt, stale.State = 2, store.DirmonUploaded
	if err := s.UpdateDirmonFile(ctx, &stale); err != store.ErrDirmonTakenOver {
		t.Fatalf("attempt 2's write after attempt 3: %v, want ErrDirmonTakenOver", err)
	}
	// A stale reader that still sees attempt 1 loses and undoes nothing.
	old := store.DirmonFile{Key: "k1", Entry: "in", Path: f.Path, JobID: first, Jobs: []bson.ObjectID{first}, State: store.DirmonTaken, Server: "A", Attempt: 1}
	if won, err := s.TakeOverDirmonFile(ctx, &old, "D", bson.NewObjectID()); err != nil || won {
		t.Fatalf("a stale takeover of attempt 2: won %v, err %v", won, err)
	}
	if r = record(); r.Attempt != 3 || r.Server != "C" || r.JobID != cJob {
		t.Fatalf("a stale takeover changed the record: attempt %d by %s, job %s", r.Attempt, r.Server, r.JobID.Hex())
	}

	// C finds A's upload finished and commits it: the record names that
	// job from then on, and an attempt after C's (C killed before it moved
	// the file) moves the file under that name, not under C's own id.
	r.JobID, r.State = first, store.DirmonUploaded
	if err := s.UpdateDirmonFile(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if r = record(); r.JobID != first || r.State != store.DirmonUploaded {
		t.Fatalf("record after C committed A's job: %s under %s, want uploaded under %s", r.State, r.JobID.Hex(), first.Hex())
	}
	if won, err := s.TakeOverDirmonFile(ctx, &r, "E", bson.NewObjectID()); err != nil || !won {
		t.Fatalf("E's takeover of attempt 4: won %v, err %v", won, err)
	}
	if r = record(); r.Attempt != 4 || r.Server != "E" || r.JobID != first {
		t.Fatalf("record after E took over an uploaded file: attempt %d by %s under %s, want attempt 4 by E under the committed %s", r.Attempt, r.Server, r.JobID.Hex(), first.Hex())
	}
}

// takeFile records file k1 taken by A under job j1 and returns a reader of
// its record.
func takeFile(t *testing.T, s *store.Store, j1 bson.ObjectID) func() store.DirmonFile {
	t.Helper()
	ctx := context.Background()
	if err := s.EnsureDirmon(ctx); err != nil {
		t.Fatal(err)
	}
	f := &store.DirmonFile{Key: "k1", Entry: "in", Path: "/drop/in/f.txt", JobID: j1, Jobs: []bson.ObjectID{j1},
		State: store.DirmonTaken, Server: "A", Attempt: 1, TakenAt: time.Now().UTC().Truncate(time.Millisecond)}
	if won, err := s.TakeDirmonFile(ctx, f); err != nil || !won {
		t.Fatalf("take: %v %v", won, err)
	}
	return func() store.DirmonFile {
		t.Helper()
		list, err := s.DirmonFiles(ctx, "in", 0)
		if err != nil || len(list) != 1 {
			t.Fatalf("records: %v %v", list, err)
		}
		return list[0]
	}
}

// A scan reads the records once, at its start; the taker it then judges
// dead may still run (a paused process) and record progress meanwhile. A
// takeover from the stale read must not undo it: the job A committed
// stays the record's (else the file is archived under an id that is no
// job), and a file A finished is left alone.
func TestDirmonTakeoverFromAStaleRead(t *testing.T) {
	s, _ := openNamed(t)
	ctx := context.Background()

	j1 := bson.NewObjectID()
	record := takeFile(t, s, j1)
	stale := record() // W's read
	a := record()     // A, still running, commits its job and records it
	if _, err := s.CommitDirmonFile(ctx, a.Key, j1); err != nil {
		t.Fatal(err)
	}
	a.State = store.DirmonUploaded
	if err := s.UpdateDirmonFile(ctx, &a); err != nil {
		t.Fatal(err)
	}
	won, err := s.TakeOverDirmonFile(ctx, &stale, "W", bson.NewObjectID())
	if err != nil || !won {
		t.Fatalf("W's takeover: won %v, err %v", won, err)
	}
	r := record()
	if r.State != store.DirmonUploaded || r.JobID != j1 || r.Attempt != 2 || r.Server != "W" || stale.JobID != j1 || stale.State != store.DirmonUploaded {
		t.Fatalf("record after a takeover from a stale read: %s by %s (attempt %d) under %s, caller's copy %s under %s; want uploaded by W (attempt 2) under A's committed %s",
			r.State, r.Server, r.Attempt, r.JobID.Hex(), stale.State, stale.JobID.Hex(), j1.Hex())
	}
}

func TestDirmonTakeoverOfAFileDoneMeanwhile(t *testing.T) {
	s, _ := openNamed(t)
	ctx := context.Background()
	j1 := bson.NewObjectID()
	record := takeFile(t, s, j1)
	stale := record()
	a := record()
	now := time.Now().UTC().Truncate(time.Millisecond)
	a.State, a.MovedTo, a.DoneAt = store.DirmonArchived, "/drop/in/archive/"+j1.Hex()+"_f.txt", &now
	if err := s.UpdateDirmonFile(ctx, &a); err != nil {
		t.Fatal(err)
	}
	won, err := s.TakeOverDirmonFile(ctx, &stale, "W", bson.NewObjectID())
	r := record()
	if won || err != nil || r.JobID != j1 || r.Server != "A" || r.Attempt != 1 || r.State != store.DirmonArchived {
		t.Fatalf("takeover of an archived file: won %v (%v); record %s by %s (attempt %d) under %s; want it untouched",
			won, err, r.State, r.Server, r.Attempt, r.JobID.Hex())
	}
}

// A claim already in this server's name is its own: its insert went in
// and the answer was lost (the retried insert meets it), or an earlier
// process of the same name won it. Reported lost, the file would wait on a
// live server that skipped it.
func TestDirmonTakeoverOfItsOwnClaim(t *testing.T) {
	s, jobsDB := openNamed(t)
	ctx := context.Background()
	record := takeFile(t, s, bson.NewObjectID())
	jc := bson.NewObjectID()
	_, err := dbtest.Client(t).Database(jobsDB).Collection("job_claims").InsertOne(ctx, bson.D{
		{Key: "_id", Value: "dirmon-file:k1:2"}, {Key: "server", Value: "C"}, {Key: "job", Value: jc}, {Key: "at", Value: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	r := record()
	won, err := s.TakeOverDirmonFile(ctx, &r, "C", bson.NewObjectID())
	if err != nil || !won || r.JobID != jc {
		t.Fatalf("C's own claim: won %v, err %v, job %s; want won under the claim's %s", won, err, r.JobID.Hex(), jc.Hex())
	}
	if r = record(); r.Server != "C" || r.Attempt != 2 || r.JobID != jc {
		t.Fatalf("record: attempt %d by %s under %s", r.Attempt, r.Server, r.JobID.Hex())
	}
}

// Pruning keeps what an unfinished file still needs: the commit of a file
// stuck for longer than the keep time (its servers down) stays, so that it
// finishes under that job, and its takeover claims stay; a done file's
// record, commit and takeover claims go together (a file returning with
// the same identity meets none of them), as do commits left without a
// record.
func TestPruneDirmonFilesKeepsUnfinishedCommits(t *testing.T) {
	s, jobsDB := openNamed(t)
	ctx := context.Background()
	if err := s.EnsureDirmon(ctx); err != nil {
		t.Fatal(err)
	}
	db := dbtest.Client(t).Database(jobsDB)
	now := time.Now().UTC().Truncate(time.Millisecond)
	old, cutoff := now.Add(-2*time.Hour), now.Add(-time.Hour)
	file := func(key, state string, at time.Time) {
		t.Helper()
		f := store.DirmonFile{Key: key, Entry: "in", Path: "/drop/in/" + key, JobID: bson.NewObjectID(), State: state,
			Server: "A", Attempt: 2, TakenAt: at}
		if state == store.DirmonArchived {
			f.DoneAt = &at
		}
		if _, err := db.Collection("dirmon_files").InsertOne(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(key string, at time.Time) {
		t.Helper()
		if _, err := db.Collection("dirmon_commits").InsertOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "job", Value: bson.NewObjectID()}, {Key: "at", Value: at}}); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(key string, attempt int, at time.Time) {
		t.Helper()
		if _, err := db.Collection("job_claims").InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("dirmon-file:%s:%d", key, attempt)}, {Key: "server", Value: "A"}, {Key: "job", Value: bson.NewObjectID()}, {Key: "at", Value: at}}); err != nil {
			t.Fatal(err)
		}
	}
	file("done-old", store.DirmonArchived, old)
	commit("done-old", old)
	claim("done-old", 2, old)
	claim("done-old", 3, old) // a takeover that lost to the file's end
	file("stuck", store.DirmonUploaded, old)
	commit("stuck", old)
	claim("stuck", 2, old)
	file("done-new", store.DirmonArchived, now)
	commit("done-new", now)
	claim("done-new", 2, now)
	commit("orphan", old)

	if err := s.PruneDirmonFiles(ctx, cutoff); err != nil {
		t.Fatal(err)
	}
	ids := func(coll string) map[string]bool {
		t.Helper()
		out := map[string]bool{}
		for _, id := range stringIDs(t, db.Collection(coll)) {
			out[id] = true
		}
		return out
	}
	want := map[string]map[string]bool{
		"dirmon_files":   {"stuck": true, "done-new": true},
		"dirmon_commits": {"stuck": true, "done-new": true},
		"job_claims":     {"dirmon-file:stuck:2": true, "dirmon-file:done-new:2": true},
	}
	for coll, keys := range want {
		if got := ids(coll); !maps.Equal(got, keys) {
			t.Errorf("%s after pruning: %v, want %v", coll, got, keys)
		}
	}
	if _, ok, err := s.DirmonCommitted(ctx, "stuck"); err != nil || !ok {
		t.Fatalf("the stuck file's commit: %v %v", ok, err)
	}

	// Once done (long ago), the stuck file goes with its commit; with no
	// file unfinished, the prune keeps only what is newer than cutoff.
	if _, err := db.Collection("dirmon_files").UpdateOne(ctx, bson.D{{Key: "_id", Value: "stuck"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: store.DirmonArchived}, {Key: "done_at", Value: old}}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PruneDirmonFiles(ctx, cutoff); err != nil {
		t.Fatal(err)
	}
	want = map[string]map[string]bool{
		"dirmon_files":   {"done-new": true},
		"dirmon_commits": {"done-new": true},
		"job_claims":     {"dirmon-file:done-new:2": true},
	}
	for coll, keys := range want {
		if got := ids(coll); !maps.Equal(got, keys) {
			t.Errorf("%s after the stuck file was done and pruned: %v, want %v", coll, got, keys)
		}
	}
}
