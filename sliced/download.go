package sliced

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/clientjob"
	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/slice"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// ErrIncomplete is matched (with errors.Is) by every *IncompleteError: a
// download found fewer records than its job recorded.
var ErrIncomplete = errors.New("download incomplete")

// Values of IncompleteError.Kind: which records a download lacks.
const (
	// OutputKind names the output records.
	OutputKind = "output"
	// FailedKind names the failed records.
	FailedKind = "failed"
)

// IncompleteError is the error of a download that found fewer records in
// the work database than the job document records: the client looks at
// another work database than the one the job was processed on, the work
// database lost the job's slices, or they were dropped meanwhile. Match it
// with errors.As, or errors.Is(err, ErrIncomplete).
type IncompleteError struct {
	JobID string
	// Kind is OutputKind for the output records, FailedKind for the failed
	// records.
	Kind string
	// Want is how many records the job document records (0 when its
	// counts are not final yet: see ExpectedCounts); Got how many the
	// download found. Failed records count the input records they stand
	// for (a slice that failed as a whole is one row for all its records).
	Want, Got int64
	// Slice, when not 0, is the first slice that the work database records
	// as finished but whose records (of Kind) are gone from it; Slices is
	// how many such slices there are. The embedded database (FerretDB)
	// names them; on MongoDB a loss shows in the counts alone.
	Slice  int64
	Slices int
}

func (e *IncompleteError) Error() string {
	what := "output records"
	if e.Kind == FailedKind {
		what = "failed records"
	}
	if e.Slice == 0 {
		return fmt.Sprintf("job %s: only %d of its %d %s are in the work database (a different work database than the job ran on, or its slices were lost)",
			e.JobID, e.Got, e.Want, what)
	}
	if e.Want == 0 {
		return fmt.Sprintf("job %s: the work database lost %s; %d %s found", e.JobID, e.Lost(), e.Got, what)
	}
	return fmt.Sprintf("job %s: only %d of its %d %s are in the work database: it lost %s", e.JobID, e.Got, e.Want, what, e.Lost())
}

// Lost names the slices whose records are gone ("the output of finished
// slice 3"), or is empty when the loss shows in the counts alone.
func (e *IncompleteError) Lost() string {
	what := "the output"
	if e.Kind == FailedKind {
		what = "the failed records"
	}
	switch {
	case e.Slice == 0:
		return ""
	case e.Slices > 1:
		return fmt.Sprintf("%s of %d finished slices (the first: slice %d)", what, e.Slices, e.Slice)
	default:
		return fmt.Sprintf("%s of finished slice %d", what, e.Slice)
	}
}

// Is makes errors.Is(err, ErrIncomplete) match.
func (e *IncompleteError) Is(target error) bool { return target == ErrIncomplete }

// ExpectedCounts returns how many output records and failed records a
// download of job must deliver, as its job document records them, and
// whether those counts are final. They are final when the job completed, or
// failed after all its records were processed (not a stop_on_error job,
// which fails at its first failed record before the counts are written).
// Output is the processed records minus the failed and dropped ones (0
// when the job does not collect its output, or has output categories: see
// Job.Categories).
func ExpectedCounts(job *rocketjob.Job) (output, failed int64, final bool) {
	switch {
	case job.Kind != rocketjob.KindSliced:
		return 0, 0, false
	case job.State == rocketjob.StateCompleted:
	case job.State == rocketjob.StateFailed && !job.StopOnError && job.ProcessedCount == job.RecordCount:
	default:
		return 0, 0, false
	}
	if job.CollectOutput && len(job.CategoryNames) == 0 {
		// Records the job's code gave no output (DroppedCount) have none.
		output = job.ProcessedCount - job.FailedRecordCount - job.DroppedCount
	}
	return output, job.FailedRecordCount, true
}

// Download writes a sliced job's output records to w in input order (output
// line N belongs to input record N, minus failed records), in the job's
// format: CSV gets its header back, line endings and a missing final newline
// are kept. It streams; memory stays bounded. It returns the number of
// records written.
//
// A download never reports success with records missing: when the job's
// counts are final (see ExpectedCounts) and the work database holds fewer
// output records, or when it lacks the output of a slice it records as
// finished (whatever the job's state), it fails with an *IncompleteError; a job destroyed during
// the download fails with an error wrapping rocketjob.ErrJobNotFound. When
// the records are missing altogether (or the output fits the write buffer),
// nothing at all is written to w before the error.
func Download(ctx context.Context, c *rocketjob.Client, id string, w io.Writer) (int64, error) {
	return DownloadAs(ctx, c, id, "", w)
}

// DownloadAs is Download with the output written in format instead of the
// job's output format (empty means the job's): a job of tabular records
// (csv, psv, tsv, fixed, xlsx) can be written as any of csv, psv, tsv,
// xlsx or jsonl, the header kept; other jobs only in their own format
// (an error wrapping ErrBadOptions says so before anything is written).
func DownloadAs(ctx context.Context, c *rocketjob.Client, id string, format Format, w io.Writer) (int64, error) {
	job, err := slicedJob(ctx, c, id)
	if err != nil {
		return 0, err
	}
	if len(job.CategoryNames) > 0 {
		return 0, fmt.Errorf("%w: job %s has its output in categories: download one of them (%s)", ErrNoCategory, id, strings.Join(job.CategoryNames, ", "))
	}
	if !job.CollectOutput {
		return 0, fmt.Errorf("job %s does not collect its output", id)
	}
	codec, err := clientjob.Codec(c, job)
	if err != nil {
		return 0, err
	}
	header, err := Header(c, job)
	if err != nil {
		return 0, err
	}
	wo, err := downloadWriterOptions(job, header, format)
	if err != nil {
		return 0, err
	}
	wr := NewWriter(w, wo)
	var n int64
	err = func() error {
		for rec, err := range reader(c, job, codec, OutputKind).Output(ctx) {
			if err != nil {
				return err
			}
			if err := wr.Write(rec); err != nil {
				return err
			}
			n++
		}
		return nil
	}()
	// The stream checked the count before Close flushes the buffered
	// records and the header.
	if err != nil {
		return n, destroyed(ctx, c, id, AsIncomplete(job, fmt.Errorf("download of job %s: %w", id, err)))
	}
	return n, wr.Close()
}

// DownloadFailed writes a sliced job's failed records to w as CSV with the
// columns record (1-based record number), error and input (the record as
// uploaded; a CSV row as one CSV line), in record order. It returns the
// number of failed records written.
//
// Like Download, it fails with an *IncompleteError (and writes nothing when
// none is found) when the job's counts are final and the work database
// holds fewer failed records than the job records, or when it lacks the
// failed records of a slice it records as finished.
func DownloadFailed(ctx context.Context, c *rocketjob.Client, id string, w io.Writer) (int64, error) {
	job, err := slicedJob(ctx, c, id)
	if err != nil {
		return 0, err
	}
	codec, err := clientjob.Codec(c, job)
	if err != nil {
		return 0, err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"record", "error", "input"}); err != nil {
		return 0, err
	}
	var n int64
	err = func() error {
		for f, err := range reader(c, job, codec, FailedKind).Failures(ctx) {
			if err != nil {
				return err
			}
			input, err := failedInput(job, f.Record)
			if err != nil {
				return err
			}
			if err := cw.Write([]string{strconv.FormatInt(f.Number, 10), f.Message, input}); err != nil {
				return err
			}
			n++
		}
		return nil
	}()
	if err != nil {
		return n, destroyed(ctx, c, id, AsIncomplete(job, fmt.Errorf("failed records of job %s: %w", id, err)))
	}
	cw.Flush()
	return n, cw.Error()
}

// reader is the stream of job's records of kind (OutputKind or FailedKind)
// in input order. When the job's counts are final (ExpectedCounts) it fails
// closed: the work database must hold every record the job recorded.
func reader(c *rocketjob.Client, job *rocketjob.Job, codec *encryption.Codec, kind string) *slice.Reader {
	output, failed, final := ExpectedCounts(job)
	r := &slice.Reader{Store: clientstore.Of(c), Codec: codec, Job: job.ID}
	switch {
	case !final:
	case kind == FailedKind:
		r.Want = failed
	default:
		r.Want = output
	}
	return r
}

// AsIncomplete returns err as an *IncompleteError when it comes from a
// stream of job's records that came up short of the job's final counts, or
// found slices the work database records as finished without their records;
// other errors (and nil) come back unchanged. Download and DownloadFailed do
// this themselves; it serves other readers of a job's stored records, such
// as the REST API's pages of records.
func AsIncomplete(job *rocketjob.Job, err error) error {
	if job == nil {
		return err
	}
	var short *slice.ShortError
	if errors.As(err, &short) {
		kind := OutputKind
		if short.Kind == slice.Failed {
			kind = FailedKind
		}
		return &IncompleteError{JobID: job.ID.Hex(), Kind: kind, Want: short.Want, Got: short.Got}
	}
	var sm *store.SliceMissingError
	if !errors.As(err, &sm) {
		return err
	}
	kind := OutputKind
	if sm.Kind == "failed" {
		kind = FailedKind
	}
	ie := &IncompleteError{JobID: job.ID.Hex(), Kind: kind, Got: sm.Found, Slice: sm.Num, Slices: sm.Missing}
	if output, failed, final := ExpectedCounts(job); final {
		ie.Want = output
		if kind == FailedKind {
			ie.Want = failed
		}
	}
	return ie
}

// destroyed explains err, a download that failed or came up short, by the
// job having been destroyed meanwhile when it is gone now.
func destroyed(ctx context.Context, c *rocketjob.Client, id string, err error) error {
	if ctx.Err() != nil {
		return err
	}
	if _, gerr := c.Get(ctx, id); errors.Is(gerr, rocketjob.ErrJobNotFound) {
		return fmt.Errorf("job %s was destroyed during the download: %w", id, rocketjob.ErrJobNotFound)
	}
	return err
}

// CSVLine turns a CSV record (packed fields, see EncodeFields) back into one
// CSV line without its line ending.
func CSVLine(rec []byte) (string, error) {
	fields, err := DecodeFields(rec)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	cw := csv.NewWriter(&b)
	if err := cw.Write(fields); err != nil {
		return "", err
	}
	cw.Flush()
	return strings.TrimSuffix(b.String(), "\n"), cw.Error()
}

// failedInput is a failed record's input column: the record as uploaded, a
// CSV row as one CSV line.
func failedInput(job *rocketjob.Job, rec []byte) (string, error) {
	if !Format(job.Format).Tabular() || len(rec) == 0 {
		if job.KeepCR {
			rec = bytes.TrimSuffix(rec, []byte("\r"))
		}
		return string(rec), nil
	}
	return CSVLine(rec)
}

func slicedJob(ctx context.Context, c *rocketjob.Client, id string) (*rocketjob.Job, error) {
	job, err := c.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if job.Kind != rocketjob.KindSliced {
		return nil, fmt.Errorf("job %s is a simple job: it has no records to download", id)
	}
	return job, nil
}
