package rocketjob

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Priorities: 1 runs first, 100 last.
const (
	MinPriority     = 1
	MaxPriority     = 100
	DefaultPriority = 50
)

// TypeSpec describes a job type to a Registry. Register (simple jobs) and the
// sliced package's Register functions (sliced jobs) fill it in; most programs
// never build one by hand.
type TypeSpec struct {
	// Name is the type's registered name, e.g. "send_email".
	Name string
	// Kind is KindSimple or KindSliced.
	Kind Kind
	// Args is the type of the job's arguments (a struct), or nil for none.
	Args reflect.Type
	// Priority is the default priority of the type's jobs (0 means DefaultPriority).
	Priority int

	// Perform runs a simple job.
	Perform func(ctx context.Context, job *Job) error
	// RetryLimit is how many times a failed simple job is retried, the first
	// time after RetryBase.
	RetryLimit int
	// RetryBase is the delay before a simple job's first retry, doubled for
	// each later one (see TypeOptions.RetryLimit); 0 means DefaultRetryBase.
	RetryBase time.Duration

	// Format is the input format of a sliced job: "lines", "csv" or "jsonl".
	Format string
	// PerformRecord processes one record of a sliced job and returns its output record.
	PerformRecord func(ctx context.Context, job *Job, record []byte) ([]byte, error)
	// Before runs once before a sliced job's slices are processed; After runs
	// exactly once after the last slice, on one server. Either may be nil.
	Before, After func(ctx context.Context, job *Job) error
	// SliceSize is the default number of records per slice (0 means 100).
	SliceSize int
	// CollectOutput keeps the output records for download.
	CollectOutput bool
	// DestroyOnComplete removes a completed job and all its slices: a sliced
	// job as it completes (unless its upload said otherwise), a simple job
	// at the servers' next retention pass (within
	// server.Config.RetentionInterval).
	DestroyOnComplete bool
	// Retention overrides, for the type's jobs, how long the servers keep
	// finished jobs (server.Config.Retention); zero fields take the
	// servers' settings.
	Retention Retention
	// StopOnError fails the job at the first failed record instead of
	// finishing the other slices first.
	StopOnError bool
	// SliceRetryLimit retries the slices with failed records automatically,
	// up to this many times, before the job fails.
	SliceRetryLimit int
	// Encrypt stores the job's slices AES-256-GCM encrypted; Compress stores
	// them zstd-compressed (before encryption).
	Encrypt, Compress bool
	// MaxRunningJobs, when above zero, caps how many jobs of the type run at
	// once across all servers.
	MaxRunningJobs int
	// RateLimit, when above zero, caps the type's slices (sliced jobs) or job
	// starts (simple jobs) per second across all servers.
	RateLimit int

	// Categories names a sliced type's outputs (e.g. "good", "rejected"),
	// each stored, counted and downloaded on its own; empty means the one
	// default output. Names are non-empty, unique, without spaces, dots,
	// '$' or ':'.
	Categories []string
	// PerformOutputs, when set, replaces PerformRecord: it turns one record
	// of a sliced job into zero or more outputs, each routed to one of
	// Categories (or, for a type without categories, at most one output, of
	// Category ""). A record with no output is dropped: counted, not lost.
	PerformOutputs func(ctx context.Context, job *Job, record []byte) ([]Output, error)
	// OnEnd runs once for each time a sliced job ends: it completed, failed
	// or was aborted (job.State says which). It runs on one server, off the
	// workers, after the job document holds its final counts, Statistics
	// and Categories. A server crash while it runs loses that call (it is
	// not run twice); its error is logged.
	OnEnd func(ctx context.Context, job *Job) error
}

// Output is one output record of a sliced job's record, in a category.
type Output struct {
	// Category is one of the type's categories; "" is the default output of
	// a type without categories.
	Category string
	// Record is the output record (a line, a packed CSV row or a JSON value,
	// as the type's format says).
	Record []byte
}

// Registry maps job type names to their code. Build one at start-up, register
// every type, and give it to the Client and the server.
type Registry struct {
	mu    sync.RWMutex
	types map[string]*TypeSpec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{types: map[string]*TypeSpec{}} }

// Add registers a type. It fails on an empty or duplicate name or a spec
// without the function its kind needs.
func (r *Registry) Add(spec TypeSpec) error {
	if spec.Name == "" || strings.ContainsAny(spec.Name, " \t\n") {
		return fmt.Errorf("job type name %q: must be non-empty without spaces", spec.Name)
	}
	switch spec.Kind {
	case KindSimple:
		if spec.Perform == nil {
			return fmt.Errorf("job type %q: simple jobs need Perform", spec.Name)
		}
	case KindSliced:
		if spec.PerformRecord == nil && spec.PerformOutputs == nil {
			return fmt.Errorf("job type %q: sliced jobs need PerformRecord or PerformOutputs", spec.Name)
		}
		if err := CheckCategories(spec.Categories); err != nil {
			return fmt.Errorf("job type %q: %w", spec.Name, err)
		}
		if len(spec.Categories) > 0 && spec.PerformOutputs == nil {
			return fmt.Errorf("job type %q: a type with categories needs PerformOutputs", spec.Name)
		}
	default:
		return fmt.Errorf("job type %q: unknown kind %q", spec.Name, spec.Kind)
	}
	if spec.Priority != 0 {
		if err := CheckPriority(spec.Priority); err != nil {
			return fmt.Errorf("job type %q: %w", spec.Name, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.types[spec.Name]; dup {
		return fmt.Errorf("job type %q is already registered", spec.Name)
	}
	r.types[spec.Name] = &spec
	return nil
}

// CheckCategories refuses output category names that could not be stored
// or named on a command line: empty, duplicate, or holding spaces, '.',
// '$', ':' or '/'.
func CheckCategories(names []string) error {
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, " \t\n.$:/") {
			return fmt.Errorf("category name %q: must be non-empty without spaces, '.', '$', ':' or '/'", n)
		}
		if seen[n] {
			return fmt.Errorf("category %q is declared twice", n)
		}
		seen[n] = true
	}
	return nil
}

// Lookup returns the spec of a registered type, or an error wrapping
// ErrUnknownType that lists the registered names.
func (r *Registry) Lookup(name string) (*TypeSpec, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if s, ok := r.types[name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("%w %q (registered: %s)", ErrUnknownType, name, strings.Join(r.namesLocked(), ", "))
}

// Names returns the registered type names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

func (r *Registry) namesLocked() []string {
	names := make([]string, 0, len(r.types))
	for n := range r.types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TypeOptions are a simple job type's defaults; nil means all defaults.
type TypeOptions struct {
	// Priority is the default priority (1..100; 0 means DefaultPriority).
	Priority int
	// RetryLimit is how many times a failed run is retried, after an
	// exponential backoff with jitter, before the job stays failed with its
	// last error: retry n waits RetryBase doubled n-1 times, capped at
	// MaxRetryDelay, plus up to a quarter of that at random, so retries of
	// many jobs that failed together spread out. Default 0: no retries.
	RetryLimit int
	// RetryBase is the delay before the first retry (default DefaultRetryBase).
	RetryBase time.Duration
	// MaxRunningJobs, when above zero, caps how many jobs of the type run at
	// once across all servers; the others wait in the queue.
	MaxRunningJobs int
	// RateLimit, when above zero, caps how many of the type's jobs start per
	// second across all servers.
	RateLimit int
	// DestroyOnComplete deletes the type's jobs once they complete, at the
	// servers' next retention pass (within a minute by default), instead of
	// keeping them for Retention.Completed. Failed and aborted jobs are kept
	// as Retention says.
	DestroyOnComplete bool
	// Retention overrides how long the servers keep the type's finished
	// jobs; zero fields take the servers' settings (server.Config.Retention).
	Retention Retention
}

// KeepForever, as a Retention duration, keeps finished jobs forever.
const KeepForever time.Duration = -1

// Retention says how long finished jobs are kept, counted from the time
// they ended (a job's CompletedAt), before a server deletes them with their
// slices: one server of the cluster at a time, every
// server.Config.RetentionInterval. A zero field takes the setting one level
// up (a job type's: the servers' server.Config.Retention; the servers': the
// defaults server.DefaultRetention, 7 days for completed jobs and 30 days
// for failed and aborted ones); a negative one (KeepForever) keeps them.
//
// A job that depends on a job deleted this way fails when it starts, as
// when its dependency is destroyed: keep completed jobs for longer than the
// longest wait of their dependents.
type Retention struct {
	// Completed is how long completed jobs are kept.
	Completed time.Duration
	// Failed is how long failed jobs are kept (a failed job can be retried
	// until it is deleted).
	Failed time.Duration
	// Aborted is how long aborted jobs are kept.
	Aborted time.Duration
}

// Or returns r with its zero fields taken from def.
func (r Retention) Or(def Retention) Retention {
	pick := func(a, b time.Duration) time.Duration {
		if a == 0 {
			return b
		}
		return a
	}
	return Retention{Completed: pick(r.Completed, def.Completed), Failed: pick(r.Failed, def.Failed), Aborted: pick(r.Aborted, def.Aborted)}
}

// Retry backoff.
const (
	// DefaultRetryBase is the delay before a simple job's first retry.
	DefaultRetryBase = time.Second
	// MaxRetryDelay caps the backoff before jitter.
	MaxRetryDelay = time.Hour
)

// retryDelay is the wait before retry number attempt (1 for the first):
// base doubled for each earlier retry, capped at MaxRetryDelay, plus a
// jitter of up to a quarter of that (u in [0, 1) picks where), so retries of
// many jobs that failed together spread out. Servers reach it through
// internal/jobrun.
func retryDelay(base time.Duration, attempt int, u float64) time.Duration {
	if base <= 0 {
		base = DefaultRetryBase
	}
	d := base
	for i := 1; i < attempt && d < MaxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, MaxRetryDelay)
	return d + time.Duration(u*float64(d)/4)
}

// Register registers a simple job type whose arguments are an A (a struct,
// stored as BSON). work runs once per job run; returning an error fails the
// run (or schedules a retry, see TypeOptions.RetryLimit). User code never
// type-asserts: work receives the decoded A. opts may be nil.
//
//	rocketjob.Register(reg, "send_email", func(ctx context.Context, job *rocketjob.Job, args EmailArgs) error {
//		return send(ctx, args.To)
//	}, &rocketjob.TypeOptions{RetryLimit: 3})
func Register[A any](r *Registry, name string, work func(ctx context.Context, job *Job, args A) error, opts *TypeOptions) error {
	t := reflect.TypeFor[A]()
	if t.Kind() != reflect.Struct {
		return fmt.Errorf("job type %q: arguments must be a struct, not %s", name, t)
	}
	if opts == nil {
		opts = &TypeOptions{}
	}
	if opts.RetryLimit < 0 {
		return fmt.Errorf("job type %q: retry limit must not be negative", name)
	}
	return r.Add(TypeSpec{
		Name:       name,
		Kind:       KindSimple,
		Args:       t,
		Priority:   opts.Priority,
		RetryLimit: opts.RetryLimit,
		RetryBase:  opts.RetryBase,

		MaxRunningJobs: opts.MaxRunningJobs,
		RateLimit:      opts.RateLimit,

		DestroyOnComplete: opts.DestroyOnComplete,
		Retention:         opts.Retention,
		Perform: func(ctx context.Context, job *Job) error {
			var args A
			if len(job.Params) > 0 {
				if err := bson.Unmarshal(job.Params, &args); err != nil {
					return fmt.Errorf("%w: %v", ErrBadArgs, err)
				}
			}
			return work(ctx, job, args)
		},
	})
}

// Validator is implemented by argument structs that check themselves; Enqueue
// calls Validate and refuses the job when it returns an error.
type Validator interface {
	Validate() error
}

// encodeParams turns args (an A, a *A, bson.Raw, a map or nil) into the
// params of a job of type typ, checked as Enqueue checks a simple job's
// arguments: they must decode into the type's argument struct, and its
// Validate method (see Validator) must accept them. nil args are the zero
// value, so a Validate that requires a field refuses them. Sliced uploads
// use it (through internal/jobparams) before anything is stored.
func encodeParams(r *Registry, typ string, args any) (bson.Raw, error) {
	spec, err := r.Lookup(typ)
	if err != nil {
		return nil, err
	}
	return encodeArgs(spec, args)
}

// encodeArgs turns args (an A, a *A, bson.Raw or a map) into the job's params,
// checking that they decode into the type's argument struct.
func encodeArgs(spec *TypeSpec, args any) (bson.Raw, error) {
	if raw, ok := args.(bson.Raw); ok && len(raw) == 0 {
		args = nil // no parameters given (e.g. parseParams of none)
	}
	if args == nil {
		if spec.Args == nil {
			return nil, nil
		}
		args = reflect.New(spec.Args).Interface()
	}
	if spec.Args == nil {
		return nil, fmt.Errorf("%w: job type %q takes no arguments", ErrBadArgs, spec.Name)
	}
	var raw bson.Raw
	switch a := args.(type) {
	case bson.Raw:
		raw = a
	default:
		v := reflect.ValueOf(args)
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct && v.Type() != spec.Args {
			return nil, fmt.Errorf("%w: job type %q takes %s, not %s", ErrBadArgs, spec.Name, spec.Args, v.Type())
		}
		b, err := bson.Marshal(args)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadArgs, err)
		}
		raw = b
	}
	decoded := reflect.New(spec.Args)
	if err := bson.Unmarshal(raw, decoded.Interface()); err != nil {
		return nil, fmt.Errorf("%w: job type %q: %v", ErrBadArgs, spec.Name, err)
	}
	if v, ok := decoded.Interface().(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("%w: job type %q: %v", ErrBadArgs, spec.Name, err)
		}
	}
	return raw, nil
}

// parseParams turns command-line "key=value" pairs into arguments for the
// type named typ, converting each value to its field's type (ints, floats,
// bools, durations, RFC 3339 times, strings). Keys are the fields' BSON names.
// The command line and the web UI reach it through internal/jobparams.
func parseParams(r *Registry, typ string, pairs []string) (bson.Raw, error) {
	spec, err := r.Lookup(typ)
	if err != nil {
		return nil, err
	}
	if len(pairs) == 0 {
		return nil, nil
	}
	if spec.Args == nil {
		return nil, fmt.Errorf("%w: job type %q takes no parameters", ErrBadArgs, typ)
	}
	fields := map[string]reflect.StructField{}
	var names []string
	for i := 0; i < spec.Args.NumField(); i++ {
		f := spec.Args.Field(i)
		if !f.IsExported() {
			continue
		}
		name := strings.ToLower(f.Name)
		if tag, _, _ := strings.Cut(f.Tag.Get("bson"), ","); tag != "" {
			if tag == "-" {
				continue
			}
			name = tag
		}
		fields[name] = f
		names = append(names, name)
	}
	doc := bson.D{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: parameter %q is not key=value", ErrBadArgs, p)
		}
		f, ok := fields[k]
		if !ok {
			return nil, fmt.Errorf("%w: job type %q has no parameter %q (valid: %s)", ErrBadArgs, typ, k, strings.Join(names, ", "))
		}
		val, err := parseValue(f.Type, v)
		if err != nil {
			return nil, fmt.Errorf("%w: parameter %s: %v", ErrBadArgs, k, err)
		}
		doc = append(doc, bson.E{Key: k, Value: val})
	}
	raw, err := bson.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArgs, err)
	}
	return encodeArgs(spec, bson.Raw(raw))
}

func parseValue(t reflect.Type, s string) (any, error) {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(s)
		return int64(d), err
	case t == reflect.TypeFor[time.Time]():
		return time.Parse(time.RFC3339, s)
	}
	switch t.Kind() {
	case reflect.String:
		return s, nil
	case reflect.Bool:
		return strconv.ParseBool(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return n, nil
	case reflect.Float32, reflect.Float64:
		return strconv.ParseFloat(s, 64)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return strings.Split(s, ","), nil
		}
	}
	return nil, errors.New("a " + t.String() + " cannot be given on the command line")
}

// CheckPriority returns an error wrapping ErrBadPriority unless p is in 1..100.
func CheckPriority(p int) error {
	if p < MinPriority || p > MaxPriority {
		return fmt.Errorf("%w (got %d)", ErrBadPriority, p)
	}
	return nil
}
