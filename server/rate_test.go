package server_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// A per-type rate limit holds across servers: 15 slices at 5 a second take
// at least three seconds' worth of tokens.
func TestRateLimitAcrossServers(t *testing.T) {
	b := setup(t)
	var mu sync.Mutex
	var starts []time.Time
	must(t, sliced.RegisterLines(b.reg, "limited", func(ctx context.Context, line string) (string, error) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		return line, nil
	}, &sliced.Options{SliceSize: 1, RateLimit: 5}))
	job, err := sliced.Upload(context.Background(), b.client, "limited", strings.NewReader(strings.Repeat("x\n", 15)), nil)
	must(t, err)
	b.startServer(t, "s1", 3)
	b.startServer(t, "s2", 3)
	if got := b.wait(t, job.ID.Hex()); got.State != rocketjob.StateCompleted {
		t.Fatalf("job %s", got.State)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	if span := starts[len(starts)-1].Sub(starts[0]); span < time.Second {
		t.Fatalf("15 slices at 5/s ran within %s", span)
	}
	perSecond := map[int64]int{}
	for _, s := range starts {
		perSecond[s.Unix()]++
	}
	for sec, n := range perSecond {
		if n > 2*5 { // a start lands just after its token's second at most
			t.Fatalf("%d slices started in second %d with a limit of 5", n, sec)
		}
	}
}
