package sliced

import (
	"archive/zip"
	"bytes"
	"io"
	"testing"
)

// writeOnly hides every method but Write, as a pipe or a socket would.
type writeOnly struct{ w io.Writer }

func (o writeOnly) Write(p []byte) (int, error) { return o.w.Write(p) }

// A .zip output is a real zip archive with one entry named after the file,
// written to a writer that cannot seek.
func TestCreateOutputZip(t *testing.T) {
	data := bytes.Repeat([]byte("id,amount\r\n1,\"2,5\"\r\n\x00\xff\n"), 100_000) // 2.3 MB
	for _, tc := range []struct{ name, entry string }{
		{"out.zip", "out"},
		{"/tmp/dir.d/report.csv.ZIP", "report.csv"},
		{`C:\exports\résumé.txt.zip`, "résumé.txt"},
		{".zip", "output"},
		{"dir/..zip", "output"},
	} {
		var buf bytes.Buffer
		w, err := CreateOutput(writeOnly{&buf}, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		for b := data; len(b) > 0; b = b[min(len(b), 70_000):] {
			if _, err := w.Write(b[:min(len(b), 70_000)]); err != nil {
				t.Fatal(err)
			}
		}
		if buf.Len() >= len(data)/2 {
			t.Errorf("%s: %d bytes written before Close for %d of input: not compressed", tc.name, buf.Len(), len(data))
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("%s: not a zip archive: %v", tc.name, err)
		}
		if len(zr.File) != 1 || zr.File[0].Name != tc.entry || zr.File[0].Method != zip.Deflate {
			t.Fatalf("%s: entries %+v, want one deflated %q", tc.name, zr.File, tc.entry)
		}
		rc, err := zr.File[0].Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: entry has %d bytes (%v), want the %d written", tc.name, len(got), err, len(data))
		}
	}
}

// An output never closed is not a valid archive (no central directory), so
// a download that fails half-way cannot pass for a complete one.
func TestCreateOutputZipUnclosedIsInvalid(t *testing.T) {
	var buf bytes.Buffer
	w, err := CreateOutput(&buf, "out.zip")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("some records\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len())); err == nil {
		t.Fatal("an unclosed zip output reads as a valid archive")
	}
}
