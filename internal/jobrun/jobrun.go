// Package jobrun is what the module's job runners (package server, and
// package rocketjobtest's Perform and records helpers) need from package
// rocketjob to run a job's code and that users have no use for: putting the
// job in its context and the delay before a failed run's retry. Package
// rocketjob installs both in its init (Set), so they are set before any code
// that runs a job; nothing else sets them.
package jobrun

import (
	"context"
	"time"
)

// Installed by package rocketjob (Set).
var (
	withJob    func(ctx context.Context, job any) context.Context
	retryDelay func(base time.Duration, attempt int, u float64) time.Duration
)

// Set installs the functions; package rocketjob calls it once, in its init.
func Set(with func(ctx context.Context, job any) context.Context, delay func(base time.Duration, attempt int, u float64) time.Duration) {
	withJob, retryDelay = with, delay
}

// WithJob returns a context carrying job, a *rocketjob.Job, so that
// rocketjob.JobFromContext works in the code that runs with it. Runners call it before they run a job's code.
// It panics for anything but a *rocketjob.Job: that is a bug in this
// module, not a runtime condition.
func WithJob(ctx context.Context, job any) context.Context { return withJob(ctx, job) }

// RetryDelay is the wait before retry number attempt (1 for the first) of a
// simple job whose type retries after base: base (rocketjob.DefaultRetryBase
// when not above zero) doubled for each earlier retry, capped at
// rocketjob.MaxRetryDelay, plus a jitter of up to a quarter of that (u in
// [0, 1) picks where), so retries of many jobs that failed together spread
// out.
func RetryDelay(base time.Duration, attempt int, u float64) time.Duration {
	return retryDelay(base, attempt, u)
}
