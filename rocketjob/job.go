package rocketjob

import (
	"context"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Job is a job document: its type, state, priority, timings, options and,
// for sliced jobs, record counts. Read it with Client.Get or List; change it
// only through the Client (every change is a transition checked in the
// database).
type Job = model.Job

// State is a job's state.
type State = model.State

// Job states. A job moves queued -> running -> completed; running -> paused ->
// running; any live state -> aborted; running -> failed -> (retry) queued or
// running.
const (
	StateQueued    = model.StateQueued
	StateRunning   = model.StateRunning
	StatePaused    = model.StatePaused
	StateCompleted = model.StateCompleted
	StateFailed    = model.StateFailed
	StateAborted   = model.StateAborted
)

// Step is the sub-state of a running sliced job: before, processing or after.
type Step = model.Step

// Steps of a running sliced job.
const (
	StepBefore     = model.StepBefore
	StepProcessing = model.StepProcessing
	StepAfter      = model.StepAfter
)

// Kind tells simple jobs from sliced jobs.
type Kind = model.Kind

// Job kinds.
const (
	KindSimple = model.KindSimple
	KindSliced = model.KindSliced
)

// Failure says why a job failed: message, time and server.
type Failure = model.Failure

// Server is a server process as seen in the servers collection.
type Server = model.Server

// ParseState returns the State named s.
func ParseState(s string) (State, error) { return model.ParseState(s) }

type jobKey struct{}

// ContextWithJob returns a context carrying job; servers call it before they
// run a job's code so that JobFromContext works there.
func ContextWithJob(ctx context.Context, job *Job) context.Context {
	return context.WithValue(ctx, jobKey{}, job)
}

// JobFromContext returns the job being run, or nil outside a job.
func JobFromContext(ctx context.Context) *Job {
	j, _ := ctx.Value(jobKey{}).(*Job)
	return j
}
