package store

import (
	"context"
	"fmt"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// InsertBatch is how many jobs InsertJobs writes per insertMany.
const InsertBatch = 1000

// InsertJobs writes new job documents, InsertBatch at a time: one unordered
// insertMany of the jobs, then, on FerretDB, one insertMany of their
// run-queue copies per priority (the batched form of what InsertJob does
// one job at a time). A job is written before its copy, so a worker never
// finds a copy without its job.
//
// The jobs must be new, with their ids set; a retried insertMany may meet
// its own earlier inserts, which count as written. It returns how many jobs
// were written (all of them, or the batches before the one that failed).
func (s *Store) InsertJobs(ctx context.Context, jobs []*model.Job) (int, error) {
	written := 0
	for len(jobs) > 0 {
		batch := jobs[:min(InsertBatch, len(jobs))]
		jobs = jobs[len(batch):]
		docs := make([]any, len(batch))
		for i, j := range batch {
			docs[i] = j
		}
		if _, _, err := insertMany(ctx, s.jobs(), docs); err != nil {
			return written, fmt.Errorf("inserting jobs: %w", err)
		}
		written += len(batch)
		s.queueNew(ctx, batch)
	}
	return written, nil
}

// queueNew writes the run-queue copies of new jobs, one insertMany per
// priority: syncQueue(ctx, nil, job) for each job, batched. A copy already
// there (a retried insert) is kept; a failure is left to ReconcileQueue,
// as syncQueue leaves it: the jobs themselves are written.
func (s *Store) queueNew(ctx context.Context, jobs []*model.Job) {
	if !s.ferret {
		return
	}
	byPriority := map[int][]any{}
	var order []int
	for _, j := range jobs {
		if !runnable(j) {
			continue
		}
		if _, ok := byPriority[j.Priority]; !ok {
			order = append(order, j.Priority)
		}
		byPriority[j.Priority] = append(byPriority[j.Priority], j)
	}
	for _, p := range order {
		_, _, _ = insertMany(ctx, s.queue(p), byPriority[p])
	}
}
