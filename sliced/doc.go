// Package sliced runs jobs over files of millions of records: the records are
// grouped into slices (default 100 records) stored in per-job collections on
// the work database, and every worker of every server claims slices
// atomically.
//
// # Job types
//
// Register a function per record; returning an error makes that record a
// failed record (stored with its record number and the error) and the rest
// of the slice goes on:
//
//	sliced.RegisterLines(reg, "upcase", func(ctx context.Context, line string) (string, error) {
//		return strings.ToUpper(line), nil
//	}, &sliced.Options{SliceSize: 500})
//
//	sliced.RegisterCSV(reg, "totals", func(ctx context.Context, header, row []string) ([]string, error) {...}, nil)
//	sliced.RegisterJSONL(reg, "enrich", func(ctx context.Context, in Order) (Enriched, error) {...}, nil)
//
// Options add Before and After hooks (After runs exactly once, on one server,
// after the last slice), StopOnError, DestroyOnComplete and DiscardOutput.
//
// # Batch jobs: parameters, output categories, statistics, end hooks
//
// Register declares a type the way RocketJob's batch jobs are written:
// typed parameters P (validated at upload, before anything is stored),
// named output categories, statistics and hooks that run once when a job
// completes, fails or is aborted:
//
//	sliced.Register(reg, "import_users", sliced.Type[ImportParams]{
//		Format:     sliced.CSV,
//		Categories: []string{"imported", "rejected"},
//		Perform: func(ctx context.Context, p ImportParams, rec []byte) ([]rocketjob.Output, error) {
//			rocketjob.Inc(ctx, "imported", 1)
//			return sliced.To("imported", rec), nil
//		},
//		OnComplete: func(ctx context.Context, job *rocketjob.Job, p ImportParams) error {...},
//	})
//
// A record may give no output (dropped: counted in Job.DroppedCount), one,
// or several; each category is stored (sealed like any output), counted
// (Job.Categories) and downloaded on its own in input order
// (DownloadCategory). RecordNumber(ctx) is the record's 1-based number. A
// slice's statistics and category outputs are stored with its output, so a
// slice that runs twice after a crash counts once. UploadOptions.Params
// and UploadOptions.NotifyURL (a webhook POSTed once when the job ends)
// are per upload.
//
// # Upload and download
//
// Upload streams a file (plain, gzip, zstd, bzip2, or zip with one entry;
// detected by magic bytes) into a new job; the job becomes runnable only once every
// slice is stored, so a failed upload leaves nothing behind. UploadRecords
// takes an iterator and UploadRange integer ranges. Download writes the output
// in input order, in the input's shape (CSV header, line endings, final
// newline); DownloadFailed writes the failed records as CSV (record, error,
// input). Memory stays bounded: nothing holds a file or a collection.
//
// # Formats
//
// Lines keeps every byte of a line (invalid UTF-8 and NUL included); CSV
// keeps the header on the job; JSONL skips blank lines. Bad input is an
// *InputError that names the line or byte offset. A record is at most
// MaxRecordSize bytes. A CSV type (Options.Columns) or an upload
// (UploadOptions.Columns) can require and allow header columns: a file that
// fails is refused before anything is stored, with a *ColumnError.
package sliced
