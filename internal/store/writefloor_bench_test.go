package store

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
)

// BenchmarkWriteFloor measures, on the database under test, what the
// least durable per-job writes cost, to tell which design of the simple-job
// path could reach thousands of jobs a second (issue #14). Each way ends
// writeFloorJobs queued jobs (read up front, so that no selection is
// counted) with 8 writers:
//
//   - per-job: a unique-insert claim and an update by _id per job (the
//     raw-driver baseline of `bench --simple`);
//   - updates-8: per 8 jobs, one insertMany of claims and one update
//     command of 8 statements by _id (what the batched path writes);
//   - inserts-8, inserts-100: per 8 (or 100) jobs, one insertMany of
//     claims and one insertMany of end records: job state as inserted
//     events, no update;
//   - segments-100: inserts-100, and the run queue shed by dropping a
//     collection of 1,000 entries once its last job ends, instead of a
//     delete per job.
//
// It reports jobs/s for each and their ratios to per-job in the same run.
//
//	go test ./internal/store -run '^$' -bench WriteFloor -benchtime 2x
func BenchmarkWriteFloor(b *testing.B) {
	ctx := context.Background()
	c := dbtest.Client(b)
	ways := []struct {
		name  string
		batch int
		write func(ctx context.Context, db *mongo.Database, ids []bson.ObjectID) error
		setup func(ctx context.Context, db *mongo.Database, ids []bson.ObjectID) error
	}{
		{"per-job", 1, writePerJob, nil},
		{"updates-8", 8, writeBatchedUpdates, nil},
		{"inserts-8", 8, writeInsertedEnds, nil},
		{"inserts-100", 100, writeInsertedEnds, nil},
		{"segments-100", 100, writeEndsDroppingSegments, segmentQueue},
	}
	rates := make([]float64, len(ways))
	for i := 0; b.Loop(); i++ {
		for k, w := range ways {
			db := c.Database(fmt.Sprintf("floor_%d_%d", i, k))
			ids, err := floorJobs(ctx, db.Collection("jobs"))
			if err == nil && w.setup != nil {
				err = w.setup(ctx, db, ids)
			}
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := inBatches(ids, w.batch, func(batch []bson.ObjectID) error { return w.write(ctx, db, batch) }); err != nil {
				b.Fatalf("%s: %v", w.name, err)
			}
			rates[k] += float64(len(ids)) / time.Since(start).Seconds()
			if err := db.Drop(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	for k, w := range ways {
		b.ReportMetric(rates[k]/float64(b.N), w.name+"-jobs/s")
		if k > 0 {
			b.ReportMetric(rates[k]/rates[0], w.name+"/per-job")
		}
	}
}

const writeFloorJobs = 4000

// floorJobs inserts writeFloorJobs queued jobs and returns their ids.
func floorJobs(ctx context.Context, jobs *mongo.Collection) ([]bson.ObjectID, error) {
	docs := make([]any, writeFloorJobs)
	ids := make([]bson.ObjectID, writeFloorJobs)
	for i := range docs {
		ids[i] = bson.NewObjectID()
		docs[i] = bson.D{{Key: "_id", Value: ids[i]}, {Key: "i", Value: i}, {Key: "type", Value: "noop"}, {Key: "state", Value: "queued"},
			{Key: "priority", Value: 50}, {Key: "created_at", Value: time.Now()}}
	}
	for len(docs) > 0 {
		n := min(500, len(docs))
		if _, err := jobs.InsertMany(ctx, docs[:n]); err != nil {
			return nil, err
		}
		docs = docs[n:]
	}
	return ids, nil
}

// inBatches calls write with ids in batches of size, from 8 goroutines.
func inBatches(ids []bson.ObjectID, size int, write func([]bson.ObjectID) error) error {
	batches := make(chan []bson.ObjectID)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for batch := range batches {
				if err := write(batch); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for len(ids) > 0 {
		n := min(size, len(ids))
		select {
		case batches <- ids[:n]:
		case err := <-errs:
			close(batches)
			wg.Wait()
			return err
		}
		ids = ids[n:]
	}
	close(batches)
	wg.Wait()
	close(errs)
	return <-errs
}

func floorClaims(ids []bson.ObjectID) []any {
	docs := make([]any, len(ids))
	for i, id := range ids {
		docs[i] = bson.D{{Key: "_id", Value: id.Hex() + ":1"}, {Key: "by", Value: "floor"}, {Key: "at", Value: time.Now()}}
	}
	return docs
}

var floorEnd = bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: "completed"}, {Key: "completed_at", Value: time.Now()}}}}

func writePerJob(ctx context.Context, db *mongo.Database, ids []bson.ObjectID) error {
	for i, id := range ids {
		if _, err := db.Collection("claims").InsertOne(ctx, floorClaims(ids[i : i+1])[0]); err != nil {
			return err
		}
		if _, err := db.Collection("jobs").UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, floorEnd); err != nil {
			return err
		}
	}
	return nil
}

func writeBatchedUpdates(ctx context.Context, db *mongo.Database, ids []bson.ObjectID) error {
	if _, err := db.Collection("claims").InsertMany(ctx, floorClaims(ids), options.InsertMany().SetOrdered(false)); err != nil {
		return err
	}
	models := make([]mongo.WriteModel, len(ids))
	for i, id := range ids {
		models[i] = mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetUpdate(floorEnd)
	}
	_, err := db.Collection("jobs").BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	return err
}

func writeInsertedEnds(ctx context.Context, db *mongo.Database, ids []bson.ObjectID) error {
	if _, err := db.Collection("claims").InsertMany(ctx, floorClaims(ids), options.InsertMany().SetOrdered(false)); err != nil {
		return err
	}
	ends := make([]any, len(ids))
	for i, id := range ids {
		ends[i] = bson.D{{Key: "_id", Value: id}, {Key: "state", Value: "completed"}, {Key: "at", Value: time.Now()}}
	}
	_, err := db.Collection("ends").InsertMany(ctx, ends, options.InsertMany().SetOrdered(false))
	return err
}

// floorSegment is the number of run-queue entries of a segment.
const floorSegment = 1000

func floorSegmentName(i int) string { return fmt.Sprintf("queue_s%03d", i/floorSegment) }

// segmentQueue writes the jobs' run-queue entries in segments of
// floorSegment, in the jobs' order.
func segmentQueue(ctx context.Context, db *mongo.Database, ids []bson.ObjectID) error {
	for i := 0; i < len(ids); i += floorSegment {
		docs := make([]any, 0, floorSegment)
		for _, id := range ids[i:min(i+floorSegment, len(ids))] {
			docs = append(docs, bson.D{{Key: "_id", Value: id}, {Key: "type", Value: "noop"}})
		}
		if _, err := db.Collection(floorSegmentName(i)).InsertMany(ctx, docs); err != nil {
			return err
		}
	}
	return nil
}

// writeEndsDroppingSegments is writeInsertedEnds, and the drop of a
// segment by the batch that holds its last job (batches do not straddle
// segments: floorSegment is a multiple of the batch). It reads its last
// job by _id to know: a read per batch more than a design would make.
func writeEndsDroppingSegments(ctx context.Context, db *mongo.Database, ids []bson.ObjectID) error {
	if err := writeInsertedEnds(ctx, db, ids); err != nil {
		return err
	}
	last := ids[len(ids)-1]
	var doc struct {
		I int `bson:"i"`
	}
	if err := db.Collection("jobs").FindOne(ctx, bson.D{{Key: "_id", Value: last}}).Decode(&doc); err != nil {
		return err
	}
	if (doc.I+1)%floorSegment == 0 {
		return db.Collection(floorSegmentName(doc.I)).Drop(ctx)
	}
	return nil
}

// BenchmarkUpdateWriters measures what one update statement costs on the
// database under test, and whether more writers help: writeFloorJobs
// single UpdateOne calls by _id, from 1, 2 and 8 goroutines, and from 8
// that take turns (a mutex around each update, as if the process wrote one
// statement at a time). It reports updates/s and the CPU the process used
// meanwhile, in percent of one core (the embedded database runs in the
// test process, so that includes FerretDB and SQLite).
//
//	go test ./internal/store -run '^$' -bench UpdateWriters -benchtime 1x
func BenchmarkUpdateWriters(b *testing.B) {
	ctx := context.Background()
	c := dbtest.Client(b)
	ways := []struct {
		name    string
		writers int
		turns   bool
	}{{"1", 1, false}, {"2", 2, false}, {"8", 8, false}, {"8-in-turn", 8, true}}
	rates, cpus := make([]float64, len(ways)), make([]float64, len(ways))
	for i := 0; b.Loop(); i++ {
		for k, w := range ways {
			db := c.Database(fmt.Sprintf("updates_%d_%d", i, k))
			ids, err := floorJobs(ctx, db.Collection("jobs"))
			if err != nil {
				b.Fatal(err)
			}
			next := make(chan bson.ObjectID, len(ids))
			for _, id := range ids {
				next <- id
			}
			close(next)
			var turn sync.Mutex
			errs := make(chan error, w.writers)
			start, startCPU := time.Now(), processCPU()
			var wg sync.WaitGroup
			for range w.writers {
				wg.Go(func() {
					for id := range next {
						if w.turns {
							turn.Lock()
						}
						_, err := db.Collection("jobs").UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
							bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: "completed"}}}})
						if w.turns {
							turn.Unlock()
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			close(errs)
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
			rates[k] += float64(len(ids)) / elapsed.Seconds()
			cpus[k] += 100 * float64(processCPU()-startCPU) / float64(elapsed)
			if err := db.Drop(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	for k, w := range ways {
		b.ReportMetric(rates[k]/float64(b.N), w.name+"-updates/s")
		b.ReportMetric(cpus[k]/float64(b.N), w.name+"-cpu%")
	}
}

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
