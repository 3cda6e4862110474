package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/internal/jobparams"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
	"github.com/rocketjob-go/rocketjob/sliced/pgp"
)

func uploadCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "upload",
		Usage:     "upload a file (or stdin) into a new sliced job; prints the job id",
		ArgsUsage: "FILE|-",
		UsageText: usageText("rocketjob upload --job TYPE [--priority N] [--slice-size N] [--format lines|csv|psv|tsv|fixed|xlsx|jsonl] [--output-format FORMAT] [--lenient-quotes] [--columns A,B [--widths N,N]] [--sheet NAME] [--pgp-key KEYFILE] [--require-columns A,B] [--allow-columns A,B] [--description TEXT] [--param K=V ...] [--notify URL] [--no-output] [--encrypt] [--compress] [--stop-on-error] [--run-at T] [--expires-at T] [--after ID ...] FILE|-",
			"rocketjob upload --job reverse input.txt",
			"rocketjob upload --job prefix --param text='> ' --notify https://hooks.example.com/rj input.txt",
			"rocketjob upload --job reverse --priority 10 --slice-size 500 input.txt.gz",
			"ROCKETJOB_KEYS=$(rocketjob keys generate) rocketjob upload --job upcase --encrypt --compress cards.txt",
			"gunzip -c big.csv.gz | rocketjob upload --job my_csv_job --format csv -",
			"rocketjob upload --job my_csv_job --format csv --require-columns id,amount --allow-columns note partner.csv.bz2",
			"rocketjob upload --job convert --output-format jsonl in.csv        # then download: one JSON object per row",
			"rocketjob upload --job convert --output-format xlsx orders.psv.gz",
			"rocketjob upload --job convert --format fixed --columns id,name --widths 4,10 --output-format csv legacy.txt",
			"rocketjob upload --job convert --pgp-key partner.key --output-format xlsx feed.csv.gpg"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "job", Usage: "job `TYPE` (a registered sliced job type)"},
			priorityFlag(),
			&cli.IntFlag{Name: "slice-size", Usage: "`N` records per slice", DefaultText: "the job type's, usually 100"},
			&cli.StringFlag{Name: "format", Usage: "input `FORMAT`: lines, csv, psv, tsv, fixed, xlsx or jsonl", DefaultText: "the job type's; for a tabular type, the file name's (.psv, .tsv, .xlsx, ...)"},
			&cli.StringFlag{Name: "require-columns", Usage: "refuse a CSV file (exit 2, nothing stored) whose header lacks one of these comma-separated `NAMES`; names match trimmed and case-insensitively"},
			&cli.StringFlag{Name: "allow-columns", Usage: "refuse a CSV file (exit 2, nothing stored) with a header column not in these comma-separated `NAMES` nor in --require-columns"},
			&cli.StringFlag{Name: "description", Usage: "free `TEXT` shown in listings"},
			&cli.StringFlag{Name: "notify", Usage: "POST the job's end (completed, failed or aborted: counts, statistics, result URLs) as JSON to `URL` once, signed when the servers have a webhook secret"},
			paramFlag(),
			&cli.BoolFlag{Name: "no-output", Usage: "do not keep the output records (nothing to download)"},
			&cli.BoolFlag{Name: "encrypt", Usage: "store the job's slices AES-256-GCM encrypted (needs a key: rocketjob keys generate)"},
			&cli.BoolFlag{Name: "compress", Usage: "store the job's slices zstd-compressed"},
			&cli.BoolFlag{Name: "stop-on-error", Usage: "fail the job at its first failed record (default: the job type's)"},
			&cli.StringFlag{Name: "run-at", Usage: "start no earlier than `T`: an RFC 3339 time or a delay such as 10s"},
			&cli.IntFlag{Name: "max-workers", Usage: "at most `N` workers on this job at once, across all servers (0: no limit)"},
			scheduleFlags()[0], scheduleFlags()[1], scheduleFlags()[2],
			tabularFlags()[0], tabularFlags()[1], tabularFlags()[2], tabularFlags()[3], tabularFlags()[4],
			&cli.StringFlag{Name: "pgp-key", Usage: "decrypt a PGP-encrypted FILE (.gpg, .pgp, .asc, or recognised by its first bytes) with the private keys in these comma-separated key `FILES`; a protected key's passphrase comes from $" + pgpPassphraseEnv},
		},
		Action: func(c *cli.Context) error {
			a, err := args(c, 1, 1, "FILE|-")
			if err != nil {
				return err
			}
			typ := c.String("job")
			if typ == "" {
				return usagef("%s: missing --job TYPE (see '%s --help')", cmdName(c), c.Command.HelpName)
			}
			// Everything that can be checked without the file and the
			// database is checked first.
			spec, err := st.reg.Lookup(typ)
			if err != nil {
				return err
			}
			if spec.Kind != rocketjob.KindSliced {
				return fmt.Errorf("job type %q is a simple job: enqueue it instead (rocketjob job enqueue %s)", typ, typ)
			}
			opts := &sliced.UploadOptions{Description: c.String("description"), DependsOn: c.StringSlice("after"), MaxWorkers: c.Int("max-workers")}
			if opts.RunAt, err = parseRunAt(c.String("run-at")); err != nil {
				return err
			}
			if opts.ExpiresAt, err = parseWhen("--expires-at", c.String("expires-at")); err != nil {
				return err
			}
			if opts.Window, err = parseWindow(c.String("window")); err != nil {
				return err
			}
			if opts.Priority, err = priorityOption(c); err != nil {
				return err
			}
			if c.IsSet("slice-size") {
				if opts.SliceSize = c.Int("slice-size"); opts.SliceSize < 1 || opts.SliceSize > 100_000 {
					return usagef("--slice-size must be between 1 and 100000 (got %d)", opts.SliceSize)
				}
			}
			if f := c.String("format"); f != "" {
				if opts.Format, err = sliced.ParseFormat(f); err != nil {
					return usagef("--format: %v", err)
				}
			}
			if opts.Columns, err = columnsOption(c, sliced.Format(spec.Format), opts.Format); err != nil {
				return err
			}
			if err := tabularOptions(c, opts); err != nil {
				return err
			}
			keys, err := pgpKeys(c, "pgp-key")
			if err != nil {
				return err
			}
			pairs, err := paramPairs(c)
			if err != nil {
				return err
			}
			// Parameters are decoded and validated before anything is
			// stored; bad ones (or a required one missing) are a usage error.
			params, err := jobparams.Parse(st.reg, typ, pairs)
			if err == nil {
				params, err = jobparams.Encode(st.reg, typ, params)
			}
			if err != nil {
				return usagef("%s: %v", cmdName(c), err)
			}
			if params != nil {
				opts.Params = params
			}
			if u := c.String("notify"); u != "" {
				if err := sliced.CheckNotifyURL(u); err != nil {
					return usagef("--notify: %v", err)
				}
				opts.NotifyURL = u
			}
			// Jobs uploaded from the command line keep their output until
			// destroyed, so it can always be downloaded.
			collect, keep := !c.Bool("no-output"), false
			opts.CollectOutput, opts.DestroyOnComplete = &collect, &keep
			if c.IsSet("encrypt") {
				v := c.Bool("encrypt")
				opts.Encrypt = &v
			}
			if c.IsSet("compress") {
				v := c.Bool("compress")
				opts.Compress = &v
			}
			if c.IsSet("stop-on-error") {
				v := c.Bool("stop-on-error")
				opts.StopOnError = &v
			}

			var in *os.File
			if a[0] == "-" {
				in, opts.Name = os.Stdin, "stdin"
			} else {
				if in, err = os.Open(a[0]); err != nil {
					return err
				}
				defer in.Close()
				if fi, err := in.Stat(); err == nil && fi.IsDir() {
					return fmt.Errorf("%s is a directory", a[0])
				}
				opts.Name = a[0]
			}
			client, err := st.connect(c)
			if err != nil {
				return err
			}
			defer closeClient(client)
			job, err := uploadFileWith(c.Context, client, typ, in, opts, newProgress(c.App.ErrWriter), keys)
			if err != nil && c.Context.Err() != nil {
				// SIGINT or SIGTERM: the upload stopped and dropped what
				// it had stored (or says why it could not).
				detail := "the partial upload was removed"
				var ce *sliced.CleanupError
				if errors.As(err, &ce) {
					detail = ce.Error()
				}
				return interrupted(c.Context, "upload", detail)
			}
			var ce *sliced.ColumnError
			if errors.As(err, &ce) || errors.Is(err, sliced.ErrBadOptions) {
				// A file without the columns the upload needs, or options
				// that cannot go together, is a usage error: exit 2.
				return usagef("%s", err.Error())
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(out(c), job.ID.Hex())
			return nil
		},
	}
}

// columnsOption returns the column checks of --require-columns and
// --allow-columns (nil when neither is given). They need CSV input: the
// type's format or --format's.
func columnsOption(c *cli.Context, typeFormat, format sliced.Format) (*sliced.Columns, error) {
	if !c.IsSet("require-columns") && !c.IsSet("allow-columns") {
		return nil, nil
	}
	if format == "" {
		format = typeFormat
	}
	if !format.Tabular() {
		return nil, usagef("%s: --require-columns and --allow-columns check a header: the input is %s (add --format csv)", cmdName(c), format)
	}
	cols := &sliced.Columns{}
	for _, f := range []struct {
		name string
		dst  *[]string
	}{{"require-columns", &cols.Required}, {"allow-columns", &cols.Allowed}} {
		if !c.IsSet(f.name) {
			continue
		}
		for _, n := range strings.Split(c.String(f.name), ",") {
			if strings.TrimSpace(n) == "" {
				return nil, usagef("%s: --%s %q: empty column name (want NAME,NAME,...)", cmdName(c), f.name, c.String(f.name))
			}
			*f.dst = append(*f.dst, n)
		}
	}
	return cols, nil
}

// uploadFile uploads f, showing a progress bar (bytes read) when p is on a
// terminal and f is a regular file. A pipe or a terminal is read so that the
// upload stops when ctx ends even while no data comes.
func uploadFile(ctx context.Context, client *rocketjob.Client, typ string, f *os.File, opts *sliced.UploadOptions, p *progressLine) (*rocketjob.Job, error) {
	return uploadFileWith(ctx, client, typ, f, opts, p, nil)
}

// uploadFileWith is uploadFile of a file that may be PGP-encrypted: it is
// decrypted with keys on the way (see pgpInput).
func uploadFileWith(ctx context.Context, client *rocketjob.Client, typ string, f *os.File, opts *sliced.UploadOptions, p *progressLine, keys *pgp.Keys) (*rocketjob.Job, error) {
	var size int64
	var in io.Reader = f
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	} else {
		in = newCtxReader(ctx, f)
	}
	in, err := pgpInput(in, opts, keys)
	if err != nil {
		return nil, err
	}
	if p.on && size > 0 {
		start := time.Now()
		stop := make(chan struct{})
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					// The file offset is how far the upload has read.
					if pos, err := f.Seek(0, io.SeekCurrent); err == nil {
						extra := humanBytes(pos) + " of " + humanBytes(size)
						if r := rateAndETA(start, pos, size, "", humanBytes); r != "" {
							extra += ", " + r
						}
						p.bar(true, "uploading", pos, size, extra)
					}
				}
			}
		}()
		defer func() {
			close(stop)
			<-finished
			p.done()
		}()
	}
	job, err := sliced.Upload(ctx, client, typ, in, opts)
	if err != nil {
		var ie *sliced.InputError
		if errors.As(err, &ie) {
			return nil, fmt.Errorf("%s: %w (nothing was uploaded)", opts.Name, err)
		}
		return nil, err
	}
	return job, nil
}

// ctxReader reads r in its own goroutine, so that a Read waiting for data
// from a pipe or a terminal returns ctx's error when ctx ends. The read in
// progress then is abandoned (the process is about to exit).
type ctxReader struct {
	ctx    context.Context
	chunks chan readChunk
	buf    []byte
	err    error
}

type readChunk struct {
	b   []byte
	err error
}

func newCtxReader(ctx context.Context, r io.Reader) *ctxReader {
	cr := &ctxReader{ctx: ctx, chunks: make(chan readChunk, 1)}
	go func() {
		for {
			b := make([]byte, 64<<10)
			n, err := r.Read(b)
			select {
			case cr.chunks <- readChunk{b[:n], err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return cr
}

func (cr *ctxReader) Read(p []byte) (int, error) {
	for len(cr.buf) == 0 {
		if cr.err != nil {
			return 0, cr.err
		}
		select {
		case c := <-cr.chunks:
			cr.buf, cr.err = c.b, c.err
		case <-cr.ctx.Done():
			return 0, cr.ctx.Err()
		}
	}
	n := copy(p, cr.buf)
	cr.buf = cr.buf[n:]
	return n, nil
}
