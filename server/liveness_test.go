package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
)

// syncBuffer is a log destination safe for a server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Servers started with different liveness settings (a rolling change of
// settings) judge each other by the other's own settings: a server with a
// short dead-after never declares a live server with a slow heartbeat dead.
func TestLivenessIsJudgedByTheServersOwnSettings(t *testing.T) {
	b := setup(t)
	var slowLog, fastLog syncBuffer
	b.runServer(t, server.Config{Name: "slow", Workers: 1, HeartbeatInterval: time.Second, DeadAfter: 4 * time.Second,
		ReCheck: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&slowLog, nil))})
	start := time.Now()
	b.runServer(t, server.Config{Name: "fast", Workers: 1, HeartbeatInterval: 100 * time.Millisecond, DeadAfter: 300 * time.Millisecond,
		ReCheck: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&fastLog, nil))})
	// Three of the slow server's heartbeats: the fast one looked at it
	// about thirty times meanwhile, each time with its heartbeat older than
	// the fast one's own dead-after.
	waitFor(t, "three heartbeats of the slow server", func() bool {
		servers, err := b.client.Servers(context.Background())
		must(t, err)
		for _, s := range servers {
			if s.Name == "slow" && s.HeartbeatAt.Sub(start) >= 2500*time.Millisecond {
				return true
			}
		}
		return false
	})
	if strings.Contains(fastLog.String(), "server is dead") {
		t.Fatalf("the fast server declared the live slow one dead:\n%s", fastLog.String())
	}
	if strings.Contains(slowLog.String(), "declared dead") {
		t.Fatalf("the slow server found itself declared dead:\n%s", slowLog.String())
	}
	if s := serverDoc(t, b, "slow"); s.DeadAfter != 4*time.Second || s.HeartbeatInterval != time.Second {
		t.Fatalf("the slow server published %s / %s", s.HeartbeatInterval, s.DeadAfter)
	}
}

// A server that finds its run of a simple job taken away (another server
// declared it dead and requeued the job) cancels that run with
// ErrTakenAway and drops its result; the job runs again.
func TestRunTakenAwayIsCancelled(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var runs sync.Map
	causes := make(chan error, 2)
	must(t, rocketjob.Register(b.reg, "block_once", func(ctx context.Context, job *rocketjob.Job, _ struct{}) error {
		if _, again := runs.LoadOrStore(job.ID, true); again {
			return nil // the second run completes
		}
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return nil // a result that must be dropped
	}, nil))
	job, err := b.client.Enqueue(ctx, "block_once", nil, nil)
	must(t, err)
	b.startServer(t, "s1", 1)
	var running *model.Job
	waitFor(t, "the job to run", func() bool {
		running = (*model.Job)(mustGet(t, b, job.ID.Hex()))
		return running.State == rocketjob.StateRunning
	})
	// What a rescuer does to a server it declared dead: requeue its job and
	// remove its document.
	st := clientstore.Of(b.client)
	if _, err := st.Transition(ctx, running, model.StateQueued, store.Change{ClearServer: true}, "rescuer"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RemoveServer(ctx, "s1", time.Time{}); err != nil {
		t.Fatal(err)
	}
	select {
	case cause := <-causes:
		if !errors.Is(cause, rocketjob.ErrTakenAway) {
			t.Fatalf("cause %v, want ErrTakenAway", cause)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the run taken away was not cancelled")
	}
	if got := b.wait(t, job.ID.Hex()); got.State != rocketjob.StateCompleted || got.Attempt != 2 {
		t.Fatalf("job ended %s after %d runs", got.State, got.Attempt)
	}
}

// A server killed between claiming a transition of its job (here the
// job's end) and writing it leaves the job running on it, held by the
// claim, which another process may roll forward only once it is old
// enough (a claimer judged dead may still be writing). The rescuer that
// finds the job so looks at it again when the claim can be rolled forward,
// instead of leaving it to the minute's sweep of orphaned jobs: the
// claimed end is written, once, and the job is not run again.
func TestRescuerRollsADeadServersClaimForward(t *testing.T) {
	dbtest.RequireFerretDB(t) // MongoDB's updates need no claims
	b := setup(t)
	ctx := context.Background()
	st := clientstore.Of(b.client)
	job, err := b.client.Enqueue(ctx, "count", nil, nil)
	must(t, err)
	stored, err := st.GetJob(ctx, job.ID)
	must(t, err)
	running, err := st.Do(ctx, stored, store.StartRun("ghost", 1, time.Now().UTC()), "ghost")
	must(t, err)
	// ghost's last heartbeat, and the claim of its end, written behind the
	// store's back as a killed server leaves them.
	_, err = st.Heartbeat(ctx, &model.Server{Name: "ghost", State: "running", HeartbeatAt: time.Now().Add(-time.Minute),
		HeartbeatInterval: 200 * time.Millisecond, DeadAfter: time.Second})
	must(t, err)
	update, err := bson.Marshal(bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: running.Version + 1},
		{Key: "state", Value: model.StateCompleted}, {Key: "completed_at", Value: time.Now().UTC()}}}})
	must(t, err)
	_, err = dbtest.Client(t).Database(b.jobs).Collection("job_claims").InsertOne(ctx, bson.D{
		{Key: "_id", Value: fmt.Sprintf("%s:%d", job.ID.Hex(), running.Version)}, {Key: "by", Value: "ghost"},
		{Key: "at", Value: time.Now()}, {Key: "update", Value: bson.Binary{Data: update}}})
	must(t, err)

	// The minute's sweep, which would roll the claim forward too, is
	// somebody else's for the next few minutes: only the rescuer can.
	for m := time.Now().Unix() / 60; m < time.Now().Unix()/60+4; m++ {
		_, err = dbtest.Client(t).Database(b.jobs).Collection("job_claims").InsertOne(ctx, bson.D{
			{Key: "_id", Value: fmt.Sprintf("sweep:%d", m)}, {Key: "at", Value: time.Now()}})
		must(t, err)
	}

	var log syncBuffer
	b.runServer(t, server.Config{Name: "live", Workers: 1, PollInterval: 50 * time.Millisecond, ReCheck: 200 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, DeadAfter: time.Second, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	waitFor(t, "the rescue of ghost", func() bool { return strings.Contains(log.String(), "held by a transition the dead server claimed") })
	// Rolled forward by the rescuer about ten seconds after the claim.
	waitFor(t, "the rescuer to roll the claim forward", func() bool {
		return strings.Contains(log.String(), "the dead server's pending transition was rolled forward")
	})
	got := b.wait(t, job.ID.Hex())
	if got.State != rocketjob.StateCompleted {
		t.Fatalf("job ended %s, want completed by the claim rolled forward:\n%s", got.State, log.String())
	}
	if runs := b.ran(job.ID.Hex()); runs != nil {
		t.Fatalf("the job ran again (%v); its claimed end should have been written", runs)
	}
}
