package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// label names a run in the report: "rocketjob 2x8" (servers x workers) or
// "baseline x8".
func (r *SimpleRun) label() string {
	if r.Name == "baseline" {
		return fmt.Sprintf("baseline x%d", r.Workers)
	}
	return fmt.Sprintf("%s %dx%d", r.Name, r.Servers, r.Workers)
}

// ratio renders a/b, or "-" when b is not positive.
func ratio(a, b float64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// String renders the report: the rates of the baseline, of each rocketjob
// run and of River, rocketjob's rates as ratios of the baseline's (and of
// River's, and of its first server count's), the priority probes, the
// verifications and, when traced, the calls per job.
func (r *SimpleReport) String() string {
	var b strings.Builder
	runs := r.RocketJob()
	shapes := make([]string, len(runs))
	for i, run := range runs {
		shapes[i] = fmt.Sprintf("%d server(s) x %d workers", run.Servers, run.Workers)
	}
	fmt.Fprintf(&b, "simple jobs: %s no-op jobs, %s (in this process, a client each); baseline: %d workers; %d CPUs, load average before: %s\n",
		commas(int64(r.N)), strings.Join(shapes, ", then "), r.Baseline.Workers, r.CPUs, r.LoadAvg)
	fmt.Fprintf(&b, "database: %s; every run on fresh databases\n\n", r.Database)
	r.writeRates(&b, runs)
	b.WriteString("\n")
	r.writeVerdicts(&b, runs)
	for _, run := range append([]SimpleRun{r.Baseline}, runs...) {
		writeCalls(&b, &run)
	}
	return b.String()
}

// writeRates writes the table of times, rates and ratios.
func (r *SimpleReport) writeRates(b *strings.Builder, runs []SimpleRun) {
	w := tabwriter.NewWriter(b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\tenqueue\tprocessing\ttotal\tenqueue jobs/s\tprocessing jobs/s\tend-to-end jobs/s\t")
	for _, run := range append([]SimpleRun{r.Baseline}, runs...) {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", run.label(), secs(run.Enqueue), secs(run.Process), secs(run.Total()),
			commas(int64(run.EnqueueRate())), commas(int64(run.ProcessRate())), commas(int64(run.Rate())))
	}
	v := r.River
	if v != nil {
		fmt.Fprintf(w, "river\t%s\t%s\t%s\t%s\t%s\t%s\t\n", secs(v.Insert), secs(v.Process), secs(v.Insert+v.Process),
			commas(int64(rate(r.N, v.Insert))), commas(int64(rate(r.N, v.Process))), commas(int64(r.RiverRate())))
	}
	base := &r.Baseline
	for _, run := range runs {
		fmt.Fprintf(w, "%s / baseline rate\t\t\t\t%s\t%s\t%s\t\n", run.label(), ratio(run.EnqueueRate(), base.EnqueueRate()),
			ratio(run.ProcessRate(), base.ProcessRate()), ratio(run.Rate(), base.Rate()))
	}
	for _, run := range runs[1:] {
		fmt.Fprintf(w, "%s / %s rate\t\t\t\t%s\t%s\t%s\t\n", run.label(), runs[0].label(), ratio(run.EnqueueRate(), runs[0].EnqueueRate()),
			ratio(run.ProcessRate(), runs[0].ProcessRate()), ratio(run.Rate(), runs[0].Rate()))
	}
	if v != nil {
		for _, run := range runs {
			fmt.Fprintf(w, "%s / river rate\t\t\t\t%s\t%s\t%s\t\n", run.label(), ratio(run.EnqueueRate(), rate(r.N, v.Insert)),
				ratio(run.ProcessRate(), rate(r.N, v.Process)), ratio(run.Rate(), r.RiverRate()))
		}
	}
	_ = w.Flush()
}

// writeVerdicts writes the targets, the priority probes and what was
// verified.
func (r *SimpleReport) writeVerdicts(b *strings.Builder, runs []SimpleRun) {
	fmt.Fprintf(b, "%s end to end %s jobs/s = %s of the baseline's %s (target >= %s jobs/s: %s); enqueue %s jobs/s (target >= %s: %s)\n",
		r.label(), commas(int64(r.Rate())), ratio(r.Rate(), r.Baseline.Rate()), commas(int64(r.Baseline.Rate())),
		commas(TargetSimpleRate), verdict(r.Rate() >= TargetSimpleRate),
		commas(int64(r.EnqueueRate())), commas(TargetSimpleEnqueue), verdict(r.EnqueueRate() >= TargetSimpleEnqueue))
	for _, run := range runs[1:] {
		fmt.Fprintf(b, "%s / %s end to end: %s (2 servers not slower than 1: ratio >= 1)\n", run.label(), runs[0].label(), ratio(run.Rate(), runs[0].Rate()))
	}
	if r.River != nil {
		fmt.Fprintf(b, "%s / river end to end: %s; river: %s, one River job per job, %s\n", r.label(), ratio(r.Rate(), r.RiverRate()), r.RiverDatabase, r.RiverSettings)
	}
	for _, run := range runs {
		if p := run.Probe; p != nil {
			fmt.Fprintf(b, "priority probe, %s: a priority-%d job enqueued behind %s priority-%d jobs started after %s (target < %s: %s); %s of them started in between\n",
				run.label(), p.Priority, commas(int64(p.Behind)), p.Others, ms(p.Latency()), secs(TargetProbeLatency),
				verdict(p.Latency() < TargetProbeLatency), commas(int64(p.StartedBetween)))
		}
	}
	for _, run := range runs {
		if run.Backlog > 0 {
			fmt.Fprintf(b, "backlog, %s: %s priority-%d jobs of another type enqueued before the N (untimed) at %s jobs/s, queued while the N ran; %s of them ran after the N, before the servers stopped\n",
				run.label(), commas(int64(run.Backlog)), backlogPriority, commas(int64(rate(run.Backlog, run.BacklogEnqueue))), commas(run.BacklogRan))
		}
		for _, rd := range run.Reads {
			fmt.Fprintf(b, "read, %s: %s: %s (%d jobs)\n", run.label(), rd.What, ms(rd.Took), rd.Jobs)
		}
	}
	fmt.Fprintf(b, "verified: %s %s jobs completed, each claimed and run exactly once (%s runs)\n",
		r.Baseline.label(), commas(r.Baseline.Completed), commas(r.Baseline.Runs))
	if r.River != nil {
		fmt.Fprintf(b, "verified: river %s jobs completed, %s runs\n", commas(r.River.Completed), commas(r.River.Runs))
	}
	for _, run := range runs {
		fmt.Fprintf(b, "verified: %s %s jobs completed, each ran exactly once (%s runs)\n", run.label(), commas(run.Completed), commas(run.Runs))
	}
}

// writeCalls writes a traced run's database calls per phase, with their
// count and time per job.
func writeCalls(b *strings.Builder, run *SimpleRun) {
	if len(run.Calls) == 0 {
		return
	}
	fmt.Fprintf(b, "\n%s: database calls per job (traced through a proxy, which adds latency)\n", run.label())
	for _, phase := range []string{PhaseEnqueue, PhaseProcess} {
		calls := run.Calls[phase]
		var n int
		var total time.Duration
		for _, c := range calls {
			n += c.Count
			total += c.Total
		}
		jobs := float64(max(run.N, 1))
		fmt.Fprintf(b, "  %s: %s calls (%.2f per job), %s summed latency (%s per job)\n", phase, commas(int64(n)), float64(n)/jobs,
			secs(total), ms(time.Duration(float64(total)/jobs)))
		w := tabwriter.NewWriter(b, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "    call\tcount\tper job\terrors\ttotal\tper job\tavg\tmax\t")
		for _, c := range calls {
			fmt.Fprintf(w, "    %s\t%s\t%.3f\t%s\t%s\t%s\t%s\t%s\t\n", c.Command, commas(int64(c.Count)), float64(c.Count)/jobs,
				commas(int64(c.Errors)), secs(c.Total), ms(time.Duration(float64(c.Total)/jobs)),
				ms(c.Total/time.Duration(max(c.Count, 1))), ms(c.Max))
		}
		_ = w.Flush()
	}
}
