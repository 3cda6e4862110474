package rocketjob

import "github.com/rocketjob-go/rocketjob/internal/model"

// Errors callers branch on with errors.Is. Returned errors wrap them with
// context (the job id, the type name).
var (
	// ErrJobNotFound: no job has the given id.
	ErrJobNotFound = model.ErrJobNotFound
	// ErrUnknownType: the job type is not registered.
	ErrUnknownType = model.ErrUnknownType
	// ErrBadPriority: a priority outside 1..100.
	ErrBadPriority = model.ErrBadPriority
	// ErrBadArgs: arguments that do not decode into the type's argument struct
	// or fail its Validate method.
	ErrBadArgs = model.ErrBadArgs
	// ErrConflict: another process changed the job first; read it again.
	ErrConflict = model.ErrConflict
	// ErrServerNotFound: no server has the given name.
	ErrServerNotFound = model.ErrServerNotFound
)

// InvalidTransitionError is returned when a job cannot move from its current
// state to the requested one (e.g. resuming a completed job). Use errors.As.
type InvalidTransitionError = model.InvalidTransitionError
