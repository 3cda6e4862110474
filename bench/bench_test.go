package main

import (
	"context"
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	benchN      = flag.Int("bench.n", 0, "lines for BenchmarkBatch (default $ROCKETJOB_BENCH_N, else 100000)")
	benchTrace  = flag.Bool("bench.trace", false, "BenchmarkBatch: count and time every database call per phase")
	benchSealed = flag.Bool("bench.sealed", true, "BenchmarkBatch: also run rocketjob with encrypted, compressed slices")
	benchCPU    = flag.String("bench.cpuprofile", "", "BenchmarkBatch: write CPU profiles of both sides to this file (and .baseline)")
)

// defaultBenchN keeps `go test -bench` short; ROCKETJOB_BENCH_N=1000000 runs
// the full workload.
const defaultBenchN = 100_000

func benchLines(b *testing.B) int {
	if *benchN > 0 {
		return *benchN
	}
	if v := os.Getenv("ROCKETJOB_BENCH_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("ROCKETJOB_BENCH_N=%q: want a positive number", v)
		}
		return n
	}
	return defaultBenchN
}

// BenchmarkBatch runs the batch workload (rocketjob and the raw-driver
// baseline, same database) once per iteration and reports rocketjob's
// records/s and its ratio to the baseline. Run it with -benchtime=1x: one
// iteration takes seconds to minutes.
//
//	ROCKETJOB_BENCH_N=1000000 go -C bench test -run '^$' -bench Batch -benchtime 1x -timeout 60m
func BenchmarkBatch(b *testing.B) {
	cfg := Config{N: benchLines(b), Trace: *benchTrace, Sealed: *benchSealed, CPUProfile: *benchCPU, URI: os.Getenv("ROCKETJOB_BENCH_URI"),
		Logf: func(format string, args ...any) { b.Logf(format, args...) }}
	var rate, ratio, baseRate float64
	runs := 0
	for b.Loop() {
		runs++
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		rate += rep.RocketJob.RecordsPerSec()
		baseRate += rep.Baseline.RecordsPerSec()
		ratio += rep.Ratio()
		b.Log("\n" + rep.String())
	}
	n := float64(runs)
	b.ReportMetric(rate/n, "records/s")
	b.ReportMetric(baseRate/n, "baseline-records/s")
	b.ReportMetric(ratio/n, "ratio")
	b.ReportMetric(0, "ns/op") // one op is a whole run: its ns say nothing more
}

// TestRunSmall runs the whole benchmark on a small input, so go test ./...
// exercises it, tracing included, with two servers sharing the workers.
func TestRunSmall(t *testing.T) {
	const n = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{N: n, SliceSize: 30, Workers: 3, Servers: 2, Trace: true, Sealed: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	for _, s := range []Side{rep.RocketJob, *rep.Sealed, rep.Baseline} {
		if s.Records != n {
			t.Errorf("%s verified %d records, want %d", s.Name, s.Records, n)
		}
		if want := int64((n + 29) / 30); s.Slices != want {
			t.Errorf("%s made %d slices, want %d", s.Name, s.Slices, want)
		}
		if s.Insert <= 0 || s.Process <= 0 || s.ReadBack <= 0 || s.Total != s.Insert+s.Process+s.ReadBack {
			t.Errorf("%s timings: %+v", s.Name, s)
		}
		if s.RecordsPerSec() <= 0 {
			t.Errorf("%s: no rate", s.Name)
		}
		if len(s.Calls[PhaseInsert]) == 0 || len(s.Calls[PhaseProcess]) == 0 || len(s.Calls[PhaseReadBack]) == 0 {
			t.Errorf("%s: traced calls missing: %v", s.Name, s.Calls)
		}
	}
	if rep.Ratio() <= 0 || rep.PeakRSS <= 0 || rep.PeakHeap == 0 {
		t.Errorf("ratio %v, peak RSS %d, peak heap %d", rep.Ratio(), rep.PeakRSS, rep.PeakHeap)
	}
	if !strings.Contains(rep.String(), "3 workers on 2 server(s)") {
		t.Errorf("the report does not say how the workers were shared:\n%s", rep)
	}
	if !strings.Contains(rep.String(), "insert slices_*_input") {
		t.Errorf("the report does not list the upload's inserts:\n%s", rep)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{N: -1}, {SliceSize: -1}, {SliceSize: 100_001}, {Workers: -2}, {Servers: -1}, {Workers: 2, Servers: 3}} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("Run(%+v) accepted a bad config", c)
		}
	}
}

// TestRunSimpleSmall runs the simple-jobs benchmark on a few jobs with two
// servers: every job must run exactly once, and the report must say so.
func TestRunSimpleSmall(t *testing.T) {
	const n = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := RunSimple(ctx, SimpleConfig{N: n, Workers: 4, Servers: 2, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if rep.Runs != n || rep.Enqueue <= 0 || rep.Process <= 0 || rep.Rate() <= 0 || rep.EnqueueRate() <= 0 {
		t.Fatalf("report %+v: want %d runs and positive timings and rates", rep, n)
	}
	if s := rep.String(); !strings.Contains(s, "each ran exactly once (2,000 runs)") || !strings.Contains(s, "end-to-end jobs/s") {
		t.Errorf("report lacks the verification or the rates:\n%s", s)
	}
	for _, c := range []SimpleConfig{{N: -1}, {Workers: -1}, {Servers: 65}} {
		if _, err := RunSimple(ctx, c); err == nil {
			t.Errorf("RunSimple(%+v) accepted a bad config", c)
		}
	}
}
