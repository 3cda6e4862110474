package rocketjob

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/store"
)

// RunNow makes a queued job due at once: a job scheduled for later (RunAt,
// a cron instance, a failed run waiting out its retry delay) starts at the
// servers' next selection, as if it had just been enqueued. A job in any
// other state is an *InvalidTransitionError.
func (c *Client) RunNow(ctx context.Context, id string) (*Job, error) {
	return c.change(ctx, id, func(j *Job) (store.Op, error) {
		if j.State != StateQueued {
			return store.Op{}, fmt.Errorf("job %s is %s, only a queued job can be run now: %w", j.ID.Hex(), j.State,
				&InvalidTransitionError{JobID: j.ID.Hex(), From: j.State, To: StateQueued})
		}
		return store.SetRunAt(time.Now().Truncate(time.Millisecond)), nil
	})
}

// JobEdit holds the settings a live (queued, running or paused) job may
// change; nil fields stay as they are.
type JobEdit struct {
	// Description replaces the job's description.
	Description *string
	// MaxWorkers caps the workers on a sliced job's slices across all
	// servers (0: no cap); servers apply a new cap before their next slice
	// of the job.
	MaxWorkers *int
}

// Edit changes a live job's description or worker cap. A finished job, a
// negative cap or a cap on a simple job are refused.
func (c *Client) Edit(ctx context.Context, id string, e JobEdit) (*Job, error) {
	if e.MaxWorkers != nil && *e.MaxWorkers < 0 {
		return nil, fmt.Errorf("%w: max workers must not be negative (got %d)", ErrBadArgs, *e.MaxWorkers)
	}
	return c.change(ctx, id, func(j *Job) (store.Op, error) {
		if !j.State.Live() {
			return store.Op{}, fmt.Errorf("job %s is %s: %w", j.ID.Hex(), j.State, &InvalidTransitionError{JobID: j.ID.Hex(), From: j.State, To: j.State})
		}
		if e.MaxWorkers != nil && j.Kind != KindSliced {
			return store.Op{}, fmt.Errorf("%w: job %s is a simple job: max workers applies to sliced jobs", ErrBadArgs, j.ID.Hex())
		}
		return store.Edit(e.Description, e.MaxWorkers), nil
	})
}

// PauseAll pauses every queued or running job (of type typ, unless empty)
// that can be paused, and returns how many it paused. Jobs that cannot be
// paused at this moment (a running simple job, a sliced job in its before or
// after step) are left as they are; other errors are returned, joined,
// after trying every job.
func (c *Client) PauseAll(ctx context.Context, typ string) (int, error) {
	return c.changeAll(ctx, typ, []State{StateQueued, StateRunning}, c.Pause)
}

// ResumeAll resumes every paused job (of type typ, unless empty) and
// returns how many it resumed.
func (c *Client) ResumeAll(ctx context.Context, typ string) (int, error) {
	return c.changeAll(ctx, typ, []State{StatePaused}, c.Resume)
}

func (c *Client) changeAll(ctx context.Context, typ string, states []State, change func(context.Context, string) (*Job, error)) (int, error) {
	jobs, err := c.List(ctx, &ListOptions{States: states, Type: typ})
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, j := range jobs {
		_, err := change(ctx, j.ID.Hex())
		var it *InvalidTransitionError
		switch {
		case err == nil:
			n++
		case errors.As(err, &it), errors.Is(err, ErrJobNotFound):
			// Not pausable (or resumable) now, or gone meanwhile.
		default:
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}
