package rocketjobtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobtest"
	"github.com/rocketjob-go/rocketjob/sliced"
)

type greetArgs struct {
	Name string `bson:"name"`
}

func (a greetArgs) Validate() error {
	if strings.TrimSpace(a.Name) == "" {
		return errors.New("name is required")
	}
	return nil
}

var errNoGreeting = errors.New("no greeting for bob")

func greetRegistry(t *testing.T, greeted *[]string) *rocketjob.Registry {
	t.Helper()
	reg := rocketjob.NewRegistry()
	err := rocketjob.Register(reg, "greet", func(ctx context.Context, job *rocketjob.Job, args greetArgs) error {
		if rocketjob.JobFromContext(ctx) != job {
			return errors.New("JobFromContext is not the job")
		}
		switch args.Name {
		case "bob":
			return errNoGreeting
		case "mallory":
			panic("mallory")
		}
		*greeted = append(*greeted, args.Name)
		return nil
	}, &rocketjob.TypeOptions{Priority: 7, RetryLimit: 2})
	must(t, err)
	must(t, sliced.RegisterLines(reg, "upcase", func(_ context.Context, l string) (string, error) { return strings.ToUpper(l), nil }, nil))
	return reg
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPerform(t *testing.T) {
	var greeted []string
	reg := greetRegistry(t, &greeted)
	ctx := context.Background()
	raw, err := bson.Marshal(greetArgs{Name: "raw"})
	must(t, err)

	for _, args := range []any{greetArgs{Name: "ada"}, &greetArgs{Name: "grace"}, bson.Raw(raw), map[string]any{"name": "map"}} {
		job, err := rocketjobtest.Perform(ctx, reg, "greet", args)
		if err != nil {
			t.Fatalf("%T: %v", args, err)
		}
		if job.State != rocketjob.StateCompleted || job.Failure != nil || job.CompletedAt == nil {
			t.Fatalf("%T: job %s %+v completed at %v, want completed", args, job.State, job.Failure, job.CompletedAt)
		}
		if job.Type != "greet" || job.Kind != rocketjob.KindSimple || job.Priority != 7 || job.RetryLimit != 2 || job.Attempt != 1 {
			t.Fatalf("%T: job %+v does not look like a greet job on its first run", args, job)
		}
	}
	if got := strings.Join(greeted, " "); got != "ada grace raw map" {
		t.Fatalf("greeted %q", got)
	}
}

func TestPerformFailures(t *testing.T) {
	var greeted []string
	reg := greetRegistry(t, &greeted)
	ctx := context.Background()

	job, err := rocketjobtest.Perform(ctx, reg, "greet", greetArgs{Name: "bob"})
	if !errors.Is(err, errNoGreeting) || job == nil || job.State != rocketjob.StateFailed || job.Failure == nil || job.Failure.Message != errNoGreeting.Error() {
		t.Fatalf("returned error: got %v, job %+v", err, job)
	}

	job, err = rocketjobtest.Perform(ctx, reg, "greet", greetArgs{Name: "mallory"})
	var pe *rocketjobtest.PanicError
	if !errors.As(err, &pe) || pe.Value != "mallory" || len(pe.Stack) == 0 || err.Error() != "panic: mallory" {
		t.Fatalf("panic: got %v (%#v)", err, err)
	}
	if job == nil || job.State != rocketjob.StateFailed || job.Failure.Message != "panic: mallory" {
		t.Fatalf("panic: job %+v", job)
	}
	if len(greeted) != 0 {
		t.Fatalf("greeted %q", greeted)
	}
}

func TestPerformRefuses(t *testing.T) {
	var greeted []string
	reg := greetRegistry(t, &greeted)
	ctx := context.Background()
	for _, tc := range []struct {
		name, typ string
		args      any
		want      error
		text      string
	}{
		{"unknown type", "nope", nil, rocketjob.ErrUnknownType, `unknown job type "nope"`},
		{"sliced type", "upcase", nil, nil, "sliced job"},
		{"zero args fail Validate", "greet", nil, rocketjob.ErrBadArgs, "name is required"},
		{"Validate", "greet", greetArgs{Name: " "}, rocketjob.ErrBadArgs, "name is required"},
		{"other struct", "greet", struct{ Name string }{"x"}, rocketjob.ErrBadArgs, "takes rocketjobtest_test.greetArgs"},
		{"does not decode", "greet", map[string]any{"name": 3}, rocketjob.ErrBadArgs, "job type \"greet\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job, err := rocketjobtest.Perform(ctx, reg, tc.typ, tc.args)
			if job != nil || err == nil || !strings.Contains(err.Error(), tc.text) || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got job %v, error %v; want no job and an error %q wrapping %v", job, err, tc.text, tc.want)
			}
		})
	}
	if len(greeted) != 0 {
		t.Fatalf("greeted %q", greeted)
	}
}
