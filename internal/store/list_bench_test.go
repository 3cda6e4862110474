package store

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
)

// listBenchJobs builds a jobs database of n jobs: 100 queued and 60 each
// failed, paused, aborted and running, spread among them (so that every
// listing has as many jobs to show at any n), all the others completed;
// one in seven at priority 30, the others at 50. It returns the store and
// the id of a job in the middle.
func listBenchJobs(b *testing.B, n int) (*Store, bson.ObjectID) {
	b.Helper()
	jobsDB, workDB := dbtest.DBNames(b)
	s, err := Open(context.Background(), Config{URI: dbtest.URI(), DB: jobsDB, WorkDB: workDB})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	start := time.Now()
	now := time.Now().UTC()
	var middle bson.ObjectID
	var completed []*model.Job // the last of them
	batch := make([]*model.Job, 0, 10_000)
	for i := range n {
		state := model.StateCompleted
		if k := i / (n / 340); i%(n/340) == 0 && k < 340 {
			switch {
			case k < 100:
				state = model.StateQueued
			case k < 160:
				state = model.StateFailed
			case k < 220:
				state = model.StatePaused
			case k < 280:
				state = model.StateAborted
			default:
				state = model.StateRunning
			}
		}
		prio := 50
		if i%7 == 0 {
			prio = 30
		}
		typ := "nap"
		if i%(n/80) == n/160+1 {
			// About 80 jobs at any n, spread out, most of them completed
			// (at n = 1,000 the other states' jobs are at even i): more
			// than a window's tail keeps.
			typ = "rare"
		}
		j := &model.Job{ID: bson.NewObjectID(), Type: typ, Kind: model.KindSimple, State: state, Priority: prio,
			RunAt: now, CreatedAt: now, Version: 2, Params: bson.Raw(mustMarshal(bson.D{{Key: "ms", Value: 0}}))}
		if i == n/2 {
			middle = j.ID
		}
		batch = append(batch, j)
		if state == model.StateCompleted {
			if completed = append(completed, j); len(completed) > 2*recentTrimAt {
				completed = slices.Delete(completed, 0, recentTrimAt)
			}
		}
		if len(batch) == cap(batch) || i == n-1 {
			if err := s.MarkNewStateIndex(context.Background()); err != nil {
				b.Fatal(err)
			}
			if _, err := s.InsertJobs(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	// The completed jobs' window as full as it gets before a trim: the
	// listings' worst case.
	if len(completed) >= recentTrimAt {
		older := completed[len(completed)-recentTrimAt : len(completed)-recentKeep]
		for chunk := range slices.Chunk(older, recentTrimEvery) {
			s.noteRecent(context.Background(), chunk...)
		}
	}
	window, err := s.readWindow(context.Background(), model.StateCompleted)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d jobs written in %s; %d entries in the completed jobs' window", n, time.Since(start).Round(time.Millisecond), len(window))
	return s, middle
}

func mustMarshal(v any) []byte {
	raw, err := bson.Marshal(v)
	if err != nil {
		panic(err)
	}
	return raw
}

// scanList is ListJobs as it was before the state index: FerretDB filters
// and sorts every job in Go.
func scanList(ctx context.Context, s *Store, f JobFilter) ([]model.Job, error) {
	filter := bson.D{}
	if len(f.States) > 0 {
		filter = append(filter, bson.E{Key: "state", Value: bson.D{{Key: "$in", Value: f.States}}})
	}
	if f.Type != "" {
		filter = append(filter, bson.E{Key: "type", Value: f.Type})
	}
	opts := options.Find().SetSort(bson.D{{Key: "priority", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(f.Limit).SetSkip(f.Skip)
	if f.Newest {
		opts.SetSort(bson.D{{Key: "_id", Value: -1}})
	}
	return findAll[model.Job](ctx, s.jobs(), filter, opts)
}

// BenchmarkListJobs compares what `job list --limit 50` (all jobs, or of
// one state; most urgent first, or newest first), the UI's jobs page (page
// 3, 25 a page), `job show`, an enqueue and a server's selection cost
// with 1,000 jobs and with ROCKETJOB_LIST_BENCH_N jobs (default 100,000;
// 1,000,000 takes minutes to write) in the collection, most of them
// completed. Per query it reports the milliseconds at each size and their
// ratio (1 = flat), and, measured once, the scan that ListJobs did before
// the state index (ROCKETJOB_LIST_BENCH_SCAN=0 skips it).
//
//	go test ./internal/store -run '^$' -bench ListJobs
//	ROCKETJOB_LIST_BENCH_N=1000000 go test ./internal/store -run '^$' -bench ListJobs -timeout 60m
func BenchmarkListJobs(b *testing.B) {
	bigN := 100_000
	if v := os.Getenv("ROCKETJOB_LIST_BENCH_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("ROCKETJOB_LIST_BENCH_N=%q: want a number of at least 1000", v)
		}
		bigN = n
	}
	scan := os.Getenv("ROCKETJOB_LIST_BENCH_SCAN") != "0"
	ctx := context.Background()
	small, smallID := listBenchJobs(b, 1000)
	big, bigID := listBenchJobs(b, bigN)
	for _, s := range []*Store{small, big} {
		// The first limited listing builds the index if needed: not timed.
		if _, err := s.ListJobs(ctx, JobFilter{Limit: 1}); err != nil {
			b.Fatal(err)
		}
	}
	list := func(f JobFilter) func(*Store, bson.ObjectID) error {
		return func(s *Store, _ bson.ObjectID) error {
			jobs, err := s.ListJobs(ctx, f)
			if err == nil && len(jobs) == 0 {
				err = fmt.Errorf("no jobs listed for %+v", f)
			}
			return err
		}
	}
	queries := []struct {
		name string
		f    *JobFilter // nil: job show
		run  func(*Store, bson.ObjectID) error
	}{
		{"list", &JobFilter{Limit: 50}, nil},
		{"list-completed", &JobFilter{Limit: 50, States: []model.State{model.StateCompleted}}, nil},
		{"list-queued", &JobFilter{Limit: 50, States: []model.State{model.StateQueued}}, nil},
		{"list-failed", &JobFilter{Limit: 50, States: []model.State{model.StateFailed}}, nil},
		{"list-running", &JobFilter{Limit: 50, States: []model.State{model.StateRunning}}, nil},
		{"ui-page-3", &JobFilter{Skip: 50, Limit: 26}, nil},
		{"newest", &JobFilter{Limit: 50, Newest: true}, nil},
		{"newest-completed", &JobFilter{Limit: 50, States: []model.State{model.StateCompleted}, Newest: true}, nil},
		{"newest-failed", &JobFilter{Limit: 50, States: []model.State{model.StateFailed}, Newest: true}, nil},
		{"newest-queued", &JobFilter{Limit: 50, States: []model.State{model.StateQueued}, Newest: true}, nil},
		{"newest-ui-page-3", &JobFilter{Skip: 50, Limit: 26, Newest: true}, nil},
		// A type rare among the newest jobs: from the windows' tails.
		{"newest-rare-type", &JobFilter{Limit: 10, Type: "rare", Newest: true}, nil},
		// Past the windows (not flat: they read every entry of the
		// states listed; compare with the scan).
		{"newest-rare-type-skip-50", &JobFilter{Skip: 50, Limit: 10, Type: "rare", States: []model.State{model.StateCompleted}, Newest: true}, nil},
		{"newest-completed-skip-600", &JobFilter{Skip: 600, Limit: 50, States: []model.State{model.StateCompleted}, Newest: true}, nil},
		{"show", nil, func(s *Store, id bson.ObjectID) error { _, err := s.GetJob(ctx, id); return err }},
		// A job enqueued (a job and its run-queue copy), and what a
		// server's poll reads: the 50 most urgent runnable jobs.
		{"enqueue", nil, func(s *Store, _ bson.ObjectID) error {
			now := time.Now().UTC()
			return s.InsertJob(ctx, &model.Job{ID: bson.NewObjectID(), Type: "nap", Kind: model.KindSimple, State: model.StateQueued,
				Priority: 50, RunAt: now, CreatedAt: now, Params: bson.Raw(mustMarshal(bson.D{{Key: "ms", Value: 0}}))})
		}},
		{"select", nil, func(s *Store, _ bson.ObjectID) error {
			jobs, err := s.RunnableJobs(ctx, time.Now(), 50, nil)
			if err == nil && len(jobs) < 50 {
				err = fmt.Errorf("%d runnable jobs selected, want 50", len(jobs))
			}
			return err
		}},
	}
	for _, q := range queries {
		if q.f != nil {
			q.run = list(*q.f)
		}
		b.Run(q.name, func(b *testing.B) {
			var tSmall, tBig time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := q.run(small, smallID); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := q.run(big, bigID); err != nil {
					b.Fatal(err)
				}
				tSmall += t1.Sub(t0)
				tBig += time.Since(t1)
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
			b.ReportMetric(ms(tSmall), "ms@1000")
			b.ReportMetric(ms(tBig), fmt.Sprintf("ms@%d", bigN))
			b.ReportMetric(float64(tBig)/float64(tSmall), "ratio")
			b.ReportMetric(0, "ns/op")
			if scan && q.f != nil && b.N > 1 {
				for _, c := range []struct {
					s *Store
					n int
				}{{small, 1000}, {big, bigN}} {
					t0 := time.Now()
					if _, err := scanList(ctx, c.s, *q.f); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, fmt.Sprintf("scan-ms@%d", c.n))
				}
			}
		})
	}
}
