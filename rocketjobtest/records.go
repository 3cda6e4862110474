package rocketjobtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/rocketjob-go/rocketjob/internal/jobrun"
	"github.com/rocketjob-go/rocketjob/internal/scope"
	"github.com/rocketjob-go/rocketjob/internal/slice"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// Result is what a sliced job made of its input: its final state, its output
// and its failed records. Records and RoundTrip return the same Result for
// the same input, one computed inline, the other by a server.
type Result struct {
	// Job is the job at its end: State is StateCompleted, or StateFailed with
	// its Failure ("2 of 10 records failed", "before hook: ..."). RecordCount,
	// ProcessedCount and FailedRecordCount are set.
	Job *rocketjob.Job
	// Output holds the lines a download of the job writes, without line
	// endings: one output record per line in input order, failed records
	// left out; for a CSV type the header row comes first and rows are
	// quoted as the download quotes them. Nil when the type discards its
	// output.
	Output []string
	// Failed holds the failed records in record order.
	Failed []FailedRecord
	// Categories holds, for a type with output categories (sliced.Register),
	// the lines a download of each category writes (as Output does); the
	// job's Categories counts them.
	Categories map[string][]string
	// Statistics are the counters the records' functions incremented
	// (rocketjob.Inc), as the job's totals show them (the last run of each
	// record counts); hooks' increments are not included.
	Statistics map[string]int64
	// Dropped counts the records that gave no output and did not fail
	// (the job's DroppedCount).
	Dropped int64
}

// FailedRecord is one input record whose function returned an error (or
// panicked).
type FailedRecord struct {
	// Number is the 1-based record number (a CSV header row is not a record).
	Number int64
	// Record is the input record as it appears in the file: a line, a JSON
	// value or a CSV row.
	Record string
	// Err is the record's error. Records returns the function's own error
	// (errors.Is and errors.As work; a panic is a *PanicError); RoundTrip can
	// only return the stored message, as an error whose Error() is that
	// message.
	Err error
}

// Records runs the records of records through the sliced type typ inline, in
// this goroutine, as servers would process an upload of them: no database,
// no server. Each element is one record as it appears in a file, in the
// type's format: a line (Lines), a JSON value (JSONL; blank ones are
// skipped), or a CSV row with the header row first (CSV). They are read with
// the same reader as an upload, so input that Upload refuses is an error
// here too (an *sliced.InputError naming the line).
//
// The run follows the type's options: the Before hook first (its error fails
// the job before any record), every record (a failed record does not stop
// the others unless StopOnError, which fails the job once the slice holding
// the first one is done, leaving the later slices unprocessed), the
// failed records again up to SliceRetryLimit times, and the After hook when
// no record failed. rocketjob.JobFromContext works in the type's functions.
//
// The returned error is about the run itself (an unknown or simple type, bad
// input, ctx ended); what the job's code did is in the Result.
func Records(ctx context.Context, reg *rocketjob.Registry, typ string, records []string) (*Result, error) {
	spec, err := reg.Lookup(typ)
	if err != nil {
		return nil, err
	}
	if spec.Kind != rocketjob.KindSliced {
		return nil, fmt.Errorf("job type %q is a simple job: use Perform", typ)
	}
	format := sliced.Format(spec.Format)
	input, header, err := read(format, records)
	if err != nil {
		return nil, err
	}

	job := newJob(spec)
	job.Step = rocketjob.StepBefore
	job.Format, job.Header = string(format), header
	job.SliceSize, job.CollectOutput, job.StopOnError = spec.SliceSize, spec.CollectOutput, spec.StopOnError
	job.SliceRetryLimit = spec.SliceRetryLimit
	job.RecordCount = int64(len(input))
	jctx := jobrun.WithJob(ctx, job)
	res := &Result{Job: job}

	if spec.Before != nil {
		if err := call(func() error { return spec.Before(jctx, job) }); err != nil {
			finish(job, err, "before hook: ")
			return res, nil
		}
	}
	job.Step = rocketjob.StepProcessing

	outputs := make([][]byte, len(input))
	errs := make([]error, len(input))
	outs := make([][]rocketjob.Output, len(input))   // a batch type's outputs
	counters := make([]map[string]int64, len(input)) // each record's last run's
	fn := func(ctx context.Context, rec []byte) ([]byte, error) {
		i := scope.From(ctx).Record - 1
		rctx, sc := scope.New(ctx)
		sc.Record = i + 1
		defer func() { counters[i] = sc.Counters() }()
		if spec.PerformOutputs == nil {
			return spec.PerformRecord(rctx, job, rec)
		}
		o, err := spec.PerformOutputs(rctx, job, rec)
		if err == nil {
			err = checkOutputs(spec, o)
		}
		if err != nil {
			return nil, err
		}
		outs[i] = o
		return nil, nil
	}
	jctx, _ = scope.New(jctx)
	// run runs input[from:to] as one slice, through the per-record loop
	// servers use; it stops with ctx's error before a record once ctx ends.
	run := func(from, to int) error {
		ran := 0
		for o := range slice.Perform(jctx, pack(input[from:to]), int64(from+1), fn) {
			i := int(o.Number) - 1
			outputs[i], errs[i] = o.Output, panicError(o.Err)
			ran++
		}
		if ran < to-from {
			return ctx.Err()
		}
		return nil
	}
	var stopped error // the first failed record of a StopOnError job
	size := max(job.SliceSize, 1)
	for from := 0; from < len(input) && stopped == nil; from += size {
		to := min(from+size, len(input))
		if err := run(from, to); err != nil {
			return nil, err
		}
		job.ProcessedCount += int64(to - from)
		if i := slices.IndexFunc(errs[from:to], func(e error) bool { return e != nil }); i >= 0 && job.StopOnError {
			// The rest of the record's slice went on, as on a server.
			stopped = fmt.Errorf("record %d: %w", from+i+1, errs[from+i])
		}
	}
	for stopped == nil && job.Attempt < job.SliceRetryLimit && failed(errs) > 0 {
		job.Attempt++
		for i, e := range errs {
			if e != nil {
				if err := run(i, i+1); err != nil {
					return nil, err
				}
			}
		}
	}

	job.FailedRecordCount = int64(failed(errs))
	var keep []bool
	if spec.PerformOutputs != nil {
		outputs, keep = batchOutputs(spec, job, res, outs, errs, counters)
	}
	if res.Output, res.Failed, err = results(job, input, outputs, errs, keep); err != nil {
		return nil, err
	}
	if err := categoryLines(job, res, outs, errs); err != nil {
		return nil, err
	}
	switch {
	case stopped != nil:
		finish(job, stopped, "stopped at the first failed record: ")
	case job.FailedRecordCount > 0:
		finish(job, fmt.Errorf("%d of %d records failed", job.FailedRecordCount, job.RecordCount), "")
	case spec.After != nil:
		job.Step = rocketjob.StepAfter
		err := call(func() error { return spec.After(jctx, job) })
		finish(job, err, "after hook: ")
	default:
		finish(job, nil, "")
	}
	return res, nil
}

// checkOutputs applies the servers' rules to a record's outputs: a type
// without categories gives at most one, of category ""; a type with
// categories gives only its own.
func checkOutputs(spec *rocketjob.TypeSpec, outs []rocketjob.Output) error {
	if len(spec.Categories) == 0 {
		if len(outs) > 1 {
			return errors.New("the job type has no categories: a record has at most one output")
		}
		if len(outs) == 1 && outs[0].Category != "" {
			return fmt.Errorf("output category %q: the job type has no categories", outs[0].Category)
		}
		return nil
	}
	for _, o := range outs {
		if !slices.Contains(spec.Categories, o.Category) {
			return fmt.Errorf("unknown output category %q (the job type's: %s)", o.Category, strings.Join(spec.Categories, ", "))
		}
	}
	return nil
}

// batchOutputs fills the statistics and dropped records of a batch type's
// run and returns its default outputs and which records have one.
func batchOutputs(spec *rocketjob.TypeSpec, job *rocketjob.Job, res *Result, outs [][]rocketjob.Output, errs []error, counters []map[string]int64) ([][]byte, []bool) {
	outputs, keep := make([][]byte, len(outs)), make([]bool, len(outs))
	job.CategoryNames = spec.Categories
	for i := range job.ProcessedCount {
		res.Statistics = scope.Add(res.Statistics, counters[i])
		if errs[i] != nil {
			continue
		}
		if len(outs[i]) == 0 {
			res.Dropped++
			continue
		}
		if len(spec.Categories) == 0 {
			outputs[i], keep[i] = outs[i][0].Record, true
		}
	}
	job.Statistics, job.DroppedCount = res.Statistics, res.Dropped
	return outputs, keep
}

// categoryLines lays out each category's records as a download writes them.
func categoryLines(job *rocketjob.Job, res *Result, outs [][]rocketjob.Output, errs []error) error {
	if len(job.CategoryNames) == 0 {
		return nil
	}
	format := sliced.Format(job.Format)
	res.Categories, job.Categories = map[string][]string{}, map[string]int64{}
	for _, c := range job.CategoryNames {
		res.Categories[c] = []string{}
		job.Categories[c] = 0
		if format == sliced.CSV && len(job.Header) > 0 {
			h, err := headerLine(job.Header)
			if err != nil {
				return err
			}
			res.Categories[c] = append(res.Categories[c], h)
		}
	}
	for i := range job.ProcessedCount {
		if errs[i] != nil {
			continue
		}
		for _, o := range outs[i] {
			l, err := line(format, o.Record)
			if err != nil {
				return fmt.Errorf("output of record %d: %w", i+1, err)
			}
			res.Categories[o.Category] = append(res.Categories[o.Category], l)
			job.Categories[o.Category]++
		}
	}
	return nil
}

// pack packs records into a slice body, as an upload does.
func pack(records [][]byte) []byte {
	var body []byte
	for _, rec := range records {
		body = slice.Append(body, rec)
	}
	return body
}

// panicError turns the per-record loop's panic error into a *PanicError;
// other errors come back unchanged.
func panicError(err error) error {
	var pe *slice.PanicError
	if errors.As(err, &pe) {
		return &PanicError{Value: pe.Value, Stack: pe.Stack}
	}
	return err
}

// failed counts the non-nil errors.
func failed(errs []error) int {
	n := 0
	for _, e := range errs {
		if e != nil {
			n++
		}
	}
	return n
}

// read reads records, one per element, with the reader an upload uses and
// returns them with the CSV header.
func read(format sliced.Format, records []string) ([][]byte, []string, error) {
	var b strings.Builder
	for _, r := range records {
		b.WriteString(r)
		b.WriteByte('\n')
	}
	rd := sliced.NewReader(strings.NewReader(b.String()), format)
	var out [][]byte
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, rd.Header(), nil
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, append([]byte(nil), rec...))
	}
}

// results lays out the job's output as a download writes it, and its failed
// records, up to the last record processed. keep, when not nil, says which
// records have an output (a batch type's records may have none).
func results(job *rocketjob.Job, input, outputs [][]byte, errs []error, keep []bool) ([]string, []FailedRecord, error) {
	format := sliced.Format(job.Format)
	var output []string
	if job.CollectOutput && len(job.CategoryNames) == 0 {
		output = []string{}
		if format == sliced.CSV && len(job.Header) > 0 {
			h, err := headerLine(job.Header)
			if err != nil {
				return nil, nil, err
			}
			output = append(output, h)
		}
	}
	var fails []FailedRecord
	for i := range job.ProcessedCount {
		if errs[i] != nil {
			rec, err := line(format, input[i])
			if err != nil {
				return nil, nil, err
			}
			fails = append(fails, FailedRecord{Number: i + 1, Record: rec, Err: errs[i]})
			continue
		}
		if output != nil && (keep == nil || keep[i]) {
			l, err := line(format, outputs[i])
			if err != nil {
				return nil, nil, fmt.Errorf("output of record %d: %w", i+1, err)
			}
			output = append(output, l)
		}
	}
	return output, fails, nil
}

// line returns rec as the one line a download writes for it.
func line(format sliced.Format, rec []byte) (string, error) {
	if format != sliced.CSV {
		return string(rec), nil
	}
	var b strings.Builder
	w := sliced.NewWriter(&b, sliced.WriterOptions{Format: sliced.CSV})
	if err := w.Write(rec); err != nil {
		return "", err
	}
	err := w.Close()
	return b.String(), err
}

// headerLine returns a CSV header row as a download writes it.
func headerLine(header []string) (string, error) {
	var b strings.Builder
	w := sliced.NewWriter(&b, sliced.WriterOptions{Format: sliced.CSV, Header: header})
	err := w.Close()
	return b.String(), err
}
