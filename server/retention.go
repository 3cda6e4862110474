package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Defaults of Config.Retention, Config.RetentionInterval and
// Config.RetentionBatch.
const (
	// DefaultKeepCompleted keeps completed jobs a week: long enough to
	// download a job's output after a weekend or a holiday, short enough
	// that a cron job firing every minute keeps about 10,000 of them.
	DefaultKeepCompleted = 7 * 24 * time.Hour
	// DefaultKeepFailed and DefaultKeepAborted keep failed and aborted jobs
	// a month: they need a person to look at them (and a failed job can be
	// retried only while it exists), and there are few of them.
	DefaultKeepFailed  = 30 * 24 * time.Hour
	DefaultKeepAborted = 30 * 24 * time.Hour
	// DefaultRetentionInterval is how often the cluster deletes expired jobs.
	DefaultRetentionInterval = time.Minute
	// DefaultRetentionBatch bounds the jobs one retention pass deletes, so a
	// backlog drains over passes (720,000 a day at the defaults) without one
	// long pass.
	DefaultRetentionBatch = 500
)

// minRetentionPass is the least time a retention pass may take, however
// short the interval: a pass cut short leaves the rest for the next one.
const minRetentionPass = 10 * time.Second

// DefaultRetention is what zero fields of Config.Retention take.
var DefaultRetention = rocketjob.Retention{
	Completed: DefaultKeepCompleted,
	Failed:    DefaultKeepFailed,
	Aborted:   DefaultKeepAborted,
}

// retainerConfig configures the retainer service.
type retainerConfig struct {
	// Interval is the time between passes; the cluster runs one pass per
	// interval (default DefaultRetentionInterval).
	Interval time.Duration
	// Batch bounds the jobs one pass deletes (default DefaultRetentionBatch).
	Batch int
	// Retention is the cluster-wide setting, its zero fields already
	// defaulted.
	Retention rocketjob.Retention
	// Now is the clock that ages jobs; nil means time.Now.
	Now func() time.Time
}

func (c *retainerConfig) defaults() {
	if c.Interval <= 0 {
		c.Interval = DefaultRetentionInterval
	}
	if c.Batch <= 0 {
		c.Batch = DefaultRetentionBatch
	}
	c.Retention = c.Retention.Or(DefaultRetention)
	if c.Now == nil {
		c.Now = time.Now
	}
}

// retainer deletes finished jobs once they are older than their retention
// (a type's own, else the cluster's), with their slices, run-queue copy,
// state-index entry and claims, by the path that destroys a job. Once per
// interval across the cluster (the server whose unique-insert claim for the
// period wins) it asks the store for up to Batch expired jobs and deletes
// them, within half an interval (at least minRetentionPass); what is left
// waits for the next pass. The settings applied are those of the server
// whose turn it is: give every server the same ones.
type retainer struct {
	ticker
	cfg   retainerConfig
	store *store.Store
	log   *slog.Logger
	// types returns the job types registered here, for their own retention.
	types func() []*rocketjob.TypeSpec
	// destroy deletes a job the way Client.Destroy does, if it is still at
	// the version read (model.ErrConflict otherwise).
	destroy func(ctx context.Context, job *model.Job) error
	// swept, when not nil, is signalled after each pass that was the
	// cluster's (tests), without blocking.
	swept chan struct{}
}

func newRetainer(cfg retainerConfig, st *store.Store, log *slog.Logger) *retainer {
	cfg.defaults()
	r := &retainer{cfg: cfg, store: st, log: log, types: func() []*rocketjob.TypeSpec { return nil }}
	r.ticker = ticker{interval: cfg.Interval, pass: r.pass}
	return r
}

// policy turns the settings into the store's terms: the cluster's per
// state, each registered type's where it differs.
func (r *retainer) policy() store.Retention {
	asKeep := func(rt rocketjob.Retention) map[model.State]time.Duration {
		return map[model.State]time.Duration{
			model.StateCompleted: rt.Completed,
			model.StateFailed:    rt.Failed,
			model.StateAborted:   rt.Aborted,
		}
	}
	p := store.Retention{Keep: asKeep(r.cfg.Retention), Types: map[string]map[model.State]time.Duration{}}
	for _, spec := range r.types() {
		own := spec.Retention.Or(r.cfg.Retention)
		if spec.DestroyOnComplete && spec.Kind == rocketjob.KindSimple {
			// At the next pass. A sliced job is deleted as it completes,
			// by its own flag, which its upload may have turned off.
			own.Completed = 0
		}
		if own != r.cfg.Retention {
			p.Types[spec.Name] = asKeep(own)
		}
	}
	return p
}

func (r *retainer) pass(ctx context.Context) {
	won, err := r.store.ClaimRetention(ctx, time.Now(), r.cfg.Interval)
	if err != nil && ctx.Err() == nil {
		r.log.Warn("retention", "err", err)
	}
	if !won {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, max(r.cfg.Interval/2, minRetentionPass))
	defer cancel()
	jobs, err := r.store.ExpiredJobs(ctx, r.policy(), r.cfg.Now(), r.cfg.Batch)
	if err != nil && ctx.Err() == nil {
		r.log.Warn("retention: looking for expired jobs", "err", err)
	}
	n := 0
	for i := range jobs {
		if ctx.Err() != nil {
			break
		}
		if r.delete(ctx, &jobs[i]) {
			n++
		}
	}
	if n > 0 {
		r.log.Info("retention: deleted finished jobs", "jobs", n, "more", len(jobs) == r.cfg.Batch)
	}
	if r.swept != nil {
		select {
		case r.swept <- struct{}{}:
		default:
		}
	}
}

// delete destroys an expired job unless it changed since it was found (a
// failed job retried meanwhile, say): the deletion is decided by the
// version found, so a rerun at the same moment either comes first (the job
// stays) or fails.
func (r *retainer) delete(ctx context.Context, job *model.Job) bool {
	if err := r.destroy(ctx, job); err != nil {
		if errors.Is(err, model.ErrConflict) {
			return false
		}
		if ctx.Err() == nil {
			r.log.Warn("retention: deleting a job", "job", job.ID.Hex(), "err", err)
		}
		return false
	}
	r.log.Debug("retention: deleted", "job", job.ID.Hex(), "type", job.Type, "state", job.State,
		"ended", job.CompletedAt)
	return true
}
