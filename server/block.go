package server

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Blocks of short simple jobs.
//
// A simple job's start is a claim insert that its worker waits for. With
// the ends left in flight (endLater), those inserts are most of the
// database commands a short job costs, one or two claims to a command. So
// a worker that takes a job of a type whose runs are short (runTimes)
// takes up to blockSize-1 more like it (its type and priority, this
// server's stripe, each passing mayStart) and starts them together: their
// claims go in one insert. It then runs them one after the other. Their
// starts are held (store: held starts) and each is written with its end,
// as for a job started alone, as long as the block runs within the hold:
// blockBudget is a fifth of it. A more urgent job waits for the rest of
// the block, at most about blockBudget; a kill -9 re-runs the block's
// jobs not ended, as it does the job a worker runs.

// maxBlock bounds the jobs a worker starts at once: a block's claims are
// one insert, and an insert of 16 costs the database little more than one
// of 8 (`bench --simple`: about 1.3x the jobs a second of blocks of 8, with
// the larger hold and list below).
const maxBlock = 16

// blockBudget is how long the runs of one block may take, by the average
// of their type.
const blockBudget = 10 * time.Millisecond

// runTimes keeps, per job type, a moving average of how long its simple
// runs take.
type runTimes struct {
	m sync.Map // type -> *atomic.Int64 (nanoseconds)
}

// note adds a run of type typ that took d.
func (r *runTimes) note(typ string, d time.Duration) {
	v, _ := r.m.LoadOrStore(typ, new(atomic.Int64))
	avg := v.(*atomic.Int64)
	old := avg.Load()
	if old == 0 {
		avg.Store(max(int64(d), 1))
		return
	}
	avg.Store(max(old+(int64(d)-old)/8, 1)) // runs noted at once may lose one: an average
}

// avg is the average run of type typ (0 before its first).
func (r *runTimes) avg(typ string) time.Duration {
	v, ok := r.m.Load(typ)
	if !ok {
		return 0
	}
	return time.Duration(v.(*atomic.Int64).Load())
}

// blockSize is how many jobs of spec's type a worker starts at once: one
// for types with a rate limit or a cap on running jobs (each start takes
// a token or a slot) and before a first run is measured.
func (s *Server) blockSize(spec *rocketjob.TypeSpec) int {
	if spec.MaxRunningJobs > 0 || spec.RateLimit > 0 {
		return 1
	}
	avg := s.runTimes.avg(spec.Name)
	if avg <= 0 {
		return 1
	}
	return min(maxBlock, max(1, int(blockBudget/avg)))
}

// runBlock runs job, a simple job that may start (mayStart), alone
// (runSimple) or with more like it as a block: their starts written
// together, then their runs one after the other. It returns what job's
// start or run returned, and deals with the others' itself (afterRun).
func (s *Server) runBlock(ctx context.Context, log *slog.Logger, job *model.Job) error {
	spec, err := s.reg.Lookup(job.Type)
	if err != nil || job.State != model.StateQueued {
		return s.runSimple(ctx, job) // which says why not
	}
	n := s.blockSize(spec)
	jobs := []*model.Job{job}
	for len(jobs) < n {
		j := s.sel.nextLike(job)
		if j == nil {
			break
		}
		if ok, err := s.mayStart(ctx, j); err != nil || !ok {
			s.afterRun(ctx, log, j, err)
			continue
		}
		jobs = append(jobs, j)
	}
	if len(jobs) == 1 {
		return s.runSimple(ctx, job)
	}
	releases := make([]func(), len(jobs))
	for i, j := range jobs {
		defer s.owned.enter(j.ID)()
		releases[i] = s.holdSlot()
	}
	// Started at once, so that their claims go in one insert.
	started, errs := make([]*model.Job, len(jobs)), make([]error, len(jobs))
	now := time.Now().UTC()
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			started[i], errs[i] = s.store.DoHeld(ctx, j, store.StartRun(s.cfg.Name, j.Attempt+1, now), s.cfg.Name)
		})
	}
	wg.Wait()
	log.Debug("jobs started together", "type", job.Type, "jobs", len(jobs))
	var first error
	for i, j := range started {
		err := errs[i]
		switch {
		case err != nil:
			releases[i]()
		case ctx.Err() != nil:
			// The shutdown deadline passed: give back what did not run.
			_, err = s.ownerMove(context.WithoutCancel(ctx), j, store.GiveBack(j.Kind))
			err = s.ended(context.WithoutCancel(ctx), log.With("job", j.ID.Hex()), j, err)
			releases[i]()
		default:
			err = s.performSimple(ctx, spec, j, now, releases[i])
		}
		if i == 0 {
			first = err
		} else {
			s.afterRun(ctx, log, jobs[i], err)
		}
	}
	return first
}
