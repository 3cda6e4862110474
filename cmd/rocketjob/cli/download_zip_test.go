package cli

import (
	"archive/zip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// 'rocketjob download ID out.zip' writes a zip archive holding one entry,
// "out", with exactly the output.
func TestDownloadZip(t *testing.T) {
	g := db(t)
	startServer(t, g)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	var b strings.Builder
	for i := range 300 {
		b.WriteString(strings.Repeat("ab,\"é\"\t", i%5) + "line\r\n")
	}
	b.WriteString("last line without newline")
	want := b.String()
	if err := os.WriteFile(in, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(mustRun(t, append(g, "upload", "--job", "copy", "--slice-size", "7", in)...).stdout)
	mustRun(t, append(g, "job", "wait", id, "--timeout", "60s")...)
	out := filepath.Join(dir, "out.zip")
	mustRun(t, append(g, "download", id, out)...)

	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatalf("%s is not a zip archive: %v", out, err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != "out" {
		t.Fatalf("entries %v, want one named out", zr.File)
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("entry has %d bytes, want the %d of the input (copy keeps every byte)", len(got), len(want))
	}

	// The archive uploads again (zip input) to the same records.
	id2 := strings.TrimSpace(mustRun(t, append(g, "upload", "--job", "copy", out)...).stdout)
	mustRun(t, append(g, "job", "wait", id2, "--timeout", "60s")...)
	if r := run(t, context.Background(), append(g, "download", id2, "-")...); r.code != 0 || r.stdout != want {
		t.Fatalf("re-upload of the zip: exit %d, %d bytes", r.code, len(r.stdout))
	}
}
