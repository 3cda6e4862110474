package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// A job enters its after step when every slice is finished; a slice that is
// unfinished again by the time the step counts the job's records (a claim
// that was not atomic wrote a finished slice back as running, as
// findAndModify on FerretDB can; or a server died between requeueing the
// slices with failed records and sending the job back to processing) must
// not let the job end without that slice's records: it completed with 0
// failed records. The after step gives the job back to its processing step.
func TestAfterStepWaitsForUnfinishedSlices(t *testing.T) {
	for _, strategy := range []string{store.StrategyInsert, store.StrategyFindAndModify} {
		t.Run(strategy, func(t *testing.T) {
			if strategy == store.StrategyFindAndModify {
				dbtest.RequireMongoDB(t) // FerretDB refuses it
			}
			ctx := context.Background()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			reg := rocketjob.NewRegistry()
			must(sliced.RegisterLines(reg, "upcase", func(_ context.Context, l string) (string, error) { return strings.ToUpper(l), nil }, nil))
			jobs, work := dbtest.DBNames(t)
			c, err := rocketjob.NewClient(ctx, rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg, ClaimStrategy: strategy})
			must(err)
			t.Cleanup(func() { _ = c.Close(context.Background()) })
			st := clientstore.Of(c)
			up, err := sliced.Upload(ctx, c, "upcase", strings.NewReader("a\nb\n"), &sliced.UploadOptions{SliceSize: 1})
			must(err)
			job, err := st.GetJob(ctx, up.ID)
			must(err)
			now := time.Now().UTC()
			job, err = st.Do(ctx, job, store.EnterStep(model.StepBefore, "x", &now), "x")
			must(err)
			job, err = st.Do(ctx, job, store.StartProcessing(nil), "x")
			must(err)
			// Both slices finish, slice 2 with a failed record.
			f := st.Slices().NewFeeder(job.ID, "x", job.SliceCount)
			for range 2 {
				cl, err := f.Next(ctx)
				must(err)
				r := store.Result{}
				if cl.Num == 2 {
					r = store.Result{FailedCount: 1, Failed: []byte("x")}
				}
				_, err = st.Slices().Complete(ctx, job.ID, cl, r)
				must(err)
			}
			must(f.Close(ctx))
			if done, err := st.Slices().AllDone(ctx, job.ID, job.SliceCount); err != nil || !done {
				t.Fatalf("AllDone: %v, %v", done, err)
			}
			job, err = st.Do(ctx, job, store.EnterStep(model.StepAfter, "L", nil), "L")
			must(err)
			// Slice 2 is unfinished again.
			if n, err := st.Slices().RetryFailed(ctx, job.ID); err != nil || n != 1 {
				t.Fatalf("RetryFailed: %d, %v", n, err)
			}
			s, err := New(c, &Config{Name: "L"})
			must(err)
			spec, err := reg.Lookup("upcase")
			must(err)
			must(s.runAfter(ctx, spec, job))
			got, err := st.GetJob(ctx, job.ID)
			must(err)
			if got.State != model.StateRunning || got.Step != model.StepProcessing || got.Server != "" {
				t.Fatalf("after step with slice 2 unfinished: state %s, step %s, server %q, failed records %d; want running at its processing step, held by no server",
					got.State, got.Step, got.Server, got.FailedRecordCount)
			}
		})
	}
}
