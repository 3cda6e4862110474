package sliced

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads every record of in, copying each one.
func readAll(t testing.TB, in []byte, f Format) ([][]byte, *Reader, error) {
	t.Helper()
	r := NewReader(bytes.NewReader(in), f)
	var recs [][]byte
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs, r, nil
		}
		if err != nil {
			return recs, r, err
		}
		recs = append(recs, bytes.Clone(rec))
	}
}

// strs turns records into strings for comparison.
func strs(recs [][]byte) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, string(r))
	}
	return out
}

func TestReaderLines(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []string
		eol   string
		final bool
	}{
		{"empty", "", []string{}, "\n", true},
		{"one line", "a\n", []string{"a"}, "\n", true},
		{"two lines", "a\nb\n", []string{"a", "b"}, "\n", true},
		{"no final newline", "a\nb", []string{"a", "b"}, "\n", false},
		{"single line no newline", "abc", []string{"abc"}, "\n", false},
		{"only newline", "\n", []string{""}, "\n", true},
		{"empty middle", "a\n\nb\n", []string{"a", "", "b"}, "\n", true},
		{"crlf", "a\r\nb\r\n", []string{"a", "b"}, "\r\n", true},
		{"crlf no final", "a\r\nb", []string{"a", "b"}, "\r\n", false},
		{"crlf last line keeps cr", "a\r\nb\r", []string{"a", "b\r"}, "\r\n", false},
		{"crlf double cr", "a\r\r\nb\r\n", []string{"a\r", "b"}, "\r\n", true},
		{"crlf mixed lf", "a\r\nb\nc\r\n", []string{"a", "b", "c"}, "\r\n", true},
		{"lf keeps later cr", "a\nb\r\n", []string{"a", "b\r"}, "\n", true},
		{"lone cr is content", "a\rb\n", []string{"a\rb"}, "\n", true},
		{"unicode", "héllo wörld ✓\n日本\n", []string{"héllo wörld ✓", "日本"}, "\n", true},
		{"invalid utf8 and nul", "\xff\xfe\x00x\n\x00\n", []string{"\xff\xfe\x00x", "\x00"}, "\n", true},
		{"bom kept", "\xef\xbb\xbfa\n", []string{"\xef\xbb\xbfa"}, "\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, r, err := readAll(t, []byte(tt.in), Lines)
			if err != nil {
				t.Fatal(err)
			}
			if got := strs(recs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("records = %q, want %q", got, tt.want)
			}
			if r.LineEnding() != tt.eol {
				t.Errorf("LineEnding = %q, want %q", r.LineEnding(), tt.eol)
			}
			if r.FinalNewline() != tt.final {
				t.Errorf("FinalNewline = %v, want %v", r.FinalNewline(), tt.final)
			}
			if r.Header() != nil {
				t.Errorf("Header = %q, want nil", r.Header())
			}
		})
	}
}

func TestReaderDefaultFormatAndLine(t *testing.T) {
	r := NewReader(strings.NewReader("a\nb\nc"), "")
	for i := int64(1); i <= 3; i++ {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		if r.Line() != i {
			t.Errorf("Line = %d, want %d", r.Line(), i)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("err = %v, want EOF", err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("second err = %v, want EOF", err)
	}
}

func TestReaderUnknownFormat(t *testing.T) {
	_, err := NewReader(strings.NewReader("x"), "xml").Next()
	if err == nil || !strings.Contains(err.Error(), "xml") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": Lines, "lines": Lines, "csv": CSV, "jsonl": JSONL, "psv": PSV, "tsv": TSV, "fixed": Fixed, "xlsx": XLSX} {
		got, err := ParseFormat(in)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	_, err := ParseFormat("xml")
	if err == nil || !strings.Contains(err.Error(), "lines, csv, psv, tsv, fixed, xlsx, jsonl") {
		t.Errorf("ParseFormat(xml) err = %v", err)
	}
}

func TestReaderLongLines(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 1<<20+17)
	in := append(append([]byte("a\n"), long...), "\nb"...)
	recs, _, err := readAll(t, in, Lines)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || !bytes.Equal(recs[1], long) || string(recs[2]) != "b" {
		t.Fatalf("bad records: %d", len(recs))
	}
}

// genReader produces n bytes of c, then tail, without holding them in memory.
type genReader struct {
	n    int64
	c    byte
	tail []byte
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.n > 0 {
		k := int64(len(p))
		if k > g.n {
			k = g.n
		}
		for i := range p[:k] {
			p[i] = g.c
		}
		g.n -= k
		return int(k), nil
	}
	if len(g.tail) == 0 {
		return 0, io.EOF
	}
	k := copy(p, g.tail)
	g.tail = g.tail[k:]
	return k, nil
}

func TestReaderRecordLimit(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		n      int64
		tail   string
		format Format
		ok     bool
	}{
		{"exactly max", "a\n", MaxRecordSize, "\nb\n", Lines, true},
		{"exactly max no newline", "", MaxRecordSize, "", Lines, true},
		{"exactly max crlf", "a\r\n", MaxRecordSize, "\r\nb\r\n", Lines, true},
		{"max+1 lf", "a\n", MaxRecordSize + 1, "\nb\n", Lines, false},
		{"max+1 crlf", "a\r\n", MaxRecordSize + 1, "\r\n", Lines, false},
		{"max+1 no newline", "a\n", MaxRecordSize + 1, "", Lines, false},
		{"max+1 cr in lf file", "a\n", MaxRecordSize, "\r\n", Lines, false},
		{"far too long", "a\n", 3 * MaxRecordSize, "\n", Lines, false},
		{"jsonl", "1\n", MaxRecordSize + 1, "\n", JSONL, false},
		{"csv quoted", "h\n1\n\"", MaxRecordSize + 1, "\"\n", CSV, false},
		{"csv multiline quoted", "h\n1\n\"", MaxRecordSize + 1, "\"\n", CSV, false},
		{"csv many blank lines", "h\n1\n", MaxRecordSize + 10, "2\n", CSV, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := byte('x')
			if tt.format == JSONL {
				c = ' '
			}
			if tt.name == "csv multiline quoted" || tt.name == "csv many blank lines" {
				c = '\n'
			}
			in := io.MultiReader(strings.NewReader(tt.prefix), &genReader{n: tt.n, c: c, tail: []byte(tt.tail)})
			r := NewReader(in, tt.format)
			var err error
			for err == nil {
				_, err = r.Next()
			}
			if tt.ok {
				if err != io.EOF {
					t.Fatalf("err = %v, want EOF", err)
				}
				return
			}
			var ie *InputError
			if !errors.As(err, &ie) || !errors.Is(err, ErrRecordTooLong) {
				t.Fatalf("err = %v, want *InputError with ErrRecordTooLong", err)
			}
			wantLine := int64(2)
			if tt.format == CSV {
				wantLine = 3
			}
			if ie.Line != wantLine {
				t.Errorf("line = %d, want %d", ie.Line, wantLine)
			}
			want := "line " + string(rune('0'+wantLine)) + " is longer than the 15 MiB record limit"
			if err.Error() != want {
				t.Errorf("error = %q, want %q", err, want)
			}
		})
	}
}

func TestReaderJSONL(t *testing.T) {
	in := "{\"a\":1}\n\n  \n[1,2]\r\n\"s\"\n"
	recs, r, err := readAll(t, []byte(in), JSONL)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"a":1}`, "[1,2]\r", `"s"`}
	if got := strs(recs); !reflect.DeepEqual(got, want) {
		t.Errorf("records = %q, want %q", got, want)
	}
	if r.Line() != 5 {
		t.Errorf("Line = %d, want 5", r.Line())
	}

	// CRLF file: the \r is stripped; a BOM is skipped.
	recs, _, err = readAll(t, []byte("\xef\xbb\xbf1\r\n2\r\n"), JSONL)
	if err != nil {
		t.Fatal(err)
	}
	if got := strs(recs); !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Errorf("records = %q", got)
	}
}

func TestReaderJSONLInvalid(t *testing.T) {
	tests := []struct {
		in     string
		before int // records returned before the error
	}{
		{"1\n\n{\"a\":}\n", 1},
		{"1\n2\n3 4\n", 2},
		{"1\n\n{\n", 1},
	}
	for _, tt := range tests {
		recs, _, err := readAll(t, []byte(tt.in), JSONL)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Fatalf("%q: err = %v, want *InputError", tt.in, err)
		}
		if ie.Line != 3 || !strings.HasPrefix(err.Error(), "line 3: invalid JSON") {
			t.Errorf("%q: err = %q", tt.in, err)
		}
		if len(recs) != tt.before {
			t.Errorf("%q: %d records before the error, want %d", tt.in, len(recs), tt.before)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("multi-line error %q", err)
		}
	}
}

func TestReaderCSV(t *testing.T) {
	in := "name,note\n" +
		"alice,\"multi\nline\"\n" +
		"\n" + // blank lines are skipped
		"bob,\"say \"\"hi\"\"\",extra\n" +
		"carol\n" +
		",\n"
	r := NewReader(strings.NewReader(in), CSV)
	var rows [][]string
	var lines []int64
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		f, err := DecodeFields(rec)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, f)
		lines = append(lines, r.Line())
	}
	want := [][]string{{"alice", "multi\nline"}, {"bob", `say "hi"`, "extra"}, {"carol"}, {"", ""}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows = %q, want %q", rows, want)
	}
	if !reflect.DeepEqual(lines, []int64{2, 5, 6, 7}) {
		t.Errorf("lines = %v", lines)
	}
	if !reflect.DeepEqual(r.Header(), []string{"name", "note"}) {
		t.Errorf("header = %q", r.Header())
	}
	if r.LineEnding() != "\n" || !r.FinalNewline() {
		t.Errorf("LineEnding %q FinalNewline %v", r.LineEnding(), r.FinalNewline())
	}
}

func TestReaderCSVShapes(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		header []string
		rows   [][]string
		eol    string
		final  bool
	}{
		{"empty", "", nil, nil, "\n", true},
		{"header only", "a,b\n", []string{"a", "b"}, nil, "\n", true},
		{"header only no newline", "a,b", []string{"a", "b"}, nil, "\n", false},
		{"crlf", "a,b\r\n1,2\r\n", []string{"a", "b"}, [][]string{{"1", "2"}}, "\r\n", true},
		{"crlf no final", "a,b\r\n1,2", []string{"a", "b"}, [][]string{{"1", "2"}}, "\r\n", false},
		{"bom", "\xef\xbb\xbfa\n1\n", []string{"a"}, [][]string{{"1"}}, "\n", true},
		{"quoted crlf inside field", "a\r\n\"x\r\ny\"\r\n", []string{"a"}, [][]string{{"x\r\ny"}}, "\r\n", true},
		{"quoted empty", "a\n\"\"\n", []string{"a"}, [][]string{{""}}, "\n", true},
		{"nul and tab", "a\n\x00\tb,c\n", []string{"a"}, [][]string{{"\x00\tb", "c"}}, "\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, r, err := readAll(t, []byte(tt.in), CSV)
			if err != nil {
				t.Fatal(err)
			}
			var rows [][]string
			for _, rec := range recs {
				f, err := DecodeFields(rec)
				if err != nil {
					t.Fatal(err)
				}
				rows = append(rows, f)
			}
			if !reflect.DeepEqual(rows, tt.rows) {
				t.Errorf("rows = %q, want %q", rows, tt.rows)
			}
			if !reflect.DeepEqual(r.Header(), tt.header) {
				t.Errorf("header = %q, want %q", r.Header(), tt.header)
			}
			if r.LineEnding() != tt.eol || r.FinalNewline() != tt.final {
				t.Errorf("LineEnding %q FinalNewline %v", r.LineEnding(), r.FinalNewline())
			}
		})
	}
}

// TestReaderCSVInvalidUTF8 documents that the reader keeps the bytes of
// fields as they are: invalid UTF-8 is neither rejected nor replaced.
func TestReaderCSVInvalidUTF8(t *testing.T) {
	in := "h\xff,\"q\xfe\"\n\xc3\x28,\"\xed\xa0\x80\",\x00\n"
	recs, r, err := readAll(t, []byte(in), CSV)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Header(), []string{"h\xff", "q\xfe"}) {
		t.Errorf("header = %q", r.Header())
	}
	f, err := DecodeFields(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, []string{"\xc3\x28", "\xed\xa0\x80", "\x00"}) {
		t.Errorf("fields = %q", f)
	}
}

func TestReaderCSVErrors(t *testing.T) {
	tests := []struct {
		in   string
		line int64
		want string
	}{
		{"a,b\n1,2\nx\"y,3\n", 3, `line 3: bare " in non-quoted-field (column 2)`},
		{"a\n1\n\"ab\"c\n", 3, `line 3: extraneous or missing " in quoted-field (column 4)`},
		{"a\n\"open\n\n\nmore", 5, `line 5: extraneous or missing " in quoted-field (column 5 of the row that starts at line 2)`},
		{"a\"\n", 1, `line 1: bare " in non-quoted-field (column 2)`},
	}
	for _, tt := range tests {
		_, _, err := readAll(t, []byte(tt.in), CSV)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Fatalf("%q: err = %v, want *InputError", tt.in, err)
		}
		if ie.Line != tt.line || err.Error() != tt.want {
			t.Errorf("%q: err = %q (line %d), want %q", tt.in, err, ie.Line, tt.want)
		}
	}
}

func TestReaderErrorIsSticky(t *testing.T) {
	r := NewReader(strings.NewReader("1\nx\n2\n"), JSONL)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, err1 := r.Next()
	_, err2 := r.Next()
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors %v, %v", err1, err2)
	}
}

func TestReaderUnderlyingErrorUnchanged(t *testing.T) {
	boom := errors.New("boom")
	for _, f := range []Format{Lines, CSV, JSONL} {
		in := io.MultiReader(strings.NewReader("1\n2\n"), iotest.ErrReader(boom))
		r := NewReader(in, f)
		var err error
		for err == nil {
			_, err = r.Next()
		}
		if err != boom {
			t.Errorf("%s: err = %v, want boom", f, err)
		}
	}
}

func TestReaderOneByteReads(t *testing.T) {
	in := "a\r\nbb\r\n\r\nccc"
	r := NewReader(iotest.OneByteReader(strings.NewReader(in)), Lines)
	var got []string
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(rec))
	}
	if !reflect.DeepEqual(got, []string{"a", "bb", "", "ccc"}) || r.FinalNewline() {
		t.Errorf("got %q final %v", got, r.FinalNewline())
	}
}

func TestInputErrorFormat(t *testing.T) {
	base := errors.New("oops")
	tests := []struct {
		e    *InputError
		want string
	}{
		{&InputError{Line: 12, Offset: 99, Err: base}, "line 12: oops"},
		{&InputError{Offset: 1234, Err: base}, "byte offset 1234: oops"},
		{&InputError{Offset: -1, Err: base}, "oops"},
		{&InputError{Line: 3, Err: ErrRecordTooLong}, "line 3 is longer than the 15 MiB record limit"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.e, tt.e.Err) {
			t.Errorf("Unwrap lost the error")
		}
	}
}

// TestReaderMemoryBounded reads a line many times the record limit and
// checks that the reader allocated only a few multiples of the limit.
func TestReaderMemoryBounded(t *testing.T) {
	tests := []struct {
		format Format
		prefix string
		c      byte
		factor uint64
	}{
		{Lines, "a\n", 'x', 3},
		{JSONL, "1\n", 'x', 3},
		{CSV, "h\n1\n", 'x', 8},
		{CSV, "h\n1\n\"", '\n', 8},
	}
	for _, tt := range tests {
		in := io.MultiReader(strings.NewReader(tt.prefix), &genReader{n: 20 * MaxRecordSize, c: tt.c})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := NewReader(in, tt.format)
		var err error
		for err == nil {
			_, err = r.Next()
		}
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrRecordTooLong) {
			t.Errorf("%s %q: err = %v", tt.format, tt.prefix, err)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s %q: %d MiB", tt.format, tt.prefix, alloc>>20)
		if alloc > tt.factor*MaxRecordSize {
			t.Errorf("%s %q: allocated %d MiB", tt.format, tt.prefix, alloc>>20)
		}
	}
}
