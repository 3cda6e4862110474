package store

import (
	"context"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// InsertBatch is how many jobs InsertJobs writes per insertMany.
const InsertBatch = 1000

// InsertJobs writes new job documents, InsertBatch at a time: one unordered
// insertMany of the jobs, then, on FerretDB, one insertMany of their
// run-queue copies per priority (the batched form of what InsertJob does
// one job at a time), the batch's ids recorded as a queue intent before and
// removed after (intents.go). A job is written before its copy, so a worker never
// finds a copy without its job; the copies of one batch are written while
// the next batch of jobs is, so the database's two cores both work.
//
// The jobs must be new, with their ids set; a retried insertMany may meet
// its own earlier inserts, which count as written. It returns how many jobs
// were written (all of them, or the batches before the one that failed).
func (s *Store) InsertJobs(ctx context.Context, jobs []*model.Job) (int, error) {
	return s.jobsStrategy.insertJobs(ctx, s, jobs)
}

// queued is the run-queue copy of a new job.
type queued struct {
	priority int
	simple   bool
	doc      bson.Raw
}

// queueNew writes the run-queue copies of new jobs, one insertMany per
// priority: syncQueue(ctx, nil, job) for each job, batched; the copies of
// at least segmentMin simple jobs of a priority go into a new segment of
// its queue (segments.go). A copy already there (a retried insert) is
// kept. It returns the first failure: the caller then keeps the jobs'
// intent, for RepairIntents to write what is missing (the jobs themselves
// are written).
func (s *Store) queueNew(ctx context.Context, copies []queued) error {
	type batch struct{ simple, other []any }
	byPriority := map[int]*batch{}
	var order []int
	for _, c := range copies {
		b := byPriority[c.priority]
		if b == nil {
			b = &batch{}
			byPriority[c.priority] = b
			order = append(order, c.priority)
		}
		if c.simple {
			b.simple = append(b.simple, c.doc)
		} else {
			b.other = append(b.other, c.doc)
		}
	}
	var first error
	for _, p := range order {
		b, main := byPriority[p], byPriority[p].other
		if len(b.simple) >= segmentMin {
			for docs := range slices.Chunk(b.simple, segmentMax) {
				if err := s.writeSegment(ctx, p, docs); err != nil && first == nil {
					first = err
				}
			}
		} else {
			main = append(main, b.simple...)
		}
		if len(main) == 0 {
			continue
		}
		if _, _, err := s.insert(ctx, s.queue(p), main); err != nil && first == nil {
			first = err
		}
	}
	if len(order) > 0 {
		s.Wake(ctx)
	}
	return first
}

// MarkNewStateIndex marks the state index of listings built when the
// database has no job yet (on FerretDB): its index is then complete from
// the first job on, and the first limited listing need not scan the jobs.
// Writers of jobs call it once, before their first write.
func (s *Store) MarkNewStateIndex(ctx context.Context) error {
	return s.jobsStrategy.markNewStateIndex(ctx, s)
}
