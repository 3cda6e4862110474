package sliced

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// testdata/records.txt.bz2 is testdata/records.txt compressed once with the
// bzip2 tool, as two concatenated streams (bzip2 -9 of the first 60,000
// bytes, bzip2 -1 of the rest).
func bzip2Fixture(t testing.TB) (plain, bz []byte) {
	t.Helper()
	plain, err := os.ReadFile("testdata/records.txt")
	if err != nil {
		t.Fatal(err)
	}
	bz, err = os.ReadFile("testdata/records.txt.bz2")
	if err != nil {
		t.Fatal(err)
	}
	return plain, bz
}

func TestOpenInputBzip2(t *testing.T) {
	plain, bz := bzip2Fixture(t)
	// Detected by its magic bytes whatever its name; both streams are read.
	for _, name := range []string{"records.txt.bz2", "records.csv", ""} {
		got, err := openAll(t, bytes.NewReader(bz), name)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%q: %d bytes (%v), want %d", name, len(got), err, len(plain))
		}
	}
	// From a file (the CLI's case).
	f, err := os.Open("testdata/records.txt.bz2")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := openAll(t, f, f.Name()); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("file: %d bytes (%v)", len(got), err)
	}
}

// A truncated bzip2 stream is one clear error wherever it is cut, never a
// short success.
func TestOpenInputBzip2Truncated(t *testing.T) {
	_, bz := bzip2Fixture(t)
	for cut := 10; cut < len(bz); cut += 1 + cut/50 {
		got, err := openAll(t, bytes.NewReader(bz[:cut]), "records.txt.bz2")
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Fatalf("cut at %d of %d: %d bytes, err = %v; want an *InputError", cut, len(bz), len(got), err)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "bzip2") {
			t.Fatalf("cut at %d: message %q", cut, msg)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(msg, "(truncated input?)") {
			t.Fatalf("cut at %d: message %q does not say truncated", cut, msg)
		}
	}
	_, err := openAll(t, bytes.NewReader(bz[:len(bz)/2]), "records.txt.bz2")
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasSuffix(err.Error(), "bzip2: unexpected EOF (truncated input?)") ||
		!strings.HasPrefix(err.Error(), "byte offset ") {
		t.Fatalf("half the file: %v", err)
	}
}

func TestOpenInputBzip2Corrupt(t *testing.T) {
	_, bz := bzip2Fixture(t)
	bad := bytes.Clone(bz)
	bad[len(bad)/3] ^= 0x55
	if _, err := openAll(t, bytes.NewReader(bad), "x.bz2"); !errors.As(err, new(*InputError)) {
		t.Fatalf("corrupt: %v", err)
	}
	trailing := append(bytes.Clone(bz), "garbage!"...)
	if _, err := openAll(t, bytes.NewReader(trailing), "x.bz2"); !errors.As(err, new(*InputError)) {
		t.Fatalf("trailing garbage: %v", err)
	}
	// Named .bz2 but plain: refused before reading.
	if _, err := OpenInput(strings.NewReader("a\nb\n"), "in.csv.bz2"); !errors.As(err, new(*InputError)) || !strings.Contains(err.Error(), "is not bzip2 data") {
		t.Fatalf("plain text named .bz2: %v", err)
	}
}

// Text that merely starts like a bzip2 header is plain text.
func TestOpenInputBzip2LookAlikeIsPlain(t *testing.T) {
	for _, s := range []string{"BZh9\n", "BZh91AY&S\n", "BZh1 is a part number\n", "BZh", "BZh0AY&SY"} {
		got, err := openAll(t, strings.NewReader(s), "in.txt")
		if err != nil || string(got) != s {
			t.Errorf("%q: got %q, %v", s, got, err)
		}
	}
}

// bzip2 is read, never written: a .bz2 output name is an error, not plain
// text under a compressed name.
func TestCreateOutputBzip2Refused(t *testing.T) {
	for _, name := range []string{"out.bz2", "OUT.BZIP2"} {
		var buf bytes.Buffer
		if w, err := CreateOutput(&buf, name); err == nil || w != nil || !strings.Contains(err.Error(), "not supported") {
			t.Errorf("%s: %v, %v", name, w, err)
		}
	}
}
