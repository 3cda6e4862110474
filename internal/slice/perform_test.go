package slice

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// square is a per-record function: an integer's square, an error for
// anything else, and a panic for "boom".
func square(_ context.Context, rec []byte) ([]byte, error) {
	if string(rec) == "boom" {
		panic("boom at " + string(rec))
	}
	n, err := strconv.Atoi(string(rec))
	if err != nil {
		return nil, err
	}
	return strconv.AppendInt(nil, int64(n*n), 10), nil
}

func pack(recs ...string) []byte {
	var body []byte
	for _, r := range recs {
		body = Append(body, []byte(r))
	}
	return body
}

func TestPerformKeepsGoingPastErrorsAndPanics(t *testing.T) {
	var got []string
	var errs []error
	for o := range Perform(context.Background(), pack("3", "x", "boom", "4"), 11, square) {
		got = append(got, strconv.FormatInt(o.Number, 10)+":"+string(o.Record)+"->"+string(o.Output))
		errs = append(errs, o.Err)
		if o.Unreadable {
			t.Errorf("record %d unreadable", o.Number)
		}
	}
	if want := []string{"11:3->9", "12:x->", "13:boom->", "14:4->16"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("outcomes %q, want %q", got, want)
	}
	var ne *strconv.NumError
	if errs[0] != nil || !errors.As(errs[1], &ne) || errs[3] != nil {
		t.Errorf("errors %v", errs)
	}
	var pe *PanicError
	if !errors.As(errs[2], &pe) || pe.Value != "boom at boom" || len(pe.Stack) == 0 {
		t.Fatalf("panic's error = %#v", errs[2])
	}
	if msg := pe.Error(); !strings.HasPrefix(msg, "panic: boom at boom\n") || !strings.Contains(msg, "goroutine") {
		t.Errorf("panic message %q lacks the value or the stack", msg)
	}
}

func TestPerformUnreadableBody(t *testing.T) {
	body := append(pack("1", "2"), 9, 'x') // the third record is cut short
	var last Outcome
	n := 0
	for o := range Perform(context.Background(), body, 1, square) {
		last = o
		n++
	}
	if n != 3 || !last.Unreadable || last.Number != 3 || last.Record != nil || !errors.Is(last.Err, ErrCorrupt) {
		t.Fatalf("%d outcomes, last %+v", n, last)
	}
}

func TestPerformStopsWhenCtxEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := 0
	fn := func(ctx context.Context, rec []byte) ([]byte, error) {
		ran++
		if ran == 2 {
			cancel()
		}
		return rec, nil
	}
	n := 0
	for range Perform(ctx, pack("a", "b", "c", "d"), 1, fn) {
		n++
	}
	if ran != 2 || n != 2 {
		t.Errorf("ran %d records, %d outcomes; want 2 and 2", ran, n)
	}
}

// processed runs Process on the records with a plain codec and returns the
// result with its bodies unpacked.
func processed(t *testing.T, task Task) (Processed, []string, []Failure) {
	t.Helper()
	p, err := Process(context.Background(), task)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if p.Output != nil {
		plain, err := Open(task.Codec, Output, task.Slice.Num, p.Output)
		if err != nil {
			t.Fatal(err)
		}
		for rec, err := range Records(plain) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(rec))
		}
	}
	var fs []Failure
	if p.Failed != nil {
		plain, err := Open(task.Codec, Failed, task.Slice.Num, p.Failed)
		if err != nil {
			t.Fatal(err)
		}
		fs = collectFailures(t, plain)
	}
	return p, out, fs
}

func TestProcess(t *testing.T) {
	c := codec(t, goldenJob, ring(t, "k:1"), true, true)
	sealed, err := Seal(c, Input, 2, pack("3", "x", "boom", "4"))
	if err != nil {
		t.Fatal(err)
	}
	in := store.InputSlice{Num: 2, First: 5, Count: 4, Records: sealed}

	p, out, fs := processed(t, Task{Job: goldenJob, Codec: c, Slice: in, Collect: true, Fn: square})
	if !reflect.DeepEqual(out, []string{"9", "16"}) || p.OutputCount != 2 || p.FailedCount != 2 {
		t.Fatalf("output %q (%d), %d failed", out, p.OutputCount, p.FailedCount)
	}
	if len(fs) != 2 || fs[0].Number != 6 || string(fs[0].Record) != "x" || !strings.Contains(fs[0].Message, "invalid syntax") ||
		fs[1].Number != 7 || string(fs[1].Record) != "boom" || !strings.HasPrefix(fs[1].Message, "panic: boom at boom\n") {
		t.Fatalf("failed records %+v", fs)
	}
	if p.First == nil || p.First.Number != 6 || p.First.Unreadable {
		t.Fatalf("first failure %+v", p.First)
	}

	// Without output: only the failed records are kept.
	p, out, _ = processed(t, Task{Job: goldenJob, Codec: c, Slice: in, Fn: square})
	if p.Output != nil || out != nil || p.OutputCount != 0 || p.FailedCount != 2 {
		t.Fatalf("discarded output: %q %+v", out, p)
	}

	// No failure: no failed records at all.
	ok, _ := Seal(c, Input, 2, pack("1", "2"))
	p, out, _ = processed(t, Task{Job: goldenJob, Codec: c, Slice: store.InputSlice{Num: 2, First: 1, Count: 2, Records: ok}, Collect: true, Fn: square})
	if p.Failed != nil || p.First != nil || !reflect.DeepEqual(out, []string{"1", "4"}) {
		t.Fatalf("clean slice: %q %+v", out, p)
	}
}

func TestProcessUnreadableSlice(t *testing.T) {
	c := codec(t, goldenJob, ring(t, "k:1"), false, true)
	// Sealed for slice 1, stored as slice 2: it does not open.
	moved, _ := Seal(c, Input, 1, pack("1", "2", "3"))
	p, out, fs := processed(t, Task{Job: goldenJob, Codec: c, Slice: store.InputSlice{Num: 2, First: 4, Count: 3, Records: moved}, Collect: true, Fn: square})
	if out != nil || p.Output == nil || p.FailedCount != 3 || len(fs) != 1 || fs[0].Number != 4 || len(fs[0].Record) != 0 {
		t.Fatalf("output %q, %d failed: %+v", out, p.FailedCount, fs)
	}
	if want := "slice 2 of job " + goldenJob + ": "; !strings.HasPrefix(fs[0].Message, want) {
		t.Errorf("message %q lacks %q", fs[0].Message, want)
	}
	if p.First == nil || !p.First.Unreadable || !errors.Is(p.First.Err, encryption.ErrCorrupt) {
		t.Errorf("first failure %+v", p.First)
	}

	// A body corrupt from its third record: the rest of the slice fails.
	body := append(pack("1", "2"), 9, 'x')
	cut, _ := Seal(c, Input, 2, body)
	p, out, fs = processed(t, Task{Job: goldenJob, Codec: c, Slice: store.InputSlice{Num: 2, First: 1, Count: 5, Records: cut}, Collect: true, Fn: square})
	if !reflect.DeepEqual(out, []string{"1", "4"}) || p.FailedCount != 3 || len(fs) != 1 || fs[0].Number != 3 ||
		!strings.HasPrefix(fs[0].Message, "slice 2: corrupt slice data") {
		t.Fatalf("output %q, %d failed: %+v", out, p.FailedCount, fs)
	}
	if p.First == nil || !p.First.Unreadable || p.First.Err.Error() != fs[0].Message {
		t.Errorf("first failure %+v", p.First)
	}
}
