package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// DefaultRounds is how many times a curve runs each point: once in order,
// once in reverse order, so that a machine that gets slower (or faster)
// during the run moves both ends of the curve alike.
const DefaultRounds = 2

// CurveConfig is a scale-out curve: the batch workload through rocketjob at
// every (servers, workers) point of Servers x Workers with servers <=
// workers, on one database, plus the raw-driver limit at each worker count.
type CurveConfig struct {
	// N, SliceSize, URI and Logf are as in Config.
	N, SliceSize int
	URI          string
	Logf         func(format string, args ...any)
	// Servers and Workers are the server counts and the total worker counts
	// (shared by the servers of a point, as in Config).
	Servers, Workers []int
	// Processes runs each server as a process of its own (Config.Processes).
	Processes bool
	// Rounds is how many times each point runs (default DefaultRounds):
	// odd rounds in order, even rounds in reverse order. The raw-driver
	// limit runs once per worker count, after the middle round.
	Rounds int
}

// CurvePoint is one (servers, workers) point and its runs.
type CurvePoint struct {
	Servers, Workers int
	// Runs are the rocketjob runs of the point, in the order they ran.
	Runs []Side
}

// CurveLimit is the raw-driver limit at one worker count.
type CurveLimit struct {
	Workers int
	Side    Side
}

// CurveReport is the outcome of RunCurve.
type CurveReport struct {
	N, SliceSize, Rounds int
	Processes            bool
	Database             string
	CPUs                 int
	// LoadAvg is /proc/loadavg before the first run, LoadAvgEnd after the last.
	LoadAvg, LoadAvgEnd string
	Points              []*CurvePoint
	Limits              []CurveLimit
}

// curvePoints lists the points of Servers x Workers with servers <= workers,
// by workers then servers, both ascending.
func curvePoints(servers, workers []int) []*CurvePoint {
	var ps []*CurvePoint
	for _, w := range distinct(workers) {
		for _, s := range distinct(servers) {
			if s <= w {
				ps = append(ps, &CurvePoint{Servers: s, Workers: w})
			}
		}
	}
	return ps
}

func (c CurveConfig) withDefaults() CurveConfig {
	base := Config{N: c.N, SliceSize: c.SliceSize, Logf: c.Logf}.withDefaults()
	c.N, c.SliceSize, c.Logf = base.N, base.SliceSize, base.Logf
	if len(c.Servers) == 0 {
		c.Servers = []int{1}
	}
	if len(c.Workers) == 0 {
		c.Workers = []int{DefaultWorkers}
	}
	if c.Rounds == 0 {
		c.Rounds = DefaultRounds
	}
	return c
}

func (c CurveConfig) validate() error {
	if c.Rounds < 1 {
		return fmt.Errorf("bench: rounds must be at least 1 (got %d)", c.Rounds)
	}
	points := curvePoints(c.Servers, c.Workers)
	if len(points) == 0 {
		return fmt.Errorf("bench: no point of servers %v x workers %v has servers <= workers", c.Servers, c.Workers)
	}
	for _, p := range points {
		if err := (Config{N: c.N, SliceSize: c.SliceSize, Workers: p.Workers, Servers: p.Servers}).validate(); err != nil {
			return err
		}
	}
	return nil
}

// RunCurve runs the scale-out curve of cfg: every point cfg.Rounds times,
// each run on fresh databases of the same server, every output record
// verified. Any failed run (a record missing or wrong, a server process that
// dies) ends the curve with an error.
func RunCurve(ctx context.Context, cfg CurveConfig) (rep *CurveReport, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rep = &CurveReport{N: cfg.N, SliceSize: cfg.SliceSize, Rounds: cfg.Rounds, Processes: cfg.Processes,
		CPUs: runtime.GOMAXPROCS(0), LoadAvg: loadAvg(), Points: curvePoints(cfg.Servers, cfg.Workers)}

	db, err := openRawDB(ctx, cfg.URI)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, db.close(ctx)) }()
	uri, mc := db.uri, db.mc
	rep.Database = db.desc

	prefix := fmt.Sprintf("bench_%d_%x", os.Getpid(), time.Now().UnixNano())
	run := 0
	names := func() (jobs, work, raw string) {
		run++
		p := fmt.Sprintf("%s_%d", prefix, run)
		return p + "_jobs", p + "_work", p + "_raw"
	}
	drop := func(names ...string) {
		for _, n := range names {
			if derr := mc.Database(n).Drop(context.WithoutCancel(ctx)); derr != nil {
				cfg.Logf("bench: dropping database %s: %v", n, derr)
			}
		}
	}
	base := Config{N: cfg.N, SliceSize: cfg.SliceSize, Processes: cfg.Processes, Logf: cfg.Logf}
	total := len(rep.Points)*cfg.Rounds + len(distinct(cfg.Workers))
	done := 0
	logRun := func(what string) {
		done++
		cfg.Logf("bench: curve run %d of %d: %s, load average %s", done, total, what, loadAvg())
	}

	for round := 1; round <= cfg.Rounds; round++ {
		order := slices.Clone(rep.Points)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, p := range order {
			c := base
			c.Servers, c.Workers = p.Servers, p.Workers
			b := &bencher{cfg: c}
			jobs, work, _ := names()
			logRun(fmt.Sprintf("rocketjob, %d server(s), %d workers, round %d", p.Servers, p.Workers, round))
			s, err := b.side(fmt.Sprintf("rocketjob %dx%d", p.Servers, p.Workers), "", func(s *Side) error {
				return b.rocketjob(ctx, uri, jobs, work, false, s)
			})
			drop(jobs, work)
			if err != nil {
				return rep, err
			}
			p.Runs = append(p.Runs, s)
		}
		if round == (cfg.Rounds+1)/2 {
			for _, w := range distinct(cfg.Workers) {
				c := base
				c.Workers = w
				b := &bencher{cfg: c}
				_, _, raw := names()
				logRun(fmt.Sprintf("raw driver, %d workers", w))
				s, err := b.side(fmt.Sprintf("raw driver x%d", w), "", func(s *Side) error { return b.baseline(ctx, mc.Database(raw), s) })
				drop(raw)
				if err != nil {
					return rep, err
				}
				rep.Limits = append(rep.Limits, CurveLimit{Workers: w, Side: s})
			}
		}
	}
	rep.LoadAvgEnd = loadAvg()
	return rep, nil
}

// distinct is the values of xs, sorted, each once.
func distinct(xs []int) []int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return slices.Compact(s)
}

// meanRates is N over the mean processing time and over the mean total
// time of runs, and the lowest and highest of each across the runs.
func meanRates(n int, runs []Side) (proc, total, procLo, procHi, totalLo, totalHi float64) {
	var p, t time.Duration
	procLo, totalLo = -1, -1
	for _, s := range runs {
		p += s.Process
		t += s.Total
		pr, tr := perSec(n, s.Process), perSec(n, s.Total)
		if procLo < 0 || pr < procLo {
			procLo = pr
		}
		if totalLo < 0 || tr < totalLo {
			totalLo = tr
		}
		procHi, totalHi = max(procHi, pr), max(totalHi, tr)
	}
	k := time.Duration(max(len(runs), 1))
	return perSec(n, p/k), perSec(n, t/k), procLo, procHi, totalLo, totalHi
}

func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Rates is the point's processing and end-to-end records/s (N over the mean
// time of its runs).
func (r *CurveReport) Rates(p *CurvePoint) (proc, total float64) {
	proc, total, _, _, _, _ = meanRates(r.N, p.Runs)
	return proc, total
}

// point returns the point (servers, workers), or nil.
func (r *CurveReport) point(servers, workers int) *CurvePoint {
	for _, p := range r.Points {
		if p.Servers == servers && p.Workers == workers {
			return p
		}
	}
	return nil
}

// String renders the curve: one row per point with its rates and their
// ratios to the first point, the raw-driver limit per worker count, then
// the scale-out targets.
func (r *CurveReport) String() string {
	var b strings.Builder
	where := "in this process"
	if r.Processes {
		where = "each a process of its own"
	}
	fmt.Fprintf(&b, "batch scale-out curve: %s lines, slice size %d, servers %s, %d CPUs, %d run(s) per point (odd rounds in order, even rounds reversed)\n",
		commas(int64(r.N)), r.SliceSize, where, r.CPUs, r.Rounds)
	fmt.Fprintf(&b, "database: %s\nload average before: %s; after: %s\n\n", r.Database, r.LoadAvg, r.LoadAvgEnd)

	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "servers\tworkers\tprocessing records/s\truns\tratio\tend-to-end records/s\truns\tratio\tserver CPU\t")
	var p0, t0 float64
	for i, p := range r.Points {
		proc, total, plo, phi, tlo, thi := meanRates(r.N, p.Runs)
		if i == 0 {
			p0, t0 = proc, total
		}
		var cpu time.Duration
		for _, s := range p.Runs {
			cpu += s.ServerCPU
		}
		cpus := "-"
		if cpu > 0 {
			cpus = secs(cpu / time.Duration(len(p.Runs)))
		}
		fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%.2f\t%s\t%s\t%.2f\t%s\t\n", p.Servers, p.Workers, commas(int64(proc)), span(plo, phi), ratioOf(proc, p0),
			commas(int64(total)), span(tlo, thi), ratioOf(total, t0), cpus)
	}
	for _, l := range r.Limits {
		fmt.Fprintf(w, "raw driver\t%d\t%s\t\t%.2f\t%s\t\t%.2f\t\t\n", l.Workers, commas(int64(perSec(r.N, l.Side.Process))), ratioOf(perSec(r.N, l.Side.Process), p0),
			commas(int64(perSec(r.N, l.Side.Total))), ratioOf(perSec(r.N, l.Side.Total), t0))
	}
	_ = w.Flush()
	fmt.Fprintf(&b, "ratio: to the first row; rates are N over the mean time of the runs, \"runs\" the lowest and highest single run;\n"+
		"server CPU: the server processes' user+system CPU per run, from before the upload to the end of processing\n\n")

	for _, line := range r.Targets() {
		fmt.Fprintln(&b, line)
	}
	var records []string
	for _, p := range r.Points {
		for _, s := range p.Runs {
			if s.Records != int64(r.N) {
				records = append(records, fmt.Sprintf("%s: %d", s.Name, s.Records))
			}
		}
	}
	if len(records) == 0 {
		fmt.Fprintf(&b, "verified: every run read back %s records, in input order\n", commas(int64(r.N)))
	} else {
		fmt.Fprintf(&b, "verified: runs with a record count other than %d: %s\n", r.N, strings.Join(records, ", "))
	}
	return b.String()
}

// Targets checks the scale-out targets on the processing rate (the phase
// workers and servers act on): with one server count, the rate never falls
// as workers grow; at each worker count, 2 or more servers are not slower
// than 1.
func (r *CurveReport) Targets() []string {
	var out []string
	for _, s := range distinct(serversOf(r.Points)) {
		var ws []int
		for _, p := range r.Points {
			if p.Servers == s {
				ws = append(ws, p.Workers)
			}
		}
		if len(ws) < 2 {
			continue
		}
		var falls []string
		prev, _ := r.Rates(r.point(s, ws[0]))
		for _, w := range ws[1:] {
			cur, _ := r.Rates(r.point(s, w))
			if cur < prev {
				falls = append(falls, fmt.Sprintf("%.0f%% lower at %d workers than at the count before", 100*(1-cur/prev), w))
			}
			prev = cur
		}
		v := "met"
		if len(falls) > 0 {
			v = "NOT met: " + strings.Join(falls, "; ")
		}
		out = append(out, fmt.Sprintf("%d server(s), %d to %d workers: processing rate never falls as workers grow: %s", s, ws[0], ws[len(ws)-1], v))
	}
	for _, p := range r.Points {
		one := r.point(1, p.Workers)
		if p.Servers == 1 || one == nil {
			continue
		}
		proc, _ := r.Rates(p)
		proc1, _ := r.Rates(one)
		out = append(out, fmt.Sprintf("%d servers / 1 server at %d workers: processing rate %.2f (not slower: %s)", p.Servers, p.Workers, ratioOf(proc, proc1), verdict(proc >= proc1)))
	}
	return out
}

func serversOf(ps []*CurvePoint) []int {
	var s []int
	for _, p := range ps {
		s = append(s, p.Servers)
	}
	return s
}

func ratioOf(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// span is "lo-hi" in records/s.
func span(lo, hi float64) string {
	return commas(int64(lo)) + "-" + commas(int64(hi))
}
