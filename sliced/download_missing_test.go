package sliced_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/slice"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// deleteSlice deletes one slice's document ("<slice>:<attempt>" on
// FerretDB) from coll with the raw driver: the work database lost it.
func deleteSlice(t *testing.T, coll *mongo.Collection, num int64) {
	t.Helper()
	ctx := context.Background()
	cur, err := coll.Find(ctx, bson.D{})
	must(t, err)
	var docs []struct {
		ID string `bson:"_id"`
	}
	must(t, cur.All(ctx, &docs))
	for _, d := range docs {
		if n, _, _ := strings.Cut(d.ID, ":"); n == fmt.Sprintf("%09d", num) {
			res, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}})
			must(t, err)
			if res.DeletedCount == 1 {
				return
			}
		}
	}
	t.Fatalf("slice %d not found in %s (%d documents)", num, coll.Name(), len(docs))
}

// Issue 13: when the work database lost a finished slice's output (or
// failed records), Download and DownloadFailed fail with an
// *IncompleteError that names the slice, like any other short download.
func TestDownloadWithASliceLostIsIncomplete(t *testing.T) {
	f := setupFailClosed(t)
	ctx := context.Background()
	done := f.run(t, "pad", 120)  // slices of 50, 50, 20
	failed := f.run(t, "odd", 45) // slices of 10: 5, 5, 5, 5, 3 odd numbers fail
	if done.State != rocketjob.StateCompleted || failed.State != rocketjob.StateFailed || failed.FailedRecordCount != 23 {
		t.Fatalf("jobs ended %s and %s (%d failed)", done.State, failed.State, failed.FailedRecordCount)
	}
	work := dbtest.Client(t).Database(f.work)
	deleteSlice(t, work.Collection("slices_"+done.ID.Hex()+"_output"), 2)
	deleteSlice(t, work.Collection("slices_"+failed.ID.Hex()+"_failed"), 1)

	var out bytes.Buffer
	_, err := sliced.Download(ctx, f.client, done.ID.Hex(), &out)
	expectIncomplete(t, "output with slice 2 lost", err, &out, sliced.OutputKind, 120, 70)
	expectLost(t, err, 2, 1, "only 70 of its 120 output records are in the work database: it lost the output of finished slice 2")

	out.Reset()
	_, err = sliced.DownloadFailed(ctx, f.client, failed.ID.Hex(), &out)
	expectIncomplete(t, "failed records with slice 1 lost", err, &out, sliced.FailedKind, 23, 18)
	expectLost(t, err, 1, 1, "only 18 of its 23 failed records are in the work database: it lost the failed records of finished slice 1")

	// What was not lost still downloads whole.
	out.Reset()
	if n, err := sliced.Download(ctx, f.client, failed.ID.Hex(), &out); err != nil || n != 22 {
		t.Errorf("the output of the job whose failed records were lost: %d records, %v", n, err)
	}
	out.Reset()
	if n, err := sliced.DownloadFailed(ctx, f.client, done.ID.Hex(), &out); err != nil || n != 0 {
		t.Errorf("failed records of the job whose output was lost: %d, %v", n, err)
	}
}

func expectLost(t *testing.T, err error, slice int64, slices int, msg string) {
	t.Helper()
	var ie *sliced.IncompleteError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want an *IncompleteError", err)
	}
	if ie.Slice != slice || ie.Slices != slices {
		t.Errorf("%+v, want slice %d, %d slices", *ie, slice, slices)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("message %q lacks %q", err, msg)
	}
}

// AsIncomplete turns the slice store's report of lost slices into an
// *IncompleteError; the job's counts give Want only once they are final.
func TestAsIncomplete(t *testing.T) {
	id := bson.NewObjectID()
	lost := fmt.Errorf("download: %w", &store.SliceMissingError{Kind: "output", Num: 7, Missing: 3, Found: 640})
	completed := &rocketjob.Job{ID: id, Kind: rocketjob.KindSliced, State: rocketjob.StateCompleted, CollectOutput: true,
		RecordCount: 1000, ProcessedCount: 1000}
	err := sliced.AsIncomplete(completed, lost)
	if !errors.Is(err, sliced.ErrIncomplete) {
		t.Fatalf("completed job: %v", err)
	}
	want := "job " + id.Hex() + ": only 640 of its 1000 output records are in the work database: it lost the output of 3 finished slices (the first: slice 7)"
	if err.Error() != want {
		t.Errorf("completed job:\n got %q\nwant %q", err, want)
	}
	running := *completed
	running.State, running.ProcessedCount = rocketjob.StateRunning, 700
	err = sliced.AsIncomplete(&running, lost)
	var ie *sliced.IncompleteError
	if !errors.As(err, &ie) || ie.Want != 0 || ie.Got != 640 {
		t.Fatalf("running job: %#v", err)
	}
	want = "job " + id.Hex() + ": the work database lost the output of 3 finished slices (the first: slice 7); 640 output records found"
	if err.Error() != want {
		t.Errorf("running job:\n got %q\nwant %q", err, want)
	}
	// A stream that came up short of the job's counts.
	short := fmt.Errorf("download: %w", &slice.ShortError{Kind: slice.Failed, Want: 23, Got: 18})
	err = sliced.AsIncomplete(completed, short)
	if !errors.As(err, &ie) || *ie != (sliced.IncompleteError{JobID: id.Hex(), Kind: sliced.FailedKind, Want: 23, Got: 18}) {
		t.Fatalf("short stream: %#v", err)
	}
	err = sliced.AsIncomplete(completed, &slice.ShortError{Kind: slice.Output, Want: 5})
	if !errors.As(err, &ie) || ie.Kind != sliced.OutputKind || ie.Want != 5 || ie.Got != 0 {
		t.Fatalf("missing output: %#v", err)
	}
	other := errors.New("connection reset")
	if got := sliced.AsIncomplete(completed, other); got != other {
		t.Errorf("another error came back as %v", got)
	}
	if got := sliced.AsIncomplete(completed, nil); got != nil {
		t.Errorf("nil came back as %v", got)
	}
}
