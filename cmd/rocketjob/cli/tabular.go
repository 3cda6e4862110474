package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
	"github.com/rocketjob-go/rocketjob/sliced/pgp"
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

// pgpPassphraseEnv names the environment variable holding the passphrase
// of protected PGP private keys.
const pgpPassphraseEnv = "ROCKETJOB_PGP_PASSPHRASE"

// pgpKeys reads the key files of flag (comma-separated), or returns nil
// when it is not given. A key file that cannot be used is a usage error.
func pgpKeys(c *cli.Context, flag string) (*pgp.Keys, error) {
	if !c.IsSet(flag) {
		return nil, nil
	}
	var files []string
	for _, f := range strings.Split(c.String(flag), ",") {
		if f = strings.TrimSpace(f); f != "" {
			files = append(files, f)
		}
	}
	keys, err := pgp.ReadKeys([]byte(os.Getenv(pgpPassphraseEnv)), files...)
	if errors.Is(err, pgp.ErrPassphrase) {
		return nil, usagef("--%s: %v (set %s)", flag, err, pgpPassphraseEnv)
	}
	if err != nil {
		return nil, usagef("--%s: %v", flag, err)
	}
	return keys, nil
}

// pgpInput returns in decrypted when it is a PGP message (by opts.Name, or
// by its first bytes when keys are given), with opts.Name then the name
// inside. Without keys, a file whose name does not end in .gpg, .pgp or
// .asc is returned as it is (so zip archives and workbooks are read in
// place, and data that starts like a PGP packet is not refused). A missing or wrong key, or a key for a
// file that is not encrypted, is a usage error; nothing is uploaded.
func pgpInput(in io.Reader, opts *sliced.UploadOptions, keys *pgp.Keys) (io.Reader, error) {
	if keys == nil && !pgp.HasExt(opts.Name) {
		return in, nil
	}
	out, name, err := pgp.OpenInput(in, opts.Name, keys)
	switch {
	case errors.Is(err, pgp.ErrNoKey):
		return nil, usagef("%v: give its private key with --pgp-key KEYFILE (nothing was uploaded)", err)
	case errors.Is(err, pgp.ErrWrongKey), errors.Is(err, pgp.ErrNotEncrypted):
		return nil, usagef("%v (nothing was uploaded)", err)
	case err != nil:
		var ie *sliced.InputError
		if errors.As(err, &ie) {
			return nil, fmt.Errorf("%s: %w (nothing was uploaded)", opts.Name, err)
		}
		return nil, err
	}
	opts.Name = name
	return out, nil
}

// checkPGPDest checks that a download is PGP-encrypted exactly when its
// file name says so (.gpg, .pgp, .asc): a name that promises encryption
// without --pgp-recipient, or keys for a plain name, is a usage error
// rather than plain text in a file called .gpg.
func checkPGPDest(c *cli.Context, dest string, keys *pgp.Keys) error {
	named := dest != "-" && pgp.HasExt(dest)
	switch {
	case named && keys == nil:
		return usagef("%s: %s names a PGP-encrypted file: give the public keys to encrypt it to with --pgp-recipient KEYFILE", cmdName(c), dest)
	case !named && keys != nil:
		return usagef("%s: --pgp-recipient: the file name must end in .gpg, .pgp or .asc (got %s)", cmdName(c), dest)
	}
	return nil
}

// pgpInner is the name of the file inside a PGP-encrypted dest (whose
// ending says the format and the compression).
func pgpInner(dest string) string { return pgp.TrimExt(dest) }

// pgpDownload wraps a download so that what it writes is compressed as the
// name inside dest says, then encrypted to keys (armored for .asc).
func pgpDownload(fn func(context.Context, *rocketjob.Client, string, io.Writer) (int64, error), keys *pgp.Keys, dest string) func(context.Context, *rocketjob.Client, string, io.Writer) (int64, error) {
	return func(ctx context.Context, client *rocketjob.Client, id string, w io.Writer) (int64, error) {
		enc, err := keys.Encrypt(w, strings.EqualFold(filepath.Ext(dest), ".asc"))
		if err != nil {
			return 0, err
		}
		inner, err := sliced.CreateOutput(enc, pgp.TrimExt(dest))
		if err != nil {
			return 0, err
		}
		n, err := fn(ctx, client, id, inner)
		if err != nil {
			return n, err
		}
		if err := inner.Close(); err != nil {
			return n, err
		}
		return n, enc.Close()
	}
}
