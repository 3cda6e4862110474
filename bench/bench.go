package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/bench/riverbench"
	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/embedded"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// Defaults for Config.
const (
	DefaultN         = 1_000_000
	DefaultSliceSize = 100
	DefaultWorkers   = 4
)

// JobType is the sliced job type the rocketjob side registers: each line
// reversed, byte by byte.
const JobType = "bench_reverse"

// Tuning of the run; the baseline packs and batches like sliced.Upload.
const (
	serverPoll      = 20 * time.Millisecond
	serverReCheck   = time.Second
	jobPoll         = 50 * time.Millisecond
	insertBatch     = 1000    // input slices per insertMany (sliced.Upload's)
	insertBytes     = 8 << 20 // or this many record bytes (sliced.Upload's)
	outputBatch     = 100     // output slices per insertMany in the baseline
	cursorBatch     = 1000    // documents per cursor batch in the baseline
	heapSampleEvery = 100 * time.Millisecond
)

// Config is one benchmark run. Zero fields take the defaults.
type Config struct {
	// N is the number of lines (default DefaultN, 1,000,000).
	N int
	// SliceSize is the number of records per slice on both sides (default 100).
	SliceSize int
	// Workers is the rocketjob servers' worker count, all servers together,
	// and the baseline's processing goroutines (default 4).
	Workers int
	// Servers is how many rocketjob servers share the workers (default 1):
	// each runs in this process with its own client (its own connections),
	// with Workers/Servers workers (the first Workers%Servers one more).
	Servers int
	// Processes runs each server as an operating-system process of its own
	// (this program re-executed, see startServerProcs) instead of in this
	// process; the database (embedded or not) and the upload and download
	// stay here.
	Processes bool
	// URI is the database server both sides use; empty starts an embedded
	// FerretDB in a temporary folder, removed at the end. Each run uses
	// fresh database names and drops them when it ends.
	URI string
	// Logf receives progress lines (one per phase); nil discards them.
	Logf func(format string, args ...any)
	// Trace routes every database call through a counting proxy and adds,
	// per phase, the calls made (count, time, errors) to the report. It
	// costs a little latency per call on both sides. Needs a single-host URI.
	Trace bool
	// Sealed adds a third side: rocketjob with every slice compressed and
	// encrypted (a random key), to measure what encryption costs end to end.
	Sealed bool
	// CPUProfile, when set, writes a CPU profile of the rocketjob side to
	// this file and one of the baseline to CPUProfile+".baseline". With the
	// embedded database the profile includes FerretDB and SQLite.
	CPUProfile string
	// RiverDSN, when set, adds River on the PostgreSQL server it names
	// (postgres://...) as a peer: one job per record, see package
	// bench/riverbench. Empty skips River.
	RiverDSN string
}

func (c Config) withDefaults() Config {
	if c.N == 0 {
		c.N = DefaultN
	}
	if c.SliceSize == 0 {
		c.SliceSize = DefaultSliceSize
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Servers == 0 {
		c.Servers = 1
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.N < 1:
		return fmt.Errorf("bench: n must be at least 1 (got %d)", c.N)
	case c.SliceSize < 1 || c.SliceSize > 100_000:
		return fmt.Errorf("bench: slice size must be between 1 and 100000 (got %d)", c.SliceSize)
	case c.Workers < 1:
		return fmt.Errorf("bench: workers must be at least 1 (got %d)", c.Workers)
	case c.Servers < 1 || c.Servers > maxServers || c.Servers > c.Workers:
		return fmt.Errorf("bench: servers must be between 1 and the workers (%d) and at most %d (got %d)", c.Workers, maxServers, c.Servers)
	}
	return nil
}

// Side is the result of one system under test.
type Side struct {
	// Name is "rocketjob" or "baseline".
	Name string
	// Insert is the upload (rocketjob) or bulk insert (baseline) time;
	// Process the time to process every slice; ReadBack the download or
	// read-back time, verification included; Total their sum.
	Insert, Process, ReadBack, Total time.Duration
	// Records is the number of output records read back and verified.
	Records int64
	// Slices is the number of input slices.
	Slices int64
	// PeakRSS is the process's peak resident memory during this side, in
	// bytes (VmHWM, reset before the side where the kernel allows).
	PeakRSS int64
	// PeakHeap is the highest Go heap in use sampled during this side.
	PeakHeap uint64
	// ServerCPU is the CPU time (user and system) of the server processes,
	// from their start before the upload to their stop after processing,
	// with Config.Processes; 0 otherwise.
	ServerCPU time.Duration
	// Calls are the database calls of each phase, when Config.Trace is on.
	Calls map[string][]CallStat
}

// RecordsPerSec is the end-to-end rate, N / Total.
func (s *Side) RecordsPerSec() float64 {
	if s.Total <= 0 {
		return 0
	}
	return float64(s.Records) / s.Total.Seconds()
}

// Report is the outcome of Run: both sides, verified, on the same database.
type Report struct {
	N, SliceSize, Workers int
	// Servers is how many rocketjob servers shared the workers.
	Servers int
	// Database describes the server both sides used.
	Database string
	// LoadAvg is /proc/loadavg before the run; CPUs the usable CPUs.
	LoadAvg string
	CPUs    int
	// RocketJob and Baseline are the two sides; Sealed, when asked for, is
	// rocketjob with encrypted, compressed slices.
	RocketJob, Baseline Side
	Sealed              *Side
	// River, when Config.RiverDSN is set, is River on PostgreSQL, one job
	// per record; RiverDatabase and RiverSettings describe its server and
	// configuration.
	River                        *Side
	RiverDatabase, RiverSettings string
	// PeakRSS is the process's peak resident memory over the whole run
	// (bytes); PeakHeap the highest Go heap in use sampled. With the embedded
	// database both include FerretDB and SQLite.
	PeakRSS  int64
	PeakHeap uint64
	// ResetPeakRSS tells whether the peak RSS could be reset between sides
	// (otherwise each side's PeakRSS is the peak so far).
	ResetPeakRSS bool
}

// Ratio is rocketjob's end-to-end rate over the baseline's (1 = as fast).
func (r *Report) Ratio() float64 {
	if b := r.Baseline.RecordsPerSec(); b > 0 {
		return r.RocketJob.RecordsPerSec() / b
	}
	return 0
}

// Run runs the batch workload of cfg.N lines through rocketjob (upload, an
// in-process server, download) and then through the raw-driver baseline, on
// the same database server, verifies every output record of both, and
// reports the timings. A verification failure is an error.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rep = &Report{N: cfg.N, SliceSize: cfg.SliceSize, Workers: cfg.Workers, Servers: cfg.Servers, LoadAvg: loadAvg(), CPUs: runtime.GOMAXPROCS(0)}

	uri, where, stop, err := benchDatabase(ctx, cfg.URI)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	rep.Database = where
	var tr *tracer
	if cfg.Trace {
		var proxied string
		if tr, proxied, err = startTracer(uri); err != nil {
			return nil, err
		}
		defer tr.close()
		uri = proxied
	}

	mc, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(store.ConnectTimeout))
	if err != nil {
		return nil, err
	}
	// Disconnect before the embedded database closes (deferred calls run last first).
	defer func() { _ = mc.Disconnect(context.WithoutCancel(ctx)) }()
	if rep.Database, err = describe(ctx, mc, rep.Database); err != nil {
		return nil, err
	}

	prefix := fmt.Sprintf("bench_%d_%x", os.Getpid(), time.Now().UnixNano())
	dbs := []string{prefix + "_jobs", prefix + "_work", prefix + "_raw", prefix + "_sjobs", prefix + "_swork"}
	drop := func(names ...string) {
		for _, n := range names {
			if derr := mc.Database(n).Drop(context.WithoutCancel(ctx)); derr != nil {
				cfg.Logf("bench: dropping database %s: %v", n, derr)
			}
		}
	}
	defer drop(dbs...)

	heap := startHeapSampler()
	defer heap.stop()
	rep.ResetPeakRSS = resetPeakRSS()
	b := &bencher{cfg: cfg, tr: tr}

	cfg.Logf("bench: rocketjob: %d lines, slice size %d, %d workers", cfg.N, cfg.SliceSize, cfg.Workers)
	rep.RocketJob, err = b.side("rocketjob", "", func(s *Side) error { return b.rocketjob(ctx, uri, dbs[0], dbs[1], false, s) })
	rep.RocketJob.PeakHeap = heap.take()
	if err != nil {
		return rep, err
	}
	drop(dbs[0], dbs[1]) // so the next side starts from the same empty server
	if cfg.Sealed {
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS()
		cfg.Logf("bench: rocketjob, encrypted and compressed: %d lines", cfg.N)
		sealed, err := b.side("rocketjob sealed", ".sealed", func(s *Side) error { return b.rocketjob(ctx, uri, dbs[3], dbs[4], true, s) })
		sealed.PeakHeap = heap.take()
		rep.Sealed = &sealed
		if err != nil {
			return rep, err
		}
		drop(dbs[3], dbs[4])
	}
	runtime.GC()
	debug.FreeOSMemory()
	rep.ResetPeakRSS = resetPeakRSS() && rep.ResetPeakRSS

	cfg.Logf("bench: baseline: %d lines, slice size %d, %d workers", cfg.N, cfg.SliceSize, cfg.Workers)
	rep.Baseline, err = b.side("baseline", ".baseline", func(s *Side) error { return b.baseline(ctx, mc.Database(dbs[2]), s) })
	rep.Baseline.PeakHeap = heap.take()
	rep.PeakRSS = max(rep.RocketJob.PeakRSS, rep.Baseline.PeakRSS)
	rep.PeakHeap = max(rep.RocketJob.PeakHeap, rep.Baseline.PeakHeap)
	if err != nil {
		return rep, err
	}
	cfg.Logf("bench: rocketjob %.0f records/s, baseline %.0f records/s, ratio %.2f",
		rep.RocketJob.RecordsPerSec(), rep.Baseline.RecordsPerSec(), rep.Ratio())

	if cfg.RiverDSN != "" {
		// The embedded database is still open but idle.
		runtime.GC()
		debug.FreeOSMemory()
		rep.ResetPeakRSS = resetPeakRSS() && rep.ResetPeakRSS
		cfg.Logf("bench: river: %d lines, one job per record", cfg.N)
		river, err := b.side("river", ".river", func(s *Side) error {
			v := newVerifier(cfg.N)
			res, err := riverbench.Run(ctx, riverbench.Config{
				DSN: cfg.RiverDSN, N: cfg.N, Input: Lines(cfg.N), Record: v.record, Logf: cfg.Logf,
			})
			s.Insert, s.Process, s.ReadBack = res.Insert, res.Process, res.ReadBack
			s.Records, s.Slices = res.Records, res.Jobs
			rep.RiverDatabase, rep.RiverSettings = store.Redact(cfg.RiverDSN)+" ("+res.Server+")", res.Settings
			if err != nil {
				return err
			}
			return v.done()
		})
		river.PeakHeap = heap.take()
		rep.River = &river
		if err != nil {
			return rep, err
		}
		cfg.Logf("bench: river %.0f records/s, rocketjob/river %.2f", river.RecordsPerSec(), rep.RiverRatio())
	}
	return rep, nil
}

// RiverRatio is rocketjob's end-to-end rate over River's, or 0 without River.
func (r *Report) RiverRatio() float64 {
	if r.River != nil {
		if v := r.River.RecordsPerSec(); v > 0 {
			return r.RocketJob.RecordsPerSec() / v
		}
	}
	return 0
}

// benchDatabase returns the URI a benchmark runs on: uri, or a temporary
// embedded database that stop removes, and how the report names it.
func benchDatabase(ctx context.Context, uri string) (string, string, func() error, error) {
	if uri != "" {
		return uri, store.Redact(uri), func() error { return nil }, nil
	}
	u, stop, err := startEmbedded(ctx)
	if err != nil {
		return "", "", nil, err
	}
	return u, "embedded FerretDB (SQLite), temporary folder", stop, nil
}

// rawDB is the database a benchmark runs on, with a raw client connected
// to it: the curve and the simple workload open it the same way.
type rawDB struct {
	uri  string        // where the runs connect
	mc   *mongo.Client // the raw client
	desc string        // how the report names it
	stop func() error
}

// openRawDB opens the database at uri, or a temporary embedded one
// (benchDatabase), connects a raw client and describes the database.
func openRawDB(ctx context.Context, uri string) (*rawDB, error) {
	uri, where, stop, err := benchDatabase(ctx, uri)
	if err != nil {
		return nil, err
	}
	db := &rawDB{uri: uri, stop: stop}
	if db.mc, err = mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(store.ConnectTimeout)); err != nil {
		return nil, errors.Join(err, stop())
	}
	if db.desc, err = describe(ctx, db.mc, where); err != nil {
		return nil, errors.Join(err, db.close(ctx))
	}
	return db, nil
}

// close disconnects the raw client and stops a temporary database.
func (db *rawDB) close(ctx context.Context) error {
	_ = db.mc.Disconnect(context.WithoutCancel(ctx))
	return db.stop()
}

// startEmbedded starts FerretDB in a new temporary folder; stop closes it
// and removes the folder.
func startEmbedded(ctx context.Context) (uri string, stop func() error, err error) {
	dir, err := os.MkdirTemp("", "rocketjob-bench-")
	if err != nil {
		return "", nil, err
	}
	db, err := embedded.Start(ctx, embedded.Options{Dir: filepath.Join(dir, "data")})
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, err
	}
	return db.URI(), func() error { return errors.Join(db.Close(), os.RemoveAll(dir)) }, nil
}

// bencher holds what both sides share.
type bencher struct {
	cfg Config
	tr  *tracer
}

// side runs one side, with its CPU profile, and fills in its totals.
func (b *bencher) side(name, profileSuffix string, run func(*Side) error) (Side, error) {
	s := Side{Name: name}
	if b.tr != nil {
		s.Calls = map[string][]CallStat{}
	}
	if b.cfg.CPUProfile != "" {
		f, err := os.Create(b.cfg.CPUProfile + profileSuffix)
		if err != nil {
			return s, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return s, err
		}
		defer pprof.StopCPUProfile()
	}
	err := run(&s)
	s.Total = s.Insert + s.Process + s.ReadBack
	s.PeakRSS = peakRSS()
	if err != nil {
		return s, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// phase times fn as one phase of a side and collects its calls.
func (b *bencher) phase(s *Side, name string, d *time.Duration, fn func() error) error {
	if b.tr != nil {
		b.tr.take() // calls between phases (connecting, stopping the server) are not timed
	}
	start, cpu := time.Now(), cpuTime()
	err := fn()
	*d = time.Since(start)
	cpu = cpuTime() - cpu
	if b.tr != nil {
		s.Calls[name] = b.tr.take()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	b.cfg.Logf("bench: %s %s: %s (CPU %s, database included)", s.Name, name, d.Round(time.Millisecond), cpu.Round(time.Millisecond))
	return nil
}

// Phase names, in order.
const (
	PhaseInsert   = "insert"
	PhaseProcess  = "process"
	PhaseReadBack = "read-back"
)

// rocketjob runs the workload through the public API: sliced.Upload, an
// in-process server, sliced.Download.
func (b *bencher) rocketjob(ctx context.Context, uri, jobsDB, workDB string, sealed bool, s *Side) error {
	cfg := b.cfg
	key := ""
	if sealed {
		var err error
		if key, err = encryption.GenerateKey(); err != nil {
			return err
		}
	}
	ccfg, err := clientConfig(uri, jobsDB, workDB, cfg.SliceSize, key)
	if err != nil {
		return err
	}
	client, err := rocketjob.NewClient(ctx, ccfg)
	if err != nil {
		return err
	}
	defer func() { _ = client.Close(context.WithoutCancel(ctx)) }()

	// The servers are up before the upload, as in a deployment; their idle
	// polling runs during the upload.
	var servers *runningServers
	if cfg.Processes {
		servers, err = startServerProcs(ctx, serveSpec{URI: uri, JobsDB: jobsDB, WorkDB: workDB, SliceSize: cfg.SliceSize, Key: key, CPUProfile: cfg.CPUProfile},
			cfg.Servers, cfg.Workers, cfg.Logf)
	} else {
		servers, err = startServers(ctx, ccfg, client, cfg, jobsDB)
	}
	defer func() { _ = servers.stop() }()
	if err != nil {
		return err
	}

	var job *rocketjob.Job
	err = b.phase(s, PhaseInsert, &s.Insert, func() error {
		job, err = sliced.Upload(ctx, client, JobType, Lines(cfg.N), &sliced.UploadOptions{
			SliceSize: cfg.SliceSize, Name: "batch.txt", Description: "bench: batch workload",
			Encrypt: &sealed, Compress: &sealed,
		})
		return err
	})
	if err != nil {
		return err
	}
	s.Slices = job.SliceCount
	id := job.ID.Hex()

	err = b.phase(s, PhaseProcess, &s.Process, func() error {
		t := time.NewTicker(jobPoll)
		defer t.Stop()
		for {
			j, err := client.Get(ctx, id)
			if err != nil {
				return err
			}
			switch j.State {
			case rocketjob.StateCompleted:
				return nil
			case rocketjob.StateFailed, rocketjob.StateAborted:
				msg := ""
				if j.Failure != nil {
					msg = ": " + j.Failure.Message
				}
				return fmt.Errorf("job %s ended %s%s", id, j.State, msg)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case err := <-servers.exited():
				servers.noteExit()
				if ctx.Err() != nil {
					return ctx.Err() // interrupted: the servers (processes too: same signal) stopped with it
				}
				return fmt.Errorf("a server stopped before the job completed: %v", err)
			case <-t.C:
			}
		}
	})
	if err != nil {
		return err
	}
	// Stopped before the download (not timed): its last act is dropping the
	// job's input, which should not overlap the download.
	if err := servers.stop(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if cfg.Processes {
		s.ServerCPU = time.Duration(servers.cpu.Load())
		b.cfg.Logf("bench: %s: CPU of the server processes (upload and processing): %s", s.Name, s.ServerCPU.Round(time.Millisecond))
	}

	return b.phase(s, PhaseReadBack, &s.ReadBack, func() error {
		v := newVerifier(cfg.N)
		n, err := sliced.Download(ctx, client, id, v)
		s.Records = n
		if err != nil {
			return err
		}
		return v.done()
	})
}

// clientConfig is the configuration of a rocketjob client of the bench: the
// job type registered, and the keyring of key when it is not empty.
func clientConfig(uri, jobsDB, workDB string, sliceSize int, key string) (rocketjob.Config, error) {
	reg := rocketjob.NewRegistry()
	err := sliced.RegisterLines(reg, JobType, func(_ context.Context, line string) (string, error) {
		return reverseString(line), nil
	}, &sliced.Options{SliceSize: sliceSize})
	if err != nil {
		return rocketjob.Config{}, err
	}
	ccfg := rocketjob.Config{URI: uri, WorkURI: uri, DB: jobsDB, WorkDB: workDB, Registry: reg}
	if key != "" {
		if ccfg.Keyring, err = encryption.ParseKeyring(key); err != nil {
			return ccfg, err
		}
	}
	return ccfg, nil
}

// reverseString is the job's function: the line, reversed byte by byte.
func reverseString(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := len(s) - 1; i >= 0; i-- {
		b.WriteByte(s[i])
	}
	return b.String()
}

// describe names the database server, with its version.
func describe(ctx context.Context, mc *mongo.Client, where string) (string, error) {
	var info struct {
		Version         string `bson:"version"`
		FerretDBVersion string `bson:"ferretdbVersion"`
	}
	err := mc.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info)
	if err != nil {
		return where, fmt.Errorf("database %s: %w", where, err)
	}
	if info.FerretDBVersion != "" {
		return fmt.Sprintf("%s (FerretDB %s, MongoDB %s API)", where, info.FerretDBVersion, info.Version), nil
	}
	return fmt.Sprintf("%s (MongoDB %s)", where, info.Version), nil
}

// runningServers are the rocketjob servers of a run: in this process
// (startServers) or each in a process of its own (startServerProcs).
type runningServers struct {
	stopAll func()         // asks every server to stop
	ended   chan error     // each server's result, as it ends
	count   int            // servers started
	got     int            // results received from ended
	closers []func() error // run after every server ended (extra clients)
	cpu     atomic.Int64   // CPU time of the server processes that ended (ns)
	stopped bool
}

// exited receives the result of a server that stopped on its own: the
// run failed.
func (r *runningServers) exited() <-chan error { return r.ended }

// noteExit records a result received from exited.
func (r *runningServers) noteExit() { r.got++ }

// stop stops every server and closes the extra clients; it is safe to call
// more than once, and after a failed start.
func (r *runningServers) stop() error {
	if r.stopped {
		return nil
	}
	r.stopped = true
	r.stopAll()
	var errs []error
	for ; r.got < r.count; r.got++ {
		errs = append(errs, <-r.ended)
	}
	for _, c := range r.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// serverWorkers is how many of workers the i-th of n servers runs: an even
// share, the first workers%n one more.
func serverWorkers(workers, n, i int) int {
	w := workers / n
	if i < workers%n {
		w++
	}
	return max(w, 1)
}

// startServers starts cfg.Servers servers sharing cfg.Workers workers: the
// first on client, the others each on a client of its own, all in this
// process.
func startServers(ctx context.Context, ccfg rocketjob.Config, client *rocketjob.Client, cfg Config, jobsDB string) (*runningServers, error) {
	n := max(cfg.Servers, 1)
	srvCtx, stopAll := context.WithCancel(ctx)
	r := &runningServers{stopAll: stopAll, ended: make(chan error, n)}
	for i := range n {
		c := client
		if i > 0 {
			var err error
			if c, err = rocketjob.NewClient(ctx, ccfg); err != nil {
				return r, err
			}
			r.closers = append(r.closers, func() error { return c.Close(context.WithoutCancel(ctx)) })
		}
		srv, err := server.New(c, &server.Config{
			Name:         serverName(jobsDB, i),
			Workers:      serverWorkers(cfg.Workers, n, i),
			PollInterval: serverPoll,
			ReCheck:      serverReCheck,
			Logger:       slog.New(slog.DiscardHandler),
		})
		if err != nil {
			return r, err
		}
		r.count++
		go func() { r.ended <- srv.Run(srvCtx) }()
	}
	return r, nil
}

// serverName names the i-th server (0-based) of the run on jobsDB.
func serverName(jobsDB string, i int) string { return fmt.Sprintf("bench-%s-%d", jobsDB, i+1) }
