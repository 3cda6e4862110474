package server

import (
	"context"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Batching of slice completions: on FerretDB every write is one SQLite
// transaction behind a single writer lock, so the completer writes the
// outputs and done markers of many slices with one insertMany each.
const (
	DefaultCompleteBatch  = 64                   // slices per write, at most
	DefaultCompleteLinger = 5 * time.Millisecond // how long a batch waits to fill
)

// completion is a processed slice on its way to the database.
type completion struct {
	job      model.Job
	spec     *rocketjob.TypeSpec
	feeder   *jobFeeder
	c        *store.Claimed
	r        store.Result
	firstErr string
}

// completerConfig configures the completer service.
type completerConfig struct {
	Batch  int           // completions per write, at most (default DefaultCompleteBatch)
	Linger time.Duration // how long a batch waits to fill (default DefaultCompleteLinger)
	Queue  int           // completions waiting to be gathered before submit blocks
}

func (c *completerConfig) defaults() {
	if c.Batch == 0 {
		c.Batch = DefaultCompleteBatch
	}
	if c.Linger == 0 {
		c.Linger = DefaultCompleteLinger
	}
}

// completer gathers the slices the workers processed into batches and hands
// each batch to write. Stop writes what is still queued, then returns: it is
// stopped after the workers, so nothing they submitted is lost. A crash loses
// at most the batch being gathered: those slices stay claimed by this server
// and are requeued when it is declared dead, so nothing is lost; output stays
// exactly-once through the done markers.
type completer struct {
	cfg   completerConfig
	in    chan completion
	write func(context.Context, []completion)

	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

func newCompleter(cfg completerConfig, write func(context.Context, []completion)) *completer {
	cfg.defaults()
	return &completer{cfg: cfg, in: make(chan completion, cfg.Queue), write: write}
}

// Start launches the gathering loop; the batches are written with ctx's
// values but not its cancellation (a stopping server still writes them).
func (c *completer) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return nil
	}
	c.done = make(chan struct{})
	go c.loop(context.WithoutCancel(ctx))
	return nil
}

// submit queues a processed slice for writing. It must not be called after
// Stop.
func (c *completer) submit(x completion) { c.in <- x }

// Stop closes the queue, waits until every completion in it was written (or
// ctx ends) and returns.
func (c *completer) Stop(ctx context.Context) error {
	c.mu.Lock()
	if c.done == nil {
		c.mu.Unlock()
		return errNotStarted
	}
	if !c.closed {
		c.closed = true
		close(c.in)
	}
	done := c.done
	c.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *completer) loop(ctx context.Context) {
	defer close(c.done)
	for first := range c.in {
		batch := []completion{first}
		linger := time.NewTimer(c.cfg.Linger)
	gather:
		for len(batch) < c.cfg.Batch {
			select {
			case x, ok := <-c.in:
				if !ok {
					break gather
				}
				batch = append(batch, x)
			case <-linger.C:
				break gather
			}
		}
		linger.Stop()
		c.write(ctx, batch)
	}
}

// complete writes one batch, job by job, then does what a finished slice
// may trigger: failing a stop_on_error job, finishing an exhausted job.
func (s *Server) complete(ctx context.Context, batch []completion) {
	byJob := map[bson.ObjectID][]completion{}
	var order []bson.ObjectID
	for _, c := range batch {
		if _, ok := byJob[c.job.ID]; !ok {
			order = append(order, c.job.ID)
		}
		byJob[c.job.ID] = append(byJob[c.job.ID], c)
	}
	for _, id := range order {
		cs := byJob[id]
		if f := cs[0].feeder; f.gone.Load() {
			// Destroyed while these slices ran: writing them would bring
			// back collections the destroy dropped.
			s.log.Info("job destroyed: slice results dropped", "job", id.Hex(), "slices", len(cs))
			if f.inFlight.Add(-int32(len(cs))) == 0 && f.workers.Load() == 0 {
				s.leaveJob(ctx, id, f)
			}
			continue
		}
		done := make([]store.Completion, len(cs))
		for i, c := range cs {
			done[i] = store.Completion{Claimed: c.c, Result: c.r}
		}
		won, err := s.store.Slices().CompleteMany(ctx, id, done)
		if err != nil {
			s.log.Error("writing slice results; giving the slices back", "job", id.Hex(), "slices", len(cs), "err", err)
			for _, c := range cs {
				if rerr := s.store.Slices().Release(ctx, id, c.c); rerr != nil {
					s.giveBack.slice(id, c.c, rerr)
				}
			}
		}
		f := cs[0].feeder
		if f.inFlight.Add(-int32(len(cs))) == 0 && f.gone.Load() && f.workers.Load() == 0 {
			s.leaveJob(ctx, id, f) // destroyed while this batch was written
		}
		stopped := false
		for i, c := range cs {
			if err == nil && !won[i] {
				s.log.Info("slice was finished by another attempt; result dropped", "job", id.Hex(), "slice", c.c.Num)
			}
			if err == nil && c.r.FailedCount > 0 && c.job.StopOnError && !stopped {
				stopped = true
				s.background(func(ctx context.Context) error { return s.stopOnError(ctx, id, c.firstErr) })
			}
		}
		if !stopped && f.exhausted.Load() && f.inFlight.Load() == 0 {
			spec := cs[0].spec
			s.background(func(ctx context.Context) error { return s.maybeFinish(ctx, spec, id) })
		}
	}
}

// background runs follow-up work (which may run a job's After hook) off the
// completer, tracked so that shutdown waits for it.
func (s *Server) background(fn func(context.Context) error) {
	s.followUps.Go(func() {
		if err := fn(s.pool.workCtx()); err != nil {
			s.log.Error("finishing a job", "err", err)
		}
	})
}
