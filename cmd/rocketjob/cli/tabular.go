package cli

import (
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
	_ "github.com/rocketjob-go/rocketjob/sliced/xlsx" // xlsx files in and out
)

// tabularFlags are the upload flags of tabular files (#17).
func tabularFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "output-format", Usage: "download tabular input as `FORMAT`: csv, psv, tsv, jsonl (an object per row keyed by the header) or xlsx", DefaultText: "the input's"},
		&cli.BoolFlag{Name: "lenient-quotes", Usage: "accept bare quotes in CSV, PSV and TSV input (12\" pipe) as literal quotes instead of refusing the file"},
		&cli.StringFlag{Name: "columns", Usage: "the file has no header row: these comma-separated column `NAMES` are its header (with --widths: a fixed-width layout)"},
		&cli.StringFlag{Name: "widths", Usage: "fixed-width input (--format fixed): the comma-separated column `WIDTHS` in characters, one per --columns name"},
		&cli.StringFlag{Name: "sheet", Usage: "the `NAME` of the XLSX sheet to read", DefaultText: "the first"},
	}
}

// tabularOptions fills opts from the tabular flags; a bad value is a usage
// error (exit 2).
func tabularOptions(c *cli.Context, opts *sliced.UploadOptions) error {
	var err error
	if f := c.String("output-format"); f != "" {
		if opts.OutputFormat, err = sliced.ParseFormat(f); err != nil {
			return usagef("--output-format: %v", err)
		}
	}
	opts.LenientQuotes = c.Bool("lenient-quotes")
	opts.Sheet = c.String("sheet")
	if c.IsSet("columns") {
		for _, n := range strings.Split(c.String("columns"), ",") {
			if strings.TrimSpace(n) == "" {
				return usagef("%s: --columns %q: empty column name (want NAME,NAME,...)", cmdName(c), c.String("columns"))
			}
			opts.Header = append(opts.Header, n)
		}
	}
	if c.IsSet("widths") {
		for _, w := range strings.Split(c.String("widths"), ",") {
			n, err := strconv.Atoi(strings.TrimSpace(w))
			if err != nil || n < 1 {
				return usagef("%s: --widths %q: want positive whole numbers N,N,...", cmdName(c), c.String("widths"))
			}
			opts.Widths = append(opts.Widths, n)
		}
		if len(opts.Widths) != len(opts.Header) {
			return usagef("%s: --widths has %d widths but --columns %d names: give one width per column", cmdName(c), len(opts.Widths), len(opts.Header))
		}
	}
	return nil
}

// downloadByName returns the download of a job's output in the tabular
// format dest's name asks for (.csv, .psv, .tsv, .jsonl, .xlsx, through
// compression extensions), or nil when the job's own format is wanted. A
// job whose records are not tabular cannot become a workbook: naming one
// is a usage error rather than text in a file called .xlsx.
func downloadByName(c *cli.Context, job *rocketjob.Job, dest string) (func(context.Context, *rocketjob.Client, string, io.Writer) (int64, error), error) {
	f, ok := sliced.FormatFromName(dest)
	if !ok || dest == "-" {
		return nil, nil
	}
	own := sliced.Format(job.OutputFormat)
	if own == "" {
		own = sliced.Format(job.Format)
	}
	switch {
	case f == own:
		return nil, nil
	case !sliced.Format(job.Format).Tabular():
		if f == sliced.XLSX {
			return nil, usagef("%s: job %s holds %s records: they cannot be written as an xlsx workbook (download to another name)", cmdName(c), job.ID.Hex(), job.Format)
		}
		return nil, nil
	}
	return func(ctx context.Context, client *rocketjob.Client, id string, w io.Writer) (int64, error) {
		return sliced.DownloadAs(ctx, client, id, f, w)
	}, nil
}
