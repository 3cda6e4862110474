package sliced

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// zstdMaxMemory bounds the memory (window) a zstd stream may make the decoder
// use; a stream asking for more is rejected.
const zstdMaxMemory = 64 << 20

// Magic bytes of the compressed formats OpenInput recognises.
var (
	gzipMagic     = []byte{0x1f, 0x8b}
	zstdMagic     = []byte{0x28, 0xb5, 0x2f, 0xfd}
	zipMagic      = []byte{'P', 'K', 3, 4}
	zipEmptyMagic = []byte{'P', 'K', 5, 6} // an archive with no entries
	bzip2Magic    = []byte{'B', 'Z', 'h'}  // then the block size, '1'-'9'
	// After the bzip2 header: the magic of the first block (the digits of
	// pi) or of the end of an empty stream (of sqrt(pi)). All of it is
	// printable ASCII, so it is checked whole before text is taken for bzip2.
	bzip2BlockMagic = []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}
	bzip2EndMagic   = []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90}
)

// magicLen is how many bytes OpenInput looks at to detect the compression.
const magicLen = 10

// Compression kinds.
const (
	kindPlain = ""
	kindGzip  = "gzip"
	kindZstd  = "zstd"
	kindZip   = "zip"
	kindBzip2 = "bzip2"
)

// OpenInput returns the decompressed stream of an input file read from r.
//
// The compression is detected by the magic bytes of the content first: gzip
// (1f 8b), zstd (28 b5 2f fd), zip (50 4b 03 04) or bzip2 ("BZh", a block
// size digit 1-9 and the magic of a block or of the end of the stream). Content without any of them is taken as plain and
// passes through unchanged (no byte is lost by the detection, however short
// the input) unless name ends in a compression extension: ".gz"/".gzip",
// ".zst"/".zstd" or ".bz2"/".bzip2" is then an *InputError naming the file
// (its content is not what its name says), and ".zip" is still opened as a
// zip archive (which may start with other data). name is only used for that
// and for error messages.
//
// gzip and bzip2: concatenated streams are read as one. zstd: the decoder runs
// without extra goroutines and rejects streams needing more than 64 MiB of
// window. zip: the archive must hold exactly one file (directories are
// ignored), else the error is "zip archive has 2 files; expected exactly
// one"; entry names are never used as paths. A zip needs random access: when
// r is a regular *os.File it is read in place (from its current offset),
// otherwise the stream is spooled to a temporary file that Close deletes.
//
// Errors caused by the content are *InputError values: for gzip, zstd and
// bzip2 they carry the offset in the compressed stream, and a truncated stream says
// "(truncated input?)". Errors of r itself are returned unchanged. Close
// releases the decoder and any temporary file; it does not close r.
func OpenInput(r io.Reader, name string) (io.ReadCloser, error) {
	// Remember where a regular file starts, for zip's random access.
	var file *os.File
	var fileStart int64
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if pos, err := f.Seek(0, io.SeekCurrent); err == nil {
				file, fileStart = f, pos
			}
		}
	}
	src := &sourceReader{r: r}
	br := bufio.NewReaderSize(src, readBufSize)
	magic, err := br.Peek(magicLen)
	if err != nil && err != io.EOF {
		return nil, err
	}
	kind := kindPlain
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		kind = kindGzip
	case bytes.HasPrefix(magic, zstdMagic):
		kind = kindZstd
	case bytes.HasPrefix(magic, zipMagic), bytes.HasPrefix(magic, zipEmptyMagic):
		kind = kindZip
	case isBzip2(magic):
		kind = kindBzip2
	default:
		switch ext := strings.ToLower(path.Ext(name)); ext {
		case ".gz", ".gzip", ".zst", ".zstd", ".bz2", ".bzip2":
			what := kindGzip
			switch {
			case strings.HasPrefix(ext, ".zst"):
				what = kindZstd
			case strings.HasPrefix(ext, ".bz"):
				what = kindBzip2
			}
			return nil, &InputError{Offset: 0, Err: fmt.Errorf("%q is not %s data: its name ends in %q but its content does not start with the %s magic bytes", name, what, ext, what)}
		case ".zip":
			kind = kindZip
		}
	}

	in := &countingReader{br: br}
	switch kind {
	case kindGzip:
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, decodeError(kindGzip, in.n, err, src)
		}
		zr.Multistream(true)
		return &decoder{r: zr, codec: kindGzip, in: in, src: src, close: zr.Close}, nil
	case kindZstd:
		zr, err := zstd.NewReader(in,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(zstdMaxMemory),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, err
		}
		return &decoder{r: zr, codec: kindZstd, in: in, src: src, close: func() error { zr.Close(); return nil }}, nil
	case kindBzip2:
		// The header was checked above; the rest is checked as it is read.
		zr := bzip2.NewReader(in)
		return &decoder{r: zr, codec: kindBzip2, in: in, src: src, close: func() error { return nil }}, nil
	case kindZip:
		return openZip(br, file, fileStart, name)
	default:
		return plainReader{br}, nil
	}
}

// isBzip2 reports whether magic, the first magicLen bytes of the input,
// start a bzip2 stream: "BZh", the block size '1'-'9', then the magic of a
// block or of the end of the stream.
func isBzip2(magic []byte) bool {
	if len(magic) < 10 || !bytes.HasPrefix(magic, bzip2Magic) || magic[3] < '1' || magic[3] > '9' {
		return false
	}
	return bytes.Equal(magic[4:10], bzip2BlockMagic) || bytes.Equal(magic[4:10], bzip2EndMagic)
}

// openZip opens the single file entry of the zip archive read from br (or,
// when file is not nil, found in file from offset start on).
func openZip(br *bufio.Reader, file *os.File, start int64, name string) (io.ReadCloser, error) {
	var ra io.ReaderAt
	var size int64
	cleanup := func() {}
	if file != nil {
		st, err := file.Stat()
		if err != nil {
			return nil, err
		}
		size = max(st.Size()-start, 0)
		ra = io.NewSectionReader(file, start, size)
	} else {
		tmp, err := os.CreateTemp("", "rocketjob-upload-*.zip")
		if err != nil {
			return nil, fmt.Errorf("spooling zip archive: %w", err)
		}
		cleanup = func() {
			tmp.Close()
			os.Remove(tmp.Name())
		}
		size, err = io.Copy(tmp, br)
		if err != nil {
			cleanup()
			return nil, err
		}
		ra = tmp
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil && !(errors.Is(err, zip.ErrInsecurePath) && zr != nil) {
		cleanup()
		return nil, &InputError{Offset: -1, Err: fmt.Errorf("%q is not a valid zip archive: %w", name, err)}
	}
	zr.RegisterDecompressor(zip.Deflate, flate.NewReader)
	zr.RegisterDecompressor(zstd.ZipMethodWinZip, zstd.ZipDecompressor(zstd.WithDecoderMaxMemory(zstdMaxMemory)))
	zr.RegisterDecompressor(zstd.ZipMethodPKWare, zstd.ZipDecompressor(zstd.WithDecoderMaxMemory(zstdMaxMemory)))
	var entry *zip.File
	files := 0
	for _, f := range zr.File {
		if f.Mode().IsDir() || strings.HasSuffix(f.Name, "/") {
			continue
		}
		files++
		entry = f
	}
	if files != 1 {
		cleanup()
		return nil, &InputError{Offset: -1, Err: fmt.Errorf("zip archive has %d files; expected exactly one", files)}
	}
	rc, err := entry.Open()
	if err != nil {
		cleanup()
		return nil, &InputError{Offset: -1, Err: fmt.Errorf("zip entry %q: %w", entry.Name, err)}
	}
	return &zipEntry{rc: rc, name: entry.Name, cleanup: cleanup}, nil
}

// zipEntry is the decompressed stream of the one file of a zip archive.
type zipEntry struct {
	rc      io.ReadCloser
	name    string
	cleanup func()
	err     error
}

// Read reads decompressed bytes of the entry.
func (z *zipEntry) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	n, err := z.rc.Read(p)
	if err != nil {
		if err != io.EOF {
			msg := "%w"
			if errors.Is(err, io.ErrUnexpectedEOF) {
				msg = "%w (truncated input?)"
			}
			err = &InputError{Offset: -1, Err: fmt.Errorf("zip entry %q: "+msg, z.name, err)}
		}
		z.err = err
	}
	return n, err
}

// Close closes the entry and removes the spooled archive, if any.
func (z *zipEntry) Close() error {
	err := z.rc.Close()
	z.cleanup()
	z.cleanup = func() {}
	if z.err == nil {
		z.err = errors.New("sliced: read after Close")
	}
	return err
}

// decoder is the decompressed stream of a gzip or zstd input.
type decoder struct {
	r     io.Reader
	codec string
	in    *countingReader
	src   *sourceReader
	close func() error
	err   error
}

// Read reads decompressed bytes, turning decoding errors into *InputError.
func (d *decoder) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.r.Read(p)
	if err != nil {
		if err != io.EOF {
			err = decodeError(d.codec, d.in.n, err, d.src)
		}
		d.err = err
	}
	return n, err
}

// Close releases the decoder.
func (d *decoder) Close() error {
	if d.err == nil {
		d.err = errors.New("sliced: read after Close")
	}
	return d.close()
}

// decodeError returns the error to report for err from a decoder that had
// consumed off compressed bytes: once the source has failed, the source's
// error unchanged (a decoder may report a read error as broken data);
// otherwise an *InputError.
func decodeError(codec string, off int64, err error, src *sourceReader) error {
	if src.err != nil {
		return src.err
	}
	return &InputError{Offset: off, Err: &codecError{codec: codec, err: err}}
}

// codecError is a decoding error, shown with the codec's name and, when the
// input ended early, a hint that it may be truncated.
type codecError struct {
	codec string
	err   error
}

// Error returns e.g. "gzip: unexpected EOF (truncated input?)".
func (e *codecError) Error() string {
	msg := e.err.Error()
	if !strings.HasPrefix(msg, e.codec+":") {
		msg = e.codec + ": " + msg
	}
	if errors.Is(e.err, io.ErrUnexpectedEOF) {
		msg += " (truncated input?)"
	}
	return msg
}

// Unwrap returns the decoder's error.
func (e *codecError) Unwrap() error { return e.err }

// sourceReader remembers the last error (other than io.EOF) of the input,
// so that it can be told apart from decoding errors.
type sourceReader struct {
	r   io.Reader
	err error
}

// Read reads from the input.
func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// countingReader counts the compressed bytes a decoder consumed. It is an
// io.ByteReader so that the flate decoder does not buffer ahead of it, which
// keeps the count exact for gzip.
type countingReader struct {
	br *bufio.Reader
	n  int64
}

// Read reads from the buffered input.
func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.br.Read(p)
	c.n += int64(n)
	return n, err
}

// ReadByte reads one byte from the buffered input.
func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// plainReader passes uncompressed input through.
type plainReader struct{ *bufio.Reader }

// Close does nothing: the input is not closed.
func (plainReader) Close() error { return nil }

// CreateOutput wraps w with a compressor chosen by the extension of name:
// ".gz" (or ".gzip") gzip, ".zst" (or ".zstd") zstd, ".zip" a zip archive
// of one deflated entry named after name without its directory and ".zip"
// ("out.csv.zip" holds "out.csv"), anything else none, except ".bz2" (or
// ".bzip2"), which is an error: bzip2 is read, not written. The output is
// streamed (a zip entry's sizes follow its data), so memory stays bounded
// and w need not seek. Close flushes the compressor (and writes the zip's
// directory); it does not close w. Without Close the output is incomplete.
func CreateOutput(w io.Writer, name string) (io.WriteCloser, error) {
	switch strings.ToLower(path.Ext(name)) {
	case ".gz", ".gzip":
		return gzip.NewWriter(w), nil
	case ".zst", ".zstd":
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
	case ".zip":
		return newZipOutput(w, zipEntryName(name))
	case ".bz2", ".bzip2":
		// The standard library has no bzip2 writer: never write plain text
		// under a compressed name.
		return nil, fmt.Errorf("%s: bzip2 output is not supported (use .gz, .zst or .zip)", name)
	default:
		return nopWriteCloser{w}, nil
	}
}

// zipEntryName is the name of the one entry of a zip output file: the
// file's base name without ".zip", or "output" when nothing is left.
func zipEntryName(name string) string {
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	entry := base[:len(base)-len(path.Ext(base))]
	if entry == "" || entry == "." || entry == ".." {
		return "output"
	}
	return entry
}

// zipOutput writes one entry of a zip archive.
type zipOutput struct {
	zw    *zip.Writer
	entry io.Writer
}

// newZipOutput starts a zip archive on w with one deflated entry.
func newZipOutput(w io.Writer, entry string) (*zipOutput, error) {
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.DefaultCompression)
	})
	ew, err := zw.CreateHeader(&zip.FileHeader{Name: entry, Method: zip.Deflate, Modified: time.Now()})
	if err != nil {
		return nil, fmt.Errorf("zip entry %q: %w", entry, err)
	}
	return &zipOutput{zw: zw, entry: ew}, nil
}

// Write writes uncompressed bytes of the entry.
func (z *zipOutput) Write(p []byte) (int, error) { return z.entry.Write(p) }

// Close ends the entry and writes the archive's central directory.
func (z *zipOutput) Close() error { return z.zw.Close() }

// nopWriteCloser is a writer whose Close does nothing.
type nopWriteCloser struct{ io.Writer }

// Close does nothing: the output is not closed.
func (nopWriteCloser) Close() error { return nil }
