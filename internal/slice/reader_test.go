package slice

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// bundle is a job's slices on a real (embedded) work database.
type bundle struct {
	st    *store.Store
	codec *encryption.Codec
	job   bson.ObjectID
	work  string // the work database's name
	mongo bool   // the MongoDB slice strategy (else FerretDB's)
}

// strategies runs test against both slice strategies of the store.
func strategies(t *testing.T, test func(t *testing.T, b *bundle)) {
	for _, mongo := range []bool{false, true} {
		name := "ferretdb"
		if mongo {
			name = "mongodb"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			jobs, work := dbtest.DBNames(t)
			st, err := store.Open(context.Background(), store.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close(context.Background()) })
			job := bson.NewObjectID()
			test(t, &bundle{st: st.WithSlices(mongo), codec: codec(t, job.Hex(), ring(t, "k:1"), true, true), job: job, work: work, mongo: mongo})
		})
	}
}

// run stores recs as an upload does (slices of size records, packed and
// sealed) and processes every slice as a server does, with fn.
func (b *bundle) run(t *testing.T, size int, recs []string, fn Func) {
	t.Helper()
	ctx := context.Background()
	slices := b.st.Slices()
	if err := slices.Prepare(ctx, b.job); err != nil {
		t.Fatal(err)
	}
	var in []store.InputSlice
	for i := 0; i < len(recs); i += size {
		part := recs[i:min(i+size, len(recs))]
		num := int64(len(in) + 1)
		sealed, err := Seal(b.codec, Input, num, pack(part...))
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, store.InputSlice{Num: num, First: int64(i + 1), Count: len(part), Records: sealed})
	}
	if err := slices.InsertInput(ctx, b.job, in); err != nil {
		t.Fatal(err)
	}
	f := slices.NewFeeder(b.job, "test", int64(len(in)))
	defer f.Close(ctx)
	for {
		c, err := f.Next(ctx)
		if errors.Is(err, store.ErrNoWork) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := Process(ctx, Task{Job: b.job.Hex(), Codec: b.codec, Slice: c.InputSlice, Collect: true, Fn: fn})
		if err != nil {
			t.Fatal(err)
		}
		if won, err := slices.Complete(ctx, b.job, c, p.Result); err != nil || !won {
			t.Fatalf("completing slice %d: %v, %v", c.Num, won, err)
		}
	}
}

func (b *bundle) reader(want, skip int64) *Reader {
	return &Reader{Store: b.st, Codec: b.codec, Job: b.job, Want: want, Skip: skip}
}

// numbered outputs "N:record" for record number N (its input is "N"), fails
// every third record and panics on every seventh.
func numbered(_ context.Context, rec []byte) ([]byte, error) {
	n, err := strconv.Atoi(string(rec))
	switch {
	case err != nil:
		return nil, err
	case n%7 == 0:
		panic(fmt.Sprintf("seven %d", n))
	case n%3 == 0:
		return nil, fmt.Errorf("three %d", n)
	}
	return []byte(string(rec) + ":ok"), nil
}

func inputs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(i + 1)
	}
	return out
}

func readOutput(t *testing.T, r *Reader) ([]string, error) {
	t.Helper()
	var out []string
	for rec, err := range r.Output(context.Background()) {
		if err != nil {
			return out, err
		}
		out = append(out, string(rec))
	}
	return out, nil
}

func readFailures(t *testing.T, r *Reader) ([]Failure, error) {
	t.Helper()
	var out []Failure
	for f, err := range r.Failures(context.Background()) {
		if err != nil {
			return out, err
		}
		out = append(out, f)
	}
	return out, nil
}

// TestReaderFollowsRecordsInInputOrder follows 95 records from upload to
// download: output and failed records interleave in the input, and each
// stream gives its own in input order; together they hold every record once.
func TestReaderFollowsRecordsInInputOrder(t *testing.T) {
	strategies(t, func(t *testing.T, b *bundle) {
		const n = 95
		b.run(t, 10, inputs(n), numbered)
		var wantOut []string
		var wantFailed []int64
		for i := 1; i <= n; i++ {
			if i%7 == 0 || i%3 == 0 {
				wantFailed = append(wantFailed, int64(i))
			} else {
				wantOut = append(wantOut, fmt.Sprintf("%d:ok", i))
			}
		}
		out, err := readOutput(t, b.reader(int64(len(wantOut)), 0))
		if err != nil || !reflect.DeepEqual(out, wantOut) {
			t.Fatalf("output %q, %v; want %q", out, err, wantOut)
		}
		fs, err := readFailures(t, b.reader(int64(len(wantFailed)), 0))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int64]bool{}
		for i, f := range fs {
			if i >= len(wantFailed) || f.Number != wantFailed[i] || string(f.Record) != strconv.FormatInt(f.Number, 10) {
				t.Fatalf("failed record %d: %+v, want number %v", i, f, wantFailed)
			}
			if wantMsg := fmt.Sprintf("three %d", f.Number); f.Number%7 != 0 && f.Message != wantMsg {
				t.Errorf("record %d: message %q, want %q", f.Number, f.Message, wantMsg)
			}
			if f.Number%7 == 0 && !strings.HasPrefix(f.Message, fmt.Sprintf("panic: seven %d\n", f.Number)) {
				t.Errorf("record %d: message %q", f.Number, f.Message)
			}
			seen[f.Number] = true
		}
		for _, o := range out {
			num, _ := strconv.ParseInt(strings.TrimSuffix(o, ":ok"), 10, 64)
			if seen[num] {
				t.Fatalf("record %d both output and failed", num)
			}
			seen[num] = true
		}
		if len(seen) != n || len(fs) != len(wantFailed) {
			t.Fatalf("%d of %d records accounted for (%d failed)", len(seen), n, len(fs))
		}

		// Skip passes over records (whole slices unopened), then streams on.
		out, err = readOutput(t, b.reader(int64(len(wantOut)), 15))
		if err != nil || !reflect.DeepEqual(out, wantOut[15:]) {
			t.Fatalf("output after 15: %q, %v", out, err)
		}
		fs, err = readFailures(t, b.reader(0, 30))
		if err != nil || len(fs) != len(wantFailed)-30 || fs[0].Number != wantFailed[30] {
			t.Fatalf("failed records after 30: %+v, %v", fs, err)
		}

		// A consumer may stop early.
		for rec, err := range b.reader(int64(len(wantOut)), 0).Output(context.Background()) {
			if err != nil || string(rec) != "1:ok" {
				t.Fatalf("first record %q, %v", rec, err)
			}
			break
		}
	})
}

// TestReaderFailsClosed: a stream that lacks records the job recorded is an
// error, never a short success.
func TestReaderFailsClosed(t *testing.T) {
	strategies(t, func(t *testing.T, b *bundle) {
		b.run(t, 10, inputs(40), numbered) // 23 output records, 17 failed

		// A collection that is not there: an error before any record.
		other := &Reader{Store: b.st, Codec: b.codec, Job: bson.NewObjectID(), Want: 23}
		for rec, err := range other.Output(context.Background()) {
			var se *ShortError
			if !errors.As(err, &se) || *se != (ShortError{Kind: Output, Want: 23}) {
				t.Fatalf("missing collection: %q, %v", rec, err)
			}
		}

		// More records wanted than stored: the error comes after the last.
		out, err := readOutput(t, b.reader(25, 0))
		var se *ShortError
		if len(out) != 23 || !errors.As(err, &se) || *se != (ShortError{Kind: Output, Want: 25, Got: 23}) {
			t.Fatalf("short output: %d records, %v", len(out), err)
		}
		if want := "only 23 of 25 output records are in the work database"; err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
		fs, err := readFailures(t, b.reader(18, 0))
		if len(fs) != 17 || !errors.As(err, &se) || *se != (ShortError{Kind: Failed, Want: 18, Got: 17}) {
			t.Fatalf("short failed records: %d, %v", len(fs), err)
		}

		// A slice lost from the work database: the stream never looks
		// complete. FerretDB's strategy names the slice; on MongoDB the loss
		// shows in the count (slice 2 held 6 output records).
		deleteSlice(t, b, "output", 2)
		out, err = readOutput(t, b.reader(23, 0))
		var sm *store.SliceMissingError
		switch {
		case b.mongo && (!errors.As(err, &se) || *se != (ShortError{Kind: Output, Want: 23, Got: 17})):
			t.Fatalf("lost slice: %d records, %v", len(out), err)
		case !b.mongo && (!errors.As(err, &sm) || sm.Num != 2):
			t.Fatalf("lost slice: %d records, %v", len(out), err)
		}

		// The wrong key: the slice is named and nothing is garbage.
		wrong := &Reader{Store: b.st, Codec: codec(t, b.job.Hex(), ring(t, "x:9"), true, true), Job: b.job}
		fs, err = readFailures(t, wrong)
		if len(fs) != 0 || !errors.Is(err, encryption.ErrNoKey) || !strings.HasPrefix(err.Error(), "failed records of slice 1: ") {
			t.Fatalf("wrong key: %+v, %v", fs, err)
		}
	})
}

// deleteSlice deletes the document(s) of slice num of kind with the raw
// driver: the work database lost it.
func deleteSlice(t *testing.T, b *bundle, kind string, num int64) {
	t.Helper()
	ctx := context.Background()
	coll := dbtest.Client(t).Database(b.work).Collection("slices_" + b.job.Hex() + "_" + kind)
	id := fmt.Sprintf("%09d", num)
	res, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{id, id + ":1"}}}}})
	if err != nil || res.DeletedCount != 1 {
		t.Fatalf("deleting slice %d of %s: %v (%d deleted)", num, coll.Name(), err, res.DeletedCount)
	}
}
