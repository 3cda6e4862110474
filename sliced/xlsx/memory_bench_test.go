package xlsx_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// The memory benchmarks generate a large file in a temporary folder and
// read it through the upload's path (decompression detection, Reader,
// records packed into slice buffers), printing the peak RSS of the read.
// Sizes in MB come from the environment (defaults: the figures):
//
//	ROCKETJOB_BENCH_CSV_MB=1024 ROCKETJOB_BENCH_XLSX_MB=100 ROCKETJOB_BENCH_UPLOAD_MB=100 \
//	  go test -run '^$' -bench Memory -benchtime 1x ./sliced/xlsx/
//
// Run one benchmark per process (-bench '^BenchmarkMemoryCSV$') for a
// clean peak: the peak is reset before each read where Linux allows it.

// envMB reads a size in MB from the environment.
func envMB(b *testing.B, name string, def int) int64 {
	v := os.Getenv(name)
	if v == "" {
		return int64(def) << 20
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a number of MB", name, v)
	}
	return int64(n) << 20
}

// rssKB returns the current and peak resident set size in KB (0 when
// /proc is not there).
func rssKB() (cur, peak int64) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = n
		case "VmHWM:":
			peak = n
		}
	}
	return cur, peak
}

// resetPeak returns freed memory to the system and resets the peak RSS to
// the current RSS (Linux: clear_refs 5).
func resetPeak() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// row returns the fields of a generated row: quoting, separators and
// unicode included, random enough not to compress away.
func row(r *rand.Rand, i int) []string {
	letters := "abcdefghijklmnopqrstuvwxyzéü"
	word := func(n int) string {
		var sb strings.Builder
		for range n {
			sb.WriteByte(letters[r.IntN(26)])
		}
		return sb.String()
	}
	return []string{
		strconv.Itoa(i),
		word(6) + ", " + word(5),
		strconv.FormatFloat(r.Float64()*10000, 'f', 2, 64),
		time.Date(2026, 1, 1+r.IntN(365), 0, 0, 0, 0, time.UTC).Format("2006-01-02"),
		"say \"" + word(8) + "\" 日本 " + word(12),
	}
}

var benchHeader = []string{"id", "name", "amount", "day", "note"}

// readAll reads path through the upload's path in format f and returns the
// records read and their bytes; the records are packed into 4 MB slice
// buffers like the upload does, and dropped.
func readAll(b *testing.B, path string, f sliced.Format) (n, size int64) {
	file, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	var src io.Reader = file
	if f != sliced.XLSX {
		in, err := sliced.OpenInput(file, path)
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		src = in
	}
	rd := sliced.NewReaderOptions(src, &sliced.ReaderOptions{Format: f})
	defer rd.Close()
	buf := make([]byte, 0, sliced.MaxSliceBytes+64<<10)
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			return n, size
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
		size += int64(len(rec))
		if len(buf)+len(rec) > cap(buf) {
			buf = buf[:0]
		}
		buf = append(buf, rec...)
	}
}

// report prints one line of figures and reports the peak as a metric.
func report(b *testing.B, what string, fileBytes, records int64, took time.Duration, before, peak int64) {
	mbps := float64(fileBytes) / (1 << 20) / took.Seconds()
	fmt.Printf("%s: %.0f MB file, %d records in %s (%.0f MB/s); RSS before %.0f MB, peak %.0f MB\n",
		what, float64(fileBytes)/(1<<20), records, took.Round(time.Millisecond), mbps, float64(before)/1024, float64(peak)/1024)
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
	b.ReportMetric(mbps, "MB/s")
}

// writeCSV generates a CSV file of about size bytes.
func writeCSV(b *testing.B, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := sliced.NewWriter(f, sliced.WriterOptions{Format: sliced.CSV, Header: benchHeader, FinalNewline: true})
	cw := &countingWriter{w: f}
	w = sliced.NewWriter(cw, sliced.WriterOptions{Format: sliced.CSV, Header: benchHeader, FinalNewline: true})
	r := rand.New(rand.NewPCG(1, 2))
	var rec []byte
	for i := 1; cw.n < size; i++ {
		rec = sliced.EncodeFields(rec[:0], row(r, i))
		if err := w.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// BenchmarkMemoryCSV reads a generated CSV file (1 GB by default).
func BenchmarkMemoryCSV(b *testing.B) {
	size := envMB(b, "ROCKETJOB_BENCH_CSV_MB", 1024)
	path := filepath.Join(b.TempDir(), "big.csv")
	writeCSV(b, path, size)
	st, _ := os.Stat(path)
	b.ResetTimer()
	for range b.N {
		resetPeak()
		before, _ := rssKB()
		start := time.Now()
		n, _ := readAll(b, path, sliced.CSV)
		_, peak := rssKB()
		report(b, "csv read", st.Size(), n, time.Since(start), before, peak)
	}
}

// writeXLSX generates a workbook of about size bytes with the xlsx
// writer (its rows count estimated from a sample) and returns the peak RSS
// of the write.
func writeXLSX(b *testing.B, path string, size int64) (rows int, peak int64) {
	perRow := func() float64 {
		sample := filepath.Join(filepath.Dir(path), "sample.xlsx")
		writeRows(b, sample, 20_000)
		st, _ := os.Stat(sample)
		os.Remove(sample)
		return float64(st.Size()) / 20_000
	}()
	rows = int(float64(size) / perRow)
	resetPeak()
	writeRows(b, path, rows)
	_, peak = rssKB()
	return rows, peak
}

func writeRows(b *testing.B, path string, rows int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	// Three groups of the CSV columns a row: a sheet holds at most
	// 1,048,576 rows, so a 100 MB workbook needs wide ones.
	var header []string
	for _, g := range []string{"", "2", "3"} {
		for _, h := range benchHeader {
			header = append(header, h+g)
		}
	}
	w := sliced.NewWriter(bw, sliced.WriterOptions{Format: sliced.XLSX, Header: header})
	r := rand.New(rand.NewPCG(1, 2))
	var rec []byte
	for i := 1; i <= rows; i++ {
		rec = sliced.EncodeFields(rec[:0], append(append(row(r, i), row(r, i)...), row(r, i)...))
		if err := w.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// TestMemoryXLSXWriter writes the benchmark's workbook when
// BenchmarkMemoryXLSX runs it in a process of its own (the writer's memory
// must not count in the read's peak); it is skipped otherwise.
func TestMemoryXLSXWriter(t *testing.T) {
	path := os.Getenv("ROCKETJOB_BENCH_XLSX_WRITE")
	if path == "" {
		t.Skip("run by BenchmarkMemoryXLSX")
	}
	b := &testing.B{}
	size := envMB(b, "ROCKETJOB_BENCH_XLSX_MB", 100)
	start := time.Now()
	rows, peak := writeXLSX(b, path, size)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("xlsx write: %.0f MB file, %d rows in %s; peak RSS %.0f MB\n",
		float64(st.Size())/(1<<20), rows, time.Since(start).Round(time.Millisecond), float64(peak)/1024)
}

// BenchmarkMemoryXLSX writes a generated workbook (100 MB by default) in a
// child process, then reads it.
func BenchmarkMemoryXLSX(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.xlsx")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestMemoryXLSXWriter$")
	cmd.Env = append(os.Environ(), "ROCKETJOB_BENCH_XLSX_WRITE="+path)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("writing the workbook: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		resetPeak()
		before, _ := rssKB()
		start := time.Now()
		n, _ := readAll(b, path, sliced.XLSX)
		_, peak := rssKB()
		report(b, "xlsx read", st.Size(), n, time.Since(start), before, peak)
	}
}

// BenchmarkMemoryUpload uploads a generated CSV file (100 MB by default)
// into the embedded database and downloads it again, printing the peak
// RSS of each (database included: it runs in this process).
func BenchmarkMemoryUpload(b *testing.B) {
	size := envMB(b, "ROCKETJOB_BENCH_UPLOAD_MB", 100)
	path := filepath.Join(b.TempDir(), "upload.csv")
	writeCSV(b, path, size)
	st, _ := os.Stat(path)
	reg := rocketjob.NewRegistry()
	if err := sliced.RegisterCSV(reg, "bench_copy", func(_ context.Context, _, row []string) ([]string, error) { return row, nil },
		&sliced.Options{SliceSize: 1000}); err != nil {
		b.Fatal(err)
	}
	jobs, work := dbtest.DBNames(b)
	client, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close(context.Background())
	b.ResetTimer()
	for range b.N {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		resetPeak()
		before, _ := rssKB()
		start := time.Now()
		job, err := sliced.Upload(context.Background(), client, "bench_copy", f, &sliced.UploadOptions{Name: path})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		_, peak := rssKB()
		report(b, "csv upload", st.Size(), job.RecordCount, time.Since(start), before, peak)
	}
}
