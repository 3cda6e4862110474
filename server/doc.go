// Package server runs rocketjob server processes: a pool of workers that
// take the highest-priority job with work (then the oldest), claim its slices
// atomically and record their output and failed records; a heartbeat that
// also picks up remote commands (pause, resume, stop); and a rescuer that puts
// the work of dead servers back in the queue.
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
// # Choosing work
//
// A worker takes the job with the lowest priority number (1 first), then the
// oldest, among queued and running jobs that are due. After every slice, and
// at least every ReCheck interval, it looks again and moves to a more urgent
// job, so raising a job's priority moves workers to it within one slice plus
// the re-check interval.
package server
