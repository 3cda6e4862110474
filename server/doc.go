// Package server runs rocketjob server processes: a pool of workers that
// take the highest-priority job with work (then the oldest), claim its slices
// atomically and record their output and failed records, with the services
// around them (heartbeat, rescuer, housekeeper, retainer, watcher, completer).
//
// # Running a server
//
//	srv, err := server.New(client, &server.Config{Workers: 8})
//	if err != nil { ... }
//	err = srv.Run(ctx) // until ctx is cancelled or a stop command arrives
//
// Cancelling ctx (e.g. on SIGTERM) stops claiming, lets the work in flight
// finish within Config.ShutdownTimeout, gives back what did not finish, and
// returns nil.
//
// # Guarantees
//
// Output is exactly-once: a slice's output is stored under the slice's id, so
// a slice processed twice (after a crash) is stored once. The job code itself
// is at-least-once: after a crash its slice or job runs again, so side effects
// of Perform and of the per-record functions must be idempotent.
//
// # Services
//
// A server is a set of services, each in its own file with its own config
// and the same Start/Stop lifecycle, wired by Server.Run: the heartbeat
// (writes the server document, applies remote commands), the rescuer
// (requeues the work of dead servers, judged by their own published
// settings), the housekeeper (once a minute across the cluster: the run-queue
// copies of writers that died, jobs running on servers no longer alive; once
// an hour: a full run-queue reconciliation; now and then: slices of jobs
// that no longer exist, old rate-limit tokens), the retainer (one
// server a minute deletes finished jobs past their retention, see
// Config.Retention), the watcher (re-reads the jobs the workers are on, so
// pause, abort and destroy reach running work), the waker (starts idle
// workers when work arrives), the completer (writes processed slices in
// batches), the worker pool, with Config.Drain the drainer (stops the
// server once nothing due is left) and, with Config.DirmonRoots, Dirmon
// (scans the Dirmon entries under its roots, one server per entry and
// period, and turns each stable file into exactly one job). A retried
// slice runs only its failed records, with the operator's fixes (see
// sliced.FixFailedRecord). Run starts them in that order and stops
// them in the reverse order. Cron jobs need no service: each instance
// enqueues the next when it ends (once, even when it runs again).
//
// # Controls
//
// Pause, abort, destroy and a lowered priority reach running work within one
// slice plus ReCheck, whether or not another job waits: workers leave the
// job before their next slice; a simple job's Perform (or a hook) sees its
// context cancelled with the cause rocketjob.ErrAborted, ErrDestroyed or
// ErrTakenAway, and the result of that run is dropped.
//
// # Choosing work
//
// A worker takes the job with the lowest priority number (1 first), then the
// oldest, among queued and running jobs that are due. After every slice, and
// at least every ReCheck interval, it looks again and moves to a more urgent
// job, so raising a job's priority moves workers to it within one slice plus
// the re-check interval.
package server
