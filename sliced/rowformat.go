package sliced

import (
	"fmt"
	"io"
	"sync"
)

// RowReader reads the rows of a tabular file of a format implemented in
// another package (XLSX, in sliced/xlsx), one at a time.
type RowReader interface {
	// Next returns the cells of the next row, or io.EOF after the last. The
	// slice is only valid until the next call. Errors of the content should
	// be *InputError values naming the row.
	Next() ([]string, error)
	// Line returns the 1-based row number of the row Next returned last.
	Line() int64
}

// RowWriter writes the rows of a tabular file of a format implemented in
// another package.
type RowWriter interface {
	// Write writes one row.
	Write(row []string) error
	// Close finishes the file; it does not close the underlying writer.
	Close() error
}

// RowFormat plugs a tabular file format implemented in another package into
// Reader, Writer, Upload and Download. The sliced/xlsx package registers
// XLSX this way, so only programs that import it link its dependencies.
type RowFormat struct {
	// Format is the name the format is chosen by.
	Format Format
	// NewReader returns a reader of the rows of r. opts.Sheet names the
	// sheet to read, empty for the first.
	NewReader func(r io.Reader, opts *ReaderOptions) (RowReader, error)
	// NewWriter returns a writer of rows to w. opts.Sheet names the sheet
	// to write, empty for a default.
	NewWriter func(w io.Writer, opts *WriterOptions) (RowWriter, error)
}

// rowFormats holds the registered RowFormats by name.
var rowFormats sync.Map

// RegisterRowFormat makes a tabular format implemented in another package
// readable and writable; a later registration of the same format replaces
// an earlier one. Only XLSX is expected here.
func RegisterRowFormat(f RowFormat) {
	rowFormats.Store(f.Format, f)
}

// rowFormat returns the registered RowFormat of f, or an error saying which
// package to import.
func rowFormat(f Format) (RowFormat, error) {
	v, ok := rowFormats.Load(f)
	if !ok {
		return RowFormat{}, fmt.Errorf("sliced: the %s format is not linked in: import github.com/rocketjob-go/rocketjob/sliced/%s", f, f)
	}
	return v.(RowFormat), nil
}

// openRows returns the RowReader of the registered format opts.Format.
func openRows(r io.Reader, opts *ReaderOptions) (RowReader, error) {
	rf, err := rowFormat(opts.Format)
	if err != nil {
		return nil, err
	}
	return rf.NewReader(r, opts)
}
