package rocketjob_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/jobparams"
	"github.com/rocketjob-go/rocketjob/internal/jobrun"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type emailArgs struct {
	To      string `bson:"to"`
	Retries int    `bson:"retries"`
}

func (a emailArgs) Validate() error {
	if a.To == "" {
		return errors.New("to is required")
	}
	return nil
}

func setup(t *testing.T) *rocketjob.Client {
	t.Helper()
	reg := rocketjob.NewRegistry()
	err := rocketjob.Register(reg, "send_email", func(ctx context.Context, job *rocketjob.Job, args emailArgs) error { return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	jobs, work := dbtest.DBNames(t)
	c, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestEnqueueValidatesBeforeWriting(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	cases := []struct {
		name string
		typ  string
		args any
		opts *rocketjob.EnqueueOptions
		want error
	}{
		{"unknown type", "nope", emailArgs{To: "a"}, nil, rocketjob.ErrUnknownType},
		{"priority 0 is default, 101 is bad", "send_email", emailArgs{To: "a"}, &rocketjob.EnqueueOptions{Priority: 101}, rocketjob.ErrBadPriority},
		{"negative priority", "send_email", emailArgs{To: "a"}, &rocketjob.EnqueueOptions{Priority: -1}, rocketjob.ErrBadPriority},
		{"wrong args type", "send_email", struct{ X int }{1}, nil, rocketjob.ErrBadArgs},
		{"args fail Validate", "send_email", emailArgs{}, nil, rocketjob.ErrBadArgs},
	}
	for _, tc := range cases {
		if _, err := c.Enqueue(ctx, tc.typ, tc.args, tc.opts); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	jobs, err := c.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 0 {
		t.Fatalf("%d jobs written by refused enqueues", len(jobs))
	}
}

func TestEnqueueAndManage(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := context.Background()
	runAt := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	job, err := c.Enqueue(ctx, "send_email", emailArgs{To: "ops@example.com", Retries: 3},
		&rocketjob.EnqueueOptions{Priority: 10, RunAt: runAt, Description: "welcome mail"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, job.ID.Hex())
	if err != nil {
		t.Fatal(err)
	}
	if got.State != rocketjob.StateQueued || got.Priority != 10 || !got.RunAt.Equal(runAt) || got.Description != "welcome mail" {
		t.Fatalf("stored job: %+v", got)
	}
	if got, err = c.SetPriority(ctx, job.ID.Hex(), 3); err != nil || got.Priority != 3 {
		t.Fatalf("priority: %v %v", got, err)
	}
	// The job a change returns is the job as stored.
	if stored, err := c.Get(ctx, job.ID.Hex()); err != nil || stored.Version != got.Version || stored.Priority != got.Priority ||
		stored.State != got.State || !stored.RunAt.Equal(got.RunAt) || stored.Description != got.Description {
		t.Fatalf("returned %+v, stored %+v (%v)", got, stored, err)
	}
	if _, err := c.SetPriority(ctx, job.ID.Hex(), 0); !errors.Is(err, rocketjob.ErrBadPriority) {
		t.Fatalf("priority 0: %v", err)
	}
	if got, err = c.Pause(ctx, job.ID.Hex()); err != nil || got.State != rocketjob.StatePaused {
		t.Fatalf("pause: %v %v", got, err)
	}
	if _, err := c.Pause(ctx, job.ID.Hex()); !errors.As(err, new(*rocketjob.InvalidTransitionError)) {
		t.Fatalf("pause of a paused job: %v", err)
	}
	if got, err = c.Resume(ctx, job.ID.Hex()); err != nil || got.State != rocketjob.StateQueued {
		t.Fatalf("resume: %v %v", got, err)
	}
	var bad *rocketjob.InvalidTransitionError
	if _, err := c.Retry(ctx, job.ID.Hex()); !errors.As(err, &bad) || bad.From != rocketjob.StateQueued {
		t.Fatalf("retry of a queued job: %v", err)
	}
	if got, err = c.Abort(ctx, job.ID.Hex()); err != nil || got.State != rocketjob.StateAborted {
		t.Fatalf("abort: %v %v", got, err)
	}
	if _, err := c.Resume(ctx, job.ID.Hex()); !errors.As(err, &bad) {
		t.Fatalf("resume of an aborted job: %v", err)
	}
	if _, err := c.Abort(ctx, job.ID.Hex()); !errors.As(err, &bad) {
		t.Fatalf("abort of an aborted job: %v", err)
	}
	list, err := c.List(ctx, &rocketjob.ListOptions{States: []rocketjob.State{rocketjob.StateAborted}, Type: "send_email"})
	if err != nil || len(list) != 1 {
		t.Fatalf("list aborted: %v %v", list, err)
	}
	if err := c.Destroy(ctx, job.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, job.ID.Hex()); !errors.Is(err, rocketjob.ErrJobNotFound) {
		t.Fatalf("get after destroy: %v", err)
	}
	if _, err := c.Get(ctx, "not-an-id"); !errors.Is(err, rocketjob.ErrJobNotFound) {
		t.Fatalf("bad id: %v", err)
	}
}

func TestParseParams(t *testing.T) {
	t.Parallel()
	reg := rocketjob.NewRegistry()
	_ = rocketjob.Register(reg, "send_email", func(context.Context, *rocketjob.Job, emailArgs) error { return nil }, nil)
	raw, err := jobparams.Parse(reg, "send_email", []string{"to=a@b.c", "retries=4"})
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lookup("retries").AsInt64() != 4 || raw.Lookup("to").StringValue() != "a@b.c" {
		t.Fatalf("params: %s", raw)
	}
	for _, bad := range [][]string{{"retries=x", "to=a"}, {"nope=1"}, {"novalue"}, {"retries=1"}} {
		if _, err := jobparams.Parse(reg, "send_email", bad); !errors.Is(err, rocketjob.ErrBadArgs) {
			t.Errorf("%v: err = %v, want ErrBadArgs", bad, err)
		}
	}
}

func TestRetryDelayFollowsTheFormula(t *testing.T) {
	t.Parallel()
	base := 100 * time.Millisecond
	for attempt, want := range map[int]time.Duration{1: base, 2: 2 * base, 3: 4 * base, 6: 32 * base, 60: rocketjob.MaxRetryDelay} {
		if got := jobrun.RetryDelay(base, attempt, 0); got != want {
			t.Errorf("attempt %d, no jitter: %s, want %s", attempt, got, want)
		}
		if got := jobrun.RetryDelay(base, attempt, 0.999); got < want || got > want+want/4 {
			t.Errorf("attempt %d, most jitter: %s, want within [%s, %s]", attempt, got, want, want+want/4)
		}
	}
	if got := jobrun.RetryDelay(0, 1, 0); got != rocketjob.DefaultRetryBase {
		t.Errorf("default base: %s", got)
	}
}

// TestDestroyWaitsOutADeadServersClaim: a server killed right after it
// claimed a job's start holds the job (its claim) until the claim can be
// rolled forward, 10 s after it was made. Destroy keeps trying that long
// (the deletion is decided by the claim of the version it read, like a
// transition), rolls the claim forward and deletes the job.
func TestDestroyWaitsOutADeadServersClaim(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	reg := rocketjob.NewRegistry()
	if err := rocketjob.Register(reg, "plain", func(context.Context, *rocketjob.Job, struct{}) error { return nil }, nil); err != nil {
		t.Fatal(err)
	}
	c, jobsDB := setupWith(t, reg)
	job, err := c.Enqueue(ctx, "plain", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	update, err := bson.Marshal(bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: job.Version + 1},
		{Key: "state", Value: rocketjob.StateRunning}, {Key: "server", Value: "dead"}}}})
	if err != nil {
		t.Fatal(err)
	}
	// Due for roll-forward a second from now.
	if _, err := dbtest.Client(t).Database(jobsDB).Collection("job_claims").InsertOne(ctx, bson.D{
		{Key: "_id", Value: fmt.Sprintf("%s:%d", job.ID.Hex(), job.Version)}, {Key: "by", Value: "dead"},
		{Key: "at", Value: time.Now().Add(-9 * time.Second)}, {Key: "update", Value: bson.Binary{Data: update}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(ctx, job.ID.Hex()); err != nil {
		t.Fatalf("Destroy of a job held by a dead server's claim: %v", err)
	}
	if _, err := c.Get(ctx, job.ID.Hex()); !errors.Is(err, rocketjob.ErrJobNotFound) {
		t.Fatalf("job after Destroy: %v, want ErrJobNotFound", err)
	}
}
