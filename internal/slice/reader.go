package slice

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// ShortError is the error of a Reader whose stream delivered fewer records
// than it wanted: the work database lacks some of the job's records (it is
// not the database the job ran on, or it lost slices). sliced turns it into
// an *sliced.IncompleteError.
type ShortError struct {
	// Kind is Output or Failed.
	Kind Kind
	// Want is the Reader's Want; Got how many records the stream held (for
	// Failed, the input records the failed records stand for).
	Want, Got int64
}

func (e *ShortError) Error() string {
	what := "output records"
	if e.Kind == Failed {
		what = "failed records"
	}
	return fmt.Sprintf("only %d of %d %s are in the work database", e.Got, e.Want, what)
}

// Reader streams one job's stored output records or failed records in
// input order (slice order, then record order inside a slice). It opens one
// slice at a time: memory holds a slice (and the slice store's bounded
// reorder buffer), never the job's collection.
type Reader struct {
	// Store holds the job's slices.
	Store *store.Store
	// Codec is the job's codec, which opens its slices.
	Codec *encryption.Codec
	// Job is the job's id.
	Job bson.ObjectID
	// Want, when above zero, is how many records the whole stream must hold
	// (for failed records: how many input records they stand for, a slice
	// that failed as a whole counting all its records). The stream then
	// fails closed: a missing collection is a *ShortError before the first
	// record, and a stream that ends short is one after the last.
	Want int64
	// Skip is how many records to pass over first (for failed records: how
	// many failed records). Output slices wholly before it are passed over
	// without being opened.
	Skip int64
	// Category, when set, makes Output stream that output category's
	// records (of a type with categories) instead of the default output.
	Category string
}

// part is the records of kind in a streamed slice: its count and sealed
// body (nil when the slice has none).
func (r *Reader) part(kind Kind, s store.OutputSlice) (int, []byte) {
	if kind == Output || kind == Failed {
		return s.Count, s.Records
	}
	for _, c := range s.Categories {
		if Category(c.Name) == kind {
			return c.Count, c.Records
		}
	}
	return 0, nil
}

// errStop ends a stream whose consumer stopped.
var errStop = errors.New("stream stopped")

// Output yields the job's output records in input order. The records alias
// the opened slice: keep them, but do not modify them. The last pair carries
// the error, if any: a slice that does not open or is corrupt (naming the
// slice), an error of the slice store (store.SliceMissingError when it
// lacks a finished slice's output), or a *ShortError.
func (r *Reader) Output(ctx context.Context) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		var pos int64
		kind := Output
		if r.Category != "" {
			kind = Category(r.Category)
		}
		skip := func(s store.OutputSlice) bool {
			n, _ := r.part(kind, s)
			if pos+int64(n) > r.Skip {
				return false
			}
			pos += int64(n)
			return true
		}
		err := r.walk(ctx, kind, skip, func(num int64, plain []byte) error {
			for rec, err := range Records(plain) {
				if err != nil {
					return fmt.Errorf("output of slice %d: %w", num, err)
				}
				if pos++; pos <= r.Skip {
					continue
				}
				if !yield(rec, nil) {
					return errStop
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(nil, err)
		}
	}
}

// Failures yields the job's failed records in input order, each with its
// error message; errors as for Output.
func (r *Reader) Failures(ctx context.Context) iter.Seq2[Failure, error] {
	return func(yield func(Failure, error) bool) {
		var pos int64
		never := func(store.OutputSlice) bool { return false }
		err := r.walk(ctx, Failed, never, func(num int64, plain []byte) error {
			for f, err := range Failures(plain) {
				if err != nil {
					return fmt.Errorf("failed records of slice %d: %w", num, err)
				}
				if pos++; pos <= r.Skip {
					continue
				}
				if !yield(f, nil) {
					return errStop
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(Failure{}, err)
		}
	}
}

// walk streams the job's slices of kind in slice order, opens each one that
// skip does not pass over and hands it to each, and checks the stream
// against Want.
func (r *Reader) walk(ctx context.Context, kind Kind, skip func(store.OutputSlice) bool, each func(num int64, plain []byte) error) error {
	if r.Want > 0 {
		if err := r.present(ctx, kind); err != nil {
			return err
		}
	}
	stream := r.Store.Slices().StreamOutput
	if kind == Failed {
		stream = r.Store.Slices().StreamFailed
	}
	var got int64
	err := stream(ctx, r.Job, func(s store.OutputSlice) error {
		n, sealed := r.part(kind, s)
		got += int64(n)
		if skip(s) || (kind != Output && kind != Failed && n == 0) {
			return nil
		}
		plain, err := Open(r.Codec, kind, s.Num, sealed)
		if err != nil {
			return fmt.Errorf("%s of slice %d: %w", kind.what(), s.Num, err)
		}
		return each(s.Num, plain)
	})
	if err != nil {
		return err
	}
	if got < r.Want {
		return &ShortError{Kind: kind, Want: r.Want, Got: got}
	}
	return nil
}

// present checks up front that the work database has the job's collection
// of kind: one listing of collection names instead of a stream that finds
// nothing, so a download from the wrong database fails before its first
// byte.
func (r *Reader) present(ctx context.Context, kind Kind) error {
	names, err := r.Store.WorkCollections(ctx)
	if err != nil {
		return fmt.Errorf("job %s: listing the work database: %w", r.Job.Hex(), err)
	}
	coll := kind
	if kind != Failed {
		coll = Output // categories live in the output collection
	}
	if slices.Contains(names, "slices_"+r.Job.Hex()+"_"+string(coll)) {
		return nil
	}
	return &ShortError{Kind: kind, Want: r.Want}
}
