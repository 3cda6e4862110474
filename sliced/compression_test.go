package sliced

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// testText is the content used by the compression tests.
var testText = []byte("id,name\n1,alice\n2,bob\n\xff\x00 bytes kept\n")

func gzipData(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdData(t testing.TB, b []byte) []byte {
	t.Helper()
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(b, nil)
}

// zipData returns a zip archive holding the given entries (a name ending in
// "/" is a directory).
func zipData(t testing.TB, entries map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range entries {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// openAll opens in with OpenInput and reads all of it.
func openAll(t testing.TB, r io.Reader, name string) ([]byte, error) {
	t.Helper()
	rc, err := OpenInput(r, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestOpenInputFormats(t *testing.T) {
	multi := append(gzipData(t, testText[:10]), gzipData(t, testText[10:])...)
	tests := []struct {
		name string
		data []byte
	}{
		{"plain.csv", testText},
		{"data.gz", gzipData(t, testText)},
		{"no-extension", gzipData(t, testText)},
		{"multi.gz", multi},
		{"data.zst", zstdData(t, testText)},
		{"data.csv", zstdData(t, testText)}, // magic bytes win over the name
		{"multi.zst", append(zstdData(t, testText[:7]), zstdData(t, testText[7:])...)},
		{"data.zip", zipData(t, map[string][]byte{"dir/": nil, "dir/data.csv": testText})},
		{"data.bin", zipData(t, map[string][]byte{"../../etc/passwd": testText})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := openAll(t, bytes.NewReader(tt.data), tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, testText) {
				t.Errorf("got %q, want %q", got, testText)
			}
		})
	}
}

func TestOpenInputPlainPassThrough(t *testing.T) {
	for _, in := range []string{"", "a", "\x1f", "PK", "\x28\xb5\x2f", "abc", "abcd", "hello world\n"} {
		for _, one := range []bool{false, true} {
			var r io.Reader = strings.NewReader(in)
			if one {
				r = iotest.OneByteReader(r)
			}
			got, err := openAll(t, r, "input.txt")
			if err != nil {
				t.Fatalf("%q: %v", in, err)
			}
			if string(got) != in {
				t.Errorf("%q: got %q", in, got)
			}
		}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 100_000)
	got, err := openAll(t, iotest.HalfReader(bytes.NewReader(big)), "big")
	if err != nil || !bytes.Equal(got, big) {
		t.Errorf("big plain input changed (err %v)", err)
	}
}

func TestOpenInputZipFileAndStream(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	spool := os.TempDir()
	data := zipData(t, map[string][]byte{"only.csv": testText})

	// A regular file is read in place, from its current offset.
	path := filepath.Join(t.TempDir(), "upload.zip")
	if err := os.WriteFile(path, append([]byte("skip"), data...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(4, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := openAll(t, f, "upload.zip")
	if err != nil || !bytes.Equal(got, testText) {
		t.Fatalf("from file: %q, %v", got, err)
	}
	if n := countFiles(t, spool); n != 0 {
		t.Errorf("file input spooled %d files", n)
	}

	// A stream (here a pipe) is spooled to a temporary file that Close removes.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		pw.Write(data)
		pw.Close()
	}()
	rc, err := OpenInput(pr, "upload.zip")
	if err != nil {
		t.Fatal(err)
	}
	if n := countFiles(t, spool); n != 1 {
		t.Errorf("%d spooled files while open, want 1", n)
	}
	got, err = io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, testText) {
		t.Fatalf("from pipe: %q, %v", got, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countFiles(t, spool); n != 0 {
		t.Errorf("%d spooled files left after Close", n)
	}
}

// countFiles returns the number of entries in dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestOpenInputZipEntryCount(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	tests := []struct {
		entries map[string][]byte
		want    string
	}{
		{map[string][]byte{"a.csv": testText, "b.csv": testText}, "zip archive has 2 files; expected exactly one"},
		{map[string][]byte{"dir/": nil}, "zip archive has 0 files; expected exactly one"},
		{map[string][]byte{}, "zip archive has 0 files; expected exactly one"},
	}
	for _, tt := range tests {
		_, err := openAll(t, bytes.NewReader(zipData(t, tt.entries)), "x.zip")
		var ie *InputError
		if !errors.As(err, &ie) || err.Error() != tt.want {
			t.Errorf("err = %v, want %q", err, tt.want)
		}
	}
	if n := countFiles(t, os.TempDir()); n != 0 {
		t.Errorf("%d spooled files left after errors", n)
	}
}

func TestOpenInputTruncated(t *testing.T) {
	big := bytes.Repeat([]byte("some text that compresses well enough\n"), 10_000)
	gz := gzipData(t, big)
	zs := zstdData(t, big)
	tests := []struct {
		name  string
		data  []byte
		codec string
	}{
		{"x.gz", gz[:len(gz)/2], "gzip"},
		{"x.gz", gz[:len(gz)-4], "gzip"}, // only the trailer is missing
		{"x.gz", gz[:5], "gzip"},         // inside the header
		{"x.zst", zs[:len(zs)/2], "zstd"},
		{"x.zst", zs[:6], "zstd"},
	}
	for _, tt := range tests {
		_, err := openAll(t, bytes.NewReader(tt.data), tt.name)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Fatalf("%s (%d bytes): err = %v, want *InputError", tt.name, len(tt.data), err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "truncated") || !strings.HasPrefix(msg, "byte offset ") || !strings.Contains(msg, tt.codec+":") {
			t.Errorf("%s (%d bytes): error %q", tt.name, len(tt.data), msg)
		}
		if ie.Offset <= 0 || ie.Offset > int64(len(tt.data)) {
			t.Errorf("%s (%d bytes): offset %d", tt.name, len(tt.data), ie.Offset)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: error does not wrap io.ErrUnexpectedEOF", tt.name)
		}
	}
	// For gzip the offset is exact: where the data ends.
	_, err := openAll(t, bytes.NewReader(gz[:len(gz)/2]), "x.gz")
	if want := "byte offset " + strconv.Itoa(len(gz)/2) + ": gzip: unexpected EOF (truncated input?)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestOpenInputCorrupt(t *testing.T) {
	gz := gzipData(t, testText)
	bad := bytes.Clone(gz)
	bad[len(bad)-6] ^= 0xff // CRC
	trailing := append(bytes.Clone(gz), "garbage!"...)
	tests := []struct {
		name string
		data []byte
	}{
		{"crc.gz", bad},
		{"trailing.gz", trailing},
		{"plain.gz", []byte("not gzip at all\n")},
		{"empty.gz", nil},
		{"plain.zst", []byte("not zstd")},
		{"plain.zip", []byte("not a zip archive")},
		{"bad.zst", append(bytes.Clone(zstdMagic), bytes.Repeat([]byte{0xff}, 20)...)},
		{"bad.zip", append(bytes.Clone(zipMagic), bytes.Repeat([]byte{0}, 40)...)},
	}
	for _, tt := range tests {
		_, err := openAll(t, bytes.NewReader(tt.data), tt.name)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: err = %v, want *InputError", tt.name, err)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: multi-line error %q", tt.name, err)
		}
		t.Logf("%s: %v", tt.name, err)
	}
}

func TestOpenInputSourceErrorUnchanged(t *testing.T) {
	boom := errors.New("network down")
	noise := make([]byte, 200_000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.IntN(16)) + 'a'
	}
	half := func(b []byte) []byte { return b[: len(b)/2 : len(b)/2] }
	for name, data := range map[string][]byte{
		"plain": []byte("some plain text"),
		"x.gz":  half(gzipData(t, noise)),
		"x.zst": half(zstdData(t, noise)),
		"x.zip": half(zipData(t, map[string][]byte{"a": noise})),
	} {
		t.Setenv("TMPDIR", t.TempDir())
		_, err := openAll(t, io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)), name)
		if err != boom {
			t.Errorf("%s: err = %v, want the source's error", name, err)
		}
	}
	if _, err := OpenInput(iotest.ErrReader(boom), "x"); err != boom {
		t.Errorf("immediate error: %v", err)
	}
}

func TestCreateOutputRoundTrip(t *testing.T) {
	big := bytes.Repeat(testText, 5000)
	for _, name := range []string{"out.gz", "OUT.GZ", "out.csv.zst", "out.zstd", "out.gzip", "out.csv", "out", "out.csv.zip", "OUT.ZIP"} {
		var buf bytes.Buffer
		w, err := CreateOutput(&buf, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(big); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		lower := strings.ToLower(name)
		compressed := strings.Contains(lower, ".gz") || strings.Contains(lower, ".zst") || strings.HasSuffix(lower, ".zip")
		if compressed == (buf.Len() == len(big)) {
			t.Errorf("%s: output size %d for input %d", name, buf.Len(), len(big))
		}
		got, err := openAll(t, &buf, name)
		if err != nil || !bytes.Equal(got, big) {
			t.Errorf("%s: round trip failed: %v", name, err)
		}
	}
}

// closeTracker records whether Close was called.
type closeTracker struct {
	bytes.Buffer
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestCloseDoesNotCloseUnderlying(t *testing.T) {
	for _, name := range []string{"a.gz", "a.zst", "a"} {
		out := &closeTracker{}
		w, err := CreateOutput(out, name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("x"))
		w.Close()
		if out.closed {
			t.Errorf("%s: CreateOutput's Close closed the writer", name)
		}
		in := &closeTracker{Buffer: *bytes.NewBuffer(out.Bytes())}
		rc, err := OpenInput(in, name)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if in.closed {
			t.Errorf("%s: OpenInput's Close closed the reader", name)
		}
	}
}

// TestUploadPipeline reads records straight from a compressed upload.
func TestUploadPipeline(t *testing.T) {
	in := "a,b\r\n1,2\r\n3,4"
	rc, err := OpenInput(bytes.NewReader(zstdData(t, []byte(in))), "upload.csv.zst")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	r := NewReader(rc, CSV)
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 || r.LineEnding() != "\r\n" || r.FinalNewline() {
		t.Errorf("n=%d eol=%q final=%v", n, r.LineEnding(), r.FinalNewline())
	}
}
