package rocketjobtest

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/jobrun"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// PanicError is the error of job code that panicked: a server records the
// panic as the job's (or the record's) failure and goes on, and so do the
// helpers. Use errors.As to tell a panic from a returned error.
type PanicError struct {
	// Value is what the code passed to panic.
	Value any
	// Stack is the goroutine's stack where it panicked.
	Stack []byte
}

// Error says "panic: " and the panic's value, without the stack.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// call runs job code, turning a panic into a *PanicError.
func call(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return fn()
}

// Perform runs one job of the simple type typ with args inline, in this
// goroutine, as a server would run it once: no database, no server. args is
// what Client.Enqueue takes (the type's argument struct, a pointer to it,
// bson.Raw, or nil for the zero value) and is checked the same way, its
// Validate method included; rocketjob.JobFromContext works in the job's code.
//
// It returns the job as the run left it, and the run's error: a nil job
// means the job never ran (an unknown type, a sliced type, arguments the
// type refuses: the error wraps rocketjob.ErrUnknownType or ErrBadArgs);
// otherwise the job's State is StateCompleted, or StateFailed with the error
// as its Failure (a panic is a *PanicError). Retries are not run: a server
// would run a failed job again when its type has a RetryLimit; call Perform
// again to test that.
func Perform(ctx context.Context, reg *rocketjob.Registry, typ string, args any) (*rocketjob.Job, error) {
	spec, err := reg.Lookup(typ)
	if err != nil {
		return nil, err
	}
	if spec.Kind != rocketjob.KindSimple {
		return nil, fmt.Errorf("job type %q is a sliced job: use Records or RoundTrip", typ)
	}
	params, err := encodeArgs(spec, args)
	if err != nil {
		return nil, err
	}
	job := newJob(spec)
	job.Params = params
	job.Attempt = 1
	job.RetryLimit, job.RetryBase = spec.RetryLimit, spec.RetryBase
	err = call(func() error { return spec.Perform(jobrun.WithJob(ctx, job), job) })
	finish(job, err, "")
	return job, err
}

// newJob returns a running job of spec's type, as a server sees it when it
// starts the job.
func newJob(spec *rocketjob.TypeSpec) *rocketjob.Job {
	now := time.Now().UTC().Truncate(time.Millisecond)
	priority := spec.Priority
	if priority == 0 {
		priority = rocketjob.DefaultPriority
	}
	return &rocketjob.Job{
		ID:        bson.NewObjectID(),
		Type:      spec.Name,
		Kind:      spec.Kind,
		State:     rocketjob.StateRunning,
		Priority:  priority,
		RunAt:     now,
		CreatedAt: now,
		StartedAt: &now,
	}
}

// finish ends job: completed when err is nil, else failed with prefix and
// err as its failure.
func finish(job *rocketjob.Job, err error, prefix string) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	job.CompletedAt = &now
	if err == nil {
		job.State = rocketjob.StateCompleted
		return
	}
	job.State = rocketjob.StateFailed
	job.Failure = &rocketjob.Failure{Message: prefix + err.Error(), At: now}
}

// encodeArgs turns args into a job's params as Client.Enqueue does: they must
// be the type's argument struct (or a pointer to it, bson.Raw, or a map), must
// decode into it and pass its Validate method.
func encodeArgs(spec *rocketjob.TypeSpec, args any) (bson.Raw, error) {
	if spec.Args == nil {
		if args != nil {
			return nil, fmt.Errorf("%w: job type %q takes no arguments", rocketjob.ErrBadArgs, spec.Name)
		}
		return nil, nil
	}
	if args == nil {
		args = reflect.New(spec.Args).Interface()
	}
	raw, ok := args.(bson.Raw)
	if !ok {
		v := reflect.ValueOf(args)
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct && v.Type() != spec.Args {
			return nil, fmt.Errorf("%w: job type %q takes %s, not %s", rocketjob.ErrBadArgs, spec.Name, spec.Args, v.Type())
		}
		b, err := bson.Marshal(args)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", rocketjob.ErrBadArgs, err)
		}
		raw = b
	}
	decoded := reflect.New(spec.Args)
	if err := bson.Unmarshal(raw, decoded.Interface()); err != nil {
		return nil, fmt.Errorf("%w: job type %q: %v", rocketjob.ErrBadArgs, spec.Name, err)
	}
	if v, ok := decoded.Interface().(rocketjob.Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("%w: job type %q: %v", rocketjob.ErrBadArgs, spec.Name, err)
		}
	}
	return raw, nil
}
