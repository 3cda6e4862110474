package sliced

import (
	"errors"
	"fmt"
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
	// JSONL is JSON Lines: one JSON value per line; blank lines are skipped.
	JSONL Format = "jsonl"
)

// formats lists the valid formats in the order they are shown in errors.
var formats = []Format{Lines, CSV, JSONL}

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
	for _, g := range formats {
		if f == g {
			return true
		}
	}
	return false
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
