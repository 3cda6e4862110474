package sliced

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// copyThrough reads in with a Reader of format f and writes every record
// with a Writer set up from what the Reader reported.
func copyThrough(t testing.TB, in []byte, f Format) ([]byte, error) {
	t.Helper()
	r := NewReader(bytes.NewReader(in), f)
	var out bytes.Buffer
	var w *Writer
	for {
		rec, err := r.Next()
		if w == nil {
			// The header, line ending and (so far) final newline are known
			// after the first Next.
			w = NewWriter(&out, WriterOptions{Format: f, Header: r.Header(), LineEnding: r.LineEnding(), BOM: r.BOM()})
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := w.Write(rec); err != nil {
			return nil, err
		}
	}
	// FinalNewline is only known at EOF; the Writer reads it at Close.
	w.opts.FinalNewline = r.FinalNewline()
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func TestLinesRoundTrip(t *testing.T) {
	long := strings.Repeat("0123456789", 120_000) // 1.2 MB
	tests := map[string]string{
		"empty":               "",
		"one line":            "a\n",
		"one line no newline": "a",
		"only newline":        "\n",
		"only newlines":       "\n\n\n",
		"no final newline":    "a\nb\nc",
		"empty middle":        "a\n\nb\n",
		"crlf":                "a\r\nb\r\n",
		"crlf no final":       "a\r\nb",
		"crlf empty lines":    "\r\n\r\n",
		"crlf trailing cr":    "a\r\nb\r",
		"crlf double cr":      "a\r\r\nb\r\n",
		"lf with stray crlf":  "a\nb\r\nc\n",
		"lone cr":             "a\rb\rc",
		"unicode":             "héllo\n日本語\n🙂\n",
		"invalid utf8":        "\xff\xfe\n\xc3\x28\n\xed\xa0\x80",
		"nul bytes":           "\x00\n\x00\x00\n",
		"bom":                 "\xef\xbb\xbfa\nb\n",
		"long line":           "x\n" + long + "\ny\n",
		"long no final":       long,
		"long crlf":           long + "\r\n" + long,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := copyThrough(t, []byte(in), Lines)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, []byte(in)) {
				t.Errorf("copy differs: got %q, want %q", trunc(out), trunc([]byte(in)))
			}
		})
	}
}

// trunc shortens b for error messages.
func trunc(b []byte) []byte {
	if len(b) > 80 {
		return append(bytes.Clone(b[:80]), "..."...)
	}
	return b
}

func TestJSONLRoundTrip(t *testing.T) {
	in := "{\"a\":1}\n[1,2,3]\n\"\xff\"\n"
	out, err := copyThrough(t, []byte(in), JSONL)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("got %q, want %q", out, in)
	}
	// Blank lines are skipped, so they are not copied.
	out, err = copyThrough(t, []byte("1\r\n\r\n2"), JSONL)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "1\r\n2" {
		t.Errorf("got %q", out)
	}
}

// readCSV returns the header and rows of a CSV text.
func readCSV(t *testing.T, in []byte) ([]string, [][]string) {
	t.Helper()
	recs, r, err := readAll(t, in, CSV)
	if err != nil {
		t.Fatalf("reading %q: %v", in, err)
	}
	var rows [][]string
	for _, rec := range recs {
		f, err := DecodeFields(rec)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, f)
	}
	return r.Header(), rows
}

func TestCSVRoundTrip(t *testing.T) {
	tests := map[string]string{
		"simple":         "a,b\n1,2\n3,4\n",
		"no final":       "a,b\n1,2",
		"crlf":           "a,b\r\n1,2\r\n",
		"header only":    "a,b\n",
		"ragged":         "a,b\n1\n1,2,3\n,\n",
		"quotes":         "a\n\"say \"\"hi\"\"\"\n\"x,y\"\n",
		"newlines":       "a,b\n\"line1\nline2\",\"cr\rinside\"\n",
		"single empty":   "a\n\"\"\n\"\"\n",
		"leading spaces": "a\n\" x\",\"\ty\"\n",
		"trailing cr":    "a\n\"x\r\"",
		"invalid utf8":   "\xff\n\"\xfe,\"\n\x00\n",
		"unicode":        "名前,ü\nβ,🙂\n",
		"bom field":      "\n\ufeff\n\ufeffx,\ufeff\n",
		"crlf in field":  "a\n\"x\r\r\ny\r\r\n\"\n",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := copyThrough(t, []byte(in), CSV)
			if err != nil {
				t.Fatal(err)
			}
			h1, rows1 := readCSV(t, []byte(in))
			h2, rows2 := readCSV(t, out)
			if !reflect.DeepEqual(h1, h2) || !reflect.DeepEqual(rows1, rows2) {
				t.Errorf("round trip differs:\n in %q -> %q %q\nout %q -> %q %q", in, h1, rows1, out, h2, rows2)
			}
		})
	}
}

func TestWriterCSVOutput(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, WriterOptions{Format: CSV, Header: []string{"name", "a,b"}, LineEnding: "\r\n", FinalNewline: true})
	for _, row := range [][]string{{"x", `q"q`}, {""}, {"", ""}, {" lead", "line\nbreak"}} {
		if err := w.Write(EncodeFields(nil, row)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "name,\"a,b\"\r\nx,\"q\"\"q\"\r\n\"\"\r\n,\r\n\" lead\",\"line\nbreak\"\r\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestWriterHeaderOnly(t *testing.T) {
	tests := []struct {
		opts WriterOptions
		want string
	}{
		{WriterOptions{Format: CSV, Header: []string{"a", "b"}, FinalNewline: true}, "a,b\n"},
		{WriterOptions{Format: CSV, Header: []string{"a", "b"}}, "a,b"},
		{WriterOptions{Format: CSV}, ""},
		{WriterOptions{Format: CSV, FinalNewline: true}, ""},
		{WriterOptions{Format: Lines, Header: []string{"ignored"}, FinalNewline: true}, ""},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		w := NewWriter(&out, tt.opts)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.opts, out.String(), tt.want)
		}
	}
}

func TestWriterFinalNewline(t *testing.T) {
	for _, tt := range []struct {
		opts WriterOptions
		recs []string
		want string
	}{
		{WriterOptions{FinalNewline: true}, []string{"a", "b"}, "a\nb\n"},
		{WriterOptions{}, []string{"a", "b"}, "a\nb"},
		{WriterOptions{LineEnding: "\r\n", FinalNewline: true}, []string{"a", ""}, "a\r\n\r\n"},
		{WriterOptions{LineEnding: "\r\n"}, []string{"a", "b"}, "a\r\nb"},
		{WriterOptions{Format: JSONL, FinalNewline: true}, []string{"1"}, "1\n"},
		{WriterOptions{FinalNewline: true}, nil, ""},
	} {
		var out bytes.Buffer
		w := NewWriter(&out, tt.opts)
		for _, r := range tt.recs {
			if err := w.Write([]byte(r)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != tt.want {
			t.Errorf("%+v %q: got %q, want %q", tt.opts, tt.recs, out.String(), tt.want)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	var out bytes.Buffer
	if err := NewWriter(&out, WriterOptions{LineEnding: "\r"}).Write([]byte("x")); err == nil {
		t.Error("bad line ending accepted")
	}
	if err := NewWriter(&out, WriterOptions{Format: "xml"}).Close(); err == nil {
		t.Error("bad format accepted")
	}
	w := NewWriter(&out, WriterOptions{Format: CSV})
	if err := w.Write([]byte{5, 1}); !errors.Is(err, ErrCorruptSlice) {
		t.Errorf("corrupt record: err = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close accepted")
	}
	if out.Len() != 0 {
		t.Errorf("wrote %q", out.String())
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterUnderlyingError(t *testing.T) {
	w := NewWriter(errWriter{}, WriterOptions{FinalNewline: true})
	var err error
	for i := 0; i < 100_000 && err == nil; i++ {
		err = w.Write([]byte("some record"))
	}
	if err == nil {
		err = w.Close()
	}
	if err == nil || err.Error() != "disk full" {
		t.Fatalf("err = %v", err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close after error returned nil")
	}
}
