package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/internal/fileout"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

func downloadCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "download",
		Usage:     "download a sliced job's output (or, with --failed, its failed records as CSV)",
		ArgsUsage: "JOB_ID FILE|-",
		Description: "The download succeeds (exit 0) only with every record the job recorded; otherwise it exits 1\n" +
			"and leaves FILE as it was. FILE is written to a temporary file in its folder and renamed\n" +
			"into place at the end; a new FILE gets --mode (default 600: outputs often hold personal\n" +
			"data) less the umask, an existing FILE keeps its mode, and a device or FIFO (/dev/null)\n" +
			"is written to, never replaced. Stopped by SIGINT (Ctrl-C) or SIGTERM, it removes its\n" +
			"temporary file, leaves FILE as it was and exits 130 (SIGTERM: 143).",
		UsageText: usageText("rocketjob download [--failed | --category NAME] [--pgp-recipient KEYFILE] [--mode MODE] JOB_ID FILE|-",
			"rocketjob download 65a1b2c3d4e5f60718293a4b output.txt",
			"rocketjob download 65a1b2c3d4e5f60718293a4b output.txt.gz      # gzip (.zst: zstd)",
			"rocketjob download 65a1b2c3d4e5f60718293a4b output.txt.zip     # a zip holding output.txt",
			"rocketjob download 65a1b2c3d4e5f60718293a4b output.xlsx        # a tabular job as a workbook (.csv .psv .tsv .jsonl too)",
			"rocketjob download --pgp-recipient partner.pub 65a1b2c3d4e5f60718293a4b out.csv.gz.gpg  # gzip, then PGP",
			"rocketjob download --mode 644 65a1b2c3d4e5f60718293a4b shared.txt",
			"rocketjob download --failed 65a1b2c3d4e5f60718293a4b - | less  # record,error,input",
			"rocketjob download --category even 65a1b2c3d4e5f60718293a4b even.txt"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "failed", Usage: "download the failed records with their errors (CSV: record, error, input)"},
			&cli.StringFlag{Name: "category", Usage: "download the output category `NAME` (of a job type with output categories; job show lists them)"},
			&cli.StringFlag{Name: "pgp-recipient", Usage: "PGP-encrypt the file (its name ends in .gpg or .pgp, or .asc for ASCII armor) to the public keys in these comma-separated key `FILES`"},
			&cli.StringFlag{Name: "mode", Usage: "permissions `MODE` (octal) of a new FILE, less the umask; an existing FILE keeps its own", Value: "600"},
		},
		Action: func(c *cli.Context) error {
			a, err := args(c, 2, 2, "JOB_ID FILE|-")
			if err != nil {
				return err
			}
			id, dest := a[0], a[1]
			if _, err := rocketjob.ParseID(id); err != nil {
				return err
			}
			mode, err := parseMode(c.String("mode"))
			if err != nil {
				return err
			}
			failed, category := c.Bool("failed"), c.String("category")
			if failed && category != "" {
				return usagef("%s: --failed and --category cannot go together", cmdName(c))
			}
			n, err := download(c, st, id, dest, failed, category, mode)
			if err != nil && c.Context.Err() != nil {
				// SIGINT or SIGTERM: exit 130 or 143, like an upload.
				return interrupted(c.Context, "download", interruptedDetail(dest))
			}
			if errors.Is(err, sliced.ErrNoCategory) {
				return usagef("%v", err)
			}
			if err != nil {
				var ie *sliced.IncompleteError
				if errors.As(err, &ie) {
					return &incompleteDownload{ie: ie, workDB: workDBName(c)}
				}
				return err
			}
			what := "records"
			if failed {
				what = "failed records"
			}
			if dest != "-" {
				msg(c, "wrote %s %s to %s", commas(n), what, dest)
			}
			return nil
		},
	}
}

// download connects and writes the output (or the failed records) of job
// id to dest; an output download first checks that the job has its final
// output.
func download(c *cli.Context, st *appState, id, dest string, failed bool, category string, mode fs.FileMode) (int64, error) {
	keys, err := pgpKeys(c, "pgp-recipient")
	if err != nil {
		return 0, err
	}
	if err := checkPGPDest(c, dest, keys); err != nil {
		return 0, err
	}
	client, err := st.connect(c)
	if err != nil {
		return 0, err
	}
	defer closeClient(client)
	fn := sliced.Download
	if failed {
		fn = sliced.DownloadFailed
	}
	job, err := client.Get(c.Context, id)
	if err != nil {
		return 0, err
	}
	want := job.FailedRecordCount // the lines a terminal's progress bar counts to
	if !failed {
		want = job.OutputCount
		if want == 0 {
			want = job.ProcessedCount - job.FailedRecordCount
		}
		if err := downloadable(job); err != nil {
			return 0, err
		}
		if category != "" || len(job.CategoryNames) > 0 {
			// One output category (a job type with categories).
			fn = func(ctx context.Context, client *rocketjob.Client, id string, w io.Writer) (int64, error) {
				return sliced.DownloadCategory(ctx, client, id, category, w)
			}
			want = job.Categories[category]
			if category == "" {
				fn = sliced.Download // says which categories there are
			}
		} else {
			named, err := downloadByName(c, job, pgpInner(dest))
			if err != nil {
				return 0, err
			}
			if named != nil {
				fn = named
				want = 0 // another format: its lines are not the records
			}
		}
	}
	if want > 0 {
		fn = withProgress(fn, newProgress(c.App.ErrWriter), want)
	}
	if keys != nil {
		fn = pgpDownload(fn, keys, dest)
	}
	return downloadWith(c.Context, client, id, dest, fn, c.App.Writer, mode)
}

// interruptedDetail says what an interrupted download left at dest: a file
// is written to a temporary file that is removed, so dest is as it was; a
// device or FIFO, and stdout, got what was written before the signal.
func interruptedDetail(dest string) string {
	if dest == "-" {
		return ""
	}
	fi, err := os.Stat(dest)
	switch {
	case err != nil:
		return "the partial file was removed"
	case fi.Mode().IsRegular():
		return "the partial file was removed, " + dest + " is unchanged"
	default:
		return ""
	}
}

// parseMode reads --mode: octal permission bits such as 600, 0640 or 0o644.
func parseMode(s string) (fs.FileMode, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O"), 8, 32)
	if err != nil || v > 0o777 || v == 0 {
		return 0, usagef("--mode must be octal permissions from 1 to 777, such as 600 or 644 (got %q)", s)
	}
	return fs.FileMode(v), nil
}

// workDBName is the work database the command reads.
func workDBName(c *cli.Context) string {
	if name := c.String("work-db"); name != "" {
		return name
	}
	return "rocketjob_work"
}

// incompleteDownload is a download that found fewer records than the job
// recorded, told with the work database the command looked in.
type incompleteDownload struct {
	ie     *sliced.IncompleteError
	workDB string
}

func (e *incompleteDownload) Error() string {
	what := "output records"
	if e.ie.Kind == sliced.FailedKind {
		what = "failed records"
	}
	if lost := e.ie.Lost(); lost != "" {
		// The job ran on this work database, which lost some slices.
		if e.ie.Want == 0 {
			return fmt.Sprintf("job %s: work database %q lost %s; %s %s found", e.ie.JobID, e.workDB, lost, commas(e.ie.Got), what)
		}
		return fmt.Sprintf("job %s: only %s of its %s %s are in work database %q: it lost %s",
			e.ie.JobID, commas(e.ie.Got), commas(e.ie.Want), what, e.workDB, lost)
	}
	return fmt.Sprintf("job %s: only %s of its %s %s are in work database %q: check --work-db and --work-uri (the job may have run on another work database, or its slices were lost)",
		e.ie.JobID, commas(e.ie.Got), commas(e.ie.Want), what, e.workDB)
}

func (e *incompleteDownload) Unwrap() error { return e.ie }

// downloadable refuses the output download of a job whose output is not
// (yet) complete.
func downloadable(job *rocketjob.Job) error {
	id := job.ID.Hex()
	switch {
	case job.Kind != rocketjob.KindSliced:
		return fmt.Errorf("job %s is a simple job: it has no records to download", id)
	case !job.CollectOutput:
		return fmt.Errorf("job %s does not keep its output (uploaded with --no-output)", id)
	case job.State == rocketjob.StateCompleted || job.State == rocketjob.StateFailed:
		return nil
	default:
		return fmt.Errorf("job %s is %s: its output is not complete (wait with: rocketjob job wait %s)", id, job.State, id)
	}
}

// downloadTo writes the output (or the failed records) of job id to dest
// as downloadFile does, a new file with fileout's default mode.
func downloadTo(ctx context.Context, client *rocketjob.Client, id, dest string, failed bool, stdout io.Writer) (int64, error) {
	return downloadFile(ctx, client, id, dest, failed, stdout, fileout.DefaultMode)
}

// downloadFile writes the output (or the failed records) of job id to dest:
// "-" is stdout; a file is written through fileout (a temporary file renamed
// into place on success, removed on failure; a new file gets mode less the
// umask; an existing one keeps its mode; a device is written in place),
// compressed by its extension (.gz, .zst, .zip). It returns the number of records
// written.
func downloadFile(ctx context.Context, client *rocketjob.Client, id, dest string, failed bool, stdout io.Writer, mode fs.FileMode) (int64, error) {
	download := sliced.Download
	if failed {
		download = sliced.DownloadFailed
	}
	return downloadWith(ctx, client, id, dest, download, stdout, mode)
}

// downloadWith is downloadFile with the records written by download.
func downloadWith(ctx context.Context, client *rocketjob.Client, id, dest string, download func(context.Context, *rocketjob.Client, string, io.Writer) (int64, error), stdout io.Writer, mode fs.FileMode) (int64, error) {
	if dest == "-" {
		return download(ctx, client, id, stdout)
	}
	f, err := fileout.Create(dest, mode)
	if err != nil {
		return 0, err
	}
	defer f.Abort()
	w, err := sliced.CreateOutput(f, dest)
	if err != nil {
		return 0, err
	}
	n, err := download(ctx, client, id, w)
	if err != nil {
		return n, err
	}
	if err := w.Close(); err != nil {
		return n, fmt.Errorf("writing %s: %w", dest, err)
	}
	if err := f.Commit(); err != nil {
		return n, err
	}
	return n, nil
}
