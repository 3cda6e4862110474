package sliced

import (
	"context"
	"fmt"

	"github.com/rocketjob-go/rocketjob/internal/clientjob"
	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/slice"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Rekey re-encrypts a job's stored slices (input, output with its
// categories, and failed records), the operators' fixes of failed records,
// retry plans and its CSV header under the keyring's current key, so that older keys can
// be removed from every keyring afterwards. It needs the job's old key and
// the new one in the client's keyring. The job must not be queued or running
// (pause it first); it returns the number of slices rewritten.
func Rekey(ctx context.Context, c *rocketjob.Client, id string) (int, error) {
	job, err := slicedJob(ctx, c, id)
	if err != nil {
		return 0, err
	}
	if !job.Encrypt {
		return 0, fmt.Errorf("job %s is not encrypted", id)
	}
	if job.State == rocketjob.StateQueued || job.State == rocketjob.StateRunning {
		return 0, fmt.Errorf("job %s is %s: pause it before re-encrypting its slices", id, job.State)
	}
	if job.State != rocketjob.StateCompleted {
		// A paused or failed job may still have slices in flight on servers
		// (finishing after the pause): their results must not land in a
		// collection being rewritten.
		p, err := c.Progress(ctx, job)
		if err != nil {
			return 0, err
		}
		if n := p.Slices.Running + p.Slices.Claimed; n > 0 {
			return 0, fmt.Errorf("job %s has %d slices in flight: try again once they are done", id, n)
		}
	}
	codec, err := clientjob.Codec(c, job)
	if err != nil {
		return 0, err
	}
	kinds := []slice.Kind{slice.Input, slice.Output, slice.Failed}
	if job.State == rocketjob.StateCompleted {
		// A completed job's input is dropped by the server that completed
		// it, right after the transition: rewriting it would race with the
		// drop. Drop whatever is left of it here instead, so that nothing
		// sealed with the old key stays.
		if err := clientstore.Of(c).Slices().DropInput(ctx, job.ID); err != nil {
			return 0, fmt.Errorf("job %s: dropping the completed job's input: %w", id, err)
		}
		kinds = kinds[1:]
	}
	total := 0
	for _, kind := range kinds {
		n, err := clientstore.Of(c).RewriteSlices(ctx, job.ID, string(kind), func(num int64, sub string, sealed []byte) ([]byte, error) {
			if sub != "" {
				return slice.Rewrap(codec, slice.Kind(sub), num, sealed) // an output category
			}
			return slice.Rewrap(codec, kind, num, sealed)
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("job %s: re-encrypting %s slices: %w", id, kind, err)
		}
	}
	// The operators' fixes of failed records, and the retry plans that
	// carry copies of slices and fixes.
	if _, err := clientstore.Of(c).RewrapFixes(ctx, job.ID, func(kind string, slot int64, sealed []byte) ([]byte, error) {
		return slice.Rewrap(codec, slice.Kind(kind), slot, sealed)
	}); err != nil {
		return total, fmt.Errorf("job %s: re-encrypting fixes of failed records: %w", id, err)
	}
	var header []byte // re-sealed under the current key
	if job.SealedHeader != nil {
		if header, err = slice.Rewrap(codec, slice.Header, 0, job.SealedHeader); err != nil {
			return total, fmt.Errorf("job %s: header: %w", id, err)
		}
	}
	if _, err := clientstore.Of(c).Do(ctx, (*model.Job)(job), store.Rekey(c.Keyring().Current(), header), "rekey"); err != nil {
		return total, err
	}
	return total, nil
}
