// Package clientjob is how the library's own packages (sliced, server,
// rocketjobweb) use what a *rocketjob.Client does for its jobs but does not
// offer its users: building a job without writing it, the codec of a job's
// slices, and destroying a job only if it is as read. Package rocketjob
// installs them in its init (Set), so they are set before any code that
// holds a Client runs; nothing else sets them.
package clientjob

import (
	"context"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/model"
)

// Installed by package rocketjob (Set).
var (
	newJob    func(ctx context.Context, client, spec, opts any) (any, error)
	codec     func(client, job any) (*encryption.Codec, error)
	destroyAt func(ctx context.Context, client any, job *model.Job) error
)

// Set installs the functions; package rocketjob calls it once, in its init.
func Set(newJobFunc func(ctx context.Context, client, spec, opts any) (any, error), codecFunc func(client, job any) (*encryption.Codec, error),
	destroyAtFunc func(ctx context.Context, client any, job *model.Job) error) {
	newJob, codec, destroyAt = newJobFunc, codecFunc, destroyAtFunc
}

// New builds, without writing it, a queued job (a *rocketjob.Job) of the
// type spec (a *rocketjob.TypeSpec, simple or sliced) with opts' (a
// *rocketjob.EnqueueOptions, nil for defaults) priority (0: the type's
// default), run time, description, expiry, dependencies and window, checked
// as Client.Enqueue checks them: a bad priority wraps
// rocketjob.ErrBadPriority, a missing dependency rocketjob.ErrJobNotFound,
// a bad window rocketjob.ErrBadWindow. Cron, RetryLimit and the arguments
// are left to the caller. Enqueue, EnqueueMany and sliced.Upload start from
// it. It panics when client, spec or opts have other types: that is a bug
// in this module, not a runtime condition.
func New(ctx context.Context, client, spec, opts any) (any, error) {
	return newJob(ctx, client, spec, opts)
}

// Codec returns the codec that seals and opens the slices of job (a
// *rocketjob.Job) with the keys of client (a *rocketjob.Client). For an
// encrypted job it fails (wrapping encryption.ErrNoKey or
// encryption.ErrNoKeyring) when client lacks the job's key. It panics when
// client or job have other types.
func Codec(client, job any) (*encryption.Codec, error) { return codec(client, job) }

// DestroyAt destroys job as client (a *rocketjob.Client) destroys it, if it
// is still at the version it was read at: model.ErrConflict if it changed
// since (retention deletes only the job it found expired). It panics when
// client has another type.
func DestroyAt(ctx context.Context, client any, job *model.Job) error {
	return destroyAt(ctx, client, job)
}
