package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// mayStart decides whether a queued job may start now: an expired job is
// aborted, a job whose dependency failed fails, a job whose dependencies
// have not all completed waits. It reports false when the worker should
// look at another job.
func (s *Server) mayStart(ctx context.Context, job *model.Job) (bool, error) {
	if !s.inWindow(job) {
		return false, nil
	}
	if job.State != model.StateQueued {
		return true, nil
	}
	if job.ExpiresAt != nil && time.Now().After(*job.ExpiresAt) {
		msg := fmt.Sprintf("expired: not started by %s", job.ExpiresAt.Format(time.RFC3339))
		_, err := s.moveWhile(ctx, job, store.Abort(s.lastError(msg), time.Now()),
			func(j *model.Job) bool { return j.State == model.StateQueued })
		s.endDue(ctx, job, err)
		s.sel.invalidate()
		return false, ignoreConflict(err)
	}
	for _, id := range job.DependsOn {
		dep, err := s.store.GetJob(ctx, id)
		var cause string
		switch {
		case errors.Is(err, model.ErrJobNotFound):
			cause = fmt.Sprintf("dependency %s was destroyed", id.Hex())
		case err != nil:
			return false, err
		case dep.State == model.StateFailed || dep.State == model.StateAborted:
			cause = fmt.Sprintf("dependency %s is %s", id.Hex(), dep.State)
			if dep.Failure != nil {
				cause += ": " + dep.Failure.Message
			}
		case dep.State != model.StateCompleted:
			s.sel.skipFor(job, s.cfg.PollInterval) // wait for it
			return false, nil
		}
		if cause != "" {
			// queued -> running -> failed: a job fails only from running.
			running, err := s.moveWhile(ctx, job, store.Take(s.cfg.Name),
				func(j *model.Job) bool { return j.State == model.StateQueued })
			if err == nil {
				_, err = s.ownerMove(ctx, running, s.fail(cause, store.Counts{}))
				s.endDue(ctx, job, err)
			}
			s.sel.invalidate()
			return false, ignoreConflict(err)
		}
	}
	return true, nil
}

func ignoreConflict(err error) error {
	if errors.Is(err, model.ErrConflict) {
		return nil
	}
	return err
}

// inWindow reports whether a job may process now, by its processing window;
// outside the window the job is left alone until the window opens (or the
// next re-check, whichever comes first).
func (s *Server) inWindow(job *model.Job) bool {
	w := public(job).Window()
	if w == nil {
		return true
	}
	now := s.cfg.Now()
	if w.Contains(now) {
		return true
	}
	wait := s.cfg.ReCheck
	if next := w.Next(now); !next.IsZero() {
		wait = min(wait, next.Sub(now))
	}
	s.sel.skipFor(job, max(wait, s.cfg.PollInterval))
	return false
}

// releaseTypeSlot gives back a running-job slot of job ("": every one it
// holds). A lost release is reclaimed by the next AcquireTypeSlot that runs
// short.
func (s *Server) releaseTypeSlot(ctx context.Context, job *model.Job, slot string) {
	if err := s.store.ReleaseTypeSlot(context.WithoutCancel(ctx), job.ID, slot); err != nil {
		s.log.Warn("releasing a running-job slot", "job", job.ID.Hex(), "err", err)
	}
}

// rateToken takes a token of the type's per-second rate limit, if it has
// one. Without a token the job is left until the next second and the worker
// takes other work.
func (s *Server) rateToken(ctx context.Context, spec *rocketjob.TypeSpec, job *model.Job) (bool, error) {
	if spec.RateLimit <= 0 {
		return true, nil
	}
	now := time.Now()
	ok, err := s.store.TakeRateToken(ctx, spec.Name, spec.RateLimit, now)
	if err != nil || ok {
		return ok, err
	}
	s.sel.skipFor(job, now.Truncate(time.Second).Add(time.Second).Sub(now))
	return false, nil
}
