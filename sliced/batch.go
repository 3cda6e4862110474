package sliced

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/jobparams"
	"github.com/rocketjob-go/rocketjob/internal/scope"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Type describes a sliced job type whose jobs take parameters P, as
// RocketJob's batch jobs: per-job parameters, named output categories,
// statistics (rocketjob.Inc) and end-of-job hooks. Register registers it.
//
// P is a struct stored as BSON (field names as its bson tags say), given
// per upload (`rocketjob upload --param KEY=VALUE`, the REST API's params,
// the web UI's form, UploadOptions.Params) and checked before anything is
// stored: it must decode into P, and when P has a Validate() error method
// (rocketjob.Validator) that must accept it; an upload without parameters
// gets P's zero value, so Validate can require a field. Use struct{} for
// none.
type Type[P any] struct {
	// Format is the records' format: Lines (the default), CSV or JSONL.
	// Perform gets a line's bytes, a CSV row packed (DecodeFields; the
	// header is rocketjob.JobFromContext(ctx).Header, or Header for an
	// encrypted job) or a JSON value.
	Format Format
	// Categories names the type's outputs (e.g. "good", "rejected"): each
	// is stored, counted and downloaded on its own, in input order
	// (DownloadCategory, `rocketjob download --category NAME`). Empty means
	// the one default output (Download), of at most one record per input
	// record.
	Categories []string
	// Perform turns one record into its outputs, each routed to a category
	// (see To). It may return none (the record is dropped: counted in the
	// job's DroppedCount, not lost) or several. An error (or a panic) makes
	// the record a failed record, stored with its error; the outputs it
	// returned then are not kept. RecordNumber(ctx) is the record's 1-based
	// number in the input. Perform is at-least-once (a slice runs again
	// after a crash) while its outputs and statistics count exactly once.
	Perform func(ctx context.Context, params P, record []byte) ([]rocketjob.Output, error)
	// Before runs once, on one server, before the first slice.
	Before func(ctx context.Context, job *rocketjob.Job, params P) error
	// After runs once, on one server, after the last slice when no record
	// failed; its error fails the job.
	After func(ctx context.Context, job *rocketjob.Job, params P) error
	// OnComplete, OnFail and OnAbort run once when a job of the type ends
	// that way, on one server, off the workers, whether or not records
	// failed. The job holds its final counts: RecordCount,
	// FailedRecordCount, DroppedCount, Categories (output records by
	// category), OutputCount and Statistics; the outputs can be read
	// (DownloadCategory). A job retried and ending again runs the hook of
	// that new end. Errors are logged; a server crash while a hook runs
	// loses that call (it never runs twice).
	OnComplete, OnFail, OnAbort func(ctx context.Context, job *rocketjob.Job, params P) error
	// Options are the type's defaults (slice size, encryption, priority,
	// ...); nil means all defaults. Their Before and After must be nil: use
	// the fields above.
	Options *Options
}

// To returns one output record in category: the result of a record
// function that has one output.
//
//	return sliced.To("imported", record), nil
func To(category string, record []byte) []rocketjob.Output {
	return []rocketjob.Output{{Category: category, Record: record}}
}

// RecordNumber returns the 1-based number, in input order, of the record
// that ctx's record function is processing; 0 outside one.
func RecordNumber(ctx context.Context) int64 {
	if s := scope.From(ctx); s != nil {
		return s.Record
	}
	return 0
}

// Register registers the sliced job type t under name. See Type.
func Register[P any](r *rocketjob.Registry, name string, t Type[P]) error {
	pt := reflect.TypeFor[P]()
	if pt.Kind() != reflect.Struct {
		return fmt.Errorf("job type %q: parameters must be a struct, not %s", name, pt)
	}
	if t.Perform == nil {
		return fmt.Errorf("job type %q: Perform is required", name)
	}
	opts := Options{}
	if t.Options != nil {
		opts = *t.Options
	}
	if opts.Before != nil || opts.After != nil {
		return fmt.Errorf("job type %q: set Before and After on the Type, not in its Options", name)
	}
	if len(t.Categories) > 0 && opts.DiscardOutput {
		return fmt.Errorf("job type %q: a type with categories keeps its outputs (DiscardOutput must be false)", name)
	}
	format := t.Format
	if format == "" {
		format = Lines
	}
	params := &paramCache[P]{}
	hook := func(fn func(context.Context, *rocketjob.Job, P) error) func(context.Context, *rocketjob.Job) error {
		if fn == nil {
			return nil
		}
		return func(ctx context.Context, job *rocketjob.Job) error {
			p, err := params.get(job)
			if err != nil {
				return err
			}
			return fn(ctx, job, p)
		}
	}
	opts.Before, opts.After = hook(t.Before), hook(t.After)
	ends := map[rocketjob.State]func(context.Context, *rocketjob.Job) error{
		rocketjob.StateCompleted: hook(t.OnComplete), rocketjob.StateFailed: hook(t.OnFail), rocketjob.StateAborted: hook(t.OnAbort),
	}
	var onEnd func(context.Context, *rocketjob.Job) error
	if t.OnComplete != nil || t.OnFail != nil || t.OnAbort != nil {
		onEnd = func(ctx context.Context, job *rocketjob.Job) error {
			if fn := ends[job.State]; fn != nil {
				return fn(ctx, job)
			}
			return nil
		}
	}
	if err := rocketjob.CheckCategories(t.Categories); err != nil {
		return fmt.Errorf("job type %q: %w", name, err)
	}
	perform := func(ctx context.Context, job *rocketjob.Job, rec []byte) ([]rocketjob.Output, error) {
		p, err := params.get(job)
		if err != nil {
			return nil, err
		}
		// A lines job whose records keep the "\r" of their "\r\n" (see
		// RegisterLines) shows Perform the line without it and puts it
		// back on each output.
		cr := format == Lines && job.KeepCR && len(rec) > 0 && rec[len(rec)-1] == '\r'
		if !cr {
			return t.Perform(ctx, p, rec)
		}
		outs, err := t.Perform(ctx, p, rec[:len(rec)-1])
		for i := range outs {
			outs[i].Record = append(slices.Clip(outs[i].Record), '\r')
		}
		return outs, err
	}
	// Registered as a plain sliced type first (slice size, formats, column
	// checks), then given what makes it a batch type, before any use.
	err := register(r, name, format, &opts, func(context.Context, *rocketjob.Job, []byte) ([]byte, error) {
		return nil, fmt.Errorf("job type %q runs through PerformOutputs", name)
	})
	if err != nil {
		return err
	}
	spec, err := r.Lookup(name)
	if err != nil {
		return err
	}
	spec.Args = pt
	spec.Categories = append([]string(nil), t.Categories...)
	spec.OnEnd = onEnd
	spec.PerformOutputs = perform
	return nil
}

// paramCache decodes a job's parameters once per job and keeps the last
// few (the jobs a server is working on).
type paramCache[P any] struct {
	mu   sync.Mutex
	jobs map[bson.ObjectID]P
}

// paramCacheSize bounds a type's decoded parameters kept at once.
const paramCacheSize = 64

func (c *paramCache[P]) get(job *rocketjob.Job) (P, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.jobs[job.ID]; ok {
		return p, nil
	}
	var p P
	if len(job.Params) > 0 {
		if err := bson.Unmarshal(job.Params, &p); err != nil {
			return p, fmt.Errorf("%w: job %s: %v", rocketjob.ErrBadArgs, job.ID.Hex(), err)
		}
	}
	if c.jobs == nil || len(c.jobs) >= paramCacheSize {
		c.jobs = map[bson.ObjectID]P{}
	}
	c.jobs[job.ID] = p
	return p, nil
}

// setBatch gives a new job its parameters (decoded and validated), its
// type's categories and its end hooks and webhook.
func setBatch(c *rocketjob.Client, spec *rocketjob.TypeSpec, job *rocketjob.Job, opts *UploadOptions) error {
	params, err := jobparams.Encode(c.Registry(), spec.Name, opts.Params)
	if err != nil {
		return err
	}
	job.Params = params
	job.CategoryNames = append([]string(nil), spec.Categories...)
	if opts.NotifyURL != "" {
		if err := CheckNotifyURL(opts.NotifyURL); err != nil {
			return err
		}
		job.NotifyURL = opts.NotifyURL
	}
	job.EndHooks = spec.OnEnd != nil || job.NotifyURL != ""
	return nil
}

// CheckNotifyURL returns an error wrapping ErrBadOptions unless u is an
// absolute http or https URL (a job's webhook).
func CheckNotifyURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("%w: notify URL %q: want an absolute http or https URL", ErrBadOptions, u)
	}
	return nil
}
