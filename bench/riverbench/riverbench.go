// Package riverbench runs the "batch-1M" workload of /work/shared/BENCH.md
// through River (github.com/riverqueue/river) on PostgreSQL, one job per
// record, so that the benchmark command (bench/) can quote rocketjob's rate
// as a ratio of a peer's measured in the same invocation.
//
// The workload, as River would naturally run it:
//
//   - insert: every input line becomes one job (kind "bench_reverse", args
//     {"i": record number, "l": line}), inserted with Client.InsertManyFast
//     (River's bulk insert, COPY FROM) in batches of InsertBatch jobs, before
//     the client starts working;
//   - process: a started client (one queue, MaxWorkers workers) works every
//     job: the worker reverses the line and inserts it into
//     river_output(id bigint primary key, line text) (ON CONFLICT DO NOTHING, so
//     a retried job does not duplicate output); the phase ends when every job
//     is in state completed in river_job;
//   - read-back: one query, SELECT line FROM river_output ORDER BY id, every
//     line handed to the caller's verifier.
//
// Configuration, chosen to be fair to River: MaxWorkers 100 (the brief's;
// BENCH.md's reference used 500, which did not help on 2 cores), FetchCooldown
// 1ms (River's minimum; BENCH.md measured it 3.3x faster than the 100ms
// default for this workload), FetchPollInterval 50ms, a pgx pool of
// PoolConns connections, PostgreSQL left at its durable defaults (fsync and
// synchronous_commit on), like the rocketjob side's database.
package riverbench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// Defaults of Config.
const (
	DefaultMaxWorkers    = 100
	DefaultFetchCooldown = time.Millisecond
	DefaultPollInterval  = 50 * time.Millisecond
	DefaultPoolConns     = 32
	InsertBatch          = 10_000
	donePoll             = 50 * time.Millisecond
)

// Kind is the River job kind of the workload.
const Kind = "bench_reverse"

// Config is one River run.
type Config struct {
	// DSN is the PostgreSQL connection string (postgres://...).
	DSN string
	// N is the number of records; Input yields them as newline-terminated lines.
	N     int
	Input io.Reader
	// Record receives every output record in input order (the caller's
	// verifier); its bytes are only valid during the call.
	Record func(rec []byte) error
	// MaxWorkers of the River queue (default DefaultMaxWorkers, 100).
	MaxWorkers int
	// FetchCooldown of the River client (default DefaultFetchCooldown, 1ms).
	FetchCooldown time.Duration
	// PoolConns is the pgx pool's maximum connections (default 32).
	PoolConns int
	// Logf receives one line per phase; nil discards them.
	Logf func(format string, args ...any)
}

// Result is the outcome of a run.
type Result struct {
	// Insert, Process and ReadBack are the phases' times (ReadBack includes
	// the caller's verification).
	Insert, Process, ReadBack time.Duration
	// Records is the number of records read back; Jobs the jobs inserted.
	Records, Jobs int64
	// Server is PostgreSQL's version; Settings River's configuration.
	Server, Settings string
}

// Total is the sum of the phases.
func (r *Result) Total() time.Duration { return r.Insert + r.Process + r.ReadBack }

type reverseArgs struct {
	ID   int64  `json:"i"`
	Line string `json:"l"`
}

func (reverseArgs) Kind() string { return Kind }

type reverseWorker struct {
	river.WorkerDefaults[reverseArgs]
	pool   *pgxpool.Pool
	worked *atomic.Int64
}

func (w *reverseWorker) Work(ctx context.Context, job *river.Job[reverseArgs]) error {
	b := []byte(job.Args.Line)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	_, err := w.pool.Exec(ctx, "INSERT INTO river_output (id, line) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", job.Args.ID, string(b))
	if err == nil {
		w.worked.Add(1)
	}
	return err
}

// Migrate brings River's schema up to date on dsn (idempotent).
func Migrate(ctx context.Context, dsn string) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrate(ctx, pool)
}

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

// Run migrates River's schema, empties river_job and river_output, and runs
// the workload (see the package doc). The jobs and output are left in the
// database for inspection; the next run empties them.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
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
	if cfg.Input == nil || cfg.Record == nil {
		return res, errors.New("riverbench: Input and Record are required")
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
	_, err = pool.Exec(ctx, `TRUNCATE river_job;
		DROP TABLE IF EXISTS river_output;
		CREATE TABLE river_output (id bigint PRIMARY KEY, line text NOT NULL)`)
	if err != nil {
		return res, fmt.Errorf("riverbench: preparing tables: %w", err)
	}
	res.Settings = fmt.Sprintf("MaxWorkers %d, FetchCooldown %s, FetchPollInterval %s, %d pool conns, InsertManyFast batches of %d",
		cfg.MaxWorkers, cfg.FetchCooldown, DefaultPollInterval, cfg.PoolConns, InsertBatch)

	var worked atomic.Int64
	workers := river.NewWorkers()
	river.AddWorker(workers, &reverseWorker{pool: pool, worked: &worked})
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

	// Insert, before the client works, so the phases do not overlap.
	err = phase("insert", &res.Insert, func() error {
		n, err := insert(ctx, client, cfg.Input)
		res.Jobs = n
		return err
	})
	if err != nil {
		return res, err
	}

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
			// Once every job has been worked, wait for River to record them
			// all completed (its completer writes in batches).
			if worked.Load() < res.Jobs {
				continue
			}
			var left int64
			err := pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state <> 'completed'").Scan(&left)
			if err != nil {
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

	err = phase("read-back", &res.ReadBack, func() error {
		rows, err := pool.Query(ctx, "SELECT line FROM river_output ORDER BY id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			raw := rows.RawValues()
			if err := cfg.Record(raw[0]); err != nil {
				return err
			}
			res.Records++
		}
		return rows.Err()
	})
	return res, err
}

// insert turns every line of r into a job, InsertBatch jobs per
// InsertManyFast, and returns the number of jobs.
func insert(ctx context.Context, client *river.Client[pgx.Tx], r io.Reader) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	batch := make([]river.InsertManyParams, 0, InsertBatch)
	var n int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := client.InsertManyFast(ctx, batch)
		batch = batch[:0]
		return err
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return n, err
		}
		n++
		batch = append(batch, river.InsertManyParams{Args: reverseArgs{ID: n, Line: string(bytes.TrimSuffix(line, []byte{'\n'}))}})
		if len(batch) == InsertBatch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	return n, flush()
}
