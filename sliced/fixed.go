package sliced

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrFixedWidth is wrapped by the errors about a fixed-width line that does
// not fit its layout, or a field too wide for its column.
var ErrFixedWidth = errors.New("does not fit the fixed-width layout")

// checkLayout checks a fixed-width layout: one positive width per name.
func checkLayout(names []string, widths []int) error {
	if len(names) == 0 {
		return errors.New("sliced: the fixed format needs a layout: column names and widths")
	}
	if len(widths) != len(names) {
		return fmt.Errorf("sliced: fixed-width layout has %d column names but %d widths", len(names), len(widths))
	}
	total := 0
	for i, w := range widths {
		if w < 1 {
			return fmt.Errorf("sliced: fixed-width column %q has width %d: widths must be at least 1", names[i], w)
		}
		total += w
	}
	if total > MaxRecordSize {
		return fmt.Errorf("sliced: fixed-width layout is %d characters wide, more than the record limit", total)
	}
	return nil
}

// nextFixed returns the next line of a fixed-width file cut into the
// layout's fields (trailing spaces of each field trimmed), encoded with
// EncodeFields. Empty lines are skipped; a line shorter than the layout
// gets empty fields; a line longer than it (other than trailing spaces) is
// an *InputError.
func (r *Reader) nextFixed() ([]byte, error) {
	for {
		start := r.offset
		line, err := r.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) > 0 && line[len(line)-1] == '\r' && r.lastEOL {
			line = line[:len(line)-1] // any "\r\n" ends a line here
		}
		if len(line) == 0 {
			continue
		}
		r.recLine = r.line
		r.fields = r.fields[:0]
		rest := line
		for _, w := range r.opts.Widths {
			n := runePrefix(rest, w)
			r.fields = append(r.fields, string(bytes.TrimRight(rest[:n], " ")))
			rest = rest[n:]
		}
		if len(bytes.TrimRight(rest, " ")) > 0 {
			return nil, &InputError{Line: r.line, Offset: start, Err: fmt.Errorf("%d characters: %w (%d wide)",
				utf8.RuneCount(line), ErrFixedWidth, layoutWidth(r.opts.Widths))}
		}
		r.rec = EncodeFields(r.rec[:0], r.fields)
		return r.rec, nil
	}
}

// runePrefix returns how many bytes of b the first n characters take (an
// invalid UTF-8 byte counts as one character).
func runePrefix(b []byte, n int) int {
	off := 0
	for i := 0; i < n && off < len(b); i++ {
		_, size := utf8.DecodeRune(b[off:])
		off += size
	}
	return off
}

// layoutWidth is the width of a line of the layout.
func layoutWidth(widths []int) int {
	t := 0
	for _, w := range widths {
		t += w
	}
	return t
}

// appendFixedRow appends the fields encoded in rec to dst, each padded with
// spaces to its column's width. A field wider than its column, holding a
// line break, or a record with more fields than the layout is an error
// wrapping ErrFixedWidth (writing it would lose data).
func appendFixedRow(dst, rec []byte, names []string, widths []int) ([]byte, error) {
	n, err := fieldCount(rec)
	if err != nil {
		return dst, err
	}
	if n > len(widths) {
		return dst, fmt.Errorf("a row of %d fields %w of %d columns", n, ErrFixedWidth, len(widths))
	}
	var ferr error
	i := 0
	err = eachField(rec, func(start, end int) {
		f := rec[start:end]
		if ferr != nil {
			return
		}
		if c := utf8.RuneCount(f); c > widths[i] || bytes.ContainsAny(f, "\r\n") {
			ferr = fmt.Errorf("field %q of column %q (%d characters) %w (%d wide)", f, names[i], c, ErrFixedWidth, widths[i])
			return
		}
		dst = append(dst, f...)
		for range widths[i] - utf8.RuneCount(f) {
			dst = append(dst, ' ')
		}
		i++
	})
	if err == nil {
		err = ferr
	}
	for ; err == nil && i < len(widths); i++ {
		dst = append(dst, bytes.Repeat([]byte{' '}, widths[i])...)
	}
	return dst, err
}
