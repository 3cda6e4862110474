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

// Housekeeping chores and how often they run, in passes of the housekeeper
// (one pass per heartbeat interval).
const (
	orphanEvery         = 500            // passes between looks for orphaned slices
	orphanAge           = 24 * time.Hour // an upload older than this without its job document was killed
	rateTokenPruneEvery = 12             // passes between deletions of past seconds' rate tokens
	auditEvery          = 12             // passes between checks of the jobs said to run on this server
)

// housekeeperConfig configures the housekeeper service.
type housekeeperConfig struct {
	// Name is this server's name.
	Name string
	// Interval is the time between passes (default DefaultHeartbeatInterval).
	Interval time.Duration
	// DeadAfter judges servers that publish no dead-after of their own.
	DeadAfter time.Duration
}

func (c *housekeeperConfig) defaults() {
	if c.Interval == 0 {
		c.Interval = DefaultHeartbeatInterval
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = DefaultDeadAfter
	}
}

// housekeeper does the cluster's chores. Once a minute across the cluster
// (the first server whose unique-insert claim for that minute wins) it
// gives their run-queue copies to the jobs of writers that died between a
// job write and its copy (store.RepairIntents), requeues running jobs
// whose server is not alive (no fresh heartbeat) and offers again those
// nobody holds, reading only live jobs; once an hour (deepSweepMine) it
// reconciles the whole run queue with the jobs (a scan of every job on
// FerretDB: for jobs written by an older version or behind the store's
// back); now and then it drops the slices of jobs that do not exist and
// prunes old rate-limit tokens. Deleting finished jobs past their
// retention is the retainer's (retention.go).
type housekeeper struct {
	ticker
	cfg   housekeeperConfig
	store *store.Store
	log   *slog.Logger
	// repaired is called when the run queue changed.
	repaired func()
	// running reports whether this server runs job id now (its run or
	// step is watched); nil: the jobs said to run here are not checked.
	running func(id bson.ObjectID) bool

	passes   int
	started  time.Time               // when this housekeeper was made (deepSweepMine)
	suspects map[bson.ObjectID]int64 // jobs said to run here that did not, at the last audit: their versions
}

// deepSweepAfter is how long a server runs before it takes its turn at the
// hourly reconcile of the whole run queue, unless the queue may lack copies
// (deepSweepMine).
const deepSweepAfter = 5 * time.Minute

// deepSweepMine reports whether this server may take the hour's reconcile
// of the whole run queue. The reconcile reads every job, which FerretDB
// decodes whole: about 100 µs of the database's CPU per job stored (10 s
// for 100,000 jobs, a quarter of what a server fresh from its start spent
// on its first 25 s of short jobs in `bench --simple`). So servers fresh
// from a start (a deploy restarts them all) leave it to one that has run
// for deepSweepAfter, unless the run queue may lack copies: a database
// written by a build from before the run queue (store.QueueWhole), whose
// first reconcile is due at once.
func (h *housekeeper) deepSweepMine(ctx context.Context) bool {
	if time.Since(h.started) >= deepSweepAfter {
		return true
	}
	whole, err := h.store.QueueWhole(ctx)
	return err == nil && !whole
}

func newHousekeeper(cfg housekeeperConfig, st *store.Store, log *slog.Logger) *housekeeper {
	cfg.defaults()
	h := &housekeeper{cfg: cfg, store: st, log: log, repaired: func() {}, started: time.Now()}
	h.ticker = ticker{interval: cfg.Interval, pass: h.pass}
	return h
}

func (h *housekeeper) pass(ctx context.Context) {
	h.passes++
	if h.passes%orphanEvery == 0 {
		h.dropOrphans(ctx)
	}
	sweep, err := h.store.ClaimSweep(ctx, time.Now())
	if err != nil && ctx.Err() == nil {
		h.log.Warn("housekeeping", "err", err)
	}
	if sweep {
		// Runs held by dead servers first: their cost follows the running
		// jobs, the intents' the writers that died or requeued (a retry
		// storm leaves an intent per job).
		h.requeueOrphanedJobs(ctx)
		h.repairIntents(ctx)
		if h.deepSweepMine(ctx) {
			if deep, err := h.store.ClaimDeepSweep(ctx, time.Now()); err == nil && deep {
				h.repairQueue(ctx)
			}
		}
	}
	if h.passes%auditEvery == 0 && h.running != nil {
		h.auditOwnJobs(ctx)
	}
	if h.passes%rateTokenPruneEvery == 0 {
		if err := h.store.PruneRateTokens(ctx, time.Now().Add(-time.Minute)); err != nil && ctx.Err() == nil {
			h.log.Warn("pruning rate tokens", "err", err)
		}
	}
}

// repairIntents writes the run-queue copies that writers which died
// between a job write and its copy left missing (FerretDB).
func (h *housekeeper) repairIntents(ctx context.Context) {
	n, err := h.store.RepairIntents(ctx, time.Now())
	switch {
	case err != nil && ctx.Err() == nil:
		h.log.Warn("repairing the run queue", "err", err)
	case n > 0:
		h.log.Info("run queue repaired", "copies", n)
		h.repaired()
	}
}

// repairQueue brings the run queue (FerretDB) in line with the jobs: copies
// a crash or a race left missing or stale. It reads every job.
func (h *housekeeper) repairQueue(ctx context.Context) {
	n, err := h.store.ReconcileQueue(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		h.log.Warn("repairing the run queue", "err", err)
	case n > 0:
		h.log.Info("run queue repaired", "copies", n)
		h.repaired()
	}
}

// requeueOrphanedJobs requeues running jobs (or steps) whose server is not
// alive (its heartbeat older than its dead-after, or no server document): a
// transition that server claimed just before it died can be rolled forward
// by another process after the server was rescued and removed, and a
// rescue can fail. It also writes again the lost run-queue copy of a
// running job nobody holds. On FerretDB it reads the running jobs from the
// state index.
func (h *housekeeper) requeueOrphanedJobs(ctx context.Context) {
	servers, err := h.store.ListServers(ctx)
	if err != nil {
		h.log.Warn("looking for orphaned jobs", "err", err)
		return
	}
	live := map[string]bool{h.cfg.Name: true}
	for i := range servers {
		if time.Since(servers[i].HeartbeatAt) < servers[i].DeadAfterOr(h.cfg.DeadAfter) {
			live[servers[i].Name] = true
		}
	}
	jobs, err := h.store.RunningJobs(ctx)
	if err != nil {
		h.log.Warn("looking for orphaned jobs", "err", err)
		return
	}
	for i := range jobs {
		job := &jobs[i]
		if job.Server == "" {
			// Nobody holds it (a sliced job's slices, or a step given
			// back): it must be offered by its run-queue copy. A copy
			// lost (its writer killed, a write that raced) would leave it
			// to the hourly reconciliation; written again here, it is
			// taken within a minute. A copy as new is not rewritten.
			if err := h.store.RepairQueued(ctx, job); err != nil && ctx.Err() == nil {
				h.log.Warn("offering a running job nobody holds", "job", job.ID.Hex(), "err", err)
			}
			continue
		}
		if live[job.Server] {
			continue
		}
		if _, due, pending, err := h.store.PendingTransition(ctx, job); err == nil && pending && time.Now().Before(due) {
			continue // a young claim holds it: rolled forward by the next sweep, not fought 50 times now
		}
		requeued, err := requeueRun(ctx, h.store, h.cfg.Name, job, job.Server)
		if err != nil {
			h.log.Warn("requeuing an orphaned job", "job", job.ID.Hex(), "err", err)
			continue
		}
		if requeued {
			h.log.Warn("job was running on a server that no longer exists: requeued", "job", job.ID.Hex(), "server", job.Server)
		}
	}
}

// auditOwnJobs gives back the jobs that say they run on this server while
// it does not run them, seen so twice in a row at the same version (a
// minute apart by default, far longer than any start takes). Rescuers
// only look at dead servers' jobs; this is how a live server's phantom
// runs end: a start whose claim went in but whose job update failed (a
// database outage) and was later rolled forward by another process, or a
// step whose give-back failed. A simple job is queued again, a sliced
// job's before or after step runs again.
func (h *housekeeper) auditOwnJobs(ctx context.Context) {
	jobs, err := h.store.JobsOfServer(ctx, h.cfg.Name)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("checking the jobs said to run here", "err", err)
		}
		return
	}
	seen := map[bson.ObjectID]int64{}
	for i := range jobs {
		job := &jobs[i]
		if h.running(job.ID) {
			continue
		}
		v, ok := h.suspects[job.ID]
		if !ok || v != job.Version {
			seen[job.ID] = job.Version // again at the next audit, if nothing moved it
			continue
		}
		_, err := moveWhile(ctx, h.store, h.cfg.Name, job, store.GiveBack(job.Kind), func(j *model.Job) bool {
			return j.State == model.StateRunning && j.Server == h.cfg.Name && j.Version == v && !h.running(j.ID)
		})
		switch {
		case errors.Is(err, model.ErrConflict):
		case err != nil:
			h.log.Warn("giving back a job said to run here", "job", job.ID.Hex(), "err", err)
			seen[job.ID] = job.Version
		default:
			h.log.Warn("job said it ran on this server, which did not run it: given back", "job", job.ID.Hex(), "step", job.Step)
			h.repaired()
		}
	}
	h.suspects = seen
}

// dropOrphans drops the slice collections of jobs that do not exist and are
// older than orphanAge (an upload killed half-way; a job destroyed while a
// server was still writing one of its slices).
func (h *housekeeper) dropOrphans(ctx context.Context) {
	ids, err := h.store.OrphanSliceJobs(ctx, time.Now().Add(-orphanAge))
	if err != nil {
		h.log.Warn("looking for orphaned slices", "err", err)
		return
	}
	for _, id := range ids {
		if err := h.store.Slices().Drop(ctx, id); err != nil {
			h.log.Warn("dropping orphaned slices", "job", id.Hex(), "err", err)
			continue
		}
		h.log.Info("dropped the slices of a job that does not exist (a killed upload?)", "job", id.Hex())
	}
}
