package sliced

import (
	"bufio"
	"bytes"
	"encoding/csv"
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

// Reader reads the records of one format from a (decompressed) stream, one
// at a time and with bounded memory.
//
// Errors caused by the content of the input are *InputError values naming the
// line; errors of the underlying reader are returned unchanged. After an
// error, Next keeps returning the same error.
type Reader struct {
	format Format
	br     *bufio.Reader
	err    error // sticky error (io.EOF included)

	started bool  // the start of the stream (BOM) has been handled
	line    int64 // lines consumed so far (Lines, JSONL)
	recLine int64 // line of the last record returned
	offset  int64 // bytes consumed so far (Lines, JSONL)
	sawEOL  bool  // the first line terminator has been seen
	crlf    bool  // the first line ended in "\r\n"
	lastEOL bool  // the last line read ended with a terminator
	buf     []byte

	// CSV only.
	csvr       *csv.Reader
	src        *csvSource
	header     []string
	headerLine int64 // 1-based line where the header row starts
	headerRead bool
	rec        []byte
}

// NewReader returns a Reader of records in format f read from r. An empty
// format means Lines; an unknown format makes Next return an error.
//
// For CSV and JSONL a UTF-8 byte order mark at the very start of the stream
// is skipped; Lines keeps every byte.
func NewReader(r io.Reader, f Format) *Reader {
	if f == "" {
		f = Lines
	}
	rd := &Reader{format: f, br: bufio.NewReaderSize(r, readBufSize), lastEOL: true}
	if !f.valid() {
		rd.err = fmt.Errorf("sliced: unknown format %q", string(f))
	}
	return rd
}

// Next returns the next record, or io.EOF after the last one. The returned
// bytes are only valid until the next call.
//
// Lines: the line without its terminator. The terminator is "\n"; when the
// first line of the stream ended in "\r\n", a "\r" before the "\n" is also
// stripped from every line that has one (a last line without "\n" keeps its
// bytes). CSV: the fields of the row encoded with EncodeFields; the header row
// is not a record (see Header). JSONL: the line without its terminator, after
// checking that it holds exactly one JSON value; blank lines are skipped.
//
// A record longer than MaxRecordSize is an *InputError wrapping
// ErrRecordTooLong.
func (r *Reader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.started {
		r.started = true
		if r.format != Lines {
			if b, _ := r.br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
				n, _ := r.br.Discard(len(utf8BOM))
				r.offset += int64(n)
			}
		}
		if r.format == CSV {
			r.src = &csvSource{r: r.br, rowStartLine: 1}
			r.csvr = csv.NewReader(r.src)
			r.csvr.FieldsPerRecord = -1
			r.csvr.ReuseRecord = true
		}
	}
	var rec []byte
	var err error
	switch r.format {
	case CSV:
		rec, err = r.nextCSV()
	case JSONL:
		rec, err = r.nextJSON()
	default:
		rec, err = r.readLine()
		if err == nil {
			r.recLine = r.line
		}
	}
	if err != nil {
		r.err = err
		return nil, err
	}
	return rec, nil
}

// Header returns the CSV header row once the first Next call has returned
// (nil for an empty file). It is nil for the other formats.
func (r *Reader) Header() []string { return r.header }

// LineEnding returns the line ending of the stream: "\r\n" when its first
// line ended in "\r\n", else "\n" (also when no line has ended yet).
func (r *Reader) LineEnding() string {
	crlf := r.crlf
	if r.src != nil {
		crlf = r.src.crlf
	}
	if crlf {
		return "\r\n"
	}
	return "\n"
}

// FinalNewline reports, once Next has returned io.EOF, whether the last line
// of the stream ended with a line terminator. It is true for an empty stream.
func (r *Reader) FinalNewline() bool {
	if r.src != nil {
		return r.src.n == 0 || r.src.prev == '\n'
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
			if r.crlf && hasCR {
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

// nextCSV returns the next CSV row (after the header) encoded with
// EncodeFields.
func (r *Reader) nextCSV() ([]byte, error) {
	if !r.headerRead {
		r.headerRead = true
		row, err := r.csvr.Read()
		if err != nil {
			return nil, r.csvError(err)
		}
		r.header = slices.Clone(row)
		line, _ := r.csvr.FieldPos(0)
		r.headerLine = int64(line)
	}
	row, err := r.csvr.Read()
	if err != nil {
		return nil, r.csvError(err)
	}
	line, _ := r.csvr.FieldPos(0)
	r.recLine = int64(line)
	r.rec = EncodeFields(r.rec[:0], row)
	if len(r.rec) > MaxRecordSize {
		return nil, &InputError{Line: r.recLine, Offset: -1, Err: ErrRecordTooLong}
	}
	return r.rec, nil
}

// csvError turns an error of encoding/csv into the error Next returns.
func (r *Reader) csvError(err error) error {
	var pe *csv.ParseError
	switch {
	case err == io.EOF:
		return err
	case errors.Is(err, errRowTooLong):
		return &InputError{Line: r.src.rowStartLine, Offset: -1, Err: ErrRecordTooLong}
	case errors.As(err, &pe):
		detail := fmt.Errorf("%w (column %d)", pe.Err, pe.Column)
		if pe.StartLine != pe.Line {
			detail = fmt.Errorf("%w (column %d of the row that starts at line %d)", pe.Err, pe.Column, pe.StartLine)
		}
		return &InputError{Line: int64(pe.Line), Offset: -1, Err: detail}
	default:
		return err
	}
}

// errRowTooLong is returned by csvSource when a CSV row gets too long.
var errRowTooLong = errors.New("CSV row is too long")

// csvSource sits between the input and encoding/csv, which has no size limit
// of its own. It follows the quoting of the bytes it passes on to know where
// each row starts, and fails with errRowTooLong once a row is longer than
// MaxRecordSize+1 bytes (the +1 for a "\r" before the row's "\n"). That bounds
// the memory encoding/csv uses for one row. It also records what the Reader
// reports about line endings.
type csvSource struct {
	r            io.Reader
	n            int64 // bytes passed on
	lines        int64 // "\n" bytes passed on
	rowStartLine int64 // 1-based line where the current row starts
	rowLen       int64 // bytes of the current row passed on
	inQuote      bool  // inside a quoted field
	prev         byte  // last byte passed on
	sawEOL       bool  // a "\n" has been passed on
	crlf         bool  // the first "\n" followed a "\r"
	err          error
}

// Read passes on bytes of the input, failing once a row is too long.
func (s *csvSource) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	for i, c := range p[:n] {
		switch c {
		case '"':
			// With strict quoting, a row ends at a "\n" only after an even
			// number of quotes; invalid quoting is reported by encoding/csv.
			s.inQuote = !s.inQuote
		case '\n':
			if !s.sawEOL {
				s.sawEOL = true
				s.crlf = s.prev == '\r'
			}
			s.lines++
			if !s.inQuote {
				s.rowLen = 0
				s.rowStartLine = s.lines + 1
				s.prev = c
				continue
			}
		}
		s.prev = c
		s.rowLen++
		if s.rowLen > MaxRecordSize+1 {
			s.n += int64(i)
			s.err = errRowTooLong
			return i, s.err
		}
	}
	s.n += int64(n)
	return n, err
}
