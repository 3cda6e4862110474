package server

import (
	"context"
	"errors"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// rescueLoop looks for dead servers at every heartbeat interval, for as long
// as this server runs: any live server rescues, so no housekeeping job is
// needed.
func (s *Server) rescueLoop(ctx context.Context) {
	// A database written by an older version, or jobs written behind the
	// store's back, have no copies in the run queue yet.
	s.repairQueue(ctx)
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for beats := 1; ; beats++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if beats%orphanEvery == 0 {
			s.dropOrphans(ctx)
		}
		sweep, err := s.store.ClaimSweep(ctx, time.Now())
		if err != nil {
			s.log.Warn("housekeeping", "err", err)
		}
		if sweep {
			s.repairQueue(ctx)
		}
		if beats%rateTokenPruneEvery == 0 {
			if err := s.store.PruneRateTokens(ctx, time.Now().Add(-time.Minute)); err != nil {
				s.log.Warn("pruning rate tokens", "err", err)
			}
		}
		servers, err := s.store.ListServers(ctx)
		if err != nil {
			s.log.Warn("rescuer: listing servers", "err", err)
			continue
		}
		live := map[string]bool{s.cfg.Name: true}
		for i := range servers {
			dead := &servers[i]
			if dead.Name == s.cfg.Name || time.Since(dead.HeartbeatAt) < dead.DeadAfterOr(s.cfg.DeadAfter) {
				live[dead.Name] = true
				continue
			}
			if err := s.rescue(ctx, dead); err != nil {
				s.log.Warn("rescuer", "dead", dead.Name, "err", err)
			}
		}
		if sweep {
			s.requeueOrphanedJobs(ctx, live)
		}
	}
}

// repairQueue brings the run queue (FerretDB) in line with the jobs: copies
// a crash or a race left missing or stale.
func (s *Server) repairQueue(ctx context.Context) {
	n, err := s.store.ReconcileQueue(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("repairing the run queue", "err", err)
	case n > 0:
		s.log.Info("run queue repaired", "copies", n)
		s.sel.invalidate()
	}
}

// rescue puts the work of a dead server back in the queue, then removes its
// document. Every requeue names the exact server and is guarded by the job's
// version (or the slice's attempt), so work that completed in the meantime is
// never overwritten.
func (s *Server) rescue(ctx context.Context, dead *model.Server) error {
	if won, err := s.store.ClaimRescue(ctx, dead.Name, dead.HeartbeatAt); err != nil || !won {
		return err // another live server is rescuing it
	}
	log := s.log.With("dead", dead.Name, "heartbeat", dead.HeartbeatAt)
	log.Warn("server is dead: requeuing its work")
	jobs, err := s.store.JobsOfServer(ctx, dead.Name)
	if err != nil {
		return err
	}
	for i := range jobs {
		job := &jobs[i]
		to := model.StateQueued // a simple job runs again
		if job.Kind == model.KindSliced {
			to = model.StateRunning // its before or after step runs again
		}
		_, err := s.moveWhile(ctx, job, to, store.Change{Unset: []string{"server"}}, func(j *model.Job) bool {
			return j.State == model.StateRunning && j.Server == dead.Name
		})
		if err != nil && !errors.Is(err, model.ErrConflict) {
			return err
		}
		log.Info("job requeued", "job", job.ID.Hex(), "type", job.Type)
	}
	running, err := s.store.ListJobs(ctx, store.JobFilter{States: []model.State{model.StateRunning, model.StatePaused, model.StateFailed}})
	if err != nil {
		return err
	}
	for _, job := range running {
		if job.Kind != model.KindSliced {
			continue
		}
		n, err := s.store.Slices().RequeueServer(ctx, job.ID, dead.Name)
		if err != nil {
			return err
		}
		if n > 0 {
			log.Info("slices requeued", "job", job.ID.Hex(), "slices", n)
		}
	}
	if _, err := s.store.ReleaseSlotsOf(ctx, dead.Name); err != nil {
		return err
	}
	if _, err := s.store.RemoveServer(ctx, dead.Name, dead.HeartbeatAt); err != nil {
		return err
	}
	s.sel.invalidate()
	return nil
}

// rateTokenPruneEvery is the number of heartbeats between deletions of the
// rate-limit tokens of past seconds.
const rateTokenPruneEvery = 12

// requeueOrphanedJobs requeues running jobs (or steps) whose server no longer
// exists: a transition that server claimed just before it died can be rolled
// forward by another process after the server was rescued and removed. One
// server a minute runs it: on FerretDB it reads every job.
func (s *Server) requeueOrphanedJobs(ctx context.Context, live map[string]bool) {
	jobs, err := s.store.ListJobs(ctx, store.JobFilter{States: []model.State{model.StateRunning}})
	if err != nil {
		s.log.Warn("looking for orphaned jobs", "err", err)
		return
	}
	for i := range jobs {
		job := &jobs[i]
		if job.Server == "" || live[job.Server] {
			continue
		}
		gone := job.Server
		to := model.StateQueued
		if job.Kind == model.KindSliced {
			to = model.StateRunning
		}
		_, err := s.moveWhile(ctx, job, to, store.Change{Unset: []string{"server"}}, func(j *model.Job) bool {
			return j.State == model.StateRunning && j.Server == gone
		})
		if err != nil && !errors.Is(err, model.ErrConflict) {
			s.log.Warn("requeuing an orphaned job", "job", job.ID.Hex(), "err", err)
			continue
		}
		s.log.Warn("job was running on a server that no longer exists: requeued", "job", job.ID.Hex(), "server", gone)
	}
}

// Orphaned slices: collections of a job that has no job document.
const (
	orphanEvery = 500            // heartbeats between looks
	orphanAge   = 24 * time.Hour // an upload older than this without its job document was killed
)

// dropOrphans drops the slice collections of jobs that do not exist and are
// older than orphanAge (an upload killed half-way; a job destroyed while a
// server was still writing one of its slices).
func (s *Server) dropOrphans(ctx context.Context) {
	ids, err := s.store.OrphanSliceJobs(ctx, time.Now().Add(-orphanAge))
	if err != nil {
		s.log.Warn("looking for orphaned slices", "err", err)
		return
	}
	for _, id := range ids {
		if err := s.store.Slices().Drop(ctx, id); err != nil {
			s.log.Warn("dropping orphaned slices", "job", id.Hex(), "err", err)
			continue
		}
		s.log.Info("dropped the slices of a job that does not exist (a killed upload?)", "job", id.Hex())
	}
}
