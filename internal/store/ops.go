package store

import (
	"context"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Named job operations.
//
// Callers name what happens to a job (start a run, enter a step, requeue,
// fail, complete, set its priority, ...) with the functions below and apply
// it with Store.Do; the store alone knows which fields each writes. Each
// operation is an Op: the state the job moves to and the Change that goes
// with it, applied from the version of the job the caller read, like
// Transition and Update (which stay for callers that move a job generically,
// and for tests).

// Op is a named job operation, made by the functions of this file (the zero
// Op is an update that changes nothing but the job's version).
type Op struct {
	to     model.State // "" keeps the job's state: an update
	change Change
}

// To is the state op moves a job to, or "" when op keeps the job's state
// (an update such as SetPriority).
func (op Op) To() model.State { return op.to }

// Do applies op to job, from the version job has, on behalf of by (a server
// name, "client", ...): a transition (Transition's rules and errors) when op
// moves the job to a state, an update (Update) when it keeps the job's
// state. It returns the job as stored after it, or model.ErrConflict when
// another process moved the job first.
func (s *Store) Do(ctx context.Context, job *model.Job, op Op, by string) (*model.Job, error) {
	if op.to == "" {
		return s.Update(ctx, job, op.change, by)
	}
	return s.Transition(ctx, job, op.to, op.change, by)
}

// DoHeld is Do for the start of a simple job's run by the server that will
// run it (StartRun): with the claims strategy (FerretDB's) the start may be
// held back for up to startHold, to be written with the job's next
// transition (Held starts, jobs_batch.go). The job returned is the job
// started, as for Do; but until the start is written, the stored job stays
// at the version the start moves it from (job.Version): the caller must
// accept that version as its own run's, and make the run's next transition
// from the returned job, as usual. Only an op that starts a simple job
// (queued to running) is held; any other is Do, and so is every op with
// the conditional strategy (MongoDB's), which never holds. StartHeld is
// the same with a Change.
func (s *Store) DoHeld(ctx context.Context, job *model.Job, op Op, by string) (*model.Job, error) {
	if op.to == "" {
		return s.Update(ctx, job, op.change, by)
	}
	return s.transition(ctx, job, op.to, op.change, by, true)
}

// Counts are what a job's run counted, stored with its end: a nil field
// leaves the stored counts as they are.
type Counts struct {
	// Statistics replaces the job's statistics (its totals).
	Statistics map[string]int64
	// HookStatistics replaces what the job's hooks counted.
	HookStatistics map[string]int64
	// Totals are a sliced job's final counts, once its slices are done.
	Totals *JobTotals
}

// change is c as a Change (the counts only).
func (c Counts) change() Change {
	return Change{Statistics: c.Statistics, HookStatistics: c.HookStatistics, Totals: c.Totals}
}

// StartRun starts a run of a queued simple job on server: running, held by
// server, at attempt (the job's attempt plus one), started at at, the
// failure of a previous run cleared.
func StartRun(server string, attempt int, at time.Time) Op {
	return Op{to: model.StateRunning, change: Change{Server: &server, StartedAt: &at, Attempt: &attempt, ClearFailure: true}}
}

// Take makes the job running with its run or current step held by server:
// a sliced job's after step that nobody holds, or a queued job that server
// fails at once (a job fails only from running).
func Take(server string) Op {
	return Op{to: model.StateRunning, change: Change{Server: &server}}
}

// EnterStep moves a sliced job to step (before or after) held by server,
// running. startedAt, when not nil, is recorded as the job's start (its
// first before step); nil keeps the stored one.
func EnterStep(step model.Step, server string, startedAt *time.Time) Op {
	return Op{to: model.StateRunning, change: Change{Step: &step, Server: &server, StartedAt: startedAt}}
}

// StartProcessing ends a sliced job's before step: running, at its
// processing step, which no server holds (every worker shares its slices),
// with what the before hook counted (hookStatistics; nil leaves them).
func StartProcessing(hookStatistics map[string]int64) Op {
	return Op{to: model.StateRunning, change: Change{Step: new(model.StepProcessing), HookStatistics: hookStatistics, ClearServer: true}}
}

// RetrySlices sends a sliced job whose slices had failed records back to
// its processing step for slice retry attempt, held by no server.
func RetrySlices(attempt int) Op {
	return Op{to: model.StateRunning, change: Change{Step: new(model.StepProcessing), Attempt: &attempt, ClearServer: true}}
}

// GiveBack frees the run or step a server held, for another to take: a
// simple job (kind) is queued again, a sliced job stays running with its
// before or after step held by no server (a shutdown, a rescue).
func GiveBack(kind model.Kind) Op {
	to := model.StateQueued // a simple job runs again
	if kind == model.KindSliced {
		to = model.StateRunning // its before or after step runs again
	}
	return Op{to: to, change: Change{ClearServer: true}}
}

// RetryLater queues a simple job whose run failed with retries left, due at
// at, held by no server, with the run's failure and the job's statistics
// (nil leaves them).
func RetryLater(failure *model.Failure, at time.Time, statistics map[string]int64) Op {
	return Op{to: model.StateQueued, change: Change{Failure: failure, RunAt: &at, Statistics: statistics, ClearServer: true}}
}

// Fail ends a running job as failed at at, with failure and what it counted.
// It keeps the job's step and server, so that a retry of a sliced job runs
// the step it failed in again.
func Fail(failure *model.Failure, at time.Time, c Counts) Op {
	ch := c.change()
	ch.Failure, ch.CompletedAt = failure, &at
	return Op{to: model.StateFailed, change: ch}
}

// FailRecords ends a sliced job whose slices left failed records as failed
// at at: Fail, with the job back at its processing step held by no server,
// so that a retry re-runs its failed records.
func FailRecords(failure *model.Failure, at time.Time, c Counts) Op {
	op := Fail(failure, at, c)
	op.change.Step, op.change.ClearServer = new(model.StepProcessing), true
	return op
}

// Complete ends a simple job's run as completed at at, with what it counted;
// the job keeps the server that ran it.
func Complete(at time.Time, c Counts) Op {
	ch := c.change()
	ch.CompletedAt = &at
	return Op{to: model.StateCompleted, change: ch}
}

// CompleteSliced ends a sliced job as completed at at, with its totals and
// what its slices and hooks counted; its after step's server is freed.
func CompleteSliced(at time.Time, c Counts) Op {
	op := Complete(at, c)
	op.change.ClearServer = true
	return op
}

// Abort ends a live job for good at at, with failure as the reason (nil:
// none recorded, an operator's abort).
func Abort(failure *model.Failure, at time.Time) Op {
	return Op{to: model.StateAborted, change: Change{Failure: failure, CompletedAt: &at}}
}

// Pause pauses a queued job, or a running sliced job at its processing
// step.
func Pause() Op { return Op{to: model.StatePaused} }

// Resume continues a paused job: a sliced job that had started (started)
// goes back to running where it was; any other job is queued.
func Resume(started bool) Op {
	if started {
		return Op{to: model.StateRunning}
	}
	return Op{to: model.StateQueued}
}

// RetryStep runs a failed sliced job again from the step it failed in:
// running, held by no server, its failure and end cleared.
func RetryStep() Op {
	return Op{to: model.StateRunning, change: Change{ClearFailure: true, ClearServer: true, ClearCompletedAt: true}}
}

// Rerun queues a failed simple job again, due at at, from its first attempt
// (it gets its retries again), its failure, server and end cleared.
func Rerun(at time.Time) Op {
	return Op{to: model.StateQueued, change: Change{Attempt: new(0), RunAt: &at, ClearFailure: true, ClearServer: true, ClearCompletedAt: true}}
}

// SetPriority changes a job's priority (1 runs first), keeping its state.
func SetPriority(priority int) Op {
	return Op{change: Change{Priority: &priority}}
}

// SetRunAt changes when a job is due, keeping its state.
func SetRunAt(at time.Time) Op {
	return Op{change: Change{RunAt: &at}}
}

// Edit changes a job's description and worker cap, keeping its state; nil
// leaves a setting as it is.
func Edit(description *string, maxWorkers *int) Op {
	return Op{change: Change{Description: description, MaxWorkers: maxWorkers}}
}

// Rekey records that a job's data is sealed with key keyID from now on,
// with its header sealed again under it (sealedHeader; nil: the job has
// none), keeping its state.
func Rekey(keyID string, sealedHeader []byte) Op {
	return Op{change: Change{KeyID: &keyID, SealedHeader: sealedHeader}}
}
