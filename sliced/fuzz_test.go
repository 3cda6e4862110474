package sliced

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"testing"
)

// consistentEndings reports whether every line ending of x is the one its
// first line uses: when the first "\n" follows a "\r", every "\n" must.
// (When the first line ends in a bare "\n", any later "\r\n" is a line
// ending in a "\r", which is kept, so every such x round-trips.)
func consistentEndings(x []byte) bool {
	i := bytes.IndexByte(x, '\n')
	if i <= 0 || x[i-1] != '\r' {
		return true
	}
	for j, c := range x {
		if c == '\n' && (j == 0 || x[j-1] != '\r') {
			return false
		}
	}
	return true
}

// FuzzLinesRoundTrip checks that writing what a Lines Reader read gives back
// the input byte for byte, for any input with consistent line endings.
func FuzzLinesRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a", "a\n", "\n", "a\nb", "a\n\nb\n", "a\r\nb\r\n", "a\r\nb", "a\r\nb\r",
		"\r\n", "\r", "\xff\x00\n", "a\r\r\n", "a\nb\r\n", "\xef\xbb\xbfx"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, x []byte) {
		if !consistentEndings(x) {
			t.Skip()
		}
		out, err := copyThrough(t, x, Lines)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, x) {
			t.Fatalf("round trip of %q gave %q", x, out)
		}
	})
}

// FuzzDecodeFields checks that decoding any record never panics and that
// decoded fields re-encode to the same fields.
func FuzzDecodeFields(f *testing.F) {
	f.Add([]byte{})
	f.Add(EncodeFields(nil, nil))
	f.Add(EncodeFields(nil, []string{""}))
	f.Add(EncodeFields(nil, []string{"a", "bc", "\xff"}))
	f.Add([]byte{3, 1, 'a'})
	f.Fuzz(func(t *testing.T, rec []byte) {
		fields, err := DecodeFields(rec)
		if err != nil {
			if !errors.Is(err, ErrCorruptSlice) {
				t.Fatalf("error %v does not wrap ErrCorruptSlice", err)
			}
			return
		}
		again, err := DecodeFields(EncodeFields(nil, fields))
		if err != nil || len(again) != len(fields) || (len(fields) > 0 && !reflect.DeepEqual(again, fields)) {
			t.Fatalf("fields %q changed on re-encoding: %q, %v", fields, again, err)
		}
		// The CSV writer accepts every decodable record.
		if _, err := appendCSVRow(nil, rec); err != nil {
			t.Fatalf("appendCSVRow: %v", err)
		}
	})
}

// FuzzReaderCSV checks that reading any CSV never panics and fails only with
// *InputError, and that a readable CSV written back out reads back to the
// same header and fields.
func FuzzReaderCSV(f *testing.F) {
	for _, s := range []string{"", "a,b\n1,2\n", "a\n\"x\ny\"\n", "a\r\n1\r\n", "a\n\"\"\n", "a\nb\"c\n",
		"a\n\"open", "\xef\xbb\xbfh\n\xff,\x00\n", "a\n\"x\r\"", ",\n,,\n", "\n\na\n\n1", "\n\ufeff", "\"\r\r\n\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, x []byte) {
		recs, r, err := readAll(t, x, CSV)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Line <= 0 {
				t.Fatalf("error %v (%T) is not an *InputError with a line", err, err)
			}
			return
		}
		var rows [][]string
		for _, rec := range recs {
			fields, err := DecodeFields(rec)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, fields)
		}
		out, err := copyThrough(t, x, CSV)
		if err != nil {
			t.Fatalf("copy: %v", err)
		}
		recs2, r2, err := readAll(t, out, CSV)
		if err != nil {
			t.Fatalf("reading the copy %q of %q: %v", out, x, err)
		}
		var rows2 [][]string
		for _, rec := range recs2 {
			fields, err := DecodeFields(rec)
			if err != nil {
				t.Fatal(err)
			}
			rows2 = append(rows2, fields)
		}
		if !reflect.DeepEqual(r.Header(), r2.Header()) || !reflect.DeepEqual(rows, rows2) {
			t.Fatalf("%q copied as %q: header %q rows %q became header %q rows %q",
				x, out, r.Header(), rows, r2.Header(), rows2)
		}
	})
}

// FuzzOpenInput checks that opening and reading any bytes never panics and
// fails only with *InputError (the source itself never fails here).
func FuzzOpenInput(f *testing.F) {
	f.Add([]byte{}, uint8(0))
	f.Add([]byte("plain text\n"), uint8(3))
	f.Add(gzipData(f, []byte("a\nb\n")), uint8(0))
	f.Add(zstdData(f, []byte("a\nb\n")), uint8(1))
	f.Add(zipData(f, map[string][]byte{"a.txt": []byte("a\nb\n")}), uint8(2))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, uint8(0))
	if bz, err := os.ReadFile("testdata/records.txt.bz2"); err == nil {
		f.Add(bz[:300], uint8(0))
	}
	f.Add([]byte("BZh91AY&SY\x00\x00"), uint8(4))
	names := []string{"x.gz", "x.zst", "x.zip", "x", "x.bz2"}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		t.Setenv("TMPDIR", t.TempDir())
		name := names[int(which)%len(names)]
		rc, err := OpenInput(bytes.NewReader(data), name)
		if err == nil {
			_, err = io.Copy(io.Discard, io.LimitReader(rc, 64<<20))
			rc.Close()
		}
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("%s: error %v (%T) is not an *InputError", name, err, err)
			}
		}
	})
}

// FuzzReaderJSONL checks that reading any JSON Lines input never panics,
// fails only with an *InputError naming a line, and that every record it
// returns is one valid JSON value.
func FuzzReaderJSONL(f *testing.F) {
	for _, s := range []string{"", "{}\n", "{\"a\":1}\n\n[1,2]\n", "1 2\n", "{\"a\":\n", "\xef\xbb\xbf\"x\"\r\n", "  \n\t\n", "nul\x00l\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, x []byte) {
		recs, _, err := readAll(t, x, JSONL)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Line <= 0 {
				t.Fatalf("error %v (%T) is not an *InputError with a line", err, err)
			}
			return
		}
		for _, rec := range recs {
			if !json.Valid(rec) {
				t.Fatalf("record %q of %q is not valid JSON", rec, x)
			}
		}
	})
}
