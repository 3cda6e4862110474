package model

import (
	"errors"
	"fmt"
)

// Sentinel errors; the rocketjob package re-exports them.
var (
	ErrJobNotFound    = errors.New("job not found")
	ErrUnknownType    = errors.New("unknown job type")
	ErrBadPriority    = errors.New("priority must be between 1 and 100")
	ErrBadArgs        = errors.New("invalid job arguments")
	ErrConflict       = errors.New("job was changed by another process")
	ErrServerNotFound = errors.New("server not found")

	// Causes of a cancelled run: a running job's context ends with one of
	// these (context.Cause) when an operator or another server takes the job
	// away from it.
	ErrAborted   = errors.New("job was aborted")
	ErrDestroyed = errors.New("job was destroyed")
	ErrPaused    = errors.New("job was paused")
	ErrTakenAway = errors.New("job was requeued or taken over by another server")
)

// InvalidTransitionError is returned when a job cannot move from its state to
// the requested one.
type InvalidTransitionError struct {
	JobID string
	From  State
	To    State
}

func (e *InvalidTransitionError) Error() string {
	return fmt.Sprintf("job %s: cannot go from %s to %s", e.JobID, e.From, e.To)
}
