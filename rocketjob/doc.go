// Package rocketjob is a batch-processing framework on MongoDB, modelled on
// Ruby's RocketJob: define job types in Go, register them, enqueue jobs (or
// upload files of millions of records with package sliced), and run any
// number of server processes (package server) that work on the most urgent
// job first.
//
// # Job types
//
// A simple job runs one function with typed arguments:
//
//	type EmailArgs struct {
//		To string `bson:"to"`
//	}
//
//	reg := rocketjob.NewRegistry()
//	rocketjob.Register(reg, "send_email", func(ctx context.Context, job *rocketjob.Job, args EmailArgs) error {
//		return send(ctx, args.To)
//	}, nil)
//
// A sliced job processes the records of an uploaded file; see package sliced.
//
// # Enqueuing and managing jobs
//
//	client, err := rocketjob.NewClient(ctx, rocketjob.Config{Registry: reg})
//	job, err := client.Enqueue(ctx, "send_email", EmailArgs{To: "ops@example.com"},
//		&rocketjob.EnqueueOptions{Priority: 10})
//
// Priorities run from 1 (first) to 100 (last), default 50; among equal
// priorities the oldest job runs first. SetPriority takes effect on running
// jobs. Pause, Resume, Abort, Retry and Destroy move a job through its states;
// a move that its state does not allow is an *InvalidTransitionError.
//
// # States
//
// queued -> running -> completed; running -> paused -> running; any live
// state -> aborted; running -> failed -> (Retry) queued or running. Every
// transition is decided in the database, so two processes can never both
// move a job: on MongoDB by an update conditioned on the job's version, on
// FerretDB (whose updates are not atomic) by a unique insert first.
//
// # Delivery
//
// Output is exactly-once; job code is at-least-once: after a crash, the job
// or slice that was running runs again on another server.
//
// # Statistics
//
// Job code counts with Inc(ctx, "imported", 1): from a simple job, a sliced
// job's record function or one of its hooks. A slice's counts are stored
// with its output, so they are exactly-once like the output; Job.Statistics
// holds a job's totals once it ended, Client.Progress a running job's.
//
// # Databases
//
// Jobs and servers live in the jobs database ($ROCKETJOB_URI, $ROCKETJOB_DB,
// default "rocketjob"); slices in the work database ($ROCKETJOB_WORK_URI,
// $ROCKETJOB_WORK_DB, default "rocketjob_work"), which may be another server.
package rocketjob
