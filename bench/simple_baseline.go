package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The raw-driver baseline of the simple-jobs workload: the least a durable
// job queue must write per job, on the same database as rocketjob, in the
// same run.
//
//   - Enqueue: the N job documents, insertMany 1,000 at a time.
//   - Claim: one insert per job into a claims collection, {_id: job id}.
//   - Complete: one updateOne by _id on the job document.
//
// Why a claim is an insert and not an update: on FerretDB v1.24.2 no update
// is atomic across connections (racing findOneAndUpdate({state:"queued"})
// or updateOne({_id, state:"queued"}) both hand one job to several
// claimers; see /work/shared/DESIGN.md), while an insert of a unique _id is:
// of several inserts of one _id exactly one succeeds, the others get a
// duplicate-key error. So the insert that succeeds owns the job, whoever
// else read it as queued: no job runs twice, even with several processes
// streaming the same jobs. The same insert is the durable "running" record
// a rescuer would need. It is also the cheapest claim there: an insert
// checks the unique _id index, while a findOneAndUpdate with any filter but
// {_id} decodes the whole collection in Go.
//
// Candidates are read by one cursor over the jobs in natural (insertion)
// order, the only order FerretDB reads without sorting in Go, and handed to
// the workers, as rocketjob's selector reads candidates once for all the
// workers of a server. The completion update names the job by _id alone,
// the one filter FerretDB runs in the database (the embedded database adds
// the index that makes it a lookup to a collection named "jobs"): only the
// claim's owner gets there, so it needs no further condition.
//
// Nothing is lost: every job read as queued goes to a worker, and a worker
// either owns it (and completes it) or another claimer does. The run checks
// that at the end: N claims, N completed job documents, each job run once.

// Collections of the baseline's database (the names the embedded database
// indexes by _id).
const (
	baselineJobs   = "jobs"
	baselineClaims = "job_claims"
)

// Baseline tuning.
const (
	baselineInsertBatch = 1_000 // job documents per insertMany
	baselineReadBatch   = 1_000 // job documents per cursor batch
	// baselineRetryFor bounds the retries of an operation that failed with a
	// transient error (SQLITE_BUSY under concurrent writers).
	baselineRetryFor = time.Minute
)

// Job states the baseline writes.
const (
	baselineQueued    = "queued"
	baselineCompleted = "completed"
)

// baselineJob is a job document of the baseline.
type baselineJob struct {
	ID        bson.ObjectID `bson:"_id"`
	Type      string        `bson:"type"`
	State     string        `bson:"state"`
	Priority  int           `bson:"priority"`
	Args      noopArgs      `bson:"args"`
	CreatedAt time.Time     `bson:"created_at"`
}

// baselineClaim is a claim: the job's _id, who holds it and since when.
// Token tells this claimer's insert from another's after a retried insert.
type baselineClaim struct {
	ID     bson.ObjectID `bson:"_id"`
	Worker string        `bson:"worker"`
	Token  string        `bson:"token"`
	At     time.Time     `bson:"at"`
}

// runSimpleBaseline runs the baseline on db (fresh: its collections must
// not exist) with cfg.N jobs and cfg.Workers workers, tracing its calls
// through tr when set, and verifies that every job completed exactly once.
func runSimpleBaseline(ctx context.Context, cfg SimpleConfig, db *mongo.Database, tr *tracer) (SimpleRun, error) {
	run := SimpleRun{Name: "baseline", N: cfg.N, Servers: 1, Workers: cfg.Workers}
	jobs, claims := db.Collection(baselineJobs), db.Collection(baselineClaims)
	// Both collections exist before the first write, so that the embedded
	// database indexes them (by _id) while the jobs are inserted.
	for _, name := range []string{baselineJobs, baselineClaims} {
		if err := db.CreateCollection(ctx, name); err != nil {
			return run, fmt.Errorf("baseline: creating %s: %w", name, err)
		}
	}
	runs := make([]atomic.Int32, cfg.N)
	ph := phaser{tr: tr, calls: &run.Calls}
	err := ph.time(PhaseEnqueue, &run.Enqueue, func() error { return baselineEnqueue(ctx, jobs, cfg.N) })
	if err != nil {
		return run, fmt.Errorf("baseline: %w", err)
	}
	cfg.Logf("bench: baseline enqueue: %s", run.Enqueue.Round(time.Millisecond))
	err = ph.time(PhaseProcess, &run.Process, func() error { return baselineProcessJobs(ctx, jobs, claims, cfg.Workers, runs) })
	if err != nil {
		return run, fmt.Errorf("baseline: %w", err)
	}
	cfg.Logf("bench: baseline process: %s", run.Process.Round(time.Millisecond))
	for i := range runs {
		run.Runs += int64(runs[i].Load())
	}
	if err := verifyBaseline(ctx, jobs, claims, runs, &run); err != nil {
		return run, fmt.Errorf("baseline: verify: %w", err)
	}
	return run, nil
}

// baselineEnqueue inserts n queued no-op jobs, baselineInsertBatch per
// insertMany.
func baselineEnqueue(ctx context.Context, jobs *mongo.Collection, n int) error {
	batch := make([]any, 0, baselineInsertBatch)
	for i := range n {
		batch = append(batch, baselineJob{ID: bson.NewObjectID(), Type: SimpleType, State: baselineQueued,
			Priority: simplePriority, Args: noopArgs{I: i}, CreatedAt: time.Now().UTC()})
		if len(batch) == baselineInsertBatch || i == n-1 {
			if _, err := jobs.InsertMany(ctx, batch); err != nil {
				return fmt.Errorf("inserting jobs: %w", err)
			}
			batch = batch[:0]
		}
	}
	return nil
}

// baselineProcessJobs streams the queued jobs to workers goroutines, each
// of which claims, runs and completes the jobs it is handed.
func baselineProcessJobs(ctx context.Context, jobs, claims *mongo.Collection, workers int, runs []atomic.Int32) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	queued := make(chan baselineJob, 2*workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			name := fmt.Sprintf("baseline-%d", w)
			for job := range queued {
				if err := baselineWork(ctx, jobs, claims, name, job, runs); err != nil {
					cancel(fmt.Errorf("job %s: %w", job.ID.Hex(), err))
					return
				}
			}
		})
	}
	readErr := baselineFeed(ctx, jobs, queued)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return readErr
}

// baselineFeed reads the jobs in natural order through one cursor and
// sends the queued ones to out, which it closes.
func baselineFeed(ctx context.Context, jobs *mongo.Collection, out chan<- baselineJob) error {
	defer close(out)
	// No sort: FerretDB refuses {$natural: 1} on a collection that is not
	// capped, and without filter or sort it reads in insertion order.
	cur, err := jobs.Find(ctx, bson.D{}, options.Find().SetBatchSize(baselineReadBatch))
	if err != nil {
		return fmt.Errorf("reading jobs: %w", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var job baselineJob
		if err := cur.Decode(&job); err != nil {
			return fmt.Errorf("reading jobs: %w", err)
		}
		if job.State != baselineQueued {
			continue
		}
		select {
		case out <- job:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("reading jobs: %w", err)
	}
	return nil
}

// baselineWork claims job for worker; when the claim is won, it runs the
// job (counts its run) and marks it completed.
func baselineWork(ctx context.Context, jobs, claims *mongo.Collection, worker string, job baselineJob, runs []atomic.Int32) error {
	won, err := baselineClaimJob(ctx, claims, worker, job.ID)
	if err != nil || !won {
		return err
	}
	i := job.Args.I
	if i < 0 || i >= len(runs) {
		return fmt.Errorf("no job %d", i)
	}
	runs[i].Add(1) // the no-op job
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: baselineCompleted}, {Key: "completed_at", Value: time.Now().UTC()}}}}
	return retryTransient(ctx, func() error {
		res, err := jobs.UpdateOne(ctx, bson.D{{Key: "_id", Value: job.ID}}, update)
		if err == nil && res.MatchedCount != 1 {
			return fmt.Errorf("completing: matched %d jobs", res.MatchedCount)
		}
		return err
	})
}

// baselineClaimJob inserts the claim of job id for worker and reports
// whether it won. An insert retried after a transient error may find its
// own earlier attempt in place: the claim's token tells.
func baselineClaimJob(ctx context.Context, claims *mongo.Collection, worker string, id bson.ObjectID) (bool, error) {
	claim := baselineClaim{ID: id, Worker: worker, Token: bson.NewObjectID().Hex(), At: time.Now().UTC()}
	tries := 0
	err := retryTransient(ctx, func() error {
		tries++
		_, err := claims.InsertOne(ctx, claim)
		return err
	})
	switch {
	case err == nil:
		return true, nil
	case !mongo.IsDuplicateKeyError(err):
		return false, fmt.Errorf("claiming: %w", err)
	case tries == 1:
		return false, nil // another worker holds it
	}
	var have baselineClaim
	err = retryTransient(ctx, func() error {
		return claims.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&have)
	})
	if err != nil {
		return false, fmt.Errorf("reading a claim back: %w", err)
	}
	return have.Token == claim.Token, nil
}

// verifyBaseline checks that every job ran exactly once, has exactly one
// claim and is stored completed; it sets run.Completed.
func verifyBaseline(ctx context.Context, jobs, claims *mongo.Collection, runs []atomic.Int32, run *SimpleRun) error {
	if err := exactlyOnce(runs); err != nil {
		return err
	}
	completed, err := jobs.CountDocuments(ctx, bson.D{{Key: "state", Value: baselineCompleted}})
	if err != nil {
		return fmt.Errorf("counting completed jobs: %w", err)
	}
	run.Completed = completed
	held, err := claims.CountDocuments(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("counting claims: %w", err)
	}
	if completed != int64(len(runs)) || held != int64(len(runs)) {
		return fmt.Errorf("%d jobs completed and %d claimed, want %d", completed, held, len(runs))
	}
	return nil
}

// exactlyOnce checks that each counter of runs is 1.
func exactlyOnce(runs []atomic.Int32) error {
	var dups, missing, total int64
	for i := range runs {
		n := runs[i].Load()
		total += int64(n)
		switch {
		case n == 0:
			missing++
		case n > 1:
			dups++
		}
	}
	if dups > 0 || missing > 0 {
		return fmt.Errorf("%d jobs ran more than once, %d never ran (%d runs for %d jobs)", dups, missing, total, len(runs))
	}
	return nil
}

// retryTransient runs op until it succeeds or fails with an error that is
// not transient (a network error, a time-out, SQLITE_BUSY), for at most
// baselineRetryFor, backing off from 5 ms to 1 s.
func retryTransient(ctx context.Context, op func() error) error {
	delay := 5 * time.Millisecond
	start := time.Now()
	for {
		err := op()
		if !transientErr(err) || time.Since(start) > baselineRetryFor {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, context.Cause(ctx))
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// transientErr reports an error worth retrying.
func transientErr(err error) bool {
	if err == nil {
		return false
	}
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}
