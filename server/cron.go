package server

import (
	"context"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// scheduleNext enqueues the next instance of a cron job that just ended. It
// runs before the ending transition, so a crash in between cannot break the
// chain; the store records one successor per instance, so an instance that
// runs again (taken away from a server declared dead) or a retry of this
// write enqueues the same successor, never a second chain.
func (s *Server) scheduleNext(ctx context.Context, job *model.Job) error {
	next, err := rocketjob.NextCronRun(job.Cron, time.Now())
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	successor := &model.Job{
		ID:          model.CronJobID(job.Type, job.Cron, next),
		Type:        job.Type,
		Kind:        job.Kind,
		State:       model.StateQueued,
		Priority:    job.Priority,
		Description: job.Description,
		Params:      job.Params,
		Cron:        job.Cron,
		RetryLimit:  job.RetryLimit,
		RetryBase:   job.RetryBase,
		RunAt:       next,
		CreatedAt:   now,
	}
	_, err = s.store.EnqueueCronSuccessor(ctx, job.ID, successor)
	return err
}
