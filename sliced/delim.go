package sliced

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Errors of delimited (CSV, PSV, TSV) input, wrapped in *InputError with the
// line and column.
var (
	// ErrBareQuote is a quote inside a field that does not start with one
	// (`12" pipe`); the LenientQuotes option accepts it as a literal quote.
	ErrBareQuote = errors.New(`bare " in non-quoted-field`)
	// ErrQuote is a quoted field whose closing quote is missing or followed
	// by something other than a separator or the end of the line.
	ErrQuote = errors.New(`extraneous or missing " in quoted-field`)
)

// delimReader reads the rows of a delimited file (RFC 4180 with a chosen
// separator). Unlike encoding/csv it keeps the bytes of quoted fields
// exactly ("\r\n" inside quotes stays "\r\n"), can accept bare quotes
// (lenient), and bounds the memory of one row by MaxRecordSize.
//
// Rows end at "\n" or "\r\n" outside quotes; empty lines are skipped; a
// field is quoted when its first byte is '"'.
type delimReader struct {
	br      *bufio.Reader
	sep     byte
	lenient bool

	lines    int64 // "\n" consumed
	rowStart int64 // 1-based line where the last row started
	rowBytes int   // bytes of the current row read so far
	sawEOL   bool  // a row terminator has been seen
	crlf     bool  // the first row terminator was "\r\n"
	n        int64 // bytes consumed
	last     byte  // last byte consumed

	lineBuf []byte // a physical line longer than the bufio buffer
	buf     []byte // the field bytes of the current row
	ends    []int  // end of each field in buf
}

// newDelimReader returns a reader of rows separated by sep from br.
func newDelimReader(br *bufio.Reader, sep byte, lenient bool) *delimReader {
	return &delimReader{br: br, sep: sep, lenient: lenient}
}

// line returns the next physical line with its "\n" (none at the end of the
// stream), or io.EOF. It fails with errRowTooLong once the current row holds
// more than MaxRecordSize+1 bytes, without reading more of it.
func (d *delimReader) line() ([]byte, error) {
	d.lineBuf = d.lineBuf[:0]
	for {
		chunk, err := d.br.ReadSlice('\n')
		d.rowBytes += len(chunk)
		d.n += int64(len(chunk))
		if len(chunk) > 0 {
			d.last = chunk[len(chunk)-1]
		}
		if d.rowBytes > MaxRecordSize+2 { // +2: the row's own "\r\n"
			return nil, errRowTooLong
		}
		switch err {
		case nil:
			d.lines++
			if len(d.lineBuf) > 0 {
				d.lineBuf = appendGrow(d.lineBuf, chunk)
				return d.lineBuf, nil
			}
			return chunk, nil
		case bufio.ErrBufferFull:
			d.lineBuf = appendGrow(d.lineBuf, chunk)
		case io.EOF:
			if len(d.lineBuf) > 0 {
				d.lineBuf = appendGrow(d.lineBuf, chunk)
				return d.lineBuf, nil
			}
			if len(chunk) == 0 {
				return nil, io.EOF
			}
			return chunk, nil
		default:
			return nil, err
		}
	}
}

// terminator returns the length of the row terminator at the end of line
// ("\n" or "\r\n"), 0 when line has none.
func terminator(line []byte) int {
	n := len(line)
	switch {
	case n >= 2 && line[n-2] == '\r' && line[n-1] == '\n':
		return 2
	case n >= 1 && line[n-1] == '\n':
		return 1
	}
	return 0
}

// noteEOL records the first row terminator's kind.
func (d *delimReader) noteEOL(t int) {
	if t > 0 && !d.sawEOL {
		d.sawEOL = true
		d.crlf = t == 2
	}
}

// next reads the next row; its fields are field(i) for i < len(d.ends).
// Errors of the content are *InputError values.
func (d *delimReader) next() error {
	d.buf, d.ends = d.buf[:0], d.ends[:0]
	var line []byte
	for {
		d.rowBytes = 0
		d.rowStart = d.lines + 1
		var err error
		line, err = d.line()
		if err != nil {
			return d.wrap(err)
		}
		t := terminator(line)
		if t == len(line) { // an empty line
			d.noteEOL(t)
			continue
		}
		break
	}
	lineNo := d.rowStart
	pos := 0
	for {
		// At the start of a field.
		if pos < len(line) && line[pos] == '"' {
			pos++
			for {
				i := bytes.IndexByte(line[pos:], '"')
				if i < 0 {
					// The field goes on past this line, line ending included.
					d.buf = append(d.buf, line[pos:]...)
					prevLen := len(line)
					next, err := d.line()
					if err == io.EOF {
						if d.lenient {
							d.ends = append(d.ends, len(d.buf))
							return nil
						}
						col := prevLen + 1
						if t := terminator(line); t > 0 {
							// The stream ended after a line ending.
							lineNo, col = d.lines+1, 1
						}
						return d.quoteError(ErrQuote, lineNo, col)
					}
					if err != nil {
						return d.wrap(err)
					}
					line, pos = next, 0
					lineNo = d.lines
					if terminator(line) == 0 {
						lineNo = d.lines + 1
					}
					continue
				}
				d.buf = append(d.buf, line[pos:pos+i]...)
				pos += i + 1
				rest := line[pos:]
				switch {
				case len(rest) > 0 && rest[0] == '"':
					d.buf = append(d.buf, '"')
					pos++
					continue
				case len(rest) > 0 && rest[0] == d.sep:
					d.ends = append(d.ends, len(d.buf))
					pos++
				case terminator(rest) == len(rest), len(rest) == 1 && rest[0] == '\r':
					// The end of the row ("\r" alone: the last line's
					// ending cut before its "\n", as encoding/csv takes it).
					d.noteEOL(terminator(rest))
					d.ends = append(d.ends, len(d.buf))
					return nil
				case d.lenient:
					d.buf = append(d.buf, '"')
					continue
				default:
					return d.quoteError(ErrQuote, lineNo, pos)
				}
				break
			}
			continue
		}
		// An unquoted field: up to the separator or the end of the line.
		t := terminator(line)
		body := line[pos : len(line)-t]
		end := bytes.IndexByte(body, d.sep)
		last := end < 0
		if last {
			end = len(body)
		}
		field := body[:end]
		if !d.lenient {
			if q := bytes.IndexByte(field, '"'); q >= 0 {
				return d.quoteError(ErrBareQuote, lineNo, pos+q+1)
			}
		}
		d.buf = append(d.buf, field...)
		d.ends = append(d.ends, len(d.buf))
		if last {
			d.noteEOL(t)
			return nil
		}
		pos += end + 1
	}
}

// quoteError is the *InputError of a quoting error at line, column col
// (1-based bytes), in the row that started at d.rowStart.
func (d *delimReader) quoteError(err error, line int64, col int) error {
	detail := fmt.Errorf("%w (column %d)", err, col)
	if line != d.rowStart {
		detail = fmt.Errorf("%w (column %d of the row that starts at line %d)", err, col, d.rowStart)
	}
	return &InputError{Line: line, Offset: -1, Err: detail}
}

// wrap turns errRowTooLong into its *InputError; other errors pass.
func (d *delimReader) wrap(err error) error {
	if errors.Is(err, errRowTooLong) {
		return &InputError{Line: d.rowStart, Offset: -1, Err: ErrRecordTooLong}
	}
	return err
}

// errRowTooLong is returned when a delimited row gets too long.
var errRowTooLong = errors.New("row is too long")

// field returns the bytes of field i of the current row.
func (d *delimReader) field(i int) []byte {
	start := 0
	if i > 0 {
		start = d.ends[i-1]
	}
	return d.buf[start:d.ends[i]]
}

// fields returns the current row as strings.
func (d *delimReader) fields() []string {
	out := make([]string, len(d.ends))
	all := string(d.buf)
	start := 0
	for i, e := range d.ends {
		out[i] = all[start:e]
		start = e
	}
	return out
}

// encode appends the current row to dst encoded with EncodeFields.
func (d *delimReader) encode(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(d.ends)))
	start := 0
	for _, e := range d.ends {
		dst = binary.AppendUvarint(dst, uint64(e-start))
		dst = append(dst, d.buf[start:e]...)
		start = e
	}
	return dst
}

// finalNewline reports whether the stream ended with a "\n" (or was empty).
func (d *delimReader) finalNewline() bool { return d.n == 0 || d.last == '\n' }
