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
// Lines keeps every byte of a line (invalid UTF-8 and NUL included; mixed
// line endings come back exactly: a line that ended in CRLF keeps its CR in
// its record, and the function of a lines type sees the line without it);
// JSONL skips blank lines. The tabular formats are CSV, PSV ("|"), TSV
// (tab), fixed width (declared names and widths) and XLSX (import
// sliced/xlsx): their records are rows of fields (EncodeFields) and the job
// keeps the header. A quoted field keeps its bytes exactly (CRLF included);
// a UTF-8 BOM is skipped and written back; LenientQuotes accepts `12" pipe`.
// A tabular type's uploads may be any tabular format, chosen by
// UploadOptions.Format or the file name (orders.psv.gz), and its output any
// of csv, psv, tsv, jsonl (one object per row keyed by the header) or xlsx
// (Options.OutputFormat, UploadOptions.OutputFormat, DownloadAs).
//
// Bad input is an *InputError that names the line or byte offset. A record
// is at most MaxRecordSize bytes. A tabular type (Options.Columns) or an
// upload (UploadOptions.Columns) can require and allow header columns: a
// file that fails is refused before anything is stored, with a
// *ColumnError.
//
// # Typed rows
//
// RegisterRows[In, Out] decodes each row into a struct whose fields name
// their columns (`rocketjob:"amount"`), converting numbers, booleans and
// times; a field that does not convert fails its record with a *FieldError
// naming the column, and Out's columns are the output's header. In's
// columns are required at upload. RowDecoder and RowEncoder do the same
// outside a job.
//
// # Dirmon
//
// A DirmonEntry (AddDirmon, `rocketjob dirmon add`) turns the files dropped
// into a folder into jobs: servers started with Dirmon roots scan the
// entries under their roots, take each file once it is unchanged between
// two scans, upload it (exactly one job per file, whoever dies when) and
// move it to the entry's archive folder, or to its failed folder with a
// NAME.reason file when the upload is refused. DirmonFiles lists the files
// taken.
//
// # Fixing failed records
//
// While a job is failed, FixFailedRecord corrects one of its failed
// records and DeleteFailedRecord drops one, each written to the job's
// history (rocketjob.Client.History); the job's retry then runs only its
// failed records, as fixed, and keeps the others' outputs in place, in
// input order, exactly once. FailedRecords and GetFailedRecord show them
// with their pending fixes.
//
// # Encrypted files
//
// Package sliced/pgp decrypts OpenPGP input in front of Upload and
// encrypts output behind Download, with keys from files.
package sliced
