package store_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
)

// TestInputInChunks: a job of 2,500 slices, more than one input chunk on
// FerretDB (512 slices a collection), is claimed exactly once slice by
// slice across the chunks, rewritten whole by RewriteSlices, and its input
// dropped whole by DropInput. The findAndModify strategy (one input
// collection) runs it on MongoDB only: on FerretDB each of its claims scans
// the input (2,500 slices took minutes).
func TestInputInChunks(t *testing.T) {
	const n = 2500
	for _, mongo := range []bool{false, true} {
		t.Run(fmt.Sprintf("mongo=%v", mongo), func(t *testing.T) {
			if mongo {
				dbtest.RequireMongoDB(t)
			}
			ctx := context.Background()
			st, jobsDB := openNamed(t)
			st = st.WithSlices(mongo)
			s := st.Slices()
			job := bson.NewObjectID()
			upload(t, s, job, n)
			work := dbtest.Client(t).Database(strings.TrimSuffix(jobsDB, "_jobs") + "_work")
			inputs := func() []string {
				names, err := work.ListCollectionNames(ctx, bson.D{})
				if err != nil {
					t.Fatal(err)
				}
				return slices.DeleteFunc(names, func(name string) bool {
					return !strings.HasPrefix(name, "slices_"+job.Hex()+"_input")
				})
			}
			want := 1
			if !mongo && !dbtest.OnMongoDB() {
				want = 5 // 512 slices a collection
			}
			if got := inputs(); len(got) != want {
				t.Fatalf("input collections %v, want %d", got, want)
			}

			rewritten, err := st.RewriteSlices(ctx, job, "input", func(num int64, _ string, records []byte) ([]byte, error) {
				return append(bytes.Clone(records), '!'), nil
			})
			if err != nil || rewritten != n {
				t.Fatalf("rewrote %d input slices (%v), want %d", rewritten, err, n)
			}

			seen := map[int64]int{}
			for _, c := range claimAll(t, s.NewFeeder(job, "s1", n)) {
				seen[c.Num]++
				if want := fmt.Sprintf("slice-%d!", c.Num); string(c.Records) != want {
					t.Fatalf("slice %d holds %q, want %q", c.Num, c.Records, want)
				}
				complete(t, s, job, c, 0)
			}
			if len(seen) != n {
				t.Fatalf("%d slices claimed, want %d", len(seen), n)
			}
			for num, k := range seen {
				if k != 1 {
					t.Fatalf("slice %d claimed %d times", num, k)
				}
			}
			if err := s.DropInput(ctx, job); err != nil {
				t.Fatal(err)
			}
			if got := inputs(); len(got) != 0 {
				t.Fatalf("input collections left after DropInput: %v", got)
			}
			if got := len(outputs(t, s, job)); got != n {
				t.Fatalf("%d outputs after DropInput, want %d", got, n)
			}
		})
	}
}

// TestInputUploadedWhole: a job uploaded before the input was chunked holds
// all its slices in slices_<job>_input; the feeder still claims each once,
// holding at most one chunk's worth in memory per pass.
func TestInputUploadedWhole(t *testing.T) {
	dbtest.RequireFerretDB(t)
	const n = 1300
	ctx := context.Background()
	st, jobsDB := openNamed(t)
	s := st.Slices()
	job := bson.NewObjectID()
	work := dbtest.Client(t).Database(strings.TrimSuffix(jobsDB, "_jobs") + "_work")
	docs := make([]any, n)
	for i := range docs {
		num := int64(i + 1)
		docs[i] = bson.D{{Key: "_id", Value: fmt.Sprintf("%09d", num)}, {Key: "first", Value: num}, {Key: "count", Value: 1},
			{Key: "records", Value: bson.Binary{Data: fmt.Appendf(nil, "slice-%d", num)}}}
	}
	if _, err := work.Collection("slices_"+job.Hex()+"_input").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	for _, c := range claimAll(t, s.NewFeeder(job, "s1", n)) {
		seen[c.Num]++
		complete(t, s, job, c, 0)
	}
	if len(seen) != n {
		t.Fatalf("%d slices claimed, want %d", len(seen), n)
	}
	for num, k := range seen {
		if k != 1 {
			t.Fatalf("slice %d claimed %d times", num, k)
		}
	}
}
