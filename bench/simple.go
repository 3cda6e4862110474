package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/bench/riverbench"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
)

// Defaults of SimpleConfig.
const (
	DefaultSimpleN       = 100_000
	DefaultSimpleWorkers = 8
	// SimpleType is the no-op simple job type the benchmark registers.
	SimpleType = "bench_noop"
	// simpleEnqueueChunk is how many jobs one EnqueueMany call writes.
	simpleEnqueueChunk = 10_000
	// simplePoll is how often the benchmark looks whether every job ran.
	simplePoll = 20 * time.Millisecond
)

// Targets of the simple-jobs workload (issue 14).
const (
	TargetSimpleRate    = 5_000  // jobs/s end to end, 1 server x 8 workers, 100,000 jobs
	TargetSimpleEnqueue = 10_000 // jobs/s through EnqueueMany
)

// SimpleConfig is one run of the simple-jobs benchmark: N no-op simple jobs
// enqueued with EnqueueMany, then run by Servers servers of Workers workers.
// Zero fields take the defaults.
type SimpleConfig struct {
	// N is the number of jobs (default DefaultSimpleN, 100,000).
	N int
	// Workers per server (default 8).
	Workers int
	// Servers is the number of servers (default 1). They run in this
	// process, each with its own Client (its own connections), as separate
	// processes would.
	Servers int
	// URI is the database server; empty starts an embedded FerretDB in a
	// temporary folder, removed at the end. Each run uses fresh database
	// names and drops them at the end.
	URI string
	// RiverDSN, when set, runs River on the PostgreSQL server it names as a
	// peer: N no-op jobs, one River job each (riverbench.RunSimple).
	RiverDSN string
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

func (c SimpleConfig) withDefaults() SimpleConfig {
	if c.N == 0 {
		c.N = DefaultSimpleN
	}
	if c.Workers == 0 {
		c.Workers = DefaultSimpleWorkers
	}
	if c.Servers == 0 {
		c.Servers = 1
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

func (c SimpleConfig) validate() error {
	switch {
	case c.N < 1:
		return fmt.Errorf("bench: n must be at least 1 (got %d)", c.N)
	case c.Workers < 1:
		return fmt.Errorf("bench: workers must be at least 1 (got %d)", c.Workers)
	case c.Servers < 1 || c.Servers > 64:
		return fmt.Errorf("bench: servers must be between 1 and 64 (got %d)", c.Servers)
	}
	return nil
}

// SimpleReport is the outcome of RunSimple.
type SimpleReport struct {
	N, Workers, Servers int
	// Database describes the database server; LoadAvg is /proc/loadavg
	// before the run; CPUs the usable CPUs.
	Database, LoadAvg string
	CPUs              int
	// Enqueue is the EnqueueMany time, Process the time from the servers'
	// start until every job is completed.
	Enqueue, Process time.Duration
	// Runs counts the jobs' runs (== N: each ran exactly once).
	Runs int64
	// River, with SimpleConfig.RiverDSN, is River's run.
	River                        *riverbench.SimpleResult
	RiverDatabase, RiverSettings string
}

// Total is enqueue plus processing.
func (r *SimpleReport) Total() time.Duration { return r.Enqueue + r.Process }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// EnqueueRate, ProcessRate and Rate are rocketjob's jobs/s: enqueue,
// processing, end to end.
func (r *SimpleReport) EnqueueRate() float64 { return rate(r.N, r.Enqueue) }
func (r *SimpleReport) ProcessRate() float64 { return rate(r.N, r.Process) }
func (r *SimpleReport) Rate() float64        { return rate(r.N, r.Total()) }

// RiverRate is River's end-to-end jobs/s, or 0 without River.
func (r *SimpleReport) RiverRate() float64 {
	if r.River == nil {
		return 0
	}
	return rate(r.N, r.River.Insert+r.River.Process)
}

// RunSimple runs the simple-jobs workload (see SimpleConfig) and, with a
// River DSN, River's. It fails unless every job ran exactly once and
// completed.
func RunSimple(ctx context.Context, cfg SimpleConfig) (rep *SimpleReport, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rep = &SimpleReport{N: cfg.N, Workers: cfg.Workers, Servers: cfg.Servers, LoadAvg: loadAvg(), CPUs: runtime.GOMAXPROCS(0)}
	uri, where, stop, err := benchDatabase(ctx, cfg.URI)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	rep.Database = where
	mc, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(store.ConnectTimeout))
	if err != nil {
		return nil, err
	}
	defer func() { _ = mc.Disconnect(context.WithoutCancel(ctx)) }()
	if rep.Database, err = describe(ctx, mc, rep.Database); err != nil {
		return nil, err
	}
	prefix := fmt.Sprintf("bench_simple_%d_%x", os.Getpid(), time.Now().UnixNano())
	jobsDB, workDB := prefix+"_jobs", prefix+"_work"
	defer func() {
		for _, n := range []string{jobsDB, workDB} {
			if derr := mc.Database(n).Drop(context.WithoutCancel(ctx)); derr != nil {
				cfg.Logf("bench: dropping database %s: %v", n, derr)
			}
		}
	}()

	cfg.Logf("bench: rocketjob: %d no-op simple jobs, %d server(s) x %d workers", cfg.N, cfg.Servers, cfg.Workers)
	if err := runSimpleRocketJob(ctx, cfg, uri, jobsDB, workDB, rep); err != nil {
		return rep, err
	}
	cfg.Logf("bench: rocketjob: enqueue %.0f jobs/s, processing %.0f jobs/s, end to end %.0f jobs/s",
		rep.EnqueueRate(), rep.ProcessRate(), rep.Rate())

	if cfg.RiverDSN != "" {
		cfg.Logf("bench: river: %d no-op jobs", cfg.N)
		res, err := riverbench.RunSimple(ctx, riverbench.SimpleConfig{DSN: cfg.RiverDSN, N: cfg.N, Logf: cfg.Logf})
		rep.River = &res
		rep.RiverDatabase, rep.RiverSettings = store.Redact(cfg.RiverDSN)+" ("+res.Server+")", res.Settings
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// noopArgs are the arguments of the benchmark's job: its index.
type noopArgs struct {
	I int `bson:"i"`
}

// runSimpleRocketJob enqueues cfg.N no-op jobs, runs them with cfg.Servers
// in-process servers and checks that each ran exactly once and completed.
func runSimpleRocketJob(ctx context.Context, cfg SimpleConfig, uri, jobsDB, workDB string, rep *SimpleReport) error {
	runs := make([]atomic.Int32, cfg.N)
	var ran atomic.Int64 // jobs that ran at least once
	reg := rocketjob.NewRegistry()
	err := rocketjob.Register(reg, SimpleType, func(_ context.Context, _ *rocketjob.Job, a noopArgs) error {
		if a.I < 0 || a.I >= len(runs) {
			return fmt.Errorf("no job %d", a.I)
		}
		if runs[a.I].Add(1) == 1 {
			ran.Add(1)
		}
		return nil
	}, nil)
	if err != nil {
		return err
	}
	ccfg := rocketjob.Config{URI: uri, WorkURI: uri, DB: jobsDB, WorkDB: workDB, Registry: reg}
	client, err := rocketjob.NewClient(ctx, ccfg)
	if err != nil {
		return err
	}
	defer func() { _ = client.Close(context.WithoutCancel(ctx)) }()

	args := make([]noopArgs, cfg.N)
	for i := range args {
		args[i].I = i
	}
	start := time.Now()
	for from := 0; from < cfg.N; from += simpleEnqueueChunk {
		if _, err := rocketjob.EnqueueManyOf(ctx, client, SimpleType, args[from:min(from+simpleEnqueueChunk, cfg.N)], nil); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
	}
	rep.Enqueue = time.Since(start)
	cfg.Logf("bench: rocketjob enqueue: %s", rep.Enqueue.Round(time.Millisecond))

	// The servers start once every job is enqueued, so the phases do not
	// overlap; each has its own client, as a separate process would.
	srvCtx, stopServers := context.WithCancel(ctx)
	defer stopServers()
	done := make(chan error, cfg.Servers)
	running := 0
	var clients []*rocketjob.Client
	defer func() {
		stopServers()
		for range running {
			<-done
		}
		for _, c := range clients {
			_ = c.Close(context.WithoutCancel(ctx))
		}
	}()
	start = time.Now()
	for i := range cfg.Servers {
		c, err := rocketjob.NewClient(ctx, ccfg)
		if err != nil {
			return err
		}
		clients = append(clients, c)
		srv, err := server.New(c, &server.Config{
			Name:    fmt.Sprintf("bench-simple-%d-%d", os.Getpid(), i),
			Workers: cfg.Workers,
			Logger:  slog.New(slog.DiscardHandler),
		})
		if err != nil {
			return err
		}
		running++
		go func() { done <- srv.Run(srvCtx) }()
	}
	if err := waitAllCompleted(ctx, client, &ran, int64(cfg.N), done, &running); err != nil {
		return fmt.Errorf("process: %w", err)
	}
	rep.Process = time.Since(start)
	cfg.Logf("bench: rocketjob process: %s", rep.Process.Round(time.Millisecond))
	stopServers()
	for ; running > 0; running-- {
		if err := <-done; err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}

	var dups, missing int
	for i := range runs {
		switch n := runs[i].Load(); {
		case n == 0:
			missing++
		case n > 1:
			dups++
		}
		rep.Runs += int64(runs[i].Load())
	}
	if dups > 0 || missing > 0 {
		return fmt.Errorf("verify: %d jobs ran more than once, %d never ran (%d runs for %d jobs)", dups, missing, rep.Runs, cfg.N)
	}
	return nil
}

// waitAllCompleted waits until every job ran (ran reaches n) and then until
// none is queued or running any more (a run is written completed after its
// function returns); a failed job or a server that stops is an error.
func waitAllCompleted(ctx context.Context, c *rocketjob.Client, ran *atomic.Int64, n int64, done chan error, running *int) error {
	t := time.NewTicker(simplePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-done:
			*running--
			return fmt.Errorf("a server stopped before every job completed: %v", err)
		case <-t.C:
		}
		if ran.Load() < n {
			continue
		}
		live, err := c.List(ctx, &rocketjob.ListOptions{States: []rocketjob.State{rocketjob.StateQueued, rocketjob.StateRunning}, Limit: 1})
		if err != nil {
			return err
		}
		if len(live) > 0 {
			continue
		}
		bad, err := c.List(ctx, &rocketjob.ListOptions{States: []rocketjob.State{rocketjob.StateFailed, rocketjob.StateAborted, rocketjob.StatePaused}, Limit: 1})
		if err != nil {
			return err
		}
		if len(bad) > 0 {
			msg := ""
			if bad[0].Failure != nil {
				msg = ": " + bad[0].Failure.Message
			}
			return fmt.Errorf("job %s ended %s%s", bad[0].ID.Hex(), bad[0].State, msg)
		}
		return nil
	}
}

// String renders the report: rocketjob's rates, River's beside them and
// their ratios.
func (r *SimpleReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "simple jobs: %s no-op jobs, %d server(s) x %d workers (in this process, a client each), %d CPUs, load average before: %s\n",
		commas(int64(r.N)), r.Servers, r.Workers, r.CPUs, r.LoadAvg)
	fmt.Fprintf(&b, "database: %s\n\n", r.Database)
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\tenqueue\tprocessing\ttotal\tenqueue jobs/s\tprocessing jobs/s\tend-to-end jobs/s\t")
	fmt.Fprintf(w, "rocketjob\t%s\t%s\t%s\t%s\t%s\t%s\t\n", secs(r.Enqueue), secs(r.Process), secs(r.Total()),
		commas(int64(r.EnqueueRate())), commas(int64(r.ProcessRate())), commas(int64(r.Rate())))
	if v := r.River; v != nil {
		fmt.Fprintf(w, "river\t%s\t%s\t%s\t%s\t%s\t%s\t\n", secs(v.Insert), secs(v.Process), secs(v.Insert+v.Process),
			commas(int64(rate(r.N, v.Insert))), commas(int64(rate(r.N, v.Process))), commas(int64(r.RiverRate())))
		ratio := func(a, b float64) string {
			if b <= 0 {
				return "-"
			}
			return fmt.Sprintf("%.2fx", a/b)
		}
		fmt.Fprintf(w, "rocketjob/river rate\t\t\t\t%s\t%s\t%s\t\n", ratio(r.EnqueueRate(), rate(r.N, v.Insert)),
			ratio(r.ProcessRate(), rate(r.N, v.Process)), ratio(r.Rate(), r.RiverRate()))
	}
	_ = w.Flush()
	fmt.Fprintf(&b, "\nrocketjob end to end %s jobs/s (target >= %s: %s); enqueue %s jobs/s (target >= %s: %s)\n",
		commas(int64(r.Rate())), commas(TargetSimpleRate), verdict(r.Rate() >= TargetSimpleRate),
		commas(int64(r.EnqueueRate())), commas(TargetSimpleEnqueue), verdict(r.EnqueueRate() >= TargetSimpleEnqueue))
	if r.River != nil {
		fmt.Fprintf(&b, "rocketjob/river end to end: %.2f; river: %s, one River job per job, %s\n", r.Rate()/r.RiverRate(), r.RiverDatabase, r.RiverSettings)
		fmt.Fprintf(&b, "verified: river %s jobs completed, %s runs\n", commas(r.River.Completed), commas(r.River.Runs))
	}
	fmt.Fprintf(&b, "verified: rocketjob %s jobs completed, each ran exactly once (%s runs)\n", commas(int64(r.N)), commas(r.Runs))
	return b.String()
}
