package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// PriorityProbe is what the priority probe of a rocketjob run measured.
// Issue 14 asks that "a priority-10 job enqueued behind 50,000 priority-50
// jobs starts within a second" (in rocketjob 1 runs first). Every rocketjob
// run enqueues one such job (type ProbeType, priority 10) once half of its
// N jobs (priority 50) ran, while the other half wait: at N = 100,000 it
// is enqueued behind about 50,000 of them. A measurement, not a pass/fail
// test.
//
// Times are the jobs' own: the probe's created_at (set when Enqueue
// builds it) and each job's started_at (set by the server that starts
// it), both at the database's millisecond precision.
type PriorityProbe struct {
	// Priority is the probe's priority; Others the N jobs'.
	Priority, Others int
	// EnqueuedAt is the probe's created_at, StartedAt its started_at.
	EnqueuedAt, StartedAt time.Time
	// Behind is how many of the N jobs started after the probe was
	// enqueued: the jobs it was enqueued behind.
	Behind int
	// StartedBetween is how many of them started after the probe was
	// enqueued and before it started: ideally no more than the workers
	// that were free meanwhile.
	StartedBetween int
}

// Latency is the time from the probe's enqueue to its start.
func (p *PriorityProbe) Latency() time.Duration { return p.StartedAt.Sub(p.EnqueuedAt) }

// probeTracker enqueues the probe and notes when it was enqueued and
// started.
type probeTracker struct {
	runs       atomic.Int32
	enqueuedAt atomic.Int64 // Unix nanoseconds, 0 until enqueued
	startedAt  atomic.Int64 // Unix nanoseconds, 0 until started
	ran        atomic.Value // bson.ObjectID: the probe's id, once it ran
}

// id returns the probe's id once it ran.
func (p *probeTracker) id() bson.ObjectID {
	id, _ := p.ran.Load().(bson.ObjectID)
	return id
}

// perform is the probe's no-op job: it notes its start.
func (p *probeTracker) perform(_ context.Context, job *rocketjob.Job, _ noopArgs) error {
	if job.StartedAt != nil {
		p.startedAt.CompareAndSwap(0, job.StartedAt.UnixNano())
	}
	p.ran.Store(job.ID)
	p.runs.Add(1)
	return nil
}

// enqueueAt enqueues the probe once at is closed; a failure ends the run
// through fail.
func (p *probeTracker) enqueueAt(ctx context.Context, client *rocketjob.Client, at <-chan struct{}, fail context.CancelCauseFunc) {
	select {
	case <-ctx.Done():
		return
	case <-at:
	}
	job, err := client.Enqueue(ctx, ProbeType, noopArgs{}, &rocketjob.EnqueueOptions{Priority: probePriority, Description: "bench priority probe"})
	if err != nil {
		fail(fmt.Errorf("priority probe: enqueue: %w", err))
		return
	}
	// At the precision started_at is stored with, so that a job started
	// in the same millisecond is not counted as started before it.
	p.enqueuedAt.Store(job.CreatedAt.Truncate(time.Millisecond).UnixNano())
}

// result checks that the probe ran once and counts, among the jobs'
// start times (Unix nanoseconds), those after its enqueue and those
// before its start.
func (p *probeTracker) result(started []atomic.Int64) (*PriorityProbe, error) {
	enq, st := p.enqueuedAt.Load(), p.startedAt.Load()
	switch {
	case p.runs.Load() != 1:
		return nil, fmt.Errorf("the probe ran %d times, want once", p.runs.Load())
	case enq == 0 || st == 0:
		return nil, errors.New("the probe's enqueue or start time is missing")
	}
	probe := &PriorityProbe{Priority: probePriority, Others: simplePriority, EnqueuedAt: time.Unix(0, enq), StartedAt: time.Unix(0, st)}
	for i := range started {
		s := started[i].Load()
		if s == 0 {
			return nil, fmt.Errorf("job %d has no start time", i)
		}
		if s > enq {
			probe.Behind++
			if s < st {
				probe.StartedBetween++
			}
		}
	}
	return probe, nil
}
