package riverbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// NoopKind is the River job kind of the simple-jobs workload.
const NoopKind = "bench_noop"

// SimpleConfig is one River run of the simple-jobs workload: N no-op jobs,
// inserted with InsertManyFast in batches of InsertBatch before the client
// starts, then worked; every job's runs are counted.
type SimpleConfig struct {
	// DSN is the PostgreSQL connection string (postgres://...).
	DSN string
	// N is the number of jobs.
	N int
	// MaxWorkers of the River queue (default DefaultMaxWorkers, 100).
	MaxWorkers int
	// FetchCooldown of the River client (default DefaultFetchCooldown, 1ms).
	FetchCooldown time.Duration
	// PoolConns is the pgx pool's maximum connections (default 32).
	PoolConns int
	// Logf receives one line per phase; nil discards them.
	Logf func(format string, args ...any)
}

// SimpleResult is the outcome of a simple-jobs run.
type SimpleResult struct {
	// Insert and Process are the phases' times.
	Insert, Process time.Duration
	// Jobs is the number of jobs inserted; Completed the jobs River recorded
	// completed; Runs the worker calls (Runs == Jobs: each ran once).
	Jobs, Completed, Runs int64
	// Server is PostgreSQL's version; Settings River's configuration.
	Server, Settings string
}

type noopArgs struct {
	I int `json:"i"`
}

func (noopArgs) Kind() string { return NoopKind }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	runs   []atomic.Int32
	worked *atomic.Int64
}

func (w *noopWorker) Work(_ context.Context, job *river.Job[noopArgs]) error {
	if i := job.Args.I; i >= 0 && i < len(w.runs) {
		w.runs[i].Add(1)
	}
	w.worked.Add(1)
	return nil
}

// RunSimple migrates River's schema, empties river_job and runs the
// simple-jobs workload. It fails unless every job ran exactly once and
// River recorded it completed.
func RunSimple(ctx context.Context, cfg SimpleConfig) (res SimpleResult, err error) {
	if cfg.MaxWorkers == 0 {
		cfg.MaxWorkers = DefaultMaxWorkers
	}
	if cfg.FetchCooldown == 0 {
		cfg.FetchCooldown = DefaultFetchCooldown
	}
	if cfg.PoolConns == 0 {
		cfg.PoolConns = DefaultPoolConns
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.N < 1 {
		return res, errors.New("riverbench: N must be at least 1")
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return res, fmt.Errorf("riverbench: %w", err)
	}
	pcfg.MaxConns = int32(cfg.PoolConns)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return res, fmt.Errorf("riverbench: %w", err)
	}
	defer pool.Close()
	if err := pool.QueryRow(ctx, "SHOW server_version").Scan(&res.Server); err != nil {
		return res, fmt.Errorf("riverbench: %w", err)
	}
	res.Server = "PostgreSQL " + res.Server
	if err := migrate(ctx, pool); err != nil {
		return res, fmt.Errorf("riverbench: migrating: %w", err)
	}
	if _, err := pool.Exec(ctx, "TRUNCATE river_job"); err != nil {
		return res, fmt.Errorf("riverbench: emptying river_job: %w", err)
	}
	res.Settings = fmt.Sprintf("MaxWorkers %d, FetchCooldown %s, FetchPollInterval %s, %d pool conns, InsertManyFast batches of %d",
		cfg.MaxWorkers, cfg.FetchCooldown, DefaultPollInterval, cfg.PoolConns, InsertBatch)

	var worked atomic.Int64
	w := &noopWorker{runs: make([]atomic.Int32, cfg.N), worked: &worked}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.MaxWorkers}},
		Workers:           workers,
		FetchCooldown:     cfg.FetchCooldown,
		FetchPollInterval: DefaultPollInterval,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return res, fmt.Errorf("riverbench: %w", err)
	}
	phase := func(name string, d *time.Duration, fn func() error) error {
		start := time.Now()
		err := fn()
		*d = time.Since(start)
		if err != nil {
			return fmt.Errorf("riverbench: %s: %w", name, err)
		}
		cfg.Logf("bench: river %s: %s", name, d.Round(time.Millisecond))
		return nil
	}

	err = phase("enqueue", &res.Insert, func() error {
		return insertNoops(ctx, client, cfg.N)
	})
	if err != nil {
		return res, err
	}
	res.Jobs = int64(cfg.N)

	failed, cancelSub := client.Subscribe(river.EventKindJobFailed)
	defer cancelSub()
	err = phase("process", &res.Process, func() error {
		if err := client.Start(ctx); err != nil {
			return err
		}
		t := time.NewTicker(donePoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case ev := <-failed:
				msg := ""
				if ev != nil && ev.Job != nil && len(ev.Job.Errors) > 0 {
					msg = ": " + ev.Job.Errors[len(ev.Job.Errors)-1].Error
				}
				return fmt.Errorf("a job failed%s", msg)
			case <-t.C:
			}
			if worked.Load() < res.Jobs {
				continue
			}
			var left int64
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state <> 'completed'").Scan(&left); err != nil {
				return err
			}
			if left == 0 {
				return nil
			}
		}
	})
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if serr := client.Stop(stopCtx); err == nil && serr != nil {
		err = fmt.Errorf("riverbench: stopping client: %w", serr)
	}
	if err != nil {
		return res, err
	}
	res.Runs = worked.Load()
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state = 'completed'").Scan(&res.Completed); err != nil {
		return res, fmt.Errorf("riverbench: counting completed jobs: %w", err)
	}
	for i := range w.runs {
		if n := w.runs[i].Load(); n != 1 {
			return res, fmt.Errorf("riverbench: job %d ran %d times, want once", i, n)
		}
	}
	if res.Completed != res.Jobs {
		return res, fmt.Errorf("riverbench: %d of %d jobs completed", res.Completed, res.Jobs)
	}
	return res, nil
}

// insertNoops inserts n no-op jobs, InsertBatch per InsertManyFast.
func insertNoops(ctx context.Context, client *river.Client[pgx.Tx], n int) error {
	batch := make([]river.InsertManyParams, 0, InsertBatch)
	for i := range n {
		batch = append(batch, river.InsertManyParams{Args: noopArgs{I: i}})
		if len(batch) == InsertBatch || i == n-1 {
			if _, err := client.InsertManyFast(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}
