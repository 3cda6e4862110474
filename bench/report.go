package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets of the rocketjob side (from the benchmark issue).
const (
	TargetRatio = 0.5    // rocketjob end to end at least half the baseline's rate
	TargetRate  = 50_000 // records/s for 1M short lines, slice size 100, 4 workers
	TargetRiver = 10     // rocketjob end to end at least 10x River's rate (one job per record)
)

// maxCallRows is how many call kinds the report lists per phase.
const maxCallRows = 8

// String renders the report as a table, with the calls of each phase when
// they were traced.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "batch workload: %s lines, slice size %d, %d workers on %d server(s), %d CPUs, load average before: %s\n",
		commas(int64(r.N)), r.SliceSize, r.Workers, max(r.Servers, 1), r.CPUs, r.LoadAvg)
	fmt.Fprintf(&b, "database: %s\n\n", r.Database)

	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\tinsert/upload\tprocessing\tread-back/download\ttotal\trecords/s\tpeak RSS\tpeak heap\t")
	sides := []*Side{&r.RocketJob, &r.Baseline}
	if r.Sealed != nil {
		sides = []*Side{&r.RocketJob, r.Sealed, &r.Baseline}
	}
	if r.River != nil {
		sides = append(sides, r.River)
	}
	for _, s := range sides {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Name, secs(s.Insert), secs(s.Process), secs(s.ReadBack),
			secs(s.Total), commas(int64(s.RecordsPerSec())), mb(s.PeakRSS), mb(int64(s.PeakHeap)))
	}
	fmt.Fprintf(w, "rocketjob/baseline time\t%s\t%s\t%s\t%s\t\t\t\t\n", times(r.RocketJob.Insert, r.Baseline.Insert),
		times(r.RocketJob.Process, r.Baseline.Process), times(r.RocketJob.ReadBack, r.Baseline.ReadBack),
		times(r.RocketJob.Total, r.Baseline.Total))
	if r.River != nil {
		fmt.Fprintf(w, "rocketjob/river time\t%s\t%s\t%s\t%s\t\t\t\t\n", times(r.RocketJob.Insert, r.River.Insert),
			times(r.RocketJob.Process, r.River.Process), times(r.RocketJob.ReadBack, r.River.ReadBack),
			times(r.RocketJob.Total, r.River.Total))
	}
	_ = w.Flush()

	fmt.Fprintf(&b, "\nrocketjob/baseline rate: %.2f (target >= %.2f: %s); rocketjob %s records/s (target >= %s: %s)\n",
		r.Ratio(), TargetRatio, verdict(r.Ratio() >= TargetRatio),
		commas(int64(r.RocketJob.RecordsPerSec())), commas(TargetRate), verdict(r.RocketJob.RecordsPerSec() >= TargetRate))
	if r.Sealed != nil {
		cost := 1 - r.Sealed.RecordsPerSec()/r.RocketJob.RecordsPerSec()
		fmt.Fprintf(&b, "encrypt+compress costs %.0f%% of plain end-to-end throughput (target <= 20%%: %s)\n", 100*cost, verdict(cost <= 0.20))
	}
	if r.River != nil {
		fmt.Fprintf(&b, "rocketjob/river rate: %.2f (target >= %d: %s); river: %s, one job per record, %s\n",
			r.RiverRatio(), TargetRiver, verdict(r.RiverRatio() >= TargetRiver), r.RiverDatabase, r.RiverSettings)
	}
	fmt.Fprintf(&b, "verified: rocketjob %s records, baseline %s records, in input order\n",
		commas(r.RocketJob.Records), commas(r.Baseline.Records))
	if r.River != nil {
		fmt.Fprintf(&b, "verified: river %s records, in input order (its peak RSS is this process only, not PostgreSQL's)\n", commas(r.River.Records))
	}
	note := "per side"
	if !r.ResetPeakRSS {
		note = "could not be reset between sides: each is the peak so far"
	}
	fmt.Fprintf(&b, "process peak RSS %s, peak Go heap in use %s (%s; the embedded database runs in this process)\n",
		mb(r.PeakRSS), mb(int64(r.PeakHeap)), note)

	for _, s := range []*Side{&r.RocketJob, &r.Baseline} {
		if len(s.Calls) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s: database calls per phase (traced through a proxy, which adds latency)\n", s.Name)
		for _, phase := range []string{PhaseInsert, PhaseProcess, PhaseReadBack} {
			calls := s.Calls[phase]
			var n int
			var total time.Duration
			for _, c := range calls {
				n += c.Count
				total += c.Total
			}
			fmt.Fprintf(&b, "  %s: %s calls, %s summed latency\n", phase, commas(int64(n)), secs(total))
			w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(w, "    call\tcount\terrors\ttotal\tavg\tmax\tsent\treceived\tfirst at\tlast at\t")
			for i, c := range calls {
				if i == maxCallRows {
					fmt.Fprintf(w, "    (%d more kinds)\t\t\t\t\t\t\t\t\t\t\n", len(calls)-i)
					break
				}
				fmt.Fprintf(w, "    %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c.Command, commas(int64(c.Count)), commas(int64(c.Errors)),
					secs(c.Total), ms(c.Total/time.Duration(max(c.Count, 1))), ms(c.Max), mb(c.BytesOut), mb(c.BytesIn), secs(c.First), secs(c.Last))
			}
			_ = w.Flush()
		}
	}
	return b.String()
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// times is a/b as "2.31x", or "-" without a b.
func times(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

// commas formats n with thousands separators.
func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
