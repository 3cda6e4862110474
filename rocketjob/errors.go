package rocketjob

import (
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

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
	// ErrClaimStrategyMismatch: Config.ClaimStrategy (or, with "auto", the
	// database kind) picks a slice claim strategy other than the one the
	// work database was first used with.
	ErrClaimStrategyMismatch = store.ErrClaimStrategyMismatch
	// ErrClaimStrategyUnsafe: Config.ClaimStrategy asks for "findandmodify"
	// on a FerretDB work database, where findAndModify is not atomic.
	ErrClaimStrategyUnsafe = store.ErrClaimStrategyUnsafe

	// ErrAborted is the cause (context.Cause) of a running job's context when
	// the job was aborted: the run's result is dropped. A job whose code
	// honours its context frees its worker at once.
	ErrAborted = model.ErrAborted
	// ErrDestroyed is the cause of a running job's context when the job was
	// destroyed.
	ErrDestroyed = model.ErrDestroyed
	// ErrPaused is the cause reported when a sliced job was paused: its
	// workers stop claiming slices (slices in flight finish).
	ErrPaused = model.ErrPaused
	// ErrTakenAway is the cause of a running job's context when the job is no
	// longer this run's: another server requeued it (this server was
	// declared dead) or took it over.
	ErrTakenAway = model.ErrTakenAway
)

// InvalidTransitionError is returned when a job cannot move from its current
// state to the requested one (e.g. resuming a completed job). Use errors.As.
type InvalidTransitionError = model.InvalidTransitionError
