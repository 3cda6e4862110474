package store_test

import (
	"context"
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
