package sliced

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// readBufSize is the size of the read buffer of a Reader.
const readBufSize = 64 << 10

// utf8BOM is the byte order mark some tools put at the start of text files.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ReaderOptions say how a Reader reads its input; only Format is needed
// for most files.
type ReaderOptions struct {
	// Format of the input; empty means Lines.
	Format Format
	// LenientQuotes (CSV, PSV, TSV) accepts quotes that strict RFC 4180
	// refuses: a quote inside a field that does not start with one
	// (`12" pipe`) and a quote inside a quoted field that is not doubled
	// nor followed by a separator or the end of the line are kept as
	// literal quotes, and a quoted field still open at the end of the file
	// ends there. The default refuses such a file with ErrBareQuote or
	// ErrQuote naming the line and column.
	LenientQuotes bool
	// Header, for a tabular format, names the columns of a file that has
	// no header row: every row is then a record. Fixed requires it.
	Header []string
	// Widths are the widths, in characters, of the columns of a Fixed
	// file, one per Header name.
	Widths []int
	// KeepCR (Lines): a line that ends in "\r\n" keeps its "\r" in the
	// record, whatever the first line ended in, so a file with mixed line
	// endings can be written back exactly (see KeptCR). Upload uses it.
	KeepCR bool
	// Sheet (XLSX) names the sheet to read; empty means the first.
	Sheet string
}

// Reader reads the records of one format from a (decompressed) stream, one
// at a time and with bounded memory.
//
// Errors caused by the content of the input are *InputError values naming the
// line; errors of the underlying reader are returned unchanged. After an
// error, Next keeps returning the same error.
type Reader struct {
	format Format
	opts   ReaderOptions
	br     *bufio.Reader
	src    io.Reader
	err    error // sticky error (io.EOF included)

	started bool  // the start of the stream (BOM) has been handled
	bom     bool  // the stream started with a UTF-8 byte order mark
	line    int64 // lines consumed so far (Lines, JSONL, Fixed)
	recLine int64 // line of the last record returned
	offset  int64 // bytes consumed so far (Lines, JSONL, Fixed)
	sawEOL  bool  // the first line terminator has been seen
	crlf    bool  // the first line ended in "\r\n"
	keptCR  bool  // a record kept the "\r" of its "\r\n" (KeepCR)
	lastEOL bool  // the last line read ended with a terminator
	buf     []byte

	// Tabular formats.
	delim      *delimReader
	rows       RowReader // a format of another package (XLSX)
	header     []string
	headerLine int64 // 1-based line where the header row starts
	headerRead bool
	rec        []byte
	fields     []string
}

// NewReader returns a Reader of records in format f read from r. An empty
// format means Lines; an unknown format makes Next return an error.
//
// For the formats other than Lines a UTF-8 byte order mark at the very
// start of the stream is skipped (BOM reports it); Lines keeps every byte.
func NewReader(r io.Reader, f Format) *Reader {
	return NewReaderOptions(r, &ReaderOptions{Format: f})
}

// NewReaderOptions returns a Reader of r laid out as opts says (nil means
// Lines). Invalid options (an unknown format, a Fixed layout without
// widths) make Next return an error.
func NewReaderOptions(r io.Reader, opts *ReaderOptions) *Reader {
	o := ReaderOptions{}
	if opts != nil {
		o = *opts
	}
	if o.Format == "" {
		o.Format = Lines
	}
	rd := &Reader{format: o.Format, opts: o, src: r, br: bufio.NewReaderSize(r, readBufSize), lastEOL: true}
	if err := o.validate(); err != nil {
		rd.err = err
	}
	return rd
}

// validate checks the options that do not depend on the input.
func (o *ReaderOptions) validate() error {
	if !o.Format.valid() {
		return fmt.Errorf("sliced: unknown format %q", string(o.Format))
	}
	if len(o.Header) > 0 && !o.Format.Tabular() {
		return fmt.Errorf("sliced: declared columns need a tabular format, not %s", o.Format)
	}
	if o.Format == Fixed {
		if err := checkLayout(o.Header, o.Widths); err != nil {
			return err
		}
	} else if len(o.Widths) > 0 {
		return fmt.Errorf("sliced: column widths are for the fixed format, not %s", o.Format)
	}
	return nil
}

// Next returns the next record, or io.EOF after the last one. The returned
// bytes are only valid until the next call.
//
// Lines: the line without its terminator. The terminator is "\n"; when the
// first line of the stream ended in "\r\n", a "\r" before the "\n" is also
// stripped from every line that has one (a last line without "\n" keeps its
// bytes); with KeepCR it is never stripped. Tabular formats: the fields of
// the row encoded with EncodeFields; the header row is not a record (see
// Header). JSONL: the line without its terminator, after checking that it
// holds exactly one JSON value; blank lines are skipped.
//
// A record longer than MaxRecordSize is an *InputError wrapping
// ErrRecordTooLong.
func (r *Reader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.started {
		r.started = true
		if r.format != Lines && r.format != XLSX {
			if b, _ := r.br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
				n, _ := r.br.Discard(len(utf8BOM))
				r.offset += int64(n)
				r.bom = true
			}
		}
		if sep := r.format.separator(); sep != 0 {
			r.delim = newDelimReader(r.br, sep, r.opts.LenientQuotes)
		}
		if r.format == XLSX {
			rows, err := openRows(r.src, &r.opts)
			if err != nil {
				r.err = err
				return nil, err
			}
			r.rows = rows
		}
		if len(r.opts.Header) > 0 {
			r.header = slices.Clone(r.opts.Header)
			r.headerRead = true
		}
	}
	var rec []byte
	var err error
	switch {
	case r.delim != nil:
		rec, err = r.nextDelim()
	case r.rows != nil:
		rec, err = r.nextRow()
	case r.format == Fixed:
		rec, err = r.nextFixed()
	case r.format == JSONL:
		rec, err = r.nextJSON()
	default:
		rec, err = r.readLine()
		if err == nil {
			r.recLine = r.line
		}
	}
	if err != nil {
		r.err = err
		r.Close()
		return nil, err
	}
	return rec, nil
}

// Close releases what the Reader holds besides its input (the temporary
// files of an XLSX workbook); it does not close the input. Reading to
// io.EOF or to an error releases them too.
func (r *Reader) Close() error {
	if c, ok := r.rows.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// BOM reports whether the stream started with a UTF-8 byte order mark that
// the Reader skipped (never for Lines, which keeps it as data).
func (r *Reader) BOM() bool { return r.bom }

// KeptCR reports whether, with KeepCR, a record kept the "\r" of a line
// that ended in "\r\n".
func (r *Reader) KeptCR() bool { return r.keptCR }

// Header returns the header row of a tabular format (the declared one when
// ReaderOptions.Header is set) once the first Next call has returned (nil
// for an empty file). It is nil for the other formats.
func (r *Reader) Header() []string { return r.header }

// LineEnding returns the line ending of the stream: "\r\n" when its first
// line ended in "\r\n", else "\n" (also when no line has ended yet).
func (r *Reader) LineEnding() string {
	crlf := r.crlf
	if r.delim != nil {
		crlf = r.delim.crlf
	}
	if crlf {
		return "\r\n"
	}
	return "\n"
}

// FinalNewline reports, once Next has returned io.EOF, whether the last line
// of the stream ended with a line terminator. It is true for an empty stream.
func (r *Reader) FinalNewline() bool {
	if r.delim != nil {
		return r.delim.finalNewline()
	}
	return r.lastEOL
}

// Line returns the 1-based line number of the last record returned by Next
// (for CSV the line where the row started), or 0 before the first record.
func (r *Reader) Line() int64 { return r.recLine }

// readLine returns the next line without its terminator (see Next), reading
// at most MaxRecordSize+1 bytes of it into memory.
func (r *Reader) readLine() ([]byte, error) {
	start := r.offset
	r.buf = r.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.offset += int64(len(chunk))
		switch err {
		case nil:
			line := chunk
			if len(r.buf) > 0 {
				r.buf = appendGrow(r.buf, chunk)
				line = r.buf
			}
			line = line[:len(line)-1]
			r.line++
			r.lastEOL = true
			hasCR := len(line) > 0 && line[len(line)-1] == '\r'
			if !r.sawEOL {
				r.sawEOL = true
				r.crlf = hasCR
			}
			switch {
			case r.opts.KeepCR:
				r.keptCR = r.keptCR || hasCR
			case r.crlf && hasCR:
				line = line[:len(line)-1]
			}
			if len(line) > MaxRecordSize {
				return nil, &InputError{Line: r.line, Offset: start, Err: ErrRecordTooLong}
			}
			return line, nil
		case bufio.ErrBufferFull:
			// The line goes on. Keep at most MaxRecordSize+1 bytes of it: the
			// +1 is a "\r" that may still be stripped.
			if len(r.buf)+len(chunk) > MaxRecordSize+1 {
				r.line++
				return nil, &InputError{Line: r.line, Offset: start, Err: ErrRecordTooLong}
			}
			r.buf = appendGrow(r.buf, chunk)
		case io.EOF:
			if len(r.buf)+len(chunk) == 0 {
				return nil, io.EOF
			}
			line := chunk
			if len(r.buf) > 0 {
				r.buf = appendGrow(r.buf, chunk)
				line = r.buf
			}
			r.line++
			r.lastEOL = false
			if len(line) > MaxRecordSize {
				return nil, &InputError{Line: r.line, Offset: start, Err: ErrRecordTooLong}
			}
			return line, nil
		default:
			return nil, err
		}
	}
}

// appendGrow appends b to buf, doubling the capacity when it grows (plain
// append grows large slices by only a quarter, which allocates several times
// the final size on the way up to a long line).
func appendGrow(buf, b []byte) []byte {
	if need := len(buf) + len(b); need > cap(buf) {
		grown := make([]byte, len(buf), max(need, 2*cap(buf)))
		copy(grown, buf)
		buf = grown
	}
	return append(buf, b...)
}

// nextJSON returns the next non-blank line after checking it is one JSON value.
func (r *Reader) nextJSON() ([]byte, error) {
	for {
		start := r.offset
		line, err := r.readLine()
		if err != nil {
			return nil, err
		}
		if isBlank(line) {
			continue
		}
		if !json.Valid(line) {
			return nil, &InputError{Line: r.line, Offset: start, Err: jsonError(line)}
		}
		r.recLine = r.line
		return line, nil
	}
}

// isBlank reports whether line holds only JSON whitespace.
func isBlank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// jsonError describes why line is not one valid JSON value.
func jsonError(line []byte) error {
	var v json.RawMessage
	err := json.Unmarshal(line, &v)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON: %s (column %d)", se.Error(), se.Offset)
	case err != nil:
		return fmt.Errorf("invalid JSON: %v", err)
	default:
		return errors.New("invalid JSON")
	}
}

// nextDelim returns the next CSV, PSV or TSV row (after the header)
// encoded with EncodeFields.
func (r *Reader) nextDelim() ([]byte, error) {
	d := r.delim
	if !r.headerRead {
		r.headerRead = true
		if err := d.next(); err != nil {
			return nil, err
		}
		r.header = d.fields()
		r.headerLine = d.rowStart
	}
	if err := d.next(); err != nil {
		return nil, err
	}
	r.recLine = d.rowStart
	r.rec = d.encode(r.rec[:0])
	if len(r.rec) > MaxRecordSize {
		return nil, &InputError{Line: r.recLine, Offset: -1, Err: ErrRecordTooLong}
	}
	return r.rec, nil
}

// nextRow returns the next row of a format of another package (after the
// header) encoded with EncodeFields.
func (r *Reader) nextRow() ([]byte, error) {
	if !r.headerRead {
		r.headerRead = true
		row, err := r.rows.Next()
		if err != nil {
			return nil, err
		}
		r.header = slices.Clone(row)
		r.headerLine = r.rows.Line()
	}
	row, err := r.rows.Next()
	if err != nil {
		return nil, err
	}
	r.recLine = r.rows.Line()
	r.rec = EncodeFields(r.rec[:0], row)
	if len(r.rec) > MaxRecordSize {
		return nil, &InputError{Line: r.recLine, Offset: -1, Err: ErrRecordTooLong}
	}
	return r.rec, nil
}
