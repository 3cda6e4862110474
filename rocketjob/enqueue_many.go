package rocketjob

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ArgsError is the error EnqueueMany returns for an element of args that
// does not fit the job type: Index is its position in args. It wraps the
// cause, so errors.Is(err, ErrBadArgs) holds.
type ArgsError struct {
	Index int
	Err   error
}

func (e *ArgsError) Error() string { return fmt.Sprintf("args[%d]: %v", e.Index, e.Err) }

func (e *ArgsError) Unwrap() error { return e.Err }

// EnqueueMany writes one new simple job of type typ per element of args
// (each like Enqueue's args: the type's argument struct, a pointer to it,
// bson.Raw, or nil for the type's zero arguments), all with the options
// opts, and returns them in the order of args.
//
// Every element is checked before anything is written: an unknown type, a
// bad option or a bad element (an *ArgsError naming its index) is an error
// and no job is written. The jobs are then written in batches of
// 1,000 (one insertMany each, plus one for their copies in the
// run queue on FerretDB), far faster than one Enqueue per job. Should the
// database fail part way, the jobs of the batches already written are
// returned with the error; they are queued and will run.
//
// opts.Cron is refused: a schedule is one chain of jobs, enqueue it with
// Enqueue. opts.DependsOn is checked once and applies to every job.
func (c *Client) EnqueueMany(ctx context.Context, typ string, args []any, opts *EnqueueOptions) ([]*Job, error) {
	return c.enqueueMany(ctx, typ, len(args), func(i int) any { return args[i] }, opts)
}

// EnqueueManyOf is EnqueueMany with typed arguments: one job of type typ per
// element of args.
//
//	jobs, err := rocketjob.EnqueueManyOf(ctx, client, "send_email", []EmailArgs{{To: "a@example.com"}, {To: "b@example.com"}}, nil)
func EnqueueManyOf[A any](ctx context.Context, c *Client, typ string, args []A, opts *EnqueueOptions) ([]*Job, error) {
	return c.enqueueMany(ctx, typ, len(args), func(i int) any { return args[i] }, opts)
}

// enqueueMany builds n jobs from arg(0..n-1), checking them all, then
// writes them.
func (c *Client) enqueueMany(ctx context.Context, typ string, n int, arg func(int) any, opts *EnqueueOptions) ([]*Job, error) {
	spec, err := c.registry.Lookup(typ)
	if err != nil {
		return nil, err
	}
	if spec.Kind != KindSimple {
		return nil, fmt.Errorf("job type %q is a sliced job: upload its input with the sliced package or `rocketjob upload`", typ)
	}
	if opts == nil {
		opts = &EnqueueOptions{}
	}
	if opts.Cron != "" {
		return nil, errors.New("EnqueueMany takes no cron schedule: a schedule is one chain of jobs, enqueue it with Enqueue")
	}
	retryLimit := spec.RetryLimit
	if opts.RetryLimit != nil {
		if *opts.RetryLimit < 0 {
			return nil, fmt.Errorf("%w: retry limit must not be negative", ErrBadArgs)
		}
		retryLimit = *opts.RetryLimit
	}
	if n == 0 {
		return nil, nil
	}
	// The shared settings, checked once: a template copied for every job.
	tmpl, err := c.newJob(ctx, spec, opts)
	if err != nil {
		return nil, err
	}
	tmpl.RetryLimit, tmpl.RetryBase = retryLimit, spec.RetryBase

	jobs := make([]*Job, n)
	for i := range n {
		params, err := encodeArgs(spec, arg(i))
		if err != nil {
			return nil, &ArgsError{Index: i, Err: err}
		}
		job := *tmpl
		job.ID, job.Params = bson.NewObjectID(), params
		jobs[i] = &job
	}
	if err := c.inserter.markNew(ctx, c.store); err != nil {
		return nil, fmt.Errorf("enqueuing %s jobs: %w", typ, err)
	}
	written, err := c.store.InsertJobs(ctx, storedJobs(jobs))
	if err != nil {
		return jobs[:written], fmt.Errorf("enqueuing %s jobs: %d of %d written: %w", typ, written, n, err)
	}
	return jobs, nil
}
