package slice

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"
	"strings"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/scope"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// Func is a job type's per-record function: the output record made of one
// input record, or the record's error.
type Func func(ctx context.Context, rec []byte) ([]byte, error)

// PanicError is the error of a record whose function panicked.
type PanicError struct {
	// Value is what the function passed to panic.
	Value any
	// Stack is the goroutine's stack where it panicked.
	Stack []byte
}

// Error says "panic: ", the panic's value, and the stack on the next lines:
// the message stored with the failed record.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v\n%s", e.Value, e.Stack) }

// Outcome is what became of one record of a slice.
type Outcome struct {
	// Number is the record's 1-based position in the input.
	Number int64
	// Record is the input record (it aliases the body); nil when Unreadable.
	Record []byte
	// Output is the function's output record when Err is nil.
	Output []byte
	// Err is the function's error (a *PanicError when it panicked), or why
	// the body could not be read when Unreadable.
	Err error
	// Unreadable says the body could not be read from this record on:
	// Err wraps ErrCorrupt (or the envelope's error) and does not come from
	// the function, and no record follows.
	Unreadable bool
}

// Perform runs fn on each record of body in order, numbering them from
// first, and yields each record's outcome: the per-record loop of a slice. A
// failed record does not stop the others; a panic in fn is recovered as a
// *PanicError. A body that cannot be read from some record on ends with one
// Unreadable outcome. Once ctx is done Perform stops before the next
// record, so fewer outcomes than records mean ctx ended.
//
// When ctx carries a scope.Scope, its Record is the number of the record
// being processed while fn runs (sliced.RecordNumber reads it).
func Perform(ctx context.Context, body []byte, first int64, fn Func) iter.Seq[Outcome] {
	return func(yield func(Outcome) bool) {
		sc := scope.From(ctx)
		n := first
		for rec, err := range Records(body) {
			if err != nil {
				yield(Outcome{Number: n, Err: err, Unreadable: true})
				return
			}
			if ctx.Err() != nil {
				return
			}
			if sc != nil {
				sc.Record = n
			}
			out, err := call(ctx, fn, rec)
			if !yield(Outcome{Number: n, Record: rec, Output: out, Err: err}) {
				return
			}
			n++
		}
	}
}

// call runs fn on one record, turning a panic into a *PanicError.
func call(ctx context.Context, fn Func, rec []byte) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn(ctx, rec)
}

// Task is one claimed input slice of a job and how to process it.
type Task struct {
	// Job is the job's id, named in the message of a slice that does not open.
	Job string
	// Codec is the job's codec: it opens the input and seals the results.
	Codec *encryption.Codec
	// Slice is the input slice as stored (sealed).
	Slice store.InputSlice
	// Collect keeps the output records (the job collects its output).
	Collect bool
	// Fn is the job type's per-record function.
	Fn Func
	// Outputs, when set, replaces Fn: it hands each output of a record to
	// emit, with its category (one of Categories, or "" for a type without
	// categories, which may emit at most one). A record that emits nothing
	// is dropped (counted in the result's Batch); one whose function fails
	// keeps none of what it emitted.
	Outputs func(ctx context.Context, rec []byte, emit func(category string, out []byte)) error
	// Categories are the type's output categories, in its order.
	Categories []string
}

// catBuf gathers one category's output records of a slice.
type catBuf struct {
	name  string
	body  []byte
	count int
}

// router turns a Task's Outputs into a Func for Perform: outputs go to the
// category buffers (or the default output), and a failed record's outputs
// are taken back.
type router struct {
	t       *Task
	p       *Processed
	cats    []catBuf
	marks   [][2]int // each category's body length and count before a record
	emitted int
	bad     error
	dropped int64
}

// emit stores one output of the record being processed.
func (r *router) emit(category string, out []byte) {
	if r.bad != nil {
		return
	}
	if len(r.cats) == 0 {
		if category != "" {
			r.bad = fmt.Errorf("output category %q: the job type has no categories", category)
			return
		}
		if r.emitted > 0 {
			r.bad = errors.New("the job type has no categories: a record has at most one output")
			return
		}
		r.emitted++
		if r.p.Output != nil {
			r.p.Output = Append(r.p.Output, out)
			r.p.OutputCount++
		}
		return
	}
	for i := range r.cats {
		if c := &r.cats[i]; c.name == category {
			if r.t.Collect {
				c.body = Append(c.body, out)
			}
			c.count++
			r.emitted++
			return
		}
	}
	r.bad = fmt.Errorf("unknown output category %q (the job type's: %s)", category, strings.Join(r.t.Categories, ", "))
}

// fn runs the Outputs function on one record.
func (r *router) fn(ctx context.Context, rec []byte) (_ []byte, err error) {
	for i, c := range r.cats {
		r.marks[i] = [2]int{len(c.body), c.count}
	}
	outLen, outCount := len(r.p.Output), r.p.OutputCount
	r.emitted, r.bad = 0, nil
	kept := false
	defer func() {
		if kept {
			return
		}
		// Failed or panicked: the record keeps none of its outputs.
		for i := range r.cats {
			r.cats[i].body, r.cats[i].count = r.cats[i].body[:r.marks[i][0]], r.marks[i][1]
		}
		if r.p.Output != nil {
			r.p.Output = r.p.Output[:outLen]
		}
		r.p.OutputCount = outCount
	}()
	if err = r.t.Outputs(ctx, rec, r.emit); err == nil {
		err = r.bad
	}
	if err != nil {
		return nil, err
	}
	kept = true
	if r.emitted == 0 {
		r.dropped++
	}
	return nil, nil
}

// Processed is what Process made of a slice.
type Processed struct {
	// Result holds the sealed output and failed records and their counts,
	// ready for the slice store.
	store.Result
	// First is the slice's first failed record, nil when none failed.
	First *Outcome
}

// Process opens a claimed input slice, runs the per-record function on each
// of its records (Perform) and seals what they made: the output records
// (when collected) and the failed records, each with its error message. A
// slice that does not open, or a body unreadable from some record on, fails
// as a whole (or from there on) with one failed record standing for all its
// records; the other slices go on. When ctx ends the result is partial and
// must be given back, not stored. The error is about sealing only.
func Process(ctx context.Context, t Task) (Processed, error) {
	in := t.Slice
	plain, err := Open(t.Codec, Input, in.Num, in.Records)
	if err != nil {
		// A tampered, truncated or undecryptable slice fails as a whole.
		f := Outcome{Number: in.First, Err: fmt.Errorf("slice %d of job %s: %w", in.Num, t.Job, err), Unreadable: true}
		p := Processed{First: &f}
		p.Failed = AppendFailure(nil, f.Number, nil, f.Err.Error())
		p.FailedCount = max(in.Count, 1)
		if t.Collect && len(t.Categories) == 0 {
			p.Output = []byte{}
		}
		return p, p.seal(t.Codec, in.Num)
	}
	var p Processed
	if t.Collect && len(t.Categories) == 0 {
		p.Output = make([]byte, 0, len(plain)+len(plain)/8)
	}
	ctx, sc := scope.New(ctx)
	fn := t.Fn
	var r *router
	if t.Outputs != nil {
		r = &router{t: &t, p: &p, cats: make([]catBuf, len(t.Categories)), marks: make([][2]int, len(t.Categories))}
		for i, name := range t.Categories {
			r.cats[i].name = name
		}
		fn = r.fn
	}
	for o := range Perform(ctx, plain, in.First, fn) {
		if r != nil {
			o.Output = nil // the router stored the outputs
		}
		p.add(o, in)
	}
	if stats := sc.Counters(); stats != nil || r != nil {
		p.Batch = &store.BatchResult{Statistics: stats}
		if r != nil {
			p.Batch.Dropped = r.dropped
			for _, c := range r.cats {
				if c.count > 0 {
					p.Batch.Categories = append(p.Batch.Categories, store.CategoryOutput{Name: c.name, Count: c.count, Records: c.body})
				}
			}
		}
	}
	return p, p.seal(t.Codec, in.Num)
}

// add adds one record's outcome to p.
func (p *Processed) add(o Outcome, in store.InputSlice) {
	switch {
	case o.Err == nil:
		if p.Output != nil && o.Output != nil {
			p.Output = Append(p.Output, o.Output)
			p.OutputCount++
		}
		return
	case o.Unreadable:
		o.Err = fmt.Errorf("slice %d: %w", in.Num, o.Err)
		p.Failed = AppendFailure(p.Failed, o.Number, nil, o.Err.Error())
		p.FailedCount += max(in.Count-int(o.Number-in.First), 1)
	default:
		p.Failed = AppendFailure(p.Failed, o.Number, o.Record, o.Err.Error())
		p.FailedCount++
	}
	if p.First == nil {
		p.First = &o
	}
}

// seal compresses and encrypts p's output and failed records as codec says.
func (p *Processed) seal(codec *encryption.Codec, num int64) error {
	var err error
	if p.Output != nil {
		if p.Output, err = Seal(codec, Output, num, p.Output); err != nil {
			return fmt.Errorf("sealing output of slice %d: %w", num, err)
		}
	}
	if p.Failed != nil {
		if p.Failed, err = Seal(codec, Failed, num, p.Failed); err != nil {
			return fmt.Errorf("sealing failed records of slice %d: %w", num, err)
		}
	}
	if p.Batch != nil {
		for i := range p.Batch.Categories {
			c := &p.Batch.Categories[i]
			if c.Records, err = Seal(codec, Category(c.Name), num, c.Records); err != nil {
				return fmt.Errorf("sealing output %s of slice %d: %w", c.Name, num, err)
			}
		}
	}
	return nil
}
