package server_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// max_running_jobs caps the running jobs of a type across servers.
func TestMaxRunningJobsPerType(t *testing.T) {
	b := setup(t)
	var now, peak atomic.Int32
	// The first jobs wait (a bounded time) for a second one to run beside
	// them, so the cap is reached however busy the machine is.
	pair := make(chan struct{})
	var pairOnce sync.Once
	must(t, rocketjob.Register(b.reg, "capped", func(ctx context.Context, job *rocketjob.Job, _ struct{}) error {
		n := now.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if n >= 2 {
			pairOnce.Do(func() { close(pair) })
		}
		select {
		case <-pair:
		case <-time.After(5 * time.Second):
		}
		time.Sleep(30 * time.Millisecond)
		now.Add(-1)
		return nil
	}, &rocketjob.TypeOptions{MaxRunningJobs: 2}))
	ctx := context.Background()
	var ids []string
	for range 12 {
		j, err := b.client.Enqueue(ctx, "capped", nil, nil)
		must(t, err)
		ids = append(ids, j.ID.Hex())
	}
	for _, name := range []string{"s1", "s2", "s3"} {
		b.startServer(t, name, 3)
	}
	for _, id := range ids {
		if j := b.wait(t, id); j.State != rocketjob.StateCompleted {
			t.Fatalf("job %s: %s", id, j.State)
		}
	}
	if p := peak.Load(); p != 2 {
		t.Fatalf("max_running_jobs=2 but %d ran at once", p)
	}
}
