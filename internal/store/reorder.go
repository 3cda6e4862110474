package store

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrSliceMissing is matched (errors.Is) by every *SliceMissingError.
var ErrSliceMissing = errors.New("a finished slice's records are missing")

// SliceMissingError is a stream of a job's output or failed records that
// did not find the records of slices the job finished: the work database
// lost them (a document deleted, a collection restored from an older
// copy). The strategies that know which slices finished (FerretDB's) report
// it; the caller compares record counts otherwise.
type SliceMissingError struct {
	Kind    string // "output" or "failed"
	Num     int64  // the first missing slice
	Missing int    // how many slices are missing
	// Found is the records (the slices' counts) of the slices that were
	// found, including those after the gap that were never handed on.
	Found int64
}

func (e *SliceMissingError) Error() string {
	if e.Missing > 1 {
		return fmt.Sprintf("%s of slice %d is missing (%d slices not found)", e.Kind, e.Num, e.Missing)
	}
	return fmt.Sprintf("%s of slice %d is missing", e.Kind, e.Num)
}

// Is makes errors.Is(err, ErrSliceMissing) match.
func (e *SliceMissingError) Is(target error) bool { return target == ErrSliceMissing }

// maxReorderBytes bounds the records a download holds in memory while it waits
// for an earlier slice; later arrivals spill to a temp file.
const maxReorderBytes = 32 << 20

// reorder puts slices that arrive almost in order back in order. It holds early
// arrivals in memory up to maxReorderBytes, then in a temp file.
type reorder struct {
	expected []int64
	next     int
	emit     func(OutputSlice) error
	found    int64 // records of the slices added

	mem      map[int64]OutputSlice
	memBytes int

	spill   *os.File
	spilled map[int64]spillRef
	spillAt int64
}

type spillRef struct {
	off   int64
	size  int
	count int
}

func newReorder(expected []int64, emit func(OutputSlice) error) *reorder {
	return &reorder{expected: expected, emit: emit, mem: map[int64]OutputSlice{}, spilled: map[int64]spillRef{}}
}

func (r *reorder) add(s OutputSlice) error {
	r.found += int64(s.Count)
	if r.next < len(r.expected) && s.Num == r.expected[r.next] {
		r.next++
		if err := r.emit(s); err != nil {
			return err
		}
		return r.drain()
	}
	if r.memBytes+len(s.Records) <= maxReorderBytes {
		r.mem[s.Num] = s
		r.memBytes += len(s.Records)
		return nil
	}
	if r.spill == nil {
		f, err := os.CreateTemp("", "rocketjob-reorder-*")
		if err != nil {
			return fmt.Errorf("reorder buffer: %w", err)
		}
		_ = os.Remove(f.Name()) // unlinked: gone when closed
		r.spill = f
	}
	if _, err := r.spill.WriteAt(s.Records, r.spillAt); err != nil {
		return fmt.Errorf("reorder buffer: %w", err)
	}
	r.spilled[s.Num] = spillRef{off: r.spillAt, size: len(s.Records), count: s.Count}
	r.spillAt += int64(len(s.Records))
	return nil
}

// drain emits the buffered slices that are next in order.
func (r *reorder) drain() error {
	for r.next < len(r.expected) {
		num := r.expected[r.next]
		if s, ok := r.mem[num]; ok {
			delete(r.mem, num)
			r.memBytes -= len(s.Records)
			r.next++
			if err := r.emit(s); err != nil {
				return err
			}
			continue
		}
		ref, ok := r.spilled[num]
		if !ok {
			return nil
		}
		delete(r.spilled, num)
		buf := make([]byte, ref.size)
		if _, err := r.spill.ReadAt(buf, ref.off); err != nil && err != io.EOF {
			return fmt.Errorf("reorder buffer: %w", err)
		}
		r.next++
		if err := r.emit(OutputSlice{Num: num, Count: ref.count, Records: buf}); err != nil {
			return err
		}
	}
	return nil
}

// finish reports slices that never arrived: that is data loss, never
// ignored (a *SliceMissingError).
func (r *reorder) finish(kind string) error {
	if err := r.drain(); err != nil {
		return err
	}
	if r.next < len(r.expected) {
		missing := 0
		for _, num := range r.expected[r.next:] {
			_, inMem := r.mem[num]
			_, spilled := r.spilled[num]
			if !inMem && !spilled {
				missing++
			}
		}
		return &SliceMissingError{Kind: kind, Num: r.expected[r.next], Missing: missing, Found: r.found}
	}
	return nil
}

func (r *reorder) close() {
	if r.spill != nil {
		_ = r.spill.Close()
	}
}
