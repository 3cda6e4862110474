package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/jobparams"
	"github.com/rocketjob-go/rocketjob/internal/jobrun"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// A failing simple job is retried after the backoff, then stays failed with
// its last error when it runs out of retries.
func TestSimpleJobRetriesWithBackoff(t *testing.T) {
	b := setup(t)
	var mu sync.Mutex
	starts := map[string][]time.Time{}
	const base = 100 * time.Millisecond
	must(t, rocketjob.Register(b.reg, "flaky", func(ctx context.Context, job *rocketjob.Job, args struct {
		FailTimes int `bson:"fail_times"`
	}) error {
		mu.Lock()
		defer mu.Unlock()
		starts[job.ID.Hex()] = append(starts[job.ID.Hex()], time.Now())
		if n := len(starts[job.ID.Hex()]); n <= args.FailTimes {
			return fmt.Errorf("failure %d", n)
		}
		return nil
	}, &rocketjob.TypeOptions{RetryLimit: 2, RetryBase: base}))
	ctx := context.Background()
	recovers, err := b.client.Enqueue(ctx, "flaky", bsonArgs(t, b, 2), nil)
	must(t, err)
	gives, err := b.client.Enqueue(ctx, "flaky", bsonArgs(t, b, 5), nil)
	must(t, err)
	b.startServer(t, "s1", 2)

	if got := b.wait(t, recovers.ID.Hex()); got.State != rocketjob.StateCompleted || got.Attempt != 3 {
		t.Fatalf("job that fails twice: %s after %d runs", got.State, got.Attempt)
	}
	got := b.wait(t, gives.ID.Hex())
	if got.State != rocketjob.StateFailed || got.Attempt != 3 || got.Failure == nil || got.Failure.Message != "failure 3" {
		t.Fatalf("job that keeps failing: %s after %d runs, %+v", got.State, got.Attempt, got.Failure)
	}
	mu.Lock()
	for _, id := range []string{recovers.ID.Hex(), gives.ID.Hex()} {
		s := starts[id]
		for i := 1; i < len(s); i++ {
			min := jobrun.RetryDelay(base, i, 0)
			if gap := s[i].Sub(s[i-1]); gap < min {
				t.Errorf("job %s: retry %d after %s, want at least %s", id, i, gap, min)
			}
		}
	}
	mu.Unlock()
	// Retry gives a failed job its retries again.
	_, err = b.client.Retry(ctx, gives.ID.Hex())
	must(t, err)
	if got := b.wait(t, gives.ID.Hex()); got.State != rocketjob.StateCompleted {
		t.Fatalf("after a manual retry: %s %+v", got.State, got.Failure)
	}
}

func bsonArgs(t *testing.T, b *bundle, failTimes int) any {
	t.Helper()
	raw, err := jobparams.Parse(b.reg, "flaky", []string{fmt.Sprintf("fail_times=%d", failTimes)})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Slices with failed records are retried automatically up to the type's
// slice retry limit before the job fails.
func TestSliceRetryLimit(t *testing.T) {
	b := setup(t)
	var mu sync.Mutex
	seen := map[string]int{}
	must(t, sliced.RegisterLines(b.reg, "second_time_lucky", func(ctx context.Context, line string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		seen[line]++
		if strings.HasPrefix(line, "flaky") && seen[line] == 1 {
			return "", fmt.Errorf("%s failed its first try", line)
		}
		if strings.HasPrefix(line, "broken") {
			return "", fmt.Errorf("%s always fails", line)
		}
		return line, nil
	}, &sliced.Options{SliceSize: 2, SliceRetryLimit: 2}))
	ctx := context.Background()
	ok, err := sliced.Upload(ctx, b.client, "second_time_lucky", strings.NewReader("a\nflaky1\nb\nc\nflaky2\n"), nil)
	must(t, err)
	bad, err := sliced.Upload(ctx, b.client, "second_time_lucky", strings.NewReader("d\nbroken\n"), nil)
	must(t, err)
	b.startServer(t, "s1", 2)
	if got := b.wait(t, ok.ID.Hex()); got.State != rocketjob.StateCompleted || got.Attempt != 1 {
		t.Fatalf("job with flaky records: %s after %d slice retries", got.State, got.Attempt)
	}
	got := b.wait(t, bad.ID.Hex())
	if got.State != rocketjob.StateFailed || got.Attempt != 2 || got.FailedRecordCount != 1 {
		t.Fatalf("job with a broken record: %s after %d retries, %d failed", got.State, got.Attempt, got.FailedRecordCount)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["broken"] != 3 || seen["flaky1"] != 2 || seen["a"] != 2 || seen["b"] != 1 {
		t.Fatalf("runs per record: %v (whole slices are retried)", seen)
	}
}

// A job retried right after it failed starts again at the next poll, not
// after the server's re-check interval: the server had set the job aside
// (nothing left to claim), and a new version of the job lifts that.
func TestRetriedJobIsNotHeldBackByReCheck(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	job, err := sliced.Upload(ctx, b.client, "fixable", strings.NewReader("a\nbad1\nb\n"), nil)
	must(t, err)
	const reCheck = time.Minute
	b.runServer(t, server.Config{Name: "s1", Workers: 1, PollInterval: 50 * time.Millisecond, ReCheck: reCheck,
		HeartbeatInterval: 200 * time.Millisecond, DeadAfter: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if got := b.wait(t, job.ID.Hex()); got.State != rocketjob.StateFailed {
		t.Fatalf("job ended %s, want failed", got.State)
	}
	b.squareFixed.Store(true)
	retried := time.Now()
	_, err = b.client.Retry(ctx, job.ID.Hex())
	must(t, err)
	got := b.wait(t, job.ID.Hex())
	if got.State != rocketjob.StateCompleted {
		t.Fatalf("retried job ended %s", got.State)
	}
	if took := time.Since(retried); took >= reCheck/2 {
		t.Fatalf("the retried job took %s: held back by the re-check interval (%s)", took, reCheck)
	}
}

// A job enqueued while a server is idle starts at once, not at the server's
// next poll: the wake-up token tells idle servers that work arrived.
func TestNewJobWakesAnIdleServer(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	const poll = time.Minute
	b.runServer(t, server.Config{Name: "s1", Workers: 2, PollInterval: poll, ReCheck: poll,
		HeartbeatInterval: 200 * time.Millisecond, DeadAfter: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	// The server's first look for work found none; its workers are idle.
	waitFor(t, "the server to start", func() bool {
		servers, err := b.client.Servers(ctx)
		return err == nil && len(servers) == 1
	})
	enqueued := time.Now()
	job, err := b.client.Enqueue(ctx, "count", nil, nil)
	must(t, err)
	if got := b.wait(t, job.ID.Hex()); got.State != rocketjob.StateCompleted {
		t.Fatalf("job ended %s", got.State)
	}
	if took := time.Since(enqueued); took >= poll/2 {
		t.Fatalf("the job ran %s after it was enqueued: the idle server waited for its poll (%s)", took, poll)
	}
}
