// Package xlsx adds Excel workbooks (.xlsx) to the tabular formats of
// package sliced: import it for its side effect and sliced.XLSX becomes
// readable and writable by Reader, Writer, Upload and Download.
//
//	import _ "github.com/rocketjob-go/rocketjob/sliced/xlsx"
//
// It lives apart so that only programs that use it link its dependency
// (github.com/xuri/excelize/v2).
//
// # Reading
//
// The first sheet is read unless ReaderOptions.Sheet names another; its
// first row is the header (or ReaderOptions.Header declares the columns).
// Cells come as Excel shows them (number formats applied); empty rows are
// skipped. The workbook is read from a file, as a stream: a worksheet
// larger than a megabyte is unzipped to a temporary file and walked row by
// row, so memory stays flat however large it is. Input that is not a
// regular file is first copied to a temporary file. Temporary files go
// when the Reader ends (io.EOF, an error, or Close).
//
// # Writing
//
// Rows are written with excelize's stream writer, every cell as text, on
// the sheet WriterOptions.Sheet names ("Sheet1" when empty); rows past 16
// MB go to a temporary file and the archive streams out on Close, so
// memory stays flat here too. (A sheet over 4 GB uncompressed gets zip64
// headers in the central directory only, which some readers refuse.) A sheet holds
// at most 1,048,576 rows and a cell 32,767 characters: more is an error,
// never a cut.
package xlsx

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/rocketjob-go/rocketjob/sliced"
)

func init() {
	sliced.RegisterRowFormat(sliced.RowFormat{Format: sliced.XLSX, NewReader: NewReader, NewWriter: NewWriter})
}

// unzipLimit is the size above which a part of the workbook is unzipped
// to a temporary file instead of memory.
const unzipLimit = 1 << 20

// reader reads the rows of one sheet.
type reader struct {
	file  *excelize.File
	rows  *excelize.Rows
	tmp   string // spooled copy of the input, removed on close
	line  int64
	done  bool
	err   error
	cells []string
}

// NewReader returns a sliced.RowReader of the rows of the sheet opts.Sheet
// (the first when empty) of the workbook read from r. A regular file is
// read in place; other input is copied to a temporary file first. An
// input that is not a workbook, or lacks the sheet, is an
// *sliced.InputError.
func NewReader(r io.Reader, opts *sliced.ReaderOptions) (sliced.RowReader, error) {
	rd := &reader{}
	path := ""
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if pos, err := f.Seek(0, io.SeekCurrent); err == nil && pos == 0 {
				path = f.Name()
			}
		}
	}
	if path == "" {
		tmp, err := os.CreateTemp("", "rocketjob-*.xlsx")
		if err != nil {
			return nil, fmt.Errorf("xlsx: spooling the workbook: %w", err)
		}
		rd.tmp = tmp.Name()
		_, err = io.Copy(tmp, r)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			rd.Close()
			return nil, err
		}
		path = rd.tmp
	}
	file, err := excelize.OpenFile(path, excelize.Options{UnzipXMLSizeLimit: unzipLimit})
	if err != nil {
		rd.Close()
		return nil, &sliced.InputError{Offset: -1, Err: fmt.Errorf("not a readable XLSX workbook: %v", err)}
	}
	rd.file = file
	sheets := file.GetSheetList()
	sheet := ""
	if opts != nil {
		sheet = opts.Sheet
	}
	switch {
	case sheet == "" && len(sheets) > 0:
		sheet = sheets[0]
	case sheet == "":
		rd.Close()
		return nil, &sliced.InputError{Offset: -1, Err: errors.New("the workbook has no sheet")}
	case !contains(sheets, sheet):
		rd.Close()
		return nil, &sliced.InputError{Offset: -1, Err: fmt.Errorf("the workbook has no sheet %q (it has %s)", sheet, quoteList(sheets))}
	}
	if rd.rows, err = file.Rows(sheet); err != nil {
		rd.Close()
		return nil, &sliced.InputError{Offset: -1, Err: fmt.Errorf("sheet %q: %v", sheet, err)}
	}
	return rd, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// Next returns the cells of the next row that has any, or io.EOF.
func (r *reader) Next() ([]string, error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		if !r.rows.Next() {
			r.err = io.EOF
			if err := r.rows.Error(); err != nil {
				r.err = &sliced.InputError{Line: r.line + 1, Offset: -1, Err: fmt.Errorf("row %d: %v", r.line+1, err)}
			}
			r.Close()
			return nil, r.err
		}
		r.line++
		cells, err := r.rows.Columns()
		if err != nil {
			r.err = &sliced.InputError{Line: r.line, Offset: -1, Err: err}
			r.Close()
			return nil, r.err
		}
		if len(cells) == 0 {
			continue
		}
		r.cells = cells
		return cells, nil
	}
}

// Line returns the row number (1-based) of the last row returned.
func (r *reader) Line() int64 { return r.line }

// Close releases the workbook and removes the temporary files; it may be
// called more than once.
func (r *reader) Close() error {
	var errs []error
	if r.rows != nil {
		errs = append(errs, r.rows.Close())
		r.rows = nil
	}
	if r.file != nil {
		errs = append(errs, r.file.Close())
		r.file = nil
	}
	if r.tmp != "" {
		errs = append(errs, os.Remove(r.tmp))
		r.tmp = ""
	}
	if r.err == nil {
		r.err = errors.New("xlsx: reader closed")
	}
	return errors.Join(errs...)
}

// writer writes rows to one sheet with excelize's stream writer.
type writer struct {
	w    io.Writer
	file *excelize.File
	sw   *excelize.StreamWriter
	row  int
	vals []any
}

// NewWriter returns a sliced.RowWriter of a workbook written to w on Close,
// with the rows on the sheet opts.Sheet ("Sheet1" when empty).
func NewWriter(w io.Writer, opts *sliced.WriterOptions) (sliced.RowWriter, error) {
	file := excelize.NewFile()
	sheet := "Sheet1"
	if opts != nil && opts.Sheet != "" && opts.Sheet != sheet {
		if err := file.SetSheetName(sheet, opts.Sheet); err != nil {
			file.Close()
			return nil, fmt.Errorf("xlsx: sheet name %q: %w", opts.Sheet, err)
		}
		sheet = opts.Sheet
	}
	sw, err := file.NewStreamWriter(sheet)
	if err != nil {
		file.Close()
		return nil, err
	}
	return &writer{w: w, file: file, sw: sw}, nil
}

// Write adds one row; every cell is text.
func (w *writer) Write(row []string) error {
	w.row++
	if w.row > excelize.TotalRows {
		return fmt.Errorf("xlsx: more than %d rows: a sheet cannot hold them", excelize.TotalRows)
	}
	w.vals = w.vals[:0]
	for i, c := range row {
		if n := len([]rune(c)); n > excelize.TotalCellChars {
			return fmt.Errorf("xlsx: row %d, column %d: a cell of %d characters is longer than Excel's %d", w.row, i+1, n, excelize.TotalCellChars)
		}
		w.vals = append(w.vals, c)
	}
	cell, err := excelize.CoordinatesToCellName(1, w.row)
	if err != nil {
		return err
	}
	return w.sw.SetRow(cell, w.vals)
}

// Close writes the workbook to the underlying writer.
func (w *writer) Close() error {
	if w.file == nil {
		return nil
	}
	defer func() { w.file.Close(); w.file = nil }()
	if err := w.sw.Flush(); err != nil {
		return err
	}
	// excelize's WriteTo builds the whole archive in memory first; with
	// its zip writer pointed at w instead, the archive streams out (the
	// sheet's rows from the stream writer's temporary file) and the
	// buffer WriteToBuffer returns stays empty.
	w.file.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zip.NewWriter(w.w) })
	_, err := w.file.WriteToBuffer()
	return err
}
