package sliced

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/rocketjob-go/rocketjob/internal/clientjob"
	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/slice"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// ErrNoCategory is wrapped by the error of a download that names an output
// category the job does not have, or that names none for a job whose
// outputs are all in categories.
var ErrNoCategory = errors.New("no such output category")

// DownloadCategory writes one output category of a sliced job (a type with
// Categories) to w, in input order, in the shape of the job's output (as
// Download writes it: format, header, line endings). It returns the number of records written. Like Download it never
// reports success with records missing: once the job's counts are final
// (ExpectedCounts) the work database must hold every record of the
// category, or it fails with an *IncompleteError.
func DownloadCategory(ctx context.Context, c *rocketjob.Client, id, category string, w io.Writer) (int64, error) {
	job, err := slicedJob(ctx, c, id)
	if err != nil {
		return 0, err
	}
	if err := checkCategory(job, category); err != nil {
		return 0, err
	}
	codec, err := clientjob.Codec(c, job)
	if err != nil {
		return 0, err
	}
	header, err := Header(c, job)
	if err != nil {
		return 0, err
	}
	r := &slice.Reader{Store: clientstore.Of(c), Codec: codec, Job: job.ID, Category: category}
	if _, _, final := ExpectedCounts(job); final {
		r.Want = job.Categories[category]
	}
	wr := NewWriter(w, jobWriterOptions(job, header)) // the shape of the job's output
	var n int64
	for rec, err := range r.Output(ctx) {
		if err != nil {
			return n, destroyed(ctx, c, id, AsIncomplete(job, fmt.Errorf("download of output %s of job %s: %w", category, id, err)))
		}
		if err := wr.Write(rec); err != nil {
			return n, err
		}
		n++
	}
	return n, wr.Close()
}

// checkCategory refuses a category job does not have.
func checkCategory(job *rocketjob.Job, category string) error {
	if slices.Contains(job.CategoryNames, category) {
		return nil
	}
	if len(job.CategoryNames) == 0 {
		return fmt.Errorf("%w: job %s has no output categories (download its output without one)", ErrNoCategory, job.ID.Hex())
	}
	return fmt.Errorf("%w: job %s has no output %q (its categories: %s)", ErrNoCategory, job.ID.Hex(), category, strings.Join(job.CategoryNames, ", "))
}
