package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// BenchmarkSelection reports what one job selection (the 50 most urgent
// runnable jobs, as every server reads them each poll) costs with 100, 1k
// and 10k queued jobs, all at one priority or spread over 100. "queue" is
// the store's selection (on FerretDB, the run queue); "scan" is the baseline
// in the same run: the raw driver running the one query MongoDB would answer
// from its index, which FerretDB answers by decoding every job.
//
//	go test ./server -run '^$' -bench Selection -benchtime 20x
func BenchmarkSelection(b *testing.B) {
	ctx := context.Background()
	for _, spread := range []int{1, 100} {
		for _, n := range []int{100, 1_000, 10_000} {
			bd := setup(b)
			c := dbtest.Client(b)
			docs := make([]any, n)
			now := time.Now().UTC()
			for i := range docs {
				docs[i] = model.Job{ID: bson.NewObjectID(), Type: "nap", Kind: model.KindSimple, State: model.StateQueued,
					Priority: 50 + i%spread - spread/2, RunAt: now, CreatedAt: now}
			}
			if _, err := c.Database(bd.jobs).Collection("jobs").InsertMany(ctx, docs); err != nil {
				b.Fatal(err)
			}
			// Written behind the store's back: let it build the run queue,
			// as a server's sweep would.
			if fixed, err := clientstore.Of(bd.client).ReconcileQueue(ctx); err != nil || fixed != n {
				b.Fatalf("run queue: %d copies written, %v; want %d", fixed, err, n)
			}
			name := fmt.Sprintf("priorities=%d/queued=%d", spread, n)
			b.Run(name+"/queue", func(b *testing.B) {
				for b.Loop() {
					jobs, err := clientstore.Of(bd.client).RunnableJobs(ctx, time.Now(), 50, nil)
					if err != nil || len(jobs) != 50 {
						b.Fatalf("%d jobs, %v", len(jobs), err)
					}
				}
			})
			b.Run(name+"/scan", func(b *testing.B) {
				filter := bson.D{
					{Key: "state", Value: bson.D{{Key: "$in", Value: bson.A{model.StateQueued, model.StateRunning}}}},
					{Key: "run_at", Value: bson.D{{Key: "$lte", Value: time.Now()}}},
				}
				opts := options.Find().SetSort(bson.D{{Key: "priority", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(50)
				for b.Loop() {
					cur, err := c.Database(bd.jobs).Collection("jobs").Find(ctx, filter, opts)
					if err != nil {
						b.Fatal(err)
					}
					var jobs []model.Job
					if err := cur.All(ctx, &jobs); err != nil || len(jobs) != 50 {
						b.Fatalf("%d jobs, %v", len(jobs), err)
					}
				}
			})
		}
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
