package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// A finished slice whose output (or failed records) the work database lost
// is a *SliceMissingError (errors.Is ErrSliceMissing) on FerretDB, which
// knows the finished slices; the MongoDB strategy streams what is there and
// leaves the loss to the caller's record count.
func TestStreamWithSlicesLost(t *testing.T) {
	for _, mongoStrategy := range []bool{false, true} {
		name := "ferretdb"
		if mongoStrategy {
			name = "mongodb"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			jobsDB, workDB := dbtest.DBNames(t)
			st, err := store.Open(ctx, store.Config{URI: dbtest.URI(), DB: jobsDB, WorkDB: workDB})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close(context.Background()) })
			s := st.WithSlices(mongoStrategy).Slices()
			job := bson.NewObjectID()
			upload(t, s, job, 6) // 10 records a slice
			claims := claimAll(t, s.NewFeeder(job, "a", 6))
			if len(claims) != 6 {
				t.Fatalf("claimed %d slices, want 6", len(claims))
			}
			for _, c := range claims {
				failed := 0
				if c.Num == 2 || c.Num == 3 || c.Num == 5 {
					failed = 2
				}
				if !complete(t, s, job, c, failed) {
					t.Fatalf("slice %d: completion lost", c.Num)
				}
			}
			work := dbtest.Client(t).Database(workDB)
			deleteSlices(t, work.Collection("slices_"+job.Hex()+"_output"), 3, 4)
			deleteSlices(t, work.Collection("slices_"+job.Hex()+"_failed"), 3)

			var got []int64
			collect := func(o store.OutputSlice) error {
				got = append(got, o.Num)
				return nil
			}
			outErr := s.StreamOutput(ctx, job, collect)
			outGot := got
			got = nil
			failErr := s.StreamFailed(ctx, job, collect)
			failGot := got

			if mongoStrategy {
				if outErr != nil || failErr != nil {
					t.Fatalf("streams: %v, %v", outErr, failErr)
				}
				if !slices.Equal(outGot, []int64{1, 2, 5, 6}) || !slices.Equal(failGot, []int64{2, 5}) {
					t.Errorf("streamed output %v and failed %v, want [1 2 5 6] and [2 5]", outGot, failGot)
				}
				return
			}
			// Slices before the gap are handed on, none after it.
			if !slices.Equal(outGot, []int64{1, 2}) || !slices.Equal(failGot, []int64{2}) {
				t.Errorf("streamed output %v and failed %v before the error, want [1 2] and [2]", outGot, failGot)
			}
			// Found: 10 + 8 + 8 + 10 output records in slices 1, 2, 5, 6;
			// 2 + 2 failed records in slices 2 and 5.
			expectMissing(t, outErr, store.SliceMissingError{Kind: "output", Num: 3, Missing: 2, Found: 36}, "output of slice 3 is missing (2 slices not found)")
			expectMissing(t, failErr, store.SliceMissingError{Kind: "failed", Num: 3, Missing: 1, Found: 4}, "failed of slice 3 is missing")
		})
	}
}

func expectMissing(t *testing.T, err error, want store.SliceMissingError, msg string) {
	t.Helper()
	var sm *store.SliceMissingError
	if !errors.As(err, &sm) || !errors.Is(err, store.ErrSliceMissing) {
		t.Fatalf("err = %v (%T), want a *SliceMissingError", err, err)
	}
	if *sm != want {
		t.Errorf("%+v, want %+v", *sm, want)
	}
	if err.Error() != msg {
		t.Errorf("message %q, want %q", err, msg)
	}
}

// stringIDs returns the _id of every document of coll, whose ids are
// strings, with the raw driver.
func stringIDs(t *testing.T, coll *mongo.Collection) []string {
	t.Helper()
	ctx := context.Background()
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids
}

// deleteSlices deletes the documents of the given slices from coll (ids
// "<slice>" or "<slice>:<attempt>") with the raw driver: lost slices.
func deleteSlices(t *testing.T, coll *mongo.Collection, nums ...int64) {
	t.Helper()
	ctx := context.Background()
	deleted := 0
	for _, id := range stringIDs(t, coll) {
		num, _, _ := strings.Cut(id, ":")
		for _, n := range nums {
			if num == fmt.Sprintf("%09d", n) {
				res, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
				if err != nil {
					t.Fatal(err)
				}
				deleted += int(res.DeletedCount)
			}
		}
	}
	if deleted != len(nums) {
		t.Fatalf("deleted %d documents of slices %v from %s, want %d", deleted, nums, coll.Name(), len(nums))
	}
}
