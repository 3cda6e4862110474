package sliced

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// copyWith reads in with ro and writes every record with wo completed from
// what the Reader reported (header, line ending, BOM, final newline), as an
// upload followed by a download does.
func copyWith(t testing.TB, in []byte, ro ReaderOptions, wo WriterOptions) ([]byte, error) {
	t.Helper()
	r := NewReaderOptions(bytes.NewReader(in), &ro)
	var recs [][]byte
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, bytes.Clone(rec))
	}
	if wo.Format == "" {
		wo.Format = ro.Format
	}
	wo.RecordFormat = ro.Format
	wo.Header = r.Header()
	wo.Widths = ro.Widths
	wo.BOM = r.BOM()
	wo.LineEnding = r.LineEnding()
	if r.KeptCR() {
		wo.LineEnding = "\n"
	}
	wo.FinalNewline = r.FinalNewline()
	var out bytes.Buffer
	w := NewWriter(&out, wo)
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// rows reads in with ro and returns the header and the decoded rows.
func rows(t testing.TB, in []byte, ro ReaderOptions) ([]string, [][]string, error) {
	t.Helper()
	r := NewReaderOptions(bytes.NewReader(in), &ro)
	var out [][]string
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r.Header(), out, nil
		}
		if err != nil {
			return r.Header(), out, err
		}
		f, err := DecodeFields(rec)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
}

// Every delimited format copies byte for byte: quoting, embedded
// separators and newlines, CRLF inside quotes and as row ends, a BOM,
// empty fields, unicode.
func TestDelimitedRoundTripExact(t *testing.T) {
	for _, f := range []Format{CSV, PSV, TSV} {
		sep := string(f.separator())
		j := func(s string) string { return strings.ReplaceAll(s, ",", sep) }
		tests := map[string]string{
			"simple":               j("a,b\n1,2\n"),
			"crlf rows":            j("a,b\r\n1,2\r\n3,4\r\n"),
			"crlf inside quotes":   j("a,b\r\n\"x\r\ny\",2\r\n\"\r\n\",\r\n"),
			"lf inside quotes":     j("a,b\n\"x\ny\",2\n"),
			"lone cr inside":       j("a\n\"x\ry\"\n"),
			"cr cr lf inside":      j("a\n\"x\r\r\n\"\n"),
			"bom":                  "\xef\xbb\xbf" + j("a,b\n1,2\n"),
			"bom crlf":             "\xef\xbb\xbf" + j("a,b\r\n1,2\r\n"),
			"empty fields":         j("a,b,c\n,,\n1,,\n,,3\n"),
			"embedded separator":   j("a,b\n\"x,y\",\"p" + sep + "q\"\n"),
			"quotes":               j("a\n\"say \"\"hi\"\"\"\n"),
			"unicode":              j("名前,ü\nβ,🙂\n\"日\n本\",é\n"),
			"no final newline":     j("a,b\n1,2"),
			"header only":          j("a,b\n"),
			"leading space quoted": j("a\n\" x\"\n"),
		}
		for name, in := range tests {
			t.Run(string(f)+"/"+name, func(t *testing.T) {
				out, err := copyWith(t, []byte(in), ReaderOptions{Format: f}, WriterOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out, []byte(in)) {
					t.Errorf("copy of %q is %q", in, out)
				}
			})
		}
	}
}

// A quoted field holding CRLF keeps it: it is data, not a line ending.
func TestCSVQuotedCRLFIsData(t *testing.T) {
	h, got, err := rows(t, []byte("id,note\r\n1,\"line1\r\nline2\"\r\n2,\"a\nb\"\r\n"), ReaderOptions{Format: CSV})
	must(t, err)
	want := [][]string{{"1", "line1\r\nline2"}, {"2", "a\nb"}}
	if !reflect.DeepEqual(h, []string{"id", "note"}) || !reflect.DeepEqual(got, want) {
		t.Fatalf("header %q rows %q, want %q", h, got, want)
	}
}

// A BOM is not part of the first column's name, and comes back on output.
func TestBOMKeptOutOfDataAndWrittenBack(t *testing.T) {
	in := "\xef\xbb\xbfid,name\n1,x\n"
	h, _, err := rows(t, []byte(in), ReaderOptions{Format: CSV})
	must(t, err)
	if h[0] != "id" {
		t.Fatalf("first column %q", h[0])
	}
	r := NewReader(strings.NewReader(in), CSV)
	if _, err := r.Next(); err != nil || !r.BOM() {
		t.Fatalf("BOM() = %v, err %v", r.BOM(), err)
	}
	r = NewReader(strings.NewReader("id\n1\n"), CSV)
	if _, err := r.Next(); err != nil || r.BOM() {
		t.Fatalf("BOM() = %v without one, err %v", r.BOM(), err)
	}
	for _, f := range []Format{JSONL, Lines} {
		in := "\xef\xbb\xbf{\"a\":1}\n"
		out, err := copyWith(t, []byte(in), ReaderOptions{Format: f, KeepCR: f == Lines}, WriterOptions{})
		must(t, err)
		if string(out) != in {
			t.Errorf("%s: %q copied as %q", f, in, out)
		}
	}
}

// Lines with KeepCR (as uploads read them) copy mixed line endings exactly.
func TestLinesMixedLineEndings(t *testing.T) {
	for _, in := range []string{"a\r\nb\nc\r\nd\n", "a\nb\r\nc\n", "a\r\nb", "a\r\nb\n\r\n\n", "a\r\r\nb\n", "x\r", "\r\n", ""} {
		out, err := copyWith(t, []byte(in), ReaderOptions{Format: Lines, KeepCR: true}, WriterOptions{})
		must(t, err)
		if string(out) != in {
			t.Errorf("%q copied as %q", in, out)
		}
	}
	r := NewReaderOptions(strings.NewReader("a\r\nb\n"), &ReaderOptions{KeepCR: true})
	var recs []string
	for rec, err := r.Next(); err == nil; rec, err = r.Next() {
		recs = append(recs, string(rec))
	}
	if !reflect.DeepEqual(recs, []string{"a\r", "b"}) || !r.KeptCR() {
		t.Fatalf("records %q KeptCR %v", recs, r.KeptCR())
	}
}

// A quoted last field followed by a lone "\r" at the end of the file ends
// the row, as encoding/csv reads it.
func TestQuotedFieldThenCRAtEOF(t *testing.T) {
	_, got, err := rows(t, []byte("a,b\n\"x\",\"y\"\r"), ReaderOptions{Format: CSV})
	must(t, err)
	if !reflect.DeepEqual(got, [][]string{{"x", "y"}}) {
		t.Fatalf("rows %q", got)
	}
}

// Lenient quotes accept what strict RFC 4180 refuses, keeping the quotes.
func TestLenientQuotes(t *testing.T) {
	in := "item,size\npipe,12\" pipe\n\"say \"hi\" now\",x\nplain,\"open\n"
	_, _, err := rows(t, []byte(in), ReaderOptions{Format: CSV})
	if !errors.Is(err, ErrBareQuote) || !strings.HasPrefix(err.Error(), "line 2: ") {
		t.Fatalf("strict: %v", err)
	}
	_, got, err := rows(t, []byte(in), ReaderOptions{Format: CSV, LenientQuotes: true})
	must(t, err)
	want := [][]string{{"pipe", "12\" pipe"}, {"say \"hi\" now", "x"}, {"plain", "open\n"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("lenient rows %q, want %q", got, want)
	}
	// Written back, the quotes are doubled, so the output is strict CSV.
	out, err := copyWith(t, []byte(in), ReaderOptions{Format: CSV, LenientQuotes: true}, WriterOptions{})
	must(t, err)
	if _, again, err := rows(t, out, ReaderOptions{Format: CSV}); err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("lenient copy %q read back strictly: %q, %v", out, again, err)
	}
}

// Delimited errors name the line and column, as before.
func TestDelimitedErrors(t *testing.T) {
	tests := []struct {
		f    Format
		in   string
		want string
	}{
		{PSV, "a|b\n1|x\"y\n", `line 2: bare " in non-quoted-field (column 4)`},
		{TSV, "a\tb\n\"x\"y\t2\n", `line 2: extraneous or missing " in quoted-field (column 3)`},
		{CSV, "a\n\"open\nmore", `line 3: extraneous or missing " in quoted-field (column 5 of the row that starts at line 2)`},
	}
	for _, tt := range tests {
		_, _, err := rows(t, []byte(tt.in), ReaderOptions{Format: tt.f})
		var ie *InputError
		if !errors.As(err, &ie) || err.Error() != tt.want {
			t.Errorf("%s %q: %v, want %q", tt.f, tt.in, err, tt.want)
		}
	}
}

// A declared header reads a headerless file: every row is a record.
func TestDeclaredHeader(t *testing.T) {
	h, got, err := rows(t, []byte("1,x\n2,y\n"), ReaderOptions{Format: CSV, Header: []string{"id", "name"}})
	must(t, err)
	if !reflect.DeepEqual(h, []string{"id", "name"}) || !reflect.DeepEqual(got, [][]string{{"1", "x"}, {"2", "y"}}) {
		t.Fatalf("header %q rows %q", h, got)
	}
}

var fixedLayout = ReaderOptions{Format: Fixed, Header: []string{"id", "name", "amount"}, Widths: []int{4, 6, 7}}

func TestFixedWidth(t *testing.T) {
	in := "0001Alice   12.50\n0002Zoë     -3.00\n\n0003        100\n0004ab\n"
	h, got, err := rows(t, []byte(in), fixedLayout)
	must(t, err)
	want := [][]string{{"0001", "Alice", "  12.50"}, {"0002", "Zoë", "  -3.00"}, {"0003", "", "  100"}, {"0004", "ab", ""}}
	if !reflect.DeepEqual(h, fixedLayout.Header) || !reflect.DeepEqual(got, want) {
		t.Fatalf("header %q rows %q, want %q", h, got, want)
	}
	// Full-width lines copy exactly, CRLF, BOM and unicode included.
	for _, in := range []string{
		"0001Alice   12.50\n0002Zoë     -3.00\n",
		"\xef\xbb\xbf0001Alice   12.50\r\n0002日本語     -3.00\r\n",
		"0001Alice   12.50",
	} {
		out, err := copyWith(t, []byte(in), fixedLayout, WriterOptions{})
		must(t, err)
		if string(out) != in {
			t.Errorf("%q copied as %q", in, out)
		}
	}
	// A line longer than the layout is refused with its line number.
	_, _, err = rows(t, []byte("0001Alice   12.50\n0002Bob      3.00 extra\n"), fixedLayout)
	if !errors.Is(err, ErrFixedWidth) || !strings.HasPrefix(err.Error(), "line 2: ") {
		t.Fatalf("long line: %v", err)
	}
	// A field too wide for its column is an error, not a cut.
	var out bytes.Buffer
	w := NewWriter(&out, WriterOptions{Format: Fixed, Header: fixedLayout.Header, Widths: fixedLayout.Widths})
	if err := w.Write(EncodeFields(nil, []string{"1", "a name too long", "1"})); !errors.Is(err, ErrFixedWidth) {
		t.Fatalf("wide field: %v", err)
	}
	// A layout is required.
	if _, _, err := rows(t, []byte("x\n"), ReaderOptions{Format: Fixed}); err == nil {
		t.Fatal("fixed without a layout read")
	}
}

// Tabular records convert between formats with the header kept.
func TestConvertFormats(t *testing.T) {
	in := "id,name,note\r\n1,\"Smith, J\",\"say \"\"hi\"\"\"\r\n2,Zoë|x,tab\there\r\n3,,\r\n"
	tests := map[Format]string{
		PSV: "id|name|note\r\n1|Smith, J|\"say \"\"hi\"\"\"\r\n2|\"Zoë|x\"|tab\there\r\n3||\r\n",
		TSV: "id\tname\tnote\r\n1\tSmith, J\t\"say \"\"hi\"\"\"\r\n2\tZoë|x\t\"tab\there\"\r\n3\t\t\r\n",
		JSONL: `{"id":"1","name":"Smith, J","note":"say \"hi\""}` + "\r\n" +
			`{"id":"2","name":"Zoë|x","note":"tab\there"}` + "\r\n" +
			`{"id":"3","name":"","note":""}` + "\r\n",
	}
	for f, want := range tests {
		out, err := copyWith(t, []byte(in), ReaderOptions{Format: CSV}, WriterOptions{Format: f})
		must(t, err)
		if string(out) != want {
			t.Errorf("csv -> %s:\n got %q\nwant %q", f, out, want)
		}
		// And back to CSV, the same rows.
		if f != JSONL {
			back, err := copyWith(t, out, ReaderOptions{Format: f}, WriterOptions{Format: CSV})
			must(t, err)
			if string(back) != in {
				t.Errorf("%s -> csv: %q, want %q", f, back, in)
			}
		}
	}
	if err := NewWriter(io.Discard, WriterOptions{Format: CSV, RecordFormat: Lines}).Write([]byte("x")); err == nil {
		t.Error("lines records written as csv")
	}
}

func TestFormatFromName(t *testing.T) {
	tests := map[string]Format{
		"a.csv": CSV, "dir/B.PSV": PSV, "c.tsv.gz": TSV, "d.tab": TSV, "e.xlsx": XLSX, "f.jsonl.zst": JSONL,
		"g.csv.gpg": CSV, "h.ndjson": JSONL, "i.txt": "", "j": "", "k.csv.bz2.pgp": CSV,
	}
	for name, want := range tests {
		got, ok := FormatFromName(name)
		if got != want || ok != (want != "") {
			t.Errorf("FormatFromName(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
