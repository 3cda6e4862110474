package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// ErrNoWork is returned by a Feeder when a full pass over the job's input found
// no slice it could claim.
var ErrNoWork = errors.New("no slice to claim")

// InputSlice is one slice of a job's input: count records starting at record
// number First (1-based), packed into Records.
type InputSlice struct {
	Num     int64  `bson:"-"`
	First   int64  `bson:"first"`
	Count   int    `bson:"count"`
	Records []byte `bson:"records"`
}

// Claimed is a slice a worker owns, at one attempt.
type Claimed struct {
	InputSlice
	Attempt int
}

// Result is what processing a slice produced.
type Result struct {
	Output      []byte // packed output records (nil when output is not collected)
	OutputCount int
	Failed      []byte // packed failure records
	FailedCount int
	// Batch is what a slice of a type with categories, statistics or
	// dropped records adds; nil stores the slice exactly as before.
	Batch *BatchResult
}

// BatchResult is a slice's category outputs, statistics and dropped
// records. It is stored with the slice's output (MongoDB) or its done
// marker (FerretDB), so it counts exactly once, as the output does.
type BatchResult struct {
	// Categories are the slice's sealed outputs of each category (those
	// with records), in the type's order.
	Categories []CategoryOutput
	// Statistics are the slice's counters (rocketjob.Inc), nil when none.
	Statistics map[string]int64
	// Dropped counts the records that gave no output and did not fail.
	Dropped int64
}

// CategoryOutput is one slice's output records of one category.
type CategoryOutput struct {
	Name    string `bson:"name"`
	Count   int    `bson:"count"`
	Records []byte `bson:"records"` // packed, sealed like an output slice
}

// OutputSlice is one slice's collected output, as streamed by a download.
type OutputSlice struct {
	Num     int64
	Count   int
	Records []byte
	// Categories are the slice's category outputs (a type with categories).
	Categories []CategoryOutput
}

// Totals sums what a job's finished slices added beyond their records.
type Totals struct {
	Categories map[string]int64 // output records by category
	Statistics map[string]int64
	Dropped    int64
}

// add adds one slice's batch result to t.
func (t *Totals) add(cats map[string]int64, stats map[string]int64, dropped int64) {
	for k, v := range cats {
		if t.Categories == nil {
			t.Categories = map[string]int64{}
		}
		t.Categories[k] += v
	}
	for k, v := range stats {
		if t.Statistics == nil {
			t.Statistics = map[string]int64{}
		}
		t.Statistics[k] += v
	}
	t.Dropped += dropped
}

// counts returns the category counts of b's categories.
func (b *BatchResult) counts() map[string]int64 {
	if b == nil || len(b.Categories) == 0 {
		return nil
	}
	m := make(map[string]int64, len(b.Categories))
	for _, c := range b.Categories {
		m[c.Name] += int64(c.Count)
	}
	return m
}

// fields returns the stored fields of b: category counts, statistics,
// dropped records (those that are not empty).
func (b *BatchResult) fields() bson.D {
	if b == nil {
		return nil
	}
	var d bson.D
	if m := b.counts(); m != nil {
		d = append(d, bson.E{Key: "cats", Value: m})
	}
	if len(b.Statistics) > 0 {
		d = append(d, bson.E{Key: "stats", Value: b.Statistics})
	}
	if b.Dropped > 0 {
		d = append(d, bson.E{Key: "dropped", Value: b.Dropped})
	}
	return d
}

// categoryDocs returns b's category outputs as stored in an output document.
func (b *BatchResult) categoryDocs() bson.A {
	if b == nil || len(b.Categories) == 0 {
		return nil
	}
	a := make(bson.A, len(b.Categories))
	for i, c := range b.Categories {
		a[i] = bson.D{{Key: "name", Value: c.Name}, {Key: "count", Value: c.Count}, {Key: "records", Value: bson.Binary{Data: c.Records}}}
	}
	return a
}

// Progress is a job's slice counts, read on demand (never on a hot path).
type Progress struct {
	Done          int64 // slices finished (with or without failed records)
	Running       int64 // slices claimed and not finished
	Failed        int64 // finished slices with failed records
	Processed     int64 // records finished (output or failed)
	FailedRecords int64
}

// SliceStore is the slice claim strategy: one for MongoDB (atomic
// findOneAndUpdate on the input slices) and one for FerretDB (insert-only
// claims, streaming reads). Both pass one conformance suite.
type SliceStore interface {
	// Prepare creates what a job's slices need (collections, indexes) before
	// its upload writes the first one, while there is room: on FerretDB a
	// collection is created in two steps that a full disk can leave half
	// done, which would make every later write to it fail. An upload calls
	// it once; a job's slices work without it, only less robustly.
	Prepare(ctx context.Context, job bson.ObjectID) error
	// InsertInput bulk-inserts input slices (upload).
	InsertInput(ctx context.Context, job bson.ObjectID, slices []InputSlice) error
	// NewFeeder returns a claimer of the slices of a job with sliceCount
	// slices, for one server process. A Feeder is safe for concurrent use by
	// the server's workers.
	NewFeeder(job bson.ObjectID, server string, sliceCount int64) Feeder
	// Complete records a claimed slice's result, exactly once per slice: it
	// reports false when another attempt of the slice already completed (the
	// result is then discarded).
	Complete(ctx context.Context, job bson.ObjectID, c *Claimed, r Result) (bool, error)
	// CompleteMany is Complete for several slices of one job, in as few
	// writes as the strategy allows; won[i] reports Complete's result for
	// done[i].
	CompleteMany(ctx context.Context, job bson.ObjectID, done []Completion) (won []bool, err error)
	// Release gives a claimed, unfinished slice back (graceful stop).
	Release(ctx context.Context, job bson.ObjectID, c *Claimed) error
	// RequeueServer gives back every unfinished slice claimed by server (a
	// zombie); it matches the exact server name.
	RequeueServer(ctx context.Context, job bson.ObjectID, server string) (int, error)
	// RetryFailed requeues the finished slices that have failed records.
	RetryFailed(ctx context.Context, job bson.ObjectID) (int, error)
	// AllDone reports whether every one of the job's sliceCount slices is
	// finished (with or without failed records). It is cheaper than Progress.
	AllDone(ctx context.Context, job bson.ObjectID, sliceCount int64) (bool, error)
	// Progress counts slices and records of a job with sliceCount slices
	// holding recordCount records.
	Progress(ctx context.Context, job bson.ObjectID, sliceCount, recordCount int64) (Progress, error)
	// Totals sums the category counts, statistics and dropped records of
	// the job's finished slices, each slice counted once.
	Totals(ctx context.Context, job bson.ObjectID) (Totals, error)
	// StreamOutput calls fn for each slice's output in slice order.
	StreamOutput(ctx context.Context, job bson.ObjectID, fn func(OutputSlice) error) error
	// StreamFailed calls fn for each finished slice's failure records in slice order.
	StreamFailed(ctx context.Context, job bson.ObjectID, fn func(OutputSlice) error) error
	// DropInput removes the input of a completed job.
	DropInput(ctx context.Context, job bson.ObjectID) error
	// Drop removes all of a job's slice collections.
	Drop(ctx context.Context, job bson.ObjectID) error
}

// Completion is a claimed slice with its result.
type Completion struct {
	*Claimed
	Result
}

// Feeder claims the slices of one job for one server. A feeder may claim a
// small block of slices at once and hand them out one by one.
type Feeder interface {
	// Next returns the next claimed slice, or ErrNoWork when none is left
	// to claim (for now).
	Next(ctx context.Context) (*Claimed, error)
	// Release gives back the slices claimed but not yet handed out by Next.
	// Slices it could not give back stay with the feeder: the next Release
	// (or Next) takes them again.
	Release(ctx context.Context) error
	// Close releases the claimed slices and the feeder's cursor.
	Close(ctx context.Context) error
}

// Collection names of a job's slices on the work database.
func sliceColl(db *mongo.Database, job bson.ObjectID, kind string) *mongo.Collection {
	return db.Collection("slices_" + job.Hex() + "_" + kind)
}

const sliceKinds = "input claims requeue done output failed"

// inputChunk is how many input slices share one collection on FerretDB:
// slices 1 to inputChunk are in slices_<job>_input, the next inputChunk in
// slices_<job>_input_2, and so on. A feeder reads the claimable slices of one
// chunk at once and closes its cursor before it hands them out: on SQLite an
// open cursor holds a read transaction, and while one is open the
// write-ahead log cannot start over, so one cursor open through a whole
// job's input let the log grow with everything the servers wrote during the
// pass (123 MB for a 50 MB, 1M-line file; gigabytes for the files batch
// users send). A feeder holds at most two chunks of slices in memory, the
// one it hands out and the next, read ahead (about 2.5 MB each at 100
// records of 50 bytes a slice). The MongoDB strategy keeps one input
// collection.
const inputChunk = 512

// chunkOf returns the input chunk (1-based) that holds slice num.
func chunkOf(num int64) int { return int((num-1)/inputChunk) + 1 }

// inputKind returns the kind of the collection of input chunk c.
func inputKind(c int) string {
	if c <= 1 {
		return "input"
	}
	return "input_" + strconv.Itoa(c)
}

// jobKinds returns the kinds of job's slice collections on db whose kind is
// prefix or starts with prefix+"_" (for "input": the input chunks, and any
// input_rewrite or input_old a rewrite left behind), sorted by name.
func jobKinds(ctx context.Context, db *mongo.Database, job bson.ObjectID, prefix string) ([]string, error) {
	names, err := collectionNames(ctx, db)
	if err != nil {
		return nil, err
	}
	var kinds []string
	for _, n := range names {
		k, ok := strings.CutPrefix(n, "slices_"+job.Hex()+"_")
		if ok && (k == prefix || strings.HasPrefix(k, prefix+"_")) {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	return kinds, nil
}

// inputKinds returns the kinds of job's input collections: "input" and the
// chunks "input_N" (FerretDB).
func inputKinds(ctx context.Context, db *mongo.Database, job bson.ObjectID) ([]string, error) {
	kinds, err := jobKinds(ctx, db, job, "input")
	return slices.DeleteFunc(kinds, func(k string) bool {
		n, ok := strings.CutPrefix(k, "input_")
		if !ok {
			return k != "input"
		}
		_, err := strconv.Atoi(n)
		return err != nil
	}), err
}

func dropAll(ctx context.Context, db *mongo.Database, job bson.ObjectID, kinds string) error {
	var errs []error
	for _, k := range strings.Fields(kinds) {
		errs = append(errs, retry(ctx, func() error { return sliceColl(db, job, k).Drop(ctx) }))
	}
	return errors.Join(errs...)
}

// sliceID is a slice's _id: the zero-padded slice number, so ids sort right.
func sliceID(num int64) string { return fmt.Sprintf("%09d", num) }

// attemptID is "<slice>:<attempt>", the id of per-attempt documents.
func attemptID(num int64, attempt int) string { return fmt.Sprintf("%09d:%d", num, attempt) }

func parseSliceID(id string) (int64, error) { return strconv.ParseInt(id, 10, 64) }

func parseAttemptID(id string) (num int64, attempt int, err error) {
	s, a, ok := strings.Cut(id, ":")
	if !ok {
		return 0, 0, fmt.Errorf("bad slice attempt id %q", id)
	}
	if num, err = strconv.ParseInt(s, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bad slice attempt id %q", id)
	}
	if attempt, err = strconv.Atoi(a); err != nil {
		return 0, 0, fmt.Errorf("bad slice attempt id %q", id)
	}
	return num, attempt, nil
}

// RewriteSlices rewrites the records of every document of one of a job's
// slice collections (kind: "input", "output" or "failed") with fn, which gets
// the slice number, what the records are (sub: "" for the collection's own
// records, "category:NAME" for an output category's) and the stored
// records. It writes a new collection and renames it over the old one, so it
// never updates documents in place (slow and not atomic on FerretDB). The
// job must not be processing meanwhile.
func (s *Store) RewriteSlices(ctx context.Context, job bson.ObjectID, kind string, fn func(num int64, sub string, records []byte) ([]byte, error)) (int, error) {
	if kind != "input" {
		return s.rewriteSlices(ctx, job, kind, fn)
	}
	kinds, err := inputKinds(ctx, s.workDB, job)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, k := range kinds {
		n, err := s.rewriteSlices(ctx, job, k, fn)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// rewriteSlices is RewriteSlices for one collection.
func (s *Store) rewriteSlices(ctx context.Context, job bson.ObjectID, kind string, fn func(num int64, sub string, records []byte) ([]byte, error)) (int, error) {
	from := sliceColl(s.workDB, job, kind)
	to := sliceColl(s.workDB, job, kind+"_rewrite")
	if err := to.Drop(ctx); err != nil {
		return 0, err
	}
	cur, err := from.Find(ctx, bson.D{}, options.Find().SetBatchSize(64))
	if err != nil {
		return 0, err
	}
	defer closeCursor(ctx, cur)
	var batch []any
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := to.InsertMany(ctx, batch)
		batch = batch[:0]
		return err
	}
	for cur.Next(ctx) {
		var doc bson.D
		if err := bson.Unmarshal(cur.Current, &doc); err != nil {
			return n, err
		}
		id, _ := cur.Current.Lookup("_id").StringValueOK()
		num, err := parseSliceID(strings.SplitN(id, ":", 2)[0])
		if err != nil {
			return n, err
		}
		for i, e := range doc {
			switch e.Key {
			case "records":
				bin, ok := e.Value.(bson.Binary)
				if !ok {
					return n, fmt.Errorf("slice %s: records are not binary", id)
				}
				out, err := fn(num, "", bin.Data)
				if err != nil {
					return n, fmt.Errorf("slice %d: %w", num, err)
				}
				doc[i].Value = bson.Binary{Data: out}
			case "categories":
				if err := rewriteCategories(doc[i].Value, func(name string, records []byte) ([]byte, error) {
					return fn(num, "category:"+name, records)
				}); err != nil {
					return n, fmt.Errorf("slice %d: %w", num, err)
				}
			}
		}
		batch = append(batch, doc)
		n++
		if len(batch) >= 256 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return n, err
	}
	if err := flush(); err != nil {
		return n, err
	}
	if n == 0 {
		return 0, to.Drop(ctx)
	}
	// FerretDB has no renameCollection with dropTarget: move the old
	// collection aside, put the new one in place, then drop the old one.
	old := sliceColl(s.workDB, job, kind+"_old")
	if err := old.Drop(ctx); err != nil {
		return n, err
	}
	if err := s.rename(ctx, from.Name(), old.Name()); err != nil {
		return n, err
	}
	if err := s.rename(ctx, to.Name(), from.Name()); err != nil {
		return n, errors.Join(err, s.rename(ctx, old.Name(), from.Name()))
	}
	return n, old.Drop(ctx)
}

// rewriteCategories rewrites, in place, the records of each element
// {name, count, records} of an output document's categories array.
func rewriteCategories(v any, fn func(name string, records []byte) ([]byte, error)) error {
	list, ok := v.(bson.A)
	if !ok {
		return fmt.Errorf("categories are a %T, not an array", v)
	}
	for _, item := range list {
		cat, ok := item.(bson.D)
		if !ok {
			return fmt.Errorf("a category is a %T, not a document", item)
		}
		var name string
		for _, e := range cat {
			if e.Key == "name" {
				name, _ = e.Value.(string)
			}
		}
		for j, e := range cat {
			if e.Key != "records" {
				continue
			}
			bin, ok := e.Value.(bson.Binary)
			if !ok {
				return fmt.Errorf("category %q: records are not binary", name)
			}
			out, err := fn(name, bin.Data)
			if err != nil {
				return fmt.Errorf("category %q: %w", name, err)
			}
			cat[j].Value = bson.Binary{Data: out}
		}
	}
	return nil
}

func (s *Store) rename(ctx context.Context, from, to string) error {
	cmd := bson.D{
		{Key: "renameCollection", Value: s.workDB.Name() + "." + from},
		{Key: "to", Value: s.workDB.Name() + "." + to},
	}
	if err := s.workClient.Database("admin").RunCommand(ctx, cmd).Err(); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", from, to, err)
	}
	return nil
}

// OrphanSliceJobs returns the ids of jobs that have slice collections on the
// work database but no job document, and whose id is older than cutoff: the
// remains of an upload whose process was killed (a failed upload cleans up
// after itself) or of a slice written while its job was destroyed.
func (s *Store) OrphanSliceJobs(ctx context.Context, cutoff time.Time) ([]bson.ObjectID, error) {
	names, err := s.WorkCollections(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[bson.ObjectID]bool{}
	var orphans []bson.ObjectID
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, "slices_")
		if !ok || len(rest) < 24 {
			continue
		}
		id, err := bson.ObjectIDFromHex(rest[:24])
		if err != nil || seen[id] || !id.Timestamp().Before(cutoff) {
			continue
		}
		seen[id] = true
		if _, err := s.GetJob(ctx, id); errors.Is(err, model.ErrJobNotFound) {
			orphans = append(orphans, id)
		} else if err != nil {
			return orphans, err
		}
	}
	return orphans, nil
}
