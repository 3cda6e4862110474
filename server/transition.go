package server

import (
	"context"
	"errors"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// maxConflicts bounds how often a transition is retried when other processes
// change the job document meanwhile (e.g. its priority).
const maxConflicts = 50

// moveWhile applies a named operation (made by by), retrying on a fresh read
// after a conflict caused by an unrelated change (a new priority, say) for as
// long as still(job) holds. When it stops holding (the job was aborted,
// destroyed, or moved by someone entitled to) the move is dropped and
// ErrConflict returned.
func moveWhile(ctx context.Context, st *store.Store, by string, job *model.Job, op store.Op, still func(*model.Job) bool) (*model.Job, error) {
	for range maxConflicts {
		moved, err := st.Do(ctx, job, op, by)
		if !errors.Is(err, model.ErrConflict) {
			return moved, err
		}
		job, err = st.GetJob(ctx, job.ID)
		if err != nil {
			return nil, err
		}
		if !still(job) {
			return nil, model.ErrConflict
		}
	}
	return nil, model.ErrConflict
}

// moveWhile is moveWhile made by this server.
func (s *Server) moveWhile(ctx context.Context, job *model.Job, op store.Op, still func(*model.Job) bool) (*model.Job, error) {
	moved, err := moveWhile(ctx, s.store, s.cfg.Name, job, op, still)
	if err == nil && op.To() == model.StateFailed {
		s.failedJobs.Add(1)
	}
	return moved, err
}

// ownerMove applies an operation this server is entitled to because it owns
// the job's current run or step: it is retried while the job is still running
// that run or step on this server.
func (s *Server) ownerMove(ctx context.Context, job *model.Job, op store.Op) (*model.Job, error) {
	step, attempt := job.Step, job.Attempt
	return s.moveWhile(ctx, job, op, func(j *model.Job) bool {
		return j.State == model.StateRunning && j.Server == s.cfg.Name && j.Step == step && j.Attempt == attempt
	})
}
