package sliced

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// writeBufSize is the size of the write buffer of a Writer.
const writeBufSize = 64 << 10

// WriterOptions says how a Writer lays out its output. They are usually the
// values a Reader reported for the uploaded file.
type WriterOptions struct {
	// Format of the records; empty means Lines.
	Format Format
	// Header is the CSV header row, written before the first record (or on
	// Close when there was no record). Ignored for the other formats and when
	// empty.
	Header []string
	// LineEnding ends every line: "\n" (also when empty) or "\r\n".
	LineEnding string
	// FinalNewline says whether the last line gets a line ending too.
	FinalNewline bool
}

// Writer writes records of one format; it is what a download uses. Output is
// buffered: call Close to flush it.
type Writer struct {
	w          *bufio.Writer
	opts       WriterOptions
	eol        string
	pending    bool // a line was written and its line ending is still owed
	headerDone bool
	closed     bool
	err        error // sticky
	row        []byte
}

// NewWriter returns a Writer of records to w laid out as opts says. Invalid
// options (an unknown format or line ending) make Write and Close fail.
func NewWriter(w io.Writer, opts WriterOptions) *Writer {
	if opts.Format == "" {
		opts.Format = Lines
	}
	wr := &Writer{w: bufio.NewWriterSize(w, writeBufSize), opts: opts, eol: opts.LineEnding}
	switch opts.LineEnding {
	case "":
		wr.eol = "\n"
	case "\n", "\r\n":
	default:
		wr.err = fmt.Errorf("sliced: invalid line ending %q: want \"\\n\" or \"\\r\\n\"", opts.LineEnding)
	}
	if !opts.Format.valid() {
		wr.err = fmt.Errorf("sliced: unknown format %q", string(opts.Format))
	}
	if opts.Format != CSV || len(opts.Header) == 0 {
		wr.headerDone = true
	}
	return wr
}

// Write writes one record as one line. For Lines and JSONL rec is written as
// it is; for CSV rec holds fields encoded with EncodeFields and is written as
// a CSV row (fields quoted where needed), after the header row if there is
// one. A CSV record that does not decode is an error wrapping ErrCorruptSlice.
func (w *Writer) Write(rec []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("sliced: Write after Close")
	}
	if w.opts.Format != CSV {
		w.writeLine(rec)
		return w.err
	}
	w.writeHeader()
	row, err := appendCSVRow(w.row[:0], rec)
	if err != nil {
		return err
	}
	w.row = row
	w.writeLine(row)
	return w.err
}

// Close writes the CSV header if no record was written, ends the last line
// if FinalNewline is set, and flushes. When FinalNewline is false the last
// line ending is left out, so copying a file without a final newline is
// byte-identical. Close does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed || w.err != nil {
		return w.err
	}
	w.closed = true
	w.writeHeader()
	if w.pending && w.opts.FinalNewline {
		w.write(w.eol)
		w.pending = false
	}
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return w.err
}

// writeHeader writes the CSV header row once, if there is one.
func (w *Writer) writeHeader() {
	if w.headerDone {
		return
	}
	w.headerDone = true
	w.row = w.row[:0]
	for i, f := range w.opts.Header {
		if i > 0 {
			w.row = append(w.row, ',')
		}
		w.row = appendCSVField(w.row, []byte(f), len(w.opts.Header) == 1)
	}
	w.writeLine(w.row)
}

// writeLine writes the line ending owed by the previous line, then b.
func (w *Writer) writeLine(b []byte) {
	if w.pending {
		w.write(w.eol)
	}
	if w.err == nil {
		_, w.err = w.w.Write(b)
	}
	w.pending = true
}

// write writes s unless an error happened before.
func (w *Writer) write(s string) {
	if w.err == nil {
		_, w.err = w.w.WriteString(s)
	}
}

// appendCSVRow appends the CSV text of the fields encoded in rec to dst.
func appendCSVRow(dst, rec []byte) ([]byte, error) {
	n, err := fieldCount(rec)
	if err != nil {
		return dst, err
	}
	i := 0
	err = eachField(rec, func(start, end int) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCSVField(dst, rec[start:end], n == 1)
		i++
	})
	return dst, err
}

// appendCSVField appends field f to dst, quoted when it must be: when it
// holds a comma, quote, CR or LF, starts with a space or tab (which other
// tools may trim) or a byte order mark (which the Reader skips at the start
// of a file), or is empty and the only field of its row (an empty line
// would be read back as no row at all).
func appendCSVField(dst, f []byte, only bool) []byte {
	quote := len(f) == 0 && only
	if len(f) > 0 && (f[0] == ' ' || f[0] == '\t') || bytes.HasPrefix(f, utf8BOM) {
		quote = true
	}
	for _, c := range f {
		if quote {
			break
		}
		switch c {
		case ',', '"', '\r', '\n':
			quote = true
		}
	}
	if !quote {
		return append(dst, f...)
	}
	dst = append(dst, '"')
	for i, c := range f {
		switch {
		case c == '"':
			dst = append(dst, '"')
		case c == '\r' && i+1 < len(f) && f[i+1] == '\n':
			// encoding/csv reads a line ending "\r\n" as "\n", so a field
			// holding "\r\n" (which it read from "\r\r\n") is written
			// the same way.
			dst = append(dst, '\r')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}
