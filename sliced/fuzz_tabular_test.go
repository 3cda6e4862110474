package sliced

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzLinesKeepCR checks that any bytes read as an upload reads lines
// (KeepCR) and written back are byte-identical, mixed line endings
// included.
func FuzzLinesKeepCR(f *testing.F) {
	for _, s := range []string{"", "a", "a\r\nb\nc\r\nd\n", "\r\n\n", "a\r\r\n", "x\r", "\xef\xbb\xbf\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, x []byte) {
		out, err := copyWith(t, x, ReaderOptions{Format: Lines, KeepCR: true}, WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, x) {
			t.Fatalf("%q copied as %q", x, out)
		}
	})
}

// FuzzReaderDelimited checks, for CSV, PSV and TSV, strict and lenient:
// reading any bytes never panics and fails only with an *InputError naming
// a line; what was read, written in any delimited format and read back
// strictly, gives the same header and rows.
func FuzzReaderDelimited(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "a|b\r\n\"x\r\ny\"|2\r\n", "a\tb\n12\" pipe\t\"q\"\"\"\n", "\"open", "a\n\"x\"y\n",
		"\xef\xbb\xbfa\n\"\"\n", "\n\r\n", "a\n\"x\r\r\n\"\n"} {
		for mode := range uint8(6) {
			f.Add([]byte(s), mode)
		}
	}
	f.Fuzz(func(t *testing.T, x []byte, mode uint8) {
		in := []Format{CSV, PSV, TSV}[mode%3]
		out := []Format{CSV, PSV, TSV}[(mode/3)%3]
		ro := ReaderOptions{Format: in, LenientQuotes: mode&0x10 != 0}
		h, rs, err := rows(t, x, ro)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Line <= 0 {
				t.Fatalf("error %v (%T) is not an *InputError with a line", err, err)
			}
			return
		}
		copied, err := copyWith(t, x, ro, WriterOptions{Format: out})
		if err != nil {
			t.Fatalf("copy: %v", err)
		}
		h2, rs2, err := rows(t, copied, ReaderOptions{Format: out})
		if err != nil {
			t.Fatalf("reading the copy %q of %q: %v", copied, x, err)
		}
		if !reflect.DeepEqual(h, h2) || !reflect.DeepEqual(rs, rs2) {
			t.Fatalf("%q copied as %q: %q %q became %q %q", x, copied, h, rs, h2, rs2)
		}
	})
}

// FuzzReaderFixed checks that reading any bytes as fixed-width never panics
// and fails only with an *InputError naming a line, and that what was read
// and written back reads back to the same rows.
func FuzzReaderFixed(f *testing.F) {
	for _, s := range []string{"0001Alice   12.50\n", "0002Zoë     -3.00\r\n\n", "toolongtoolongtoolongtoolong\n", "\xff\xfe\n", "ab"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, x []byte) {
		_, rs, err := rows(t, x, fixedLayout)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Line <= 0 {
				t.Fatalf("error %v (%T) is not an *InputError with a line", err, err)
			}
			return
		}
		copied, err := copyWith(t, x, fixedLayout, WriterOptions{})
		if errors.Is(err, ErrFixedWidth) {
			return // a field that ends in "\r" or holds one cannot be written
		}
		if err != nil {
			t.Fatalf("copy: %v", err)
		}
		_, rs2, err := rows(t, copied, fixedLayout)
		if err != nil {
			t.Fatalf("reading the copy %q of %q: %v", copied, x, err)
		}
		if !reflect.DeepEqual(rs, rs2) {
			t.Fatalf("%q copied as %q: %q became %q", x, copied, rs, rs2)
		}
	})
}
