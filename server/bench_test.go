package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// BenchmarkSelection reports what one job-selection query (the most urgent
// runnable jobs, as every server runs it each poll) costs with 100, 1k and
// 10k queued jobs.
//
//	go test ./server -run '^$' -bench Selection -benchtime 20x
func BenchmarkSelection(b *testing.B) {
	for _, n := range []int{100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("queued=%d", n), func(b *testing.B) {
			bd := setup(b)
			c := dbtest.Client(b)
			docs := make([]any, n)
			now := time.Now().UTC()
			for i := range docs {
				docs[i] = model.Job{ID: bson.NewObjectID(), Type: "nap", Kind: model.KindSimple, State: model.StateQueued,
					Priority: 1 + i%100, RunAt: now, CreatedAt: now}
			}
			if _, err := c.Database(bd.jobs).Collection("jobs").InsertMany(context.Background(), docs); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				jobs, err := bd.client.Store().RunnableJobs(context.Background(), time.Now(), 50)
				if err != nil || len(jobs) != 50 {
					b.Fatalf("%d jobs, %v", len(jobs), err)
				}
			}
		})
	}
}

// BenchmarkPrioritySwitch measures how long a job uploaded with a higher
// priority waits while one worker is busy on a long low-priority job: the
// time from upload to its start, p50 and p99 over b.N switches.
//
//	go test ./server -run '^$' -bench PrioritySwitch -benchtime 30x
func BenchmarkPrioritySwitch(b *testing.B) {
	bd := setup(b)
	ctx := context.Background()
	low, err := sliced.Upload(ctx, bd.client, "sleep", strings.NewReader(strings.Repeat("20\n", 100_000)),
		&sliced.UploadOptions{Priority: 90, SliceSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	bd.startServer(b, "s1", 1)
	waitFor(b, "the low-priority job to start", func() bool {
		j, err := bd.client.Get(ctx, low.ID.Hex())
		return err == nil && j.StartedAt != nil
	})
	var waits []time.Duration
	for b.Loop() {
		start := time.Now()
		high, err := sliced.Upload(ctx, bd.client, "copy", strings.NewReader("x\n"), &sliced.UploadOptions{Priority: 10})
		if err != nil {
			b.Fatal(err)
		}
		j := bd.wait(b, high.ID.Hex())
		waits = append(waits, j.StartedAt.Sub(start))
	}
	slices.Sort(waits)
	p := func(q float64) time.Duration { return waits[int(q*float64(len(waits)-1))] }
	b.ReportMetric(float64(p(0.5).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(p(0.99).Milliseconds()), "p99-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("priority switch over %d switches: p50 %s, p99 %s (one slice is 20 ms, re-check %s)", len(waits), p(0.5), p(0.99), 200*time.Millisecond)
}
