package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/slice"
)

// sliceDoc is a slice document of the baseline, in the layout rocketjob's
// FerretDB strategy uses for input.
type sliceDoc struct {
	ID      string `bson:"_id"`
	First   int64  `bson:"first,omitempty"`
	Count   int    `bson:"count"`
	Records []byte `bson:"records"`
}

// baseline is the least I/O any correct implementation needs, with the
// driver alone: every input slice is inserted once (insertMany), read once
// (one cursor over the collection in natural order: on FerretDB a find by
// _id scans the collection, so point reads would be quadratic), processed,
// written once (insertMany) and read back once (one cursor). No claims, no
// progress, no failure handling: it cannot survive a crash or share work
// with another process.
func (b *bencher) baseline(ctx context.Context, db *mongo.Database, s *Side) error {
	cfg := b.cfg
	in, out := db.Collection("input"), db.Collection("output")
	err := b.phase(s, PhaseInsert, &s.Insert, func() error {
		var err error
		s.Slices, err = baselineInsert(ctx, in, Lines(cfg.N), cfg.SliceSize)
		return err
	})
	if err != nil {
		return err
	}
	err = b.phase(s, PhaseProcess, &s.Process, func() error {
		return baselineProcess(ctx, in, out, cfg.Workers)
	})
	if err != nil {
		return err
	}
	return b.phase(s, PhaseReadBack, &s.ReadBack, func() error {
		v := newVerifier(cfg.N)
		if err := baselineReadBack(ctx, out, s.Slices, v); err != nil {
			return err
		}
		s.Records = int64(v.count)
		return v.done()
	})
}

// baselineInsert reads lines from r, packs them into slices with
// slice.Append and bulk-inserts them in sliced.Upload's batches (one
// goroutine, like an upload). It returns the number of slices.
func baselineInsert(ctx context.Context, coll *mongo.Collection, r io.Reader, sliceSize int) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		batch      []any
		batchBytes int
		cur        *sliceDoc
		slices     int64
		records    int64
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := coll.InsertMany(ctx, batch)
		batch, batchBytes = batch[:0], 0
		return err
	}
	closeSlice := func() error {
		batch = append(batch, cur)
		batchBytes += len(cur.Records)
		cur = nil
		if len(batch) >= insertBatch || batchBytes >= insertBytes {
			return flush()
		}
		return nil
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return slices, err // lines are short: bufio.ErrBufferFull cannot happen
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		if cur == nil {
			slices++
			cur = &sliceDoc{ID: sliceID(slices), First: records + 1, Records: make([]byte, 0, 4096)}
		}
		cur.Records = slice.Append(cur.Records, line)
		cur.Count++
		records++
		if cur.Count >= sliceSize {
			if err := closeSlice(); err != nil {
				return slices, err
			}
		}
	}
	if cur != nil {
		if err := closeSlice(); err != nil {
			return slices, err
		}
	}
	return slices, flush()
}

// baselineProcess streams the input with one cursor and hands the slices to
// workers goroutines, which reverse the records and insertMany their output
// slices outputBatch at a time. Several workers are fair: rocketjob's server
// also reads the input through one cursor per job (its feeder) and lets its
// workers process and write in parallel.
func baselineProcess(ctx context.Context, in, out *mongo.Collection, workers int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan sliceDoc, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			batch := make([]any, 0, outputBatch)
			flush := func() bool {
				if len(batch) == 0 {
					return true
				}
				if _, err := out.InsertMany(ctx, batch); err != nil {
					cancel(fmt.Errorf("writing output: %w", err))
					return false
				}
				batch = batch[:0]
				return true
			}
			for d := range work {
				o := sliceDoc{ID: d.ID, Count: d.Count, Records: make([]byte, 0, len(d.Records))}
				for rec, err := range slice.Records(d.Records) {
					if err != nil {
						cancel(fmt.Errorf("slice %s: %w", d.ID, err))
						return
					}
					o.Records = slice.Append(o.Records, reverse(rec)) // rec aliases d.Records, read once
				}
				batch = append(batch, o)
				if len(batch) == outputBatch && !flush() {
					return
				}
			}
			flush()
		})
	}
	readErr := func() error {
		defer close(work)
		cur, err := in.Find(ctx, bson.D{}, options.Find().SetBatchSize(cursorBatch))
		if err != nil {
			return err
		}
		defer cur.Close(context.WithoutCancel(ctx))
		for cur.Next(ctx) {
			var d sliceDoc
			if err := cur.Decode(&d); err != nil {
				return err
			}
			select {
			case work <- d:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		return cur.Err()
	}()
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return readErr
}

// baselineReadBack streams the output with one cursor in natural order and
// puts the slices back in order in memory (parallel writers interleave their
// batches a little), feeding every record to v.
func baselineReadBack(ctx context.Context, out *mongo.Collection, slices int64, v *verifier) error {
	cur, err := out.Find(ctx, bson.D{}, options.Find().SetBatchSize(cursorBatch))
	if err != nil {
		return err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	early := map[int64][]byte{}
	next := int64(1)
	emit := func(blob []byte) error {
		for rec, err := range slice.Records(blob) {
			if err != nil {
				return fmt.Errorf("output slice %d: %w", next, err)
			}
			if err := v.record(rec); err != nil {
				return err
			}
		}
		next++
		return nil
	}
	for cur.Next(ctx) {
		var d sliceDoc
		if err := cur.Decode(&d); err != nil {
			return err
		}
		num, err := strconv.ParseInt(d.ID, 10, 64)
		if err != nil {
			return fmt.Errorf("output slice id %q: %w", d.ID, err)
		}
		if num != next {
			early[num] = d.Records
			continue
		}
		if err := emit(d.Records); err != nil {
			return err
		}
		for blob, ok := early[next]; ok; blob, ok = early[next] {
			delete(early, next)
			if err := emit(blob); err != nil {
				return err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if next <= slices {
		return fmt.Errorf("output of slice %d is missing (%d of %d slices read back)", next, next-1, slices)
	}
	return nil
}

// sliceID is a slice's _id, as rocketjob's store writes it.
func sliceID(num int64) string { return fmt.Sprintf("%09d", num) }
