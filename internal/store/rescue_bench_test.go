package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// BenchmarkRescueReads compares what a rescue of a dead server and the
// minute's housekeeping read, with 1,000 jobs and with
// ROCKETJOB_RESCUE_BENCH_N jobs (default 20,000) in the collection, most of
// them completed (the jobs of BenchmarkListJobs: 60 running, 60 paused, 60
// failed, 100 queued at any size). Per read it reports the milliseconds at
// each size and their ratio (1 = flat), and, measured once, the scans of
// every job they made before (ROCKETJOB_RESCUE_BENCH_SCAN=0 skips those).
// "rescue" is JobsOfServer and SlicedJobsWithSlices (before: a filter on
// every job, and ListJobs of the running, paused and failed jobs);
// "housekeeping" is RepairIntents and RunningJobs (before: ReconcileQueue,
// at every server start and once a minute, and ListJobs of the running
// jobs).
//
//	go test ./internal/store -run '^$' -bench RescueReads -benchtime 5x
func BenchmarkRescueReads(b *testing.B) {
	bigN := 20_000
	if v := os.Getenv("ROCKETJOB_RESCUE_BENCH_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("ROCKETJOB_RESCUE_BENCH_N=%q: want a number of at least 1000", v)
		}
		bigN = n
	}
	scan := os.Getenv("ROCKETJOB_RESCUE_BENCH_SCAN") != "0"
	ctx := context.Background()
	small, _ := listBenchJobs(b, 1000)
	big, _ := listBenchJobs(b, bigN)
	if _, claims := small.jobsStrategy.(claimJobs); !claims {
		b.Skip("the reads differ only on FerretDB")
	}
	reads := []struct {
		name string
		run  func(*Store) error
		scan func(*Store) error
	}{
		{"rescue",
			func(s *Store) error {
				running, err := s.JobsOfServer(ctx, "dead")
				if err == nil && len(running) != 0 {
					return fmt.Errorf("%d jobs of a server that never ran", len(running))
				}
				_, err = s.SlicedJobsWithSlices(ctx)
				return err
			},
			func(s *Store) error {
				if _, err := findAll[model.Job](ctx, s.jobs(), bson.D{{Key: "state", Value: model.StateRunning}, {Key: "server", Value: "dead"}}); err != nil {
					return err
				}
				_, err := s.ListJobs(ctx, JobFilter{States: []model.State{model.StateRunning, model.StatePaused, model.StateFailed}})
				return err
			}},
		{"housekeeping",
			func(s *Store) error {
				if _, err := s.RepairIntents(ctx, time.Now()); err != nil {
					return err
				}
				running, err := s.RunningJobs(ctx)
				if err == nil && len(running) != 60 {
					err = fmt.Errorf("%d running jobs, want 60", len(running))
				}
				return err
			},
			func(s *Store) error {
				if _, err := s.ReconcileQueue(ctx); err != nil {
					return err
				}
				_, err := s.ListJobs(ctx, JobFilter{States: []model.State{model.StateRunning}})
				return err
			}},
	}
	for _, r := range reads {
		b.Run(r.name, func(b *testing.B) {
			var tSmall, tBig time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := r.run(small); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := r.run(big); err != nil {
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
			if scan && b.N > 1 {
				for _, c := range []struct {
					s *Store
					n int
				}{{small, 1000}, {big, bigN}} {
					t0 := time.Now()
					if err := r.scan(c.s); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, fmt.Sprintf("scan-ms@%d", c.n))
				}
			}
		})
	}
}
