package rocketjob

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/rocketjob-go/rocketjob/internal/store"
)

// inserter writes the jobs of concurrent Enqueue calls of one Client
// together. While a batch is being written, the jobs that arrive wait and
// go into the next batch: one insertMany for the jobs and one for their
// run-queue copies, instead of a write (and, on the embedded database, a
// commit that waits for the disk and for the other writers) per job. A job
// that arrives alone is written at once.
type inserter struct {
	mu      sync.Mutex
	pending []pendingInsert
	busy    bool
	// marked: a new database's listing index was marked complete (once
	// per Client, before its first write).
	marked atomic.Bool
}

// markNew marks a new database's listing index complete, once.
func (in *inserter) markNew(ctx context.Context, s *store.Store) error {
	if in.marked.Load() {
		return nil
	}
	if err := s.MarkNewStateIndex(ctx); err != nil {
		return err
	}
	in.marked.Store(true)
	return nil
}

type pendingInsert struct {
	job  *Job
	done chan error
}

// insert writes job, with the jobs of other calls that arrive meanwhile.
// When ctx ends first it returns ctx's error; the job may still be written,
// as with any write cancelled in flight.
func (in *inserter) insert(ctx context.Context, s *store.Store, job *Job) error {
	p := pendingInsert{job: job, done: make(chan error, 1)}
	in.mu.Lock()
	in.pending = append(in.pending, p)
	start := !in.busy
	in.busy = true
	in.mu.Unlock()
	if start {
		// The batch is everybody's: it must not end with this caller's context.
		go in.flush(context.WithoutCancel(ctx), s)
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush writes the pending jobs, batch after batch, until none is left.
func (in *inserter) flush(ctx context.Context, s *store.Store) {
	for {
		in.mu.Lock()
		batch := in.pending
		in.pending = nil
		if len(batch) == 0 {
			in.busy = false
			in.mu.Unlock()
			return
		}
		in.mu.Unlock()
		jobs := make([]*Job, len(batch))
		for i, p := range batch {
			jobs[i] = p.job
		}
		err := in.markNew(ctx, s)
		if err == nil {
			_, err = s.InsertJobs(ctx, storedJobs(jobs))
		}
		for _, p := range batch {
			p.done <- err
		}
	}
}
