package sliced

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/clientjob"
	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/slice"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// ErrBadOptions is wrapped by the errors about upload options that cannot
// work (a simple job type, a slice size out of range, ...): nothing is
// written when it is returned.
var ErrBadOptions = errors.New("invalid upload options")

// Upload limits.
const (
	// MaxSliceBytes closes a slice early when its records reach this size, so
	// a slice of long lines stays well under MongoDB's 16 MB document limit.
	MaxSliceBytes = 4 << 20
	// uploadBatchBytes is how much slice data one insertMany carries.
	uploadBatchBytes = 8 << 20
)

// UploadOptions are per-job settings of an upload; nil means the type's defaults.
type UploadOptions struct {
	// Priority 1..100 (1 runs first); 0 means the type's default.
	Priority int
	// Description is free text shown in listings.
	Description string
	// RunAt delays processing until then.
	RunAt time.Time
	// SliceSize is the number of records per slice; 0 means the type's.
	SliceSize int
	// Format overrides the type's input format (lines, csv, psv, tsv,
	// fixed, xlsx, jsonl). Empty means the type's, except that for a
	// tabular type a file Name ending in another tabular format's
	// extension (.psv, .tsv, .xlsx, ...) is read as that format.
	Format Format
	// OutputFormat, for tabular input, is the format the download writes
	// (csv, psv, tsv, xlsx or jsonl: one object per row keyed by the
	// header); empty means the type's, else the input's.
	OutputFormat Format
	// LenientQuotes accepts bare quotes in CSV, PSV and TSV input (see
	// ReaderOptions.LenientQuotes), in addition to the type's setting.
	LenientQuotes bool
	// Header declares the column names of a tabular file without a header
	// row (and, with Widths, the layout of a fixed-width file), in place
	// of the type's.
	Header []string
	// Widths are the column widths of fixed-width input, one per Header
	// name.
	Widths []int
	// Sheet names the sheet of XLSX input to read; empty means the first.
	Sheet string
	// Name is the file name, used to detect compression and in messages.
	Name string
	// Window restricts processing to a daily window; nil means any time.
	Window *rocketjob.Window
	// MaxWorkers, when above zero, caps the workers processing the job at
	// once, across all servers; throttled workers take other jobs meanwhile.
	MaxWorkers int
	// ExpiresAt: a job not started by then is aborted as expired.
	ExpiresAt time.Time
	// DependsOn holds ids of jobs that must complete before this one starts.
	DependsOn []string
	// Columns are header checks of a CSV upload, made in addition to the
	// type's (Options.Columns): an upload can add checks, never loosen the
	// type's. nil adds none.
	Columns *Columns
	// ID is the new job's id; zero means a fresh one. A caller that must
	// make one job of an input whatever happens (Dirmon, after a crash)
	// picks the id before the first attempt, checks that no job has it, and
	// uploads under it: the job is written last, so an upload cut short
	// leaves no job, and a second job with the same id cannot be written.
	ID bson.ObjectID
	// CollectOutput, DestroyOnComplete, StopOnError, Encrypt and Compress
	// override the type's defaults when not nil.
	CollectOutput, DestroyOnComplete, StopOnError, Encrypt, Compress *bool
	// Params are the job's parameters, for a type registered with Register:
	// its parameter struct P (or *P), a bson.Raw or a map. They are decoded
	// and validated before anything is stored (an error wrapping
	// rocketjob.ErrBadArgs); nil means P's zero value.
	Params any
	// NotifyURL, when set, receives one JSON POST when the job completes,
	// fails or is aborted (see server.Config.WebhookSecret): an absolute
	// http or https URL.
	NotifyURL string
}

// Upload streams r (compressed with gzip, zstd, bzip2 or zip, or plain) into a new
// sliced job of type typ and returns the job. The job becomes runnable only
// once every slice is stored: a failed or interrupted upload (ctx ended)
// leaves no job: the batch being written is let finish for a few seconds,
// then its partial slices are dropped, within cleanupTimeout. Bad input is
// an *InputError naming the line or byte offset; a full disk wraps
// store.ErrDiskFull and says where it is. Upload returns when ctx ends only
// once a read from r returns: wrap a reader that can block for long (a pipe,
// a terminal) so that its reads end with ctx.
func Upload(ctx context.Context, c *rocketjob.Client, typ string, r io.Reader, opts *UploadOptions) (*rocketjob.Job, error) {
	if opts == nil {
		opts = &UploadOptions{}
	}
	job, spec, err := newJob(ctx, c, typ, opts)
	if err != nil {
		return nil, err
	}
	format, err := uploadFormat(Format(spec.Format), opts)
	if err != nil {
		return nil, err
	}
	job.Format = string(format)
	rules, err := uploadColumns(c, typ, format, opts.Columns)
	if err != nil {
		return nil, err
	}
	ropts, outFormat, err := uploadReaderOptions(c, typ, format, opts)
	if err != nil {
		return nil, err
	}
	src := r
	if format != XLSX { // a workbook is a zip archive itself
		in, err := OpenInput(r, opts.Name)
		if err != nil {
			return nil, err
		}
		defer in.Close()
		src = in
	}
	rd := NewReaderOptions(src, ropts)
	defer rd.Close()
	// With column checks, the header is read and checked before anything
	// is stored; the first record read with it is stored first.
	var first []byte
	haveFirst := false
	if len(rules) > 0 {
		rec, err := rd.Next()
		first, haveFirst = rec, err == nil
		if err == nil || errors.Is(err, io.EOF) {
			if err := checkColumns(rd.Header(), rules...); err != nil {
				return nil, &InputError{Line: rd.headerLine, Offset: -1, Err: err}
			}
		}
	}
	err = storeRecords(ctx, c, job, func(yield func([]byte) bool) error {
		if haveFirst && !yield(first) {
			return nil
		}
		for {
			rec, err := rd.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if !yield(rec) {
				return nil
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if err := setHeader(c, job, rd.Header()); err != nil {
		return nil, failUpload(ctx, c, job, err)
	}
	finishTable(c, job, rd, outFormat)
	return job, insertJob(ctx, c, job)
}

// UploadRecords stores the records of seq (each one line of a Lines job, or
// one JSON value of a JSONL job) into a new sliced job, like Upload.
func UploadRecords(ctx context.Context, c *rocketjob.Client, typ string, seq iter.Seq[[]byte], opts *UploadOptions) (*rocketjob.Job, error) {
	if opts == nil {
		opts = &UploadOptions{}
	}
	job, spec, err := newJob(ctx, c, typ, opts)
	if err != nil {
		return nil, err
	}
	job.Format = spec.Format
	if rules, err := uploadColumns(c, typ, Format(spec.Format), opts.Columns); err != nil {
		return nil, err
	} else if len(rules) > 0 {
		return nil, fmt.Errorf("%w: job type %q checks the columns of a CSV header: upload a file with one (Upload) instead of records", ErrBadOptions, typ)
	}
	err = storeRecords(ctx, c, job, func(yield func([]byte) bool) error {
		for rec := range seq {
			if len(rec) > MaxRecordSize {
				return fmt.Errorf("%w (%d bytes)", ErrRecordTooLong, len(rec))
			}
			if !yield(rec) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return job, insertJob(ctx, c, job)
}

// UploadRange creates a sliced job whose records are the integer ranges
// "first,last" covering [start, end] in steps of step numbers (the job's
// function parses them), one range per slice: for jobs that walk a database
// by id instead of reading a file.
func UploadRange(ctx context.Context, c *rocketjob.Client, typ string, start, end, step int64, opts *UploadOptions) (*rocketjob.Job, error) {
	if step < 1 || end < start {
		return nil, fmt.Errorf("range [%d, %d] step %d: need start <= end and step >= 1", start, end, step)
	}
	o := UploadOptions{}
	if opts != nil {
		o = *opts
	}
	o.SliceSize = 1
	return UploadRecords(ctx, c, typ, func(yield func([]byte) bool) {
		for a := start; a <= end; a += step {
			b := min(a+step-1, end)
			if !yield(fmt.Appendf(nil, "%d,%d", a, b)) || b == end {
				return
			}
		}
	}, &o)
}

// uploadColumns returns the column checks of an upload of type typ in
// format: the type's and the upload's own. Checks on a format without a
// header are an ErrBadOptions error (nothing could check them).
func uploadColumns(c *rocketjob.Client, typ string, format Format, own *Columns) ([]*Columns, error) {
	var rules []*Columns
	if t := TypeColumns(c.Registry(), typ); !t.empty() {
		if !format.Tabular() {
			return nil, fmt.Errorf("%w: job type %q checks the columns of its header: it cannot take %s input", ErrBadOptions, typ, format)
		}
		rules = append(rules, t)
	}
	if !own.empty() {
		if !format.Tabular() {
			return nil, fmt.Errorf("%w: column checks need tabular input such as csv (got %s)", ErrBadOptions, format)
		}
		if err := own.validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadOptions, err)
		}
		rules = append(rules, own.clone())
	}
	return rules, nil
}

func newJob(ctx context.Context, c *rocketjob.Client, typ string, opts *UploadOptions) (*rocketjob.Job, *rocketjob.TypeSpec, error) {
	spec, err := c.Registry().Lookup(typ)
	if err != nil {
		return nil, nil, err
	}
	if spec.Kind != rocketjob.KindSliced {
		return nil, nil, fmt.Errorf("%w: job type %q is a simple job: enqueue it instead of uploading a file", ErrBadOptions, typ)
	}
	built, err := clientjob.New(ctx, c, spec, &rocketjob.EnqueueOptions{
		Priority: opts.Priority, RunAt: opts.RunAt, Description: opts.Description,
		ExpiresAt: opts.ExpiresAt, DependsOn: opts.DependsOn, Window: opts.Window,
	})
	if err != nil {
		return nil, nil, err
	}
	job := built.(*rocketjob.Job)
	if err := setBatch(c, spec, job, opts); err != nil {
		return nil, nil, err
	}
	if !opts.ID.IsZero() {
		// An upload under the id of an existing job would drop that job's
		// slices when its own insert failed.
		if _, err := c.Get(ctx, opts.ID.Hex()); err == nil {
			return nil, nil, fmt.Errorf("%w: a job with id %s exists already", ErrBadOptions, opts.ID.Hex())
		} else if !errors.Is(err, rocketjob.ErrJobNotFound) {
			return nil, nil, err
		}
		job.ID = opts.ID
	}
	job.SliceSize = spec.SliceSize
	if opts.SliceSize != 0 {
		job.SliceSize = opts.SliceSize
	}
	if job.SliceSize < 1 || job.SliceSize > 100_000 {
		return nil, nil, fmt.Errorf("%w: slice size must be between 1 and 100000 (got %d)", ErrBadOptions, job.SliceSize)
	}
	job.CollectOutput = pick(opts.CollectOutput, spec.CollectOutput)
	job.DestroyOnComplete = pick(opts.DestroyOnComplete, spec.DestroyOnComplete)
	job.StopOnError = pick(opts.StopOnError, spec.StopOnError)
	job.SliceRetryLimit = spec.SliceRetryLimit
	if job.MaxWorkers = opts.MaxWorkers; job.MaxWorkers < 0 {
		return nil, nil, fmt.Errorf("%w: max workers must not be negative (got %d)", ErrBadOptions, job.MaxWorkers)
	}
	job.Encrypt = pick(opts.Encrypt, spec.Encrypt)
	job.Compress = pick(opts.Compress, spec.Compress)
	if job.Encrypt {
		if c.Keyring() == nil {
			return nil, nil, fmt.Errorf("job type %q: cannot encrypt: %w", typ, encryption.ErrNoKeyring)
		}
		job.KeyID = c.Keyring().Current()
	}
	return job, spec, nil
}

func pick(p *bool, def bool) bool {
	if p != nil {
		return *p
	}
	return def
}

// setHeader keeps the CSV header on the job, sealed when the job is encrypted.
func setHeader(c *rocketjob.Client, job *rocketjob.Job, header []string) error {
	if header == nil {
		return nil
	}
	if !job.Encrypt {
		job.Header = header
		return nil
	}
	codec, err := clientjob.Codec(c, job)
	if err != nil {
		return err
	}
	job.SealedHeader, err = slice.Seal(codec, slice.Header, 0, EncodeFields(nil, header))
	return err
}

// Header returns a job's CSV header, opening it when the job is encrypted.
func Header(c *rocketjob.Client, job *rocketjob.Job) ([]string, error) {
	if job.SealedHeader == nil {
		return job.Header, nil
	}
	codec, err := clientjob.Codec(c, job)
	if err != nil {
		return nil, err
	}
	plain, err := slice.Open(codec, slice.Header, 0, job.SealedHeader)
	if err != nil {
		return nil, fmt.Errorf("job %s: header: %w", job.ID.Hex(), err)
	}
	return DecodeFields(plain)
}

// insertGrace is how long a batch of slices being written when the upload's
// context ends may still take: cutting it off on the client would leave the
// server writing it after the clean-up has dropped the collection.
const insertGrace = 5 * time.Second

// storeRecords packs the records from next into slices and bulk-inserts them.
// On any error, or when ctx ends, it drops what it stored, so no half-job
// remains.
func storeRecords(ctx context.Context, c *rocketjob.Client, job *rocketjob.Job, next func(yield func([]byte) bool) error) (err error) {
	slices := clientstore.Of(c).Slices()
	codec, err := clientjob.Codec(c, job)
	if err != nil {
		return err
	}
	ictx, icancel := linger(ctx, insertGrace)
	defer icancel()
	defer func() {
		if err != nil {
			err = failUpload(ctx, c, job, err)
		}
	}()
	if err := slices.Prepare(ictx, job.ID); err != nil {
		return err
	}
	var (
		batch      []store.InputSlice
		batchBytes int
		cur        store.InputSlice
		num        int64
		records    int64
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := slices.InsertInput(ictx, job.ID, batch)
		batch = make([]store.InputSlice, 0, len(batch))
		batchBytes = 0
		return err
	}
	closeSlice := func() error {
		if cur.Count == 0 {
			return nil
		}
		job.RawBytes += int64(len(cur.Records))
		sealed, err := slice.Seal(codec, slice.Input, cur.Num, cur.Records)
		if err != nil {
			return fmt.Errorf("sealing slice %d: %w", cur.Num, err)
		}
		cur.Records = sealed
		job.StoredBytes += int64(len(sealed))
		batch = append(batch, cur)
		batchBytes += len(cur.Records)
		cur = store.InputSlice{}
		if batchBytes >= uploadBatchBytes || len(batch) >= 1000 {
			return flush()
		}
		return nil
	}
	var inner error
	err = next(func(rec []byte) bool {
		if cur.Count == 0 {
			num++
			cur = store.InputSlice{Num: num, First: records + 1, Records: make([]byte, 0, 4096)}
		}
		cur.Records = slice.Append(cur.Records, rec)
		cur.Count++
		records++
		if cur.Count >= job.SliceSize || len(cur.Records) >= MaxSliceBytes {
			if inner = closeSlice(); inner != nil {
				return false
			}
		}
		return ctx.Err() == nil
	})
	if err == nil {
		err = inner
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = closeSlice()
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	job.RecordCount, job.SliceCount = records, num
	return nil
}

// insertJob writes the job document, which makes the upload a job. It is
// not written once ctx has ended; a write in flight then is let finish
// (insertGrace), so it cannot land after the clean-up.
func insertJob(ctx context.Context, c *rocketjob.Client, job *rocketjob.Job) error {
	if err := ctx.Err(); err != nil {
		return failUpload(ctx, c, job, err)
	}
	ictx, cancel := linger(ctx, insertGrace)
	defer cancel()
	if err := clientstore.Of(c).InsertJob(ictx, (*model.Job)(job)); err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_ = clientstore.Of(c).DeleteJob(dctx, job.ID) // in case the insert went through after all
		return failUpload(ctx, c, job, err)
	}
	return nil
}

// linger returns a context that ends grace after ctx ends (or when cancel is
// called).
func linger(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(lctx, func() { t.Stop() })
	})
	return lctx, func() { stop(); cancel() }
}

// cleanupTimeout bounds the clean-up of a failed upload: with the database
// gone it cannot succeed, and servers drop leftover slices a day later.
const cleanupTimeout = 10 * time.Second

// failUpload drops the slices of an upload that failed with err and returns
// the error to report: where the disk is when it is full, and whether the
// partial slices could not be removed. No job document exists yet, so
// slices it cannot drop are never run.
func failUpload(ctx context.Context, c *rocketjob.Client, job *rocketjob.Job, err error) error {
	err = clientstore.Of(c).Locate(ctx, err)
	if derr := dropUpload(ctx, c, job); derr != nil {
		return fmt.Errorf("upload: %w; %w", err, &CleanupError{Job: job.ID.Hex(), Err: derr})
	}
	if errors.Is(err, store.ErrDiskFull) {
		return fmt.Errorf("upload: %w; the partial upload was removed", err)
	}
	return fmt.Errorf("upload: %w", err)
}

// dropUpload drops the slice collections of a failed upload and checks that
// they are gone, retrying until they are or cleanupTimeout has passed: on a
// full disk the embedded database frees its reserve a moment after the
// failed write, and a write cut off on the client may still land.
func dropUpload(ctx context.Context, c *rocketjob.Client, job *rocketjob.Job) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	prefix := "slices_" + job.ID.Hex() + "_"
	delay := 20 * time.Millisecond
	for {
		err := clientstore.Of(c).Slices().Drop(dctx, job.ID)
		if err == nil {
			var names []string
			if names, err = clientstore.Of(c).WorkCollections(dctx); err == nil {
				i := slices.IndexFunc(names, func(n string) bool { return strings.HasPrefix(n, prefix) })
				if i < 0 {
					return nil
				}
				err = fmt.Errorf("collection %s is still there", names[i])
			}
		}
		select {
		case <-dctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// CleanupError is part of an upload's error when the slices it had stored
// could not be dropped. No job document refers to them, so they are never
// run; servers drop such slices a day later.
type CleanupError struct {
	Job string // the id the job would have had
	Err error
}

func (e *CleanupError) Error() string {
	why := firstLine(e.Err)
	if errors.Is(e.Err, store.ErrDiskFull) {
		why = "the disk is still full"
	}
	return fmt.Sprintf("its partial slices (job %s) could not be removed (%s): a server drops them a day later", e.Job, why)
}

func (e *CleanupError) Unwrap() error { return e.Err }

// firstLine is the first line of err's message, without FerretDB's source
// locations.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return store.StripFrames(s)
}
