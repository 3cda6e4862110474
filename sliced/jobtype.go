package sliced

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// DefaultSliceSize is the number of records per slice unless a type or an
// upload says otherwise.
const DefaultSliceSize = 100

// Options are a sliced job type's defaults; nil means all defaults.
type Options struct {
	// SliceSize is the number of records per slice (default 100).
	SliceSize int
	// Priority is the default priority of the type's jobs (default 50).
	Priority int
	// DiscardOutput drops the output records instead of collecting them for
	// download (the per-record function then runs only for its side effects).
	DiscardOutput bool
	// DestroyOnComplete removes a completed job and its slices.
	DestroyOnComplete bool
	// StopOnError fails the job at the first failed record instead of
	// finishing the other slices first.
	StopOnError bool
	// SliceRetryLimit retries the slices that had failed records
	// automatically, up to this many times, once all slices are done; only
	// then does the job fail.
	SliceRetryLimit int
	// Encrypt stores every slice of the type's jobs (input, output, failed
	// records) and the CSV header AES-256-GCM encrypted; servers need the key.
	Encrypt bool
	// Compress stores slices zstd-compressed (before encryption).
	Compress bool
	// MaxRunningJobs, when above zero, caps how many jobs of the type run at
	// once across all servers; the others wait in the queue.
	MaxRunningJobs int
	// RateLimit, when above zero, caps how many slices of the type's jobs
	// start per second across all servers (records per second: RateLimit
	// times SliceSize). Throttled workers take other work meanwhile.
	RateLimit int
	// Columns, for a CSV type, are checks its uploads' header must pass
	// (required and allowed columns); a file that fails them is refused
	// before anything is stored. nil checks nothing. Only CSV types may have
	// them.
	Columns *Columns
	// Format is the input format of a tabular type (RegisterCSV,
	// RegisterRows): csv (the default), psv, tsv, fixed or xlsx. An upload
	// may choose another tabular format, by name or by its file's
	// extension.
	Format Format
	// OutputFormat is the format a tabular type's output is downloaded in
	// (csv, psv, tsv, xlsx or jsonl); empty means the input's format.
	OutputFormat Format
	// LenientQuotes accepts bare quotes in the type's CSV, PSV and TSV
	// input (see ReaderOptions.LenientQuotes).
	LenientQuotes bool
	// Header declares the column names of the type's files, which then
	// have no header row; with Widths it is the layout of a fixed-width
	// type (both required for Format fixed).
	Header []string
	// Widths are the column widths, in characters, of a fixed-width type.
	Widths []int
	// outputHeader are the declared output columns (RegisterRows).
	outputHeader []string
	// Before runs once, on one server, before any slice is processed.
	Before func(ctx context.Context, job *rocketjob.Job) error
	// After runs exactly once, on one server, after the last slice, when no
	// record failed.
	After func(ctx context.Context, job *rocketjob.Job) error
}

func register(r *rocketjob.Registry, name string, f Format, opts *Options, fn func(context.Context, *rocketjob.Job, []byte) ([]byte, error)) error {
	if opts == nil {
		opts = &Options{}
	}
	size := opts.SliceSize
	if size == 0 {
		size = DefaultSliceSize
	}
	if size < 1 {
		return fmt.Errorf("job type %q: slice size must be at least 1", name)
	}
	table, err := tableFromOptions(name, f, opts)
	if err != nil {
		return err
	}
	if !opts.Columns.empty() {
		if !f.Tabular() {
			return fmt.Errorf("job type %q: column checks need the csv format (the type reads %s)", name, f)
		}
		if err := opts.Columns.validate(); err != nil {
			return fmt.Errorf("job type %q: %w", name, err)
		}
	}
	err = r.Add(rocketjob.TypeSpec{
		Name:              name,
		Kind:              rocketjob.KindSliced,
		Priority:          opts.Priority,
		Format:            string(f),
		PerformRecord:     fn,
		Before:            opts.Before,
		After:             opts.After,
		SliceSize:         size,
		CollectOutput:     !opts.DiscardOutput,
		DestroyOnComplete: opts.DestroyOnComplete,
		StopOnError:       opts.StopOnError,
		SliceRetryLimit:   opts.SliceRetryLimit,
		Encrypt:           opts.Encrypt,
		Compress:          opts.Compress,
		MaxRunningJobs:    opts.MaxRunningJobs,
		RateLimit:         opts.RateLimit,
	})
	if err == nil && !opts.Columns.empty() {
		setTypeColumns(r, name, opts.Columns)
	}
	if err == nil && table != nil {
		setTypeTable(r, name, table)
	}
	return err
}

// RegisterLines registers a sliced job type whose records are lines of text
// (any bytes, kept exactly). fn returns the output line or an error, which
// makes the record a failed record; the other records go on.
//
//	sliced.RegisterLines(reg, "upcase", func(ctx context.Context, line string) (string, error) {
//		return strings.ToUpper(line), nil
//	}, nil)
func RegisterLines(r *rocketjob.Registry, name string, fn func(ctx context.Context, line string) (string, error), opts *Options) error {
	return register(r, name, Lines, opts, func(ctx context.Context, job *rocketjob.Job, rec []byte) ([]byte, error) {
		// A job whose records keep the "\r" of their "\r\n" (mixed line
		// endings) shows fn the line without it and puts it back after.
		cr := job.KeepCR && len(rec) > 0 && rec[len(rec)-1] == '\r'
		if cr {
			rec = rec[:len(rec)-1]
		}
		out, err := fn(ctx, string(rec))
		if cr && err == nil {
			out += "\r"
		}
		return []byte(out), err
	})
}

// RegisterCSV registers a sliced job type whose records are rows of a
// tabular file: CSV unless Options.Format names psv, tsv, fixed or xlsx. fn
// gets the file's header and one row and returns the output row; the
// download writes the header back on top.
func RegisterCSV(r *rocketjob.Registry, name string, fn func(ctx context.Context, header, row []string) ([]string, error), opts *Options) error {
	f, err := tableFormat(name, opts)
	if err != nil {
		return err
	}
	return register(r, name, f, opts, func(ctx context.Context, job *rocketjob.Job, rec []byte) ([]byte, error) {
		row, err := DecodeFields(rec)
		if err != nil {
			return nil, err
		}
		out, err := fn(ctx, job.Header, row)
		if err != nil {
			return nil, err
		}
		return EncodeFields(nil, out), nil
	})
}

// RegisterJSONL registers a sliced job type whose records are JSON values,
// one per line, decoded into In; fn's Out is written back as one JSON line.
// A line that does not decode into In is a failed record.
func RegisterJSONL[In, Out any](r *rocketjob.Registry, name string, fn func(ctx context.Context, in In) (Out, error), opts *Options) error {
	if reflect.TypeFor[In]() == nil {
		return fmt.Errorf("job type %q: In must be a concrete type", name)
	}
	return register(r, name, JSONL, opts, func(ctx context.Context, _ *rocketjob.Job, rec []byte) ([]byte, error) {
		var in In
		if err := json.Unmarshal(rec, &in); err != nil {
			return nil, fmt.Errorf("decoding record: %w", err)
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	})
}

// tableFormat is the input format of a tabular type: Options.Format, CSV
// when empty.
func tableFormat(name string, opts *Options) (Format, error) {
	if opts == nil || opts.Format == "" {
		return CSV, nil
	}
	if !opts.Format.Tabular() {
		return "", fmt.Errorf("job type %q: format %q is not tabular (csv, psv, tsv, fixed or xlsx)", name, opts.Format)
	}
	return opts.Format, nil
}
