package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/bench/riverbench"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// Defaults of SimpleConfig.
const (
	DefaultSimpleN       = 100_000
	DefaultSimpleWorkers = 8
	// SimpleType is the no-op simple job type the benchmark registers.
	SimpleType = "bench_noop"
	// ProbeType is the no-op type of the priority probe (see PriorityProbe).
	ProbeType = "bench_probe"
	// BacklogType is the no-op type of the backlog (SimpleConfig.Backlog).
	BacklogType = "bench_backlog"
	// simpleEnqueueChunk is how many jobs one EnqueueMany call writes.
	simpleEnqueueChunk = 10_000
	// simplePoll is how often the benchmark looks whether every job ran.
	simplePoll = 20 * time.Millisecond
	// simplePriority is the priority of the N jobs (rocketjob's default);
	// probePriority the more urgent one of the probe (1 runs first).
	simplePriority  = 50
	probePriority   = 10
	backlogPriority = 60
	// maxServers bounds a server count.
	maxServers = 64
)

// Targets of the simple-jobs workload (issue 14).
const (
	TargetSimpleRate    = 5_000  // jobs/s end to end, 1 server x 8 workers, 100,000 jobs
	TargetSimpleEnqueue = 10_000 // jobs/s through EnqueueMany
	TargetProbeLatency  = time.Second
)

// SimpleConfig is one invocation of the simple-jobs benchmark: N no-op
// simple jobs enqueued with EnqueueMany, then run by Servers servers of
// Workers workers (once per count of ServerCounts), and a raw-driver
// baseline of the same N jobs on the same database. Zero fields take the
// defaults.
type SimpleConfig struct {
	// N is the number of jobs (default DefaultSimpleN, 100,000).
	N int
	// Workers per server, and the baseline's workers (default 8).
	Workers int
	// Servers is the number of servers (default 1). They run in this
	// process, each with its own Client (its own connections), as separate
	// processes would.
	Servers int
	// ServerCounts, when set, runs rocketjob once per count, in this order,
	// each on fresh databases, in place of Servers: {1, 2} puts the rates
	// of one and two servers side by side in one invocation.
	ServerCounts []int
	// URI is the database server; empty starts an embedded FerretDB in a
	// temporary folder, removed at the end. Each run uses fresh database
	// names and drops them at the end.
	URI string
	// Backlog, when set, enqueues that many no-op jobs of BacklogType at a
	// lower priority (60) before each rocketjob run, untimed apart from
	// their own enqueue rate: the servers know the type but reach those
	// jobs only after the N, so they stay queued while the N run, and the
	// run shows whether enqueue, selection and listings stay flat with the
	// size of the queue. Once the N are done the servers go on to the
	// backlog until they are stopped: the report counts those runs. The
	// baseline has no backlog.
	Backlog int
	// RiverDSN, when set, runs River on the PostgreSQL server it names as a
	// peer: N no-op jobs, one River job each (riverbench.RunSimple).
	RiverDSN string
	// Trace routes every database call of rocketjob and of the baseline
	// through a counting proxy and reports the calls per job of each phase.
	// It adds latency to every call of both. Needs a single-host URI (the
	// embedded database is one).
	Trace bool
	// CPUProfile, when set, writes a CPU profile of each run: rocketjob's
	// first run to this file, its runs with the further server counts to
	// FILE.sS (S servers), the baseline to FILE.baseline. With the embedded
	// database it includes FerretDB and SQLite.
	CPUProfile string
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
	if len(c.ServerCounts) == 0 {
		c.ServerCounts = []int{c.Servers}
	}
	c.Servers = c.ServerCounts[0]
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
	case c.Backlog < 0:
		return fmt.Errorf("bench: backlog must not be negative (got %d)", c.Backlog)
	}
	for _, s := range c.ServerCounts {
		if s < 1 || s > maxServers {
			return fmt.Errorf("bench: servers must be between 1 and %d (got %d)", maxServers, s)
		}
	}
	return nil
}

// Phases of a simple run, for its traced calls.
const (
	PhaseEnqueue = "enqueue"
	// PhaseProcess ("process") is shared with the batch workload.
)

// SimpleRun is one run of the simple-jobs workload by one system: rocketjob
// with some number of servers, or the raw-driver baseline.
type SimpleRun struct {
	// Name is "rocketjob" or "baseline".
	Name string
	// N jobs run by Servers servers (processes) of Workers workers each.
	N, Servers, Workers int
	// Enqueue is the time to write the N jobs; Process the time from the
	// workers' start until every job is completed.
	Enqueue, Process time.Duration
	// Runs counts the jobs' runs (== N: each ran exactly once); Completed
	// the jobs stored completed at the end (== N).
	Runs, Completed int64
	// Probe is the priority probe of a rocketjob run.
	Probe *PriorityProbe
	// Backlog is how many jobs of the backlog were queued (SimpleConfig.Backlog),
	// BacklogEnqueue how long their enqueue took, and BacklogRan how many
	// of them ran after the N, before the servers stopped.
	Backlog        int
	BacklogEnqueue time.Duration
	BacklogRan     int64
	// Reads are the listings and the show of a rocketjob run, timed
	// once every job completed (the backlog queued, but for BacklogRan).
	Reads []TimedRead
	// Calls are the database calls of each phase (PhaseEnqueue,
	// PhaseProcess), most expensive first, with SimpleConfig.Trace.
	Calls map[string][]CallStat
}

// Total is enqueue plus processing.
func (r *SimpleRun) Total() time.Duration { return r.Enqueue + r.Process }

// EnqueueRate, ProcessRate and Rate are jobs/s: enqueue, processing, end
// to end.
func (r *SimpleRun) EnqueueRate() float64 { return rate(r.N, r.Enqueue) }
func (r *SimpleRun) ProcessRate() float64 { return rate(r.N, r.Process) }
func (r *SimpleRun) Rate() float64        { return rate(r.N, r.Total()) }

// TimedRead is one read through the client and how long it took.
type TimedRead struct {
	// What names it: "job list --limit 50", ...
	What string
	// Took is its duration; Jobs how many jobs it returned.
	Took time.Duration
	Jobs int
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// SimpleReport is the outcome of RunSimple.
type SimpleReport struct {
	// SimpleRun is rocketjob's first run (SimpleConfig.ServerCounts[0]
	// servers): its fields and rates are the report's (N, Workers, Servers,
	// Enqueue, Process, Runs, Rate, ...).
	SimpleRun
	// More are rocketjob's runs with the further server counts, in order.
	More []SimpleRun
	// Baseline is the raw-driver baseline's run, on the same database.
	Baseline SimpleRun
	// Database describes the database server; LoadAvg is /proc/loadavg
	// before the run; CPUs the usable CPUs.
	Database, LoadAvg string
	CPUs              int
	// River, with SimpleConfig.RiverDSN, is River's run.
	River                        *riverbench.SimpleResult
	RiverDatabase, RiverSettings string
}

// RocketJob returns rocketjob's runs, one per server count, in order.
func (r *SimpleReport) RocketJob() []SimpleRun {
	return append([]SimpleRun{r.SimpleRun}, r.More...)
}

// RiverRate is River's end-to-end jobs/s, or 0 without River.
func (r *SimpleReport) RiverRate() float64 {
	if r.River == nil {
		return 0
	}
	return rate(r.N, r.River.Insert+r.River.Process)
}

// RunSimple runs the simple-jobs workload (see SimpleConfig): the
// raw-driver baseline, then rocketjob once per server count, each on fresh
// databases of the same server, then River with a River DSN. It fails
// unless, in every run, every job ran exactly once and completed.
func RunSimple(ctx context.Context, cfg SimpleConfig) (rep *SimpleReport, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rep = &SimpleReport{SimpleRun: SimpleRun{Name: "rocketjob", N: cfg.N, Servers: cfg.Servers, Workers: cfg.Workers},
		LoadAvg: loadAvg(), CPUs: runtime.GOMAXPROCS(0)}
	db, err := openRawDB(ctx, cfg.URI)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, db.close(ctx)) }()
	uri, mc := db.uri, db.mc
	rep.Database = db.desc
	runURI := uri
	var tr *tracer
	if cfg.Trace {
		if tr, runURI, err = startTracer(uri); err != nil {
			return nil, err
		}
		defer tr.close()
	}
	scratch := scratchDatabases{mc: mc, logf: cfg.Logf, prefix: fmt.Sprintf("bench_simple_%d_%x", os.Getpid(), time.Now().UnixNano())}

	cfg.Logf("bench: baseline: %d no-op jobs, %d workers", cfg.N, cfg.Workers)
	err = cfg.profile(".baseline", func() (err error) {
		rep.Baseline, err = runSimpleBaselineOn(ctx, cfg, runURI, scratch, tr)
		return err
	})
	if err != nil {
		return rep, err
	}
	logRates(cfg, &rep.Baseline)
	for i, servers := range cfg.ServerCounts {
		cfg.Logf("bench: rocketjob: %d no-op simple jobs, %d server(s) x %d workers", cfg.N, servers, cfg.Workers)
		names := scratch.names(fmt.Sprintf("rj%d_%d", i, servers), "jobs", "work")
		suffix := ""
		if i > 0 {
			suffix = fmt.Sprintf(".s%d", servers)
		}
		var run SimpleRun
		err := cfg.profile(suffix, func() (err error) {
			run, err = runSimpleRocketJob(ctx, cfg, runURI, names[0], names[1], servers, tr)
			return err
		})
		scratch.drop(ctx, append(names, store.RunQueueDB(names[0]))...)
		if i == 0 {
			rep.SimpleRun = run
		} else {
			rep.More = append(rep.More, run)
		}
		if err != nil {
			return rep, err
		}
		logRates(cfg, &run)
	}

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

// profile runs fn, writing a CPU profile of it to cfg.CPUProfile+suffix
// when cfg.CPUProfile is set.
func (c SimpleConfig) profile(suffix string, fn func() error) error {
	if c.CPUProfile == "" {
		return fn()
	}
	f, err := os.Create(c.CPUProfile + suffix)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	err = fn()
	pprof.StopCPUProfile()
	return errors.Join(err, f.Close())
}

// runSimpleBaselineOn runs the baseline on a fresh database of the server
// at uri, through its own client, and drops the database after.
func runSimpleBaselineOn(ctx context.Context, cfg SimpleConfig, uri string, scratch scratchDatabases, tr *tracer) (SimpleRun, error) {
	bc, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(store.ConnectTimeout))
	if err != nil {
		return SimpleRun{}, fmt.Errorf("baseline: %w", err)
	}
	defer func() { _ = bc.Disconnect(context.WithoutCancel(ctx)) }()
	name := scratch.names("baseline", "jobs")[0]
	defer scratch.drop(ctx, name)
	return runSimpleBaseline(ctx, cfg, bc.Database(name), tr)
}

func logRates(cfg SimpleConfig, r *SimpleRun) {
	cfg.Logf("bench: %s (%d server(s) x %d workers): enqueue %.0f jobs/s, processing %.0f jobs/s, end to end %.0f jobs/s",
		r.Name, r.Servers, r.Workers, r.EnqueueRate(), r.ProcessRate(), r.Rate())
}

// scratchDatabases names the fresh databases of one invocation and drops them.
type scratchDatabases struct {
	mc     *mongo.Client
	logf   func(string, ...any)
	prefix string
}

// names returns the names of a run's databases: prefix_run_suffix.
func (s scratchDatabases) names(run string, suffixes ...string) []string {
	out := make([]string, len(suffixes))
	for i, suf := range suffixes {
		out[i] = fmt.Sprintf("%s_%s_%s", s.prefix, run, suf)
	}
	return out
}

// drop drops the databases named, logging failures (the run's result
// stands).
func (s scratchDatabases) drop(ctx context.Context, names ...string) {
	for _, n := range names {
		if err := s.mc.Database(n).Drop(context.WithoutCancel(ctx)); err != nil {
			s.logf("bench: dropping database %s: %v", n, err)
		}
	}
}

// phaser times the phases of a run and, with a tracer, collects the calls
// of each.
type phaser struct {
	tr    *tracer
	calls *map[string][]CallStat
}

// time runs fn as the phase name, storing its duration in d.
func (p phaser) time(name string, d *time.Duration, fn func() error) error {
	if p.tr != nil {
		p.tr.take() // calls between phases are not counted
	}
	start := time.Now()
	err := fn()
	*d = time.Since(start)
	if p.tr != nil {
		if *p.calls == nil {
			*p.calls = map[string][]CallStat{}
		}
		(*p.calls)[name] = p.tr.take()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
