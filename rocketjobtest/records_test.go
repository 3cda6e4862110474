package rocketjobtest_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobtest"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// square is a Lines type: an integer per line to its square.
func square(_ context.Context, line string) (string, error) {
	n, err := strconv.Atoi(line)
	if err != nil {
		return "", err
	}
	return strconv.Itoa(n * n), nil
}

type order struct {
	Item string `json:"item"`
	Qty  int    `json:"qty"`
}

type line struct {
	Item  string `json:"item"`
	Total int    `json:"total"`
}

// testTypes registers a Lines, a CSV and a JSONL type.
func testTypes(t testing.TB, opts *sliced.Options) *rocketjob.Registry {
	t.Helper()
	reg := rocketjob.NewRegistry()
	must(t, sliced.RegisterLines(reg, "square", square, opts))
	must(t, sliced.RegisterCSV(reg, "price", func(_ context.Context, header, row []string) ([]string, error) {
		if len(row) != len(header) {
			return nil, fmt.Errorf("%d fields, header has %d", len(row), len(header))
		}
		qty, err := strconv.Atoi(row[1])
		if err != nil {
			return nil, fmt.Errorf("qty: %w", err)
		}
		return []string{row[0], strconv.Itoa(qty * 3)}, nil
	}, opts))
	must(t, sliced.RegisterJSONL(reg, "total", func(_ context.Context, o order) (line, error) {
		if o.Qty < 0 {
			return line{}, errors.New("negative quantity")
		}
		return line{Item: o.Item, Total: o.Qty * 2}, nil
	}, opts))
	return reg
}

func failedNumbers(f []rocketjobtest.FailedRecord) []int64 {
	var n []int64
	for _, r := range f {
		n = append(n, r.Number)
	}
	return n
}

func TestRecordsFormats(t *testing.T) {
	reg := testTypes(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		typ        string
		in         []string
		out        []string
		failed     []string // "number|record|error"
		state      rocketjob.State
		records    int64
		failureMsg string
	}{
		{
			typ: "square", in: []string{"3", "x", "4", ""},
			out:    []string{"9", "16"},
			failed: []string{`2|x|strconv.Atoi: parsing "x": invalid syntax`, `4||strconv.Atoi: parsing "": invalid syntax`},
			state:  rocketjob.StateFailed, records: 4, failureMsg: "2 of 4 records failed",
		},
		{
			typ: "price", in: []string{"item,qty", `"bolts, steel",2`, "nuts,many", `" washers",1`},
			out:    []string{"item,qty", `"bolts, steel",6`, `" washers",3`},
			failed: []string{"2|nuts,many|qty: strconv.Atoi: parsing \"many\": invalid syntax"},
			state:  rocketjob.StateFailed, records: 3, failureMsg: "1 of 3 records failed",
		},
		{
			typ: "total", in: []string{`{"item":"a","qty":2}`, "", `{"item":"b","qty":-1}`, `{"item":"c","qty":5}`},
			out:    []string{`{"item":"a","total":4}`, `{"item":"c","total":10}`},
			failed: []string{`2|{"item":"b","qty":-1}|negative quantity`},
			state:  rocketjob.StateFailed, records: 3, failureMsg: "1 of 3 records failed",
		},
		{
			typ: "square", in: []string{"1", "2"}, out: []string{"1", "4"},
			state: rocketjob.StateCompleted, records: 2,
		},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			res, err := rocketjobtest.Records(ctx, reg, tc.typ, tc.in)
			must(t, err)
			if !reflect.DeepEqual(res.Output, tc.out) {
				t.Errorf("output %q, want %q", res.Output, tc.out)
			}
			var failed []string
			for _, f := range res.Failed {
				failed = append(failed, fmt.Sprintf("%d|%s|%v", f.Number, f.Record, f.Err))
			}
			if !reflect.DeepEqual(failed, tc.failed) {
				t.Errorf("failed %q, want %q", failed, tc.failed)
			}
			job := res.Job
			if job.State != tc.state || job.RecordCount != tc.records || job.ProcessedCount != tc.records || job.FailedRecordCount != int64(len(tc.failed)) {
				t.Errorf("job %s, %d records, %d processed, %d failed", job.State, job.RecordCount, job.ProcessedCount, job.FailedRecordCount)
			}
			if tc.failureMsg != "" && (job.Failure == nil || job.Failure.Message != tc.failureMsg) {
				t.Errorf("failure %+v, want %q", job.Failure, tc.failureMsg)
			}
			if tc.failureMsg == "" && job.Failure != nil {
				t.Errorf("failure %+v on a completed job", job.Failure)
			}
		})
	}
}

func TestRecordsKeepsErrorsAndPanics(t *testing.T) {
	errOdd := errors.New("odd")
	reg := rocketjob.NewRegistry()
	must(t, sliced.RegisterLines(reg, "even", func(ctx context.Context, l string) (string, error) {
		if rocketjob.JobFromContext(ctx) == nil {
			return "", errors.New("no job in the context")
		}
		switch l {
		case "boom":
			panic("boom")
		case "1", "3":
			return "", fmt.Errorf("record %s: %w", l, errOdd)
		}
		return l, nil
	}, nil))
	res, err := rocketjobtest.Records(context.Background(), reg, "even", []string{"1", "2", "3", "boom"})
	must(t, err)
	if got := failedNumbers(res.Failed); !reflect.DeepEqual(got, []int64{1, 3, 4}) {
		t.Fatalf("failed records %v", got)
	}
	if !errors.Is(res.Failed[0].Err, errOdd) || !errors.Is(res.Failed[1].Err, errOdd) {
		t.Errorf("errors %v, %v do not wrap errOdd", res.Failed[0].Err, res.Failed[1].Err)
	}
	var pe *rocketjobtest.PanicError
	if !errors.As(res.Failed[2].Err, &pe) || pe.Value != "boom" {
		t.Errorf("record 4: %v, want a *PanicError", res.Failed[2].Err)
	}
	if !reflect.DeepEqual(res.Output, []string{"2"}) {
		t.Errorf("output %q", res.Output)
	}
}

func TestRecordsHooks(t *testing.T) {
	ctx := context.Background()
	var before, after atomic.Int32
	var failBefore, failAfter atomic.Bool
	reg := testTypes(t, &sliced.Options{
		Before: func(ctx context.Context, job *rocketjob.Job) error {
			before.Add(1)
			if rocketjob.JobFromContext(ctx) != job || job.Step != rocketjob.StepBefore {
				return errors.New("before hook: wrong job or step")
			}
			if failBefore.Load() {
				return errors.New("no input today")
			}
			return nil
		},
		After: func(ctx context.Context, job *rocketjob.Job) error {
			after.Add(1)
			if job.ProcessedCount != job.RecordCount || job.Step != rocketjob.StepAfter {
				return fmt.Errorf("after hook ran at %s with %d of %d records", job.Step, job.ProcessedCount, job.RecordCount)
			}
			if failAfter.Load() {
				return errors.New("cannot report")
			}
			return nil
		},
	})
	check := func(name string, in []string, state rocketjob.State, failure string, wantBefore, wantAfter int32) {
		t.Helper()
		before.Store(0)
		after.Store(0)
		res, err := rocketjobtest.Records(ctx, reg, "square", in)
		must(t, err)
		msg := ""
		if res.Job.Failure != nil {
			msg = res.Job.Failure.Message
		}
		if res.Job.State != state || msg != failure || before.Load() != wantBefore || after.Load() != wantAfter {
			t.Errorf("%s: job %s (%q), before ran %d times, after %d; want %s (%q), %d, %d",
				name, res.Job.State, msg, before.Load(), after.Load(), state, failure, wantBefore, wantAfter)
		}
	}
	check("all good", []string{"1", "2"}, rocketjob.StateCompleted, "", 1, 1)
	check("a failed record", []string{"1", "x"}, rocketjob.StateFailed, "1 of 2 records failed", 1, 0)
	failAfter.Store(true)
	check("after fails", []string{"1"}, rocketjob.StateFailed, "after hook: cannot report", 1, 1)
	failBefore.Store(true)
	check("before fails", []string{"1"}, rocketjob.StateFailed, "before hook: no input today", 1, 0)

	res, err := rocketjobtest.Records(ctx, reg, "square", []string{"1"})
	must(t, err)
	if res.Job.ProcessedCount != 0 || len(res.Output) != 0 {
		t.Errorf("records were processed after the before hook failed: %d processed, output %q", res.Job.ProcessedCount, res.Output)
	}
}

func TestRecordsStopOnError(t *testing.T) {
	reg := testTypes(t, &sliced.Options{StopOnError: true, SliceSize: 2})
	res, err := rocketjobtest.Records(context.Background(), reg, "square", []string{"1", "2", "x", "4", "5", "y"})
	must(t, err)
	// The slice holding "x" (records 3 and 4) is finished; slice 3 is not run.
	if res.Job.State != rocketjob.StateFailed || res.Job.ProcessedCount != 4 || !reflect.DeepEqual(res.Output, []string{"1", "4", "16"}) {
		t.Fatalf("job %s, %d processed, output %q", res.Job.State, res.Job.ProcessedCount, res.Output)
	}
	want := `stopped at the first failed record: record 3: strconv.Atoi: parsing "x": invalid syntax`
	if res.Job.Failure == nil || res.Job.Failure.Message != want {
		t.Fatalf("failure %+v, want %q", res.Job.Failure, want)
	}
}

func TestRecordsSliceRetryLimit(t *testing.T) {
	calls := map[string]int{}
	reg := rocketjob.NewRegistry()
	// "flaky" fails on its first call, "bad" always.
	must(t, sliced.RegisterLines(reg, "flaky", func(_ context.Context, l string) (string, error) {
		calls[l]++
		if l == "bad" || l == "flaky" && calls[l] == 1 {
			return "", errors.New("failed " + l)
		}
		return l, nil
	}, &sliced.Options{SliceRetryLimit: 2}))
	res, err := rocketjobtest.Records(context.Background(), reg, "flaky", []string{"ok", "flaky", "bad"})
	must(t, err)
	if !reflect.DeepEqual(res.Output, []string{"ok", "flaky"}) || !reflect.DeepEqual(failedNumbers(res.Failed), []int64{3}) {
		t.Fatalf("output %q, failed %v", res.Output, failedNumbers(res.Failed))
	}
	if calls["ok"] != 1 || calls["flaky"] != 2 || calls["bad"] != 3 || res.Job.Attempt != 2 || res.Job.State != rocketjob.StateFailed {
		t.Fatalf("calls %v, attempt %d, state %s", calls, res.Job.Attempt, res.Job.State)
	}
}

func TestRecordsDiscardOutput(t *testing.T) {
	reg := testTypes(t, &sliced.Options{DiscardOutput: true})
	res, err := rocketjobtest.Records(context.Background(), reg, "square", []string{"2", "3"})
	must(t, err)
	if res.Output != nil || res.Job.State != rocketjob.StateCompleted || res.Job.ProcessedCount != 2 {
		t.Fatalf("output %q, job %s, %d processed", res.Output, res.Job.State, res.Job.ProcessedCount)
	}
}

func TestRecordsRefuses(t *testing.T) {
	reg := testTypes(t, nil)
	must(t, rocketjob.Register(reg, "simple", func(context.Context, *rocketjob.Job, struct{}) error { return nil }, nil))
	ctx := context.Background()

	if _, err := rocketjobtest.Records(ctx, reg, "nope", nil); !errors.Is(err, rocketjob.ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := rocketjobtest.Records(ctx, reg, "simple", nil); err == nil || !strings.Contains(err.Error(), "use Perform") {
		t.Errorf("simple type: %v", err)
	}
	var ie *sliced.InputError
	if _, err := rocketjobtest.Records(ctx, reg, "total", []string{`{"item":"a"}`, `{"item":`}); !errors.As(err, &ie) || ie.Line != 2 {
		t.Errorf("bad JSON line: %v, want an *sliced.InputError on line 2", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if res, err := rocketjobtest.Records(cancelled, reg, "square", []string{"1"}); !errors.Is(err, context.Canceled) || res != nil {
		t.Errorf("cancelled context: %v, %v", res, err)
	}
}
