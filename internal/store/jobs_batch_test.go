package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestConcurrentTransitionsBatched races several workers for the same jobs,
// as servers reading the same candidates do: their claims and updates are
// written in batches, and still each job is started exactly once, by the
// worker whose claim won, and each winner completes its job.
func TestConcurrentTransitionsBatched(t *testing.T) {
	ctx := context.Background()
	s, _ := openNamed(t)
	const n, workers = 24, 6
	var jobs []*model.Job
	for range n {
		jobs = append(jobs, newJob(50))
	}
	if _, err := s.InsertJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	var wins [n]atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, workers*n)
	for w := range workers {
		wg.Go(func() {
			by := string(rune('a' + w))
			for i, j := range jobs {
				moved, err := s.Transition(ctx, j, model.StateRunning, store.Change{Server: &by}, by)
				if errors.Is(err, model.ErrConflict) {
					continue
				}
				if err != nil {
					errs <- err
					continue
				}
				wins[i].Add(1)
				if _, err := s.Transition(ctx, moved, model.StateCompleted, store.Change{}, by); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, j := range jobs {
		if got := wins[i].Load(); got != 1 {
			t.Errorf("job %d started %d times, want once", i, got)
		}
		stored, err := s.GetJob(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.State != model.StateCompleted || stored.Version != j.Version+2 {
			t.Errorf("job %d: %s at version %d, want completed at %d", i, stored.State, stored.Version, j.Version+2)
		}
	}
	if got := runnableIDs(t, s); len(got) != 0 {
		t.Errorf("%d jobs still offered after every one completed", len(got))
	}
}
