package sliced

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// writeBufSize is the size of the write buffer of a Writer.
const writeBufSize = 64 << 10

// WriterOptions says how a Writer lays out its output. They are usually the
// values a Reader reported for the uploaded file.
type WriterOptions struct {
	// Format of the output; empty means Lines.
	Format Format
	// RecordFormat is the format of the records given to Write when it is
	// not Format: records of a tabular format (packed fields) can be
	// written as any other tabular format or as JSONL (one JSON object per
	// record, keyed by Header). Empty means Format.
	RecordFormat Format
	// Header is the header row of a tabular format: written before the
	// first record (or on Close when there was no record) for CSV, PSV,
	// TSV and XLSX; the column names of Fixed; the keys of JSONL objects
	// written from fields. Ignored for the other formats and when empty.
	Header []string
	// Widths are the column widths of Fixed output, one per Header name.
	Widths []int
	// LineEnding ends every line: "\n" (also when empty) or "\r\n".
	LineEnding string
	// FinalNewline says whether the last line gets a line ending too.
	FinalNewline bool
	// BOM starts the output with a UTF-8 byte order mark (text formats).
	BOM bool
	// Sheet names the XLSX sheet written; empty means "Sheet1".
	Sheet string
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
	rows       RowWriter // XLSX
	json       *bytes.Buffer
	jsonEnc    *json.Encoder
}

// NewWriter returns a Writer of records to w laid out as opts says. Invalid
// options (an unknown format or line ending, a conversion that cannot be
// made) make Write and Close fail.
func NewWriter(w io.Writer, opts WriterOptions) *Writer {
	if opts.Format == "" {
		opts.Format = Lines
	}
	if opts.RecordFormat == "" {
		opts.RecordFormat = opts.Format
	}
	wr := &Writer{w: bufio.NewWriterSize(w, writeBufSize), opts: opts, eol: opts.LineEnding}
	switch opts.LineEnding {
	case "":
		wr.eol = "\n"
	case "\n", "\r\n":
	default:
		wr.err = fmt.Errorf("sliced: invalid line ending %q: want \"\\n\" or \"\\r\\n\"", opts.LineEnding)
	}
	switch {
	case !opts.Format.valid():
		wr.err = fmt.Errorf("sliced: unknown format %q", string(opts.Format))
	case !opts.RecordFormat.valid():
		wr.err = fmt.Errorf("sliced: unknown format %q", string(opts.RecordFormat))
	case opts.Format != opts.RecordFormat && !(opts.RecordFormat.Tabular() && (opts.Format.Tabular() || opts.Format == JSONL)):
		wr.err = fmt.Errorf("sliced: %s records cannot be written as %s", opts.RecordFormat, opts.Format)
	case opts.Format == Fixed:
		if err := checkLayout(opts.Header, opts.Widths); err != nil {
			wr.err = err
		}
	}
	if opts.Format.separator() == 0 || len(opts.Header) == 0 {
		wr.headerDone = true
	}
	if opts.BOM && opts.Format != XLSX && wr.err == nil {
		wr.write(string(utf8BOM))
	}
	if opts.Format == XLSX && wr.err == nil {
		rf, err := rowFormat(XLSX)
		if err == nil {
			wr.rows, err = rf.NewWriter(wr.w, &wr.opts)
		}
		if err == nil && len(opts.Header) > 0 {
			err = wr.rows.Write(opts.Header)
		}
		wr.err = err
	}
	return wr
}

// Write writes one record. For Lines and JSONL rec is written as it is, as
// one line; a tabular record (fields encoded with EncodeFields) is written
// as a row of the output format (fields quoted where needed), after the
// header row if there is one, or as a JSON object keyed by the header. A
// tabular record that does not decode is an error wrapping ErrCorruptSlice;
// one that Fixed cannot hold wraps ErrFixedWidth.
func (w *Writer) Write(rec []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("sliced: Write after Close")
	}
	if !w.opts.RecordFormat.Tabular() {
		w.writeLine(rec)
		return w.err
	}
	w.writeHeader()
	var row []byte
	var err error
	switch f := w.opts.Format; {
	case f == XLSX:
		fields, err := DecodeFields(rec)
		if err != nil {
			return err
		}
		if err := w.rows.Write(fields); err != nil {
			w.err = err
		}
		return w.err
	case f == Fixed:
		row, err = appendFixedRow(w.row[:0], rec, w.opts.Header, w.opts.Widths)
	case f == JSONL:
		row, err = w.appendJSONObject(w.row[:0], rec)
	default:
		row, err = appendDelimRow(w.row[:0], rec, f.separator())
	}
	if err != nil {
		return err
	}
	w.row = row
	w.writeLine(row)
	return w.err
}

// Close writes the header if no record was written, ends the last line
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
	if w.rows != nil && w.err == nil {
		w.err = w.rows.Close()
	}
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return w.err
}

// writeHeader writes the header row once, if there is one.
func (w *Writer) writeHeader() {
	if w.headerDone {
		return
	}
	w.headerDone = true
	sep := w.opts.Format.separator()
	w.row = w.row[:0]
	for i, f := range w.opts.Header {
		if i > 0 {
			w.row = append(w.row, sep)
		}
		w.row = appendQuotedField(w.row, []byte(f), sep, len(w.opts.Header) == 1)
	}
	w.writeLine(w.row)
}

// appendJSONObject appends the fields encoded in rec as one JSON object
// keyed by the header, in header order; a field beyond the header is keyed
// by its 1-based column number, a field the row lacks is left out.
func (w *Writer) appendJSONObject(dst, rec []byte) ([]byte, error) {
	if w.json == nil {
		w.json = new(bytes.Buffer)
		w.jsonEnc = json.NewEncoder(w.json)
		w.jsonEnc.SetEscapeHTML(false)
	}
	str := func(s string) {
		w.json.Reset()
		_ = w.jsonEnc.Encode(s) // a string always encodes
		dst = append(dst, bytes.TrimSuffix(w.json.Bytes(), []byte("\n"))...)
	}
	dst = append(dst, '{')
	i := 0
	err := eachField(rec, func(start, end int) {
		if i > 0 {
			dst = append(dst, ',')
		}
		if i < len(w.opts.Header) {
			str(w.opts.Header[i])
		} else {
			str(strconv.Itoa(i + 1))
		}
		dst = append(dst, ':')
		str(string(rec[start:end]))
		i++
	})
	return append(dst, '}'), err
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
	return appendDelimRow(dst, rec, ',')
}

// appendDelimRow appends the fields encoded in rec to dst separated by sep.
func appendDelimRow(dst, rec []byte, sep byte) ([]byte, error) {
	n, err := fieldCount(rec)
	if err != nil {
		return dst, err
	}
	i := 0
	err = eachField(rec, func(start, end int) {
		if i > 0 {
			dst = append(dst, sep)
		}
		dst = appendQuotedField(dst, rec[start:end], sep, n == 1)
		i++
	})
	return dst, err
}

// appendQuotedField appends field f to dst, quoted when it must be: when it
// holds the separator, a quote, CR or LF, starts with a space or tab (which
// other tools may trim) or a byte order mark (which the Reader skips at the
// start of a file), or is empty and the only field of its row (an empty
// line would be read back as no row at all). Inside quotes every byte is
// kept as it is ("\r\n" included), quotes doubled.
func appendQuotedField(dst, f []byte, sep byte, only bool) []byte {
	quote := len(f) == 0 && only
	if len(f) > 0 && (f[0] == ' ' || f[0] == '\t') || bytes.HasPrefix(f, utf8BOM) {
		quote = true
	}
	for _, c := range f {
		if quote {
			break
		}
		switch c {
		case sep, '"', '\r', '\n':
			quote = true
		}
	}
	if !quote {
		return append(dst, f...)
	}
	dst = append(dst, '"')
	for _, c := range f {
		if c == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}
