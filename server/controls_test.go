package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// The operator's controls reach a running job even when it is the only job
// in the cluster: with no better job to move to, the workers must still
// leave a paused, aborted or destroyed job.

var strategies = []string{"insert", "findandmodify"}

// loneSlicedJob uploads a sleep job of 60 slices (10 records of 20 ms each),
// starts one server with 2 workers and waits until 2 slices are done.
func loneSlicedJob(t *testing.T, strategy string) (*bundle, *rocketjob.Job) {
	t.Helper()
	b := setupStrategy(t, strategy)
	ctx := context.Background()
	job, err := sliced.Upload(ctx, b.client, "sleep", strings.NewReader(strings.Repeat("20\n", 600)),
		&sliced.UploadOptions{SliceSize: 10})
	must(t, err)
	b.startServer(t, "s1", 2)
	waitFor(t, "two slices done", func() bool {
		p, err := b.client.Progress(ctx, mustGet(t, b, job.ID.Hex()))
		return err == nil && p.Slices.Done >= 2
	})
	return b, job
}

// quiet waits until no slice of job is running or claimed and the server
// has no busy worker, then until three more heartbeats passed with the
// progress unchanged, and returns that progress.
func quiet(t *testing.T, b *bundle, id string) *rocketjob.Progress {
	t.Helper()
	ctx := context.Background()
	var p *rocketjob.Progress
	var beat time.Time
	waitFor(t, "the job's workers to leave it", func() bool {
		srv := serverDoc(t, b, "s1")
		job := mustGet(t, b, id)
		var err error
		p, err = b.client.Progress(ctx, job)
		must(t, err)
		beat = srv.HeartbeatAt
		return srv.Busy == 0 && p.Slices.Running+p.Slices.Claimed == 0
	})
	waitFor(t, "three more heartbeats", func() bool {
		return serverDoc(t, b, "s1").HeartbeatAt.Sub(beat) >= 600*time.Millisecond
	})
	again, err := b.client.Progress(ctx, mustGet(t, b, id))
	must(t, err)
	if again.Processed != p.Processed || again.Slices.Done != p.Slices.Done {
		t.Fatalf("the job went on after its workers left: %d then %d records", p.Processed, again.Processed)
	}
	return p
}

func serverDoc(t *testing.T, b *bundle, name string) rocketjob.Server {
	t.Helper()
	servers, err := b.client.Servers(context.Background())
	must(t, err)
	for _, s := range servers {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("server %s not found", name)
	return rocketjob.Server{}
}

func TestPauseStopsALoneSlicedJob(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			b, job := loneSlicedJob(t, strategy)
			ctx := context.Background()
			id := job.ID.Hex()
			_, err := b.client.Pause(ctx, id)
			must(t, err)
			p := quiet(t, b, id)
			if p.Processed >= 600 {
				t.Fatalf("the paused job processed all its records")
			}
			if got := mustGet(t, b, id); got.State != rocketjob.StatePaused {
				t.Fatalf("job is %s, want paused", got.State)
			}
			t.Logf("paused after %d of 600 records", p.Processed)
			_, err = b.client.Resume(ctx, id)
			must(t, err)
			if got := b.wait(t, id); got.State != rocketjob.StateCompleted {
				t.Fatalf("resumed job ended %s: %+v", got.State, got.Failure)
			}
			var out bytes.Buffer
			n, err := sliced.Download(ctx, b.client, id, &out)
			must(t, err)
			if n != 600 || out.String() != strings.Repeat("20\n", 600) {
				t.Fatalf("output after pause and resume: %d records, %d bytes", n, out.Len())
			}
		})
	}
}

func TestAbortStopsALoneSlicedJob(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			b, job := loneSlicedJob(t, strategy)
			id := job.ID.Hex()
			_, err := b.client.Abort(context.Background(), id)
			must(t, err)
			p := quiet(t, b, id)
			if p.Processed >= 600 {
				t.Fatalf("the aborted job processed all its records")
			}
			if got := mustGet(t, b, id); got.State != rocketjob.StateAborted {
				t.Fatalf("job is %s, want aborted", got.State)
			}
			t.Logf("aborted after %d of 600 records", p.Processed)
		})
	}
}

func TestDestroyStopsALoneSlicedJob(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			b, job := loneSlicedJob(t, strategy)
			ctx := context.Background()
			must(t, b.client.Destroy(ctx, job.ID.Hex()))
			destroyedAt := time.Now()
			// Nothing of the job may come back: results in flight at the
			// destroy are dropped, not written into new collections.
			left := func() []string {
				names, err := clientstore.Of(b.client).WorkCollections(ctx)
				must(t, err)
				var mine []string
				for _, n := range names {
					if strings.Contains(n, job.ID.Hex()) {
						mine = append(mine, n)
					}
				}
				return mine
			}
			var beat time.Time
			waitFor(t, "the workers to leave the destroyed job", func() bool {
				srv := serverDoc(t, b, "s1")
				beat = srv.HeartbeatAt
				l := left()
				if time.Since(destroyedAt) > 10*time.Second {
					t.Logf("busy %d left %v", srv.Busy, l)
				}
				return srv.Busy == 0 && len(l) == 0
			})
			waitFor(t, "three more heartbeats", func() bool {
				return serverDoc(t, b, "s1").HeartbeatAt.Sub(beat) >= 600*time.Millisecond
			})
			if l := left(); len(l) > 0 {
				t.Fatalf("collections of the destroyed job came back: %v", l)
			}
		})
	}
}

// A lowered priority moves the workers to a job that is now more urgent.
func TestLoweredPriorityMovesWorkersAway(t *testing.T) {
	b, job := loneSlicedJob(t, "")
	ctx := context.Background()
	other, err := sliced.Upload(ctx, b.client, "sleep", strings.NewReader(strings.Repeat("1\n", 4)),
		&sliced.UploadOptions{Priority: 60, SliceSize: 1})
	must(t, err)
	_, err = b.client.SetPriority(ctx, job.ID.Hex(), 90)
	must(t, err)
	b.wait(t, other.ID.Hex())
	if got := mustGet(t, b, job.ID.Hex()); got.State == rocketjob.StateCompleted {
		t.Fatalf("the job whose priority was lowered finished first")
	}
	b.wait(t, job.ID.Hex())
}

// Abort and destroy cancel a running simple job's context with a cause the
// job can test, free its worker at once and drop its result.
func TestAbortAndDestroyCancelARunningSimpleJob(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(c *rocketjob.Client, id string) error
		want error
	}{
		{"abort", func(c *rocketjob.Client, id string) error {
			_, err := c.Abort(context.Background(), id)
			return err
		}, rocketjob.ErrAborted},
		{"destroy", func(c *rocketjob.Client, id string) error { return c.Destroy(context.Background(), id) }, rocketjob.ErrDestroyed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			ctx := context.Background()
			started := make(chan struct{}, 1)
			causes := make(chan error, 1)
			must(t, rocketjob.Register(b.reg, "block", func(ctx context.Context, job *rocketjob.Job, _ struct{}) error {
				started <- struct{}{}
				<-ctx.Done()
				causes <- context.Cause(ctx)
				return ctx.Err() // a result that must be dropped
			}, nil))
			job, err := b.client.Enqueue(ctx, "block", nil, nil)
			must(t, err)
			b.startServer(t, "s1", 1)
			select {
			case <-started:
			case <-time.After(30 * time.Second):
				t.Fatal("the job did not start")
			}
			must(t, tc.do(b.client, job.ID.Hex()))
			select {
			case cause := <-causes:
				if !errors.Is(cause, tc.want) {
					t.Fatalf("context cause %v, want %v", cause, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the running job's context was not cancelled")
			}
			// The one worker is free: the next job runs.
			next, err := b.client.Enqueue(ctx, "count", nil, nil)
			must(t, err)
			if got := b.wait(t, next.ID.Hex()); got.State != rocketjob.StateCompleted {
				t.Fatalf("next job ended %s", got.State)
			}
			got, err := b.client.Get(ctx, job.ID.Hex())
			switch {
			case tc.name == "destroy" && !errors.Is(err, rocketjob.ErrJobNotFound):
				t.Fatalf("destroyed job: %v, %v", got, err)
			case tc.name == "abort" && (err != nil || got.State != rocketjob.StateAborted || got.Failure != nil):
				t.Fatalf("aborted job: %+v, %v", got, err)
			}
		})
	}
}

// Pause, resume and priority changes in quick succession from several
// clients while a sliced job with an after hook runs on two servers leave
// nothing stuck: the job completes with exact output and its after hook
// runs once.
func TestControlSpamLeavesNothingStuck(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			b := setupStrategy(t, strategy)
			ctx := context.Background()
			in := lines(300, func(i int) string { return strings.Repeat("x", i%7) })
			job, err := sliced.Upload(ctx, b.client, "after_once", strings.NewReader(in), nil)
			must(t, err)
			id := job.ID.Hex()
			logs := &syncBuffer{}
			for _, name := range []string{"s1", "s2"} {
				b.runServer(t, server.Config{
					Name: name, Workers: 2, PollInterval: 50 * time.Millisecond, ReCheck: 200 * time.Millisecond,
					HeartbeatInterval: 200 * time.Millisecond, DeadAfter: time.Second, ShutdownTimeout: 5 * time.Second,
					Logger: slog.New(slog.NewTextHandler(logs, nil)),
				})
			}
			stop := make(chan struct{})
			var spam sync.WaitGroup
			for c := range 3 {
				client := b.newClient(t)
				spam.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						// Refusals (a pause while the after hook runs, a
						// resume of a running job) are expected.
						switch (i + c) % 3 {
						case 0:
							_, _ = client.Pause(ctx, id)
						case 1:
							_, _ = client.Resume(ctx, id)
						default:
							_, _ = client.SetPriority(ctx, id, 1+(i*7+c)%100)
						}
					}
				})
			}
			// Spam through the end of the slices and the after step, until
			// the job completes or for at most 30 s. Each control moves the
			// job's version, so three clients in tight loops can keep a
			// server's own transition losing for as long as they go on (on a
			// starved CPU they did for minutes); what must hold is that
			// nothing is stuck once they stop.
			spamUntil := time.Now().Add(30 * time.Second)
			for mustGet(t, b, id).State != rocketjob.StateCompleted && time.Now().Before(spamUntil) {
				time.Sleep(20 * time.Millisecond)
			}
			close(stop)
			spam.Wait()
			if j := mustGet(t, b, id); j.State == rocketjob.StatePaused {
				_, err := b.client.Resume(ctx, id)
				must(t, err)
			}
			t.Cleanup(func() {
				if t.Failed() { // what the servers did with the job
					for line := range strings.SplitSeq(logs.String(), "\n") {
						if strings.Contains(line, id) || strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
							t.Log(line)
						}
					}
				}
			})
			if got := b.wait(t, id); got.State != rocketjob.StateCompleted {
				t.Fatalf("job ended %s: %+v", got.State, got.Failure)
			}
			var out bytes.Buffer
			_, err = sliced.Download(ctx, b.client, id, &out)
			must(t, err)
			if want := strings.ToUpper(in); out.String() != want {
				t.Fatalf("output differs from the input upcased (%d vs %d bytes)", out.Len(), len(want))
			}
			if n := b.afterCalls.Load(); n != 1 {
				// Hooks are at-least-once (README, Guarantees): one runs
				// again only when its server was declared dead meanwhile,
				// as a starved CPU can delay 200 ms heartbeats past the 1 s
				// dead-after.
				if n == 2 && strings.Contains(logs.String(), "server is dead: requeuing its work") {
					t.Logf("the after hook ran twice: a server was declared dead during the run and its work requeued")
				} else {
					t.Fatalf("after hook ran %d times, want 1 (no server was declared dead)", n)
				}
			}
		})
	}
}
