package server_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// max_workers caps the workers on a job across servers; throttled workers
// take other work instead of waiting.
func TestMaxWorkersAcrossServers(t *testing.T) {
	b := setup(t)
	var now, peak atomic.Int32
	must(t, sliced.RegisterLines(b.reg, "conc", func(ctx context.Context, line string) (string, error) {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		now.Add(-1)
		return line, nil
	}, &sliced.Options{SliceSize: 1}))
	ctx := context.Background()
	job, err := sliced.Upload(ctx, b.client, "conc", strings.NewReader(strings.Repeat("x\n", 60)), &sliced.UploadOptions{MaxWorkers: 1})
	must(t, err)
	other, err := sliced.Upload(ctx, b.client, "copy", strings.NewReader(strings.Repeat("y\n", 200)), &sliced.UploadOptions{SliceSize: 1, Priority: 60})
	must(t, err)
	for _, name := range []string{"s1", "s2", "s3"} {
		b.startServer(t, name, 2)
	}
	got := b.wait(t, job.ID.Hex())
	if got.State != rocketjob.StateCompleted {
		t.Fatalf("throttled job: %s", got.State)
	}
	if p := peak.Load(); p != 1 {
		t.Fatalf("max_workers=1 but %d workers ran the job at once", p)
	}
	// The other five workers did not wait for the throttled job's slot.
	if o := b.wait(t, other.ID.Hex()); o.State != rocketjob.StateCompleted || !o.StartedAt.Before(*got.CompletedAt) {
		t.Fatalf("the lower-priority job did not start while the throttled one ran (%s)", o.State)
	}
}
