package main

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// TestRunSimpleInvariants runs the simple-jobs benchmark on a few jobs with
// one and then two servers, and checks what its report promises: every job
// completed exactly once in the baseline and in each rocketjob run, finite
// positive ratios, and a priority probe that started. No timing is
// asserted.
func TestRunSimpleInvariants(t *testing.T) {
	const n = 200
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := RunSimple(ctx, SimpleConfig{N: n, Workers: 4, ServerCounts: []int{1, 2}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())

	base := rep.Baseline
	if base.Name != "baseline" || base.Runs != n || base.Completed != n {
		t.Errorf("baseline: %d runs, %d completed, want %d each", base.Runs, base.Completed, n)
	}
	runs := rep.RocketJob()
	if len(runs) != 2 || runs[0].Servers != 1 || runs[1].Servers != 2 || rep.Servers != 1 {
		t.Fatalf("rocketjob runs: %+v, want one with 1 server and one with 2", runs)
	}
	for _, run := range runs {
		if run.Runs != n || run.Completed != n {
			t.Errorf("%s: %d runs, %d completed, want %d each", run.label(), run.Runs, run.Completed, n)
		}
		for name, r := range map[string]float64{
			"enqueue":    run.EnqueueRate() / base.EnqueueRate(),
			"processing": run.ProcessRate() / base.ProcessRate(),
			"end to end": run.Rate() / base.Rate(),
		} {
			if !(r > 0) || math.IsInf(r, 0) {
				t.Errorf("%s / baseline %s rate: %v, want finite and positive", run.label(), name, r)
			}
		}
		checkProbe(t, run)
	}
	s := rep.String()
	for _, want := range []string{
		"200 no-op jobs, 1 server(s) x 4 workers, then 2 server(s) x 4 workers",
		"rocketjob 1x4 / baseline rate", "rocketjob 2x4 / baseline rate", "rocketjob 2x4 / rocketjob 1x4 rate",
		"priority probe, rocketjob 1x4: a priority-10 job enqueued behind",
		"verified: baseline x4 200 jobs completed, each claimed and run exactly once (200 runs)",
		"verified: rocketjob 2x4 200 jobs completed, each ran exactly once (200 runs)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}

// TestRunSimpleBacklog runs the workload behind a backlog of lower
// priority: every job runs and completes, the backlog stays queued while
// they run (the servers go on to it once they are done, until they stop:
// the queued listing still finds a full page of it, and the report counts
// the backlog's runs), and the report times the reads.
func TestRunSimpleBacklog(t *testing.T) {
	const n, backlog = 100, 10_000
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := RunSimple(ctx, SimpleConfig{N: n, Workers: 4, Backlog: backlog, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if rep.Runs != n || rep.Completed != n || rep.Backlog != backlog || rep.BacklogEnqueue <= 0 {
		t.Errorf("run: %d runs, %d completed, backlog %d in %v; want %d, %d, %d and a time", rep.Runs, rep.Completed, rep.Backlog, rep.BacklogEnqueue, n, n, backlog)
	}
	if run := rep.SimpleRun; run.BacklogRan < 0 || run.BacklogRan >= backlog {
		t.Errorf("%d backlog jobs ran, want fewer than the %d queued", run.BacklogRan, backlog)
	}
	reads := map[string]TimedRead{}
	for _, r := range rep.Reads {
		reads[r.What] = r
	}
	if r, ok := reads["job list --limit 50 --state queued"]; !ok || r.Jobs != 50 {
		t.Errorf("queued listing: %+v, want 50 jobs of the backlog", r)
	}
	if r, ok := reads["job list --limit 50 --state queued --type "+SimpleType]; !ok || r.Jobs != 0 {
		t.Errorf("queued listing of the run's type: %+v, want none left", r)
	}
	if r, ok := reads["job show"]; !ok || r.Took <= 0 {
		t.Errorf("job show: %+v, want a timed read", r)
	}
	s := rep.String()
	for _, want := range []string{
		"backlog, rocketjob 1x4: 10,000 priority-60 jobs of another type enqueued",
		"of them ran after the N, before the servers stopped",
		"read, rocketjob 1x4: job list --limit 50 --newest: ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}

// checkProbe checks a run's priority probe: it started, not before it was
// enqueued, and the jobs counted around it are among the run's.
func checkProbe(t *testing.T, run SimpleRun) {
	t.Helper()
	p := run.Probe
	switch {
	case p == nil:
		t.Errorf("%s: no priority probe", run.label())
	case p.Priority != probePriority || p.Others != simplePriority:
		t.Errorf("%s: probe priorities %d behind %d, want %d behind %d", run.label(), p.Priority, p.Others, probePriority, simplePriority)
	case p.EnqueuedAt.IsZero() || p.StartedAt.IsZero() || p.Latency() < 0:
		t.Errorf("%s: probe enqueued %v, started %v", run.label(), p.EnqueuedAt, p.StartedAt)
	case p.Behind < 0 || p.Behind > run.N || p.StartedBetween < 0 || p.StartedBetween > p.Behind:
		t.Errorf("%s: probe behind %d jobs, %d started in between, of %d", run.label(), p.Behind, p.StartedBetween, run.N)
	}
}

// TestRunSimpleTraced traces a small run: the baseline writes exactly one
// claim and one completion per job, and the report lists the calls per job
// of both sides.
func TestRunSimpleTraced(t *testing.T) {
	const n = 50
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := RunSimple(ctx, SimpleConfig{N: n, Workers: 3, Trace: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ok := map[string]int{} // calls that succeeded (a busy database may fail some: they are retried)
	for _, c := range rep.Baseline.Calls[PhaseProcess] {
		ok[c.Command] = c.Count - c.Errors
	}
	if ok["insert job_claims"] != n || ok["update jobs"] != n {
		t.Errorf("baseline process calls %v: want %d claim inserts and %d job updates", ok, n, n)
	}
	if len(rep.Calls[PhaseEnqueue]) == 0 || len(rep.Calls[PhaseProcess]) == 0 {
		t.Errorf("rocketjob calls not traced: %v", rep.Calls)
	}
	if s := rep.String(); !strings.Contains(s, "rocketjob 1x3: database calls per job") || !strings.Contains(s, "baseline x3: database calls per job") {
		t.Errorf("report lacks the calls per job:\n%s", s)
	}
}

func TestSimpleConfigValidate(t *testing.T) {
	for _, c := range []SimpleConfig{{ServerCounts: []int{1, 0}}, {ServerCounts: []int{65}}, {N: -1}} {
		if _, err := RunSimple(context.Background(), c); err == nil {
			t.Errorf("RunSimple(%+v) accepted a bad config", c)
		}
	}
}
