package sliced

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Format is the record format of an uploaded file.
type Format string

const (
	// Lines is the default format: one record per line, the bytes of each
	// line kept exactly (any bytes, invalid UTF-8 and NUL included).
	Lines Format = "lines"
	// CSV is comma-separated values: the first row is the header and each
	// further row is a record (its fields packed with EncodeFields).
	CSV Format = "csv"
	// PSV is pipe-separated values ("|"), quoted like CSV.
	PSV Format = "psv"
	// TSV is tab-separated values, quoted like CSV.
	TSV Format = "tsv"
	// Fixed is fixed-width text: each line holds the columns of a declared
	// layout (names and widths in characters; see ReaderOptions.Widths),
	// padded with spaces; there is no header line.
	Fixed Format = "fixed"
	// XLSX is an Excel workbook: the rows of one sheet, the first being
	// the header. Reading and writing it needs the sliced/xlsx package
	// linked in (import it for its side effect).
	XLSX Format = "xlsx"
	// JSONL is JSON Lines: one JSON value per line; blank lines are skipped.
	JSONL Format = "jsonl"
)

// formats lists the valid formats in the order they are shown in errors.
var formats = []Format{Lines, CSV, PSV, TSV, Fixed, XLSX, JSONL}

// ParseFormat returns the Format named by s. The empty string means Lines;
// any name that is not a known format is an error listing the valid ones.
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return Lines, nil
	}
	for _, f := range formats {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("unknown format %q: valid formats are %s", s, strings.Join(names, ", "))
}

// valid reports whether f is one of the known formats.
func (f Format) valid() bool {
	return slices.Contains(formats, f)
}

// Tabular reports whether records of format f are rows of named columns
// (CSV, PSV, TSV, Fixed, XLSX): their records are fields packed with
// EncodeFields and the job keeps the column names as its header, so any
// of these formats can be written from any other.
func (f Format) Tabular() bool {
	switch f {
	case CSV, PSV, TSV, Fixed, XLSX:
		return true
	}
	return false
}

// separator is the field separator of a delimited format, 0 for others.
func (f Format) separator() byte {
	switch f {
	case CSV:
		return ','
	case PSV:
		return '|'
	case TSV:
		return '\t'
	}
	return 0
}

// compressionExts are file name endings FormatFromName looks through.
var compressionExts = []string{".gz", ".gzip", ".zst", ".zstd", ".bz2", ".bzip2", ".zip", ".gpg", ".pgp", ".asc"}

// FormatFromName returns the format a file name's extension names, looking
// through compression and encryption extensions ("orders.psv.gz.gpg" is
// PSV): .csv, .psv, .tsv/.tab, .xlsx, .jsonl/.ndjson; ok is false for any
// other name (including .txt: lines and fixed-width files share it).
func FormatFromName(name string) (f Format, ok bool) {
	base := strings.ToLower(path.Base(strings.ReplaceAll(name, "\\", "/")))
	for {
		ext := path.Ext(base)
		if !slices.Contains(compressionExts, ext) {
			break
		}
		base = strings.TrimSuffix(base, ext)
	}
	switch path.Ext(base) {
	case ".csv":
		return CSV, true
	case ".psv":
		return PSV, true
	case ".tsv", ".tab":
		return TSV, true
	case ".xlsx":
		return XLSX, true
	case ".jsonl", ".ndjson":
		return JSONL, true
	}
	return "", false
}

// MaxRecordSize is the largest record (line) accepted, in bytes. A longer
// record is an *InputError wrapping ErrRecordTooLong; it is detected without
// buffering more than this many bytes of it.
const MaxRecordSize = 15 << 20

// ErrRecordTooLong is wrapped by the *InputError returned for a record
// longer than MaxRecordSize.
var ErrRecordTooLong = errors.New("record is longer than the 15 MiB record limit")

// InputError is an error caused by the content of an input file (as opposed
// to a failure of the storage or the network underneath it). It names the
// position of the problem: Line is the 1-based line number, or 0 when unknown;
// Offset is the byte offset (in the compressed stream for a decompression
// error), or -1 when unknown.
type InputError struct {
	Line   int64
	Offset int64
	Err    error
}

// Error returns one line such as `line 12: bare " in non-quoted-field` or
// `byte offset 1234: gzip: unexpected EOF (truncated input?)`. The position
// shown is the line when known, else the byte offset when known.
func (e *InputError) Error() string {
	msg := "<nil>"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	switch {
	case e.Line > 0 && errors.Is(e.Err, ErrRecordTooLong):
		return fmt.Sprintf("line %d is longer than the 15 MiB record limit", e.Line)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, msg)
	case e.Offset >= 0:
		return fmt.Sprintf("byte offset %d: %s", e.Offset, msg)
	default:
		return msg
	}
}

// Unwrap returns the underlying error.
func (e *InputError) Unwrap() error { return e.Err }
