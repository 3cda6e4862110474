package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// rescuerConfig configures the rescuer service.
type rescuerConfig struct {
	// Name is this server's name (never rescued by itself).
	Name string
	// Interval is how often the servers are looked at (default
	// DefaultHeartbeatInterval).
	Interval time.Duration
	// DeadAfter judges servers that publish no dead-after of their own
	// (default DefaultDeadAfter).
	DeadAfter time.Duration
}

func (c *rescuerConfig) defaults() {
	if c.Interval == 0 {
		c.Interval = DefaultHeartbeatInterval
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = DefaultDeadAfter
	}
}

// rescuer looks for dead servers every interval and puts their work back in
// the queue: any live server rescues, so no housekeeping job is needed. A
// server is dead when its heartbeat is older than its own published
// dead-after (model.Server.DeadAfterOr).
type rescuer struct {
	ticker
	cfg   rescuerConfig
	store *store.Store
	log   *slog.Logger
	// rescued is called after a server's work was requeued.
	rescued func()
	// waiting are the jobs of rescued servers that a transition the dead
	// server claimed (and never applied) holds, by id: each is looked at
	// again once its claim may be rolled forward. Only the pass uses it.
	waiting map[bson.ObjectID]claimed
}

// claimed is a job held by a dead server's pending transition.
type claimed struct {
	dead string    // the server that claimed it
	due  time.Time // when the claim may be rolled forward
}

func newRescuer(cfg rescuerConfig, st *store.Store, log *slog.Logger) *rescuer {
	cfg.defaults()
	r := &rescuer{cfg: cfg, store: st, log: log, rescued: func() {}, waiting: map[bson.ObjectID]claimed{}}
	r.ticker = ticker{interval: cfg.Interval, pass: r.pass}
	return r
}

func (r *rescuer) pass(ctx context.Context) {
	r.rollForwardDue(ctx)
	servers, err := r.store.ListServers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("rescuer: listing servers", "err", err)
		}
		return
	}
	for i := range servers {
		srv := &servers[i]
		if srv.Name == r.cfg.Name || time.Since(srv.HeartbeatAt) < srv.DeadAfterOr(r.cfg.DeadAfter) {
			continue
		}
		// The list may be old by now (earlier rescues in this pass take
		// time): judge the server on its document as it is now, so a live
		// server is never declared dead from a stale snapshot.
		fresh, err := r.store.GetServer(ctx, srv.Name)
		if err != nil || time.Since(fresh.HeartbeatAt) < fresh.DeadAfterOr(r.cfg.DeadAfter) {
			continue // gone (rescued by another server), unreadable, or alive
		}
		if err := r.rescue(ctx, fresh); err != nil && ctx.Err() == nil {
			r.log.Warn("rescuer", "dead", srv.Name, "err", err)
		}
	}
}

// rescue puts the work of a dead server back in the queue, then removes its
// document. Every requeue names the exact server and is guarded by the job's
// version (or the slice's attempt), so work that completed in the meantime is
// never overwritten.
func (r *rescuer) rescue(ctx context.Context, dead *model.Server) error {
	if won, err := r.store.ClaimRescue(ctx, dead.Name, dead.HeartbeatAt); err != nil || !won {
		return err // another live server is rescuing it
	}
	log := r.log.With("dead", dead.Name, "heartbeat", dead.HeartbeatAt)
	log.Warn("server is dead: requeuing its work")
	jobs, err := r.store.JobsOfServer(ctx, dead.Name)
	if err != nil {
		return err
	}
	for i := range jobs {
		job := &jobs[i]
		// A transition the dead server claimed and never applied (killed
		// between the two) holds the job until the claim is old enough to
		// be rolled forward (a claimer judged dead may still be writing
		// it): the job is looked at again then, not left to the minute's
		// sweep (housekeeping.go).
		by, due, pending, err := r.store.PendingTransition(ctx, job)
		if err != nil {
			return err
		}
		if pending && by == dead.Name && time.Now().Before(due) {
			r.waiting[job.ID] = claimed{dead: dead.Name, due: due}
			log.Info("job held by a transition the dead server claimed: looked at again when the claim can be rolled forward",
				"job", job.ID.Hex(), "type", job.Type, "at", due)
			continue
		}
		requeued, err := requeueRun(ctx, r.store, r.cfg.Name, job, dead.Name)
		if err != nil {
			return err
		}
		if requeued {
			log.Info("job requeued", "job", job.ID.Hex(), "type", job.Type)
		} else {
			log.Info("job not requeued: it moved on meanwhile, or another process's transition holds it", "job", job.ID.Hex(), "type", job.Type)
		}
	}
	// The jobs are read from the state index and the slice collections
	// (store.SlicedJobsWithSlices), not by a scan of every job: a rescue
	// costs as much with a million completed jobs as with none.
	sliced, err := r.store.SlicedJobsWithSlices(ctx)
	if err != nil {
		return err
	}
	for _, job := range sliced {
		n, err := r.store.Slices().RequeueServer(ctx, job.ID, dead.Name)
		if err != nil {
			return err
		}
		if n > 0 {
			log.Info("slices requeued", "job", job.ID.Hex(), "slices", n)
		}
	}
	if _, err := r.store.ReleaseSlotsOf(ctx, dead.Name); err != nil {
		return err
	}
	if _, err := r.store.RemoveServer(ctx, dead.Name, dead.HeartbeatAt); err != nil {
		return err
	}
	r.rescued()
	return nil
}

// rollForwardDue looks again at the jobs held by a dead server's claim
// whose claim may now be rolled forward: the give-back's transition rolls
// it forward (model.ErrConflict), and gives the run back when the claim
// gave it to the dead server. A job that moved on meanwhile is left alone;
// one this fails on is left to the minute's sweep.
func (r *rescuer) rollForwardDue(ctx context.Context) {
	now := time.Now()
	for id, w := range r.waiting {
		if now.Before(w.due) {
			continue
		}
		delete(r.waiting, id)
		job, err := r.store.GetJob(ctx, id)
		if err != nil || job.State != model.StateRunning || job.Server != w.dead {
			continue // gone, moved on (the claim rolled forward by another process), or unreadable (the sweep)
		}
		if srv, err := r.store.GetServer(ctx, w.dead); err == nil && time.Since(srv.HeartbeatAt) < srv.DeadAfterOr(r.cfg.DeadAfter) {
			continue // a server of that name runs again: its runs are its own
		}
		log := r.log.With("dead", w.dead, "job", id.Hex(), "type", job.Type)
		requeued, err := requeueRun(ctx, r.store, r.cfg.Name, job, w.dead)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("rescuer: rolling a dead server's claim forward", "err", err)
			}
		case requeued:
			log.Info("job requeued")
		default:
			switch cur, err := r.store.GetJob(ctx, id); {
			case err != nil:
			case cur.Version == job.Version:
				log.Warn("job still held by the dead server's transition: left to the minute's sweep")
			default:
				log.Info("the dead server's pending transition was rolled forward", "state", cur.State, "server", cur.Server)
			}
		}
	}
}

// requeueRun gives back the run (simple job) or step (sliced job) that gone
// held, unless the job moved on meanwhile.
func requeueRun(ctx context.Context, st *store.Store, by string, job *model.Job, gone string) (requeued bool, err error) {
	_, err = moveWhile(ctx, st, by, job, store.GiveBack(job.Kind), func(j *model.Job) bool {
		return j.State == model.StateRunning && j.Server == gone
	})
	if errors.Is(err, model.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}
