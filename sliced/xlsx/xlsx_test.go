package xlsx_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
	_ "github.com/rocketjob-go/rocketjob/sliced/xlsx"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// workbook writes header and rows as an XLSX workbook.
func workbook(t testing.TB, sheet string, header []string, rows ...[]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := sliced.NewWriter(&buf, sliced.WriterOptions{Format: sliced.XLSX, Header: header, Sheet: sheet})
	for _, r := range rows {
		must(t, w.Write(sliced.EncodeFields(nil, r)))
	}
	must(t, w.Close())
	return buf.Bytes()
}

// readRows reads a workbook with ro.
func readRows(t testing.TB, in io.Reader, ro sliced.ReaderOptions) ([]string, [][]string, error) {
	t.Helper()
	ro.Format = sliced.XLSX
	r := sliced.NewReaderOptions(in, &ro)
	defer r.Close()
	var out [][]string
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r.Header(), out, nil
		}
		if err != nil {
			return nil, nil, err
		}
		f, err := sliced.DecodeFields(rec)
		must(t, err)
		out = append(out, f)
	}
}

var tricky = [][]string{
	{"1", "Smith, J", "say \"hi\""},
	{"2", "名前 🙂", "line1\nline2"},
	{"3", "", "tab\there|pipe"},
	{"4", "0012", "  spaces  "},
}

// Rows written as XLSX read back the same, from a stream or a file, on the
// named sheet; the sheet must exist.
func TestRoundTrip(t *testing.T) {
	header := []string{"id", "name", "note"}
	b := workbook(t, "Orders", header, tricky...)
	h, rows, err := readRows(t, bytes.NewReader(b), sliced.ReaderOptions{})
	must(t, err)
	if !reflect.DeepEqual(h, header) || !reflect.DeepEqual(rows, tricky) {
		t.Fatalf("header %q rows %q", h, rows)
	}
	path := filepath.Join(t.TempDir(), "in.xlsx")
	must(t, os.WriteFile(path, b, 0o600))
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	_, rows, err = readRows(t, f, sliced.ReaderOptions{Sheet: "Orders"})
	must(t, err)
	if !reflect.DeepEqual(rows, tricky) {
		t.Fatalf("from a file: %q", rows)
	}
	_, _, err = readRows(t, bytes.NewReader(b), sliced.ReaderOptions{Sheet: "Nope"})
	var ie *sliced.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), `no sheet "Nope" (it has "Orders")`) {
		t.Fatalf("missing sheet: %v", err)
	}
	_, _, err = readRows(t, strings.NewReader("id,name\n1,x\n"), sliced.ReaderOptions{})
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "not a readable XLSX workbook") {
		t.Fatalf("not a workbook: %v", err)
	}
}

// No temporary file outlives a Reader.
func TestNoTempFilesLeft(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	b := workbook(t, "", []string{"a"}, []string{"1"}, []string{"2"})
	_, _, err := readRows(t, bytes.NewReader(b), sliced.ReaderOptions{})
	must(t, err)
	r := sliced.NewReaderOptions(bytes.NewReader(b), &sliced.ReaderOptions{Format: sliced.XLSX})
	_, err = r.Next()
	must(t, err)
	must(t, r.Close())
	left, err := os.ReadDir(dir)
	must(t, err)
	if len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// FuzzReader checks that reading any bytes as a workbook never panics and
// fails only with an *InputError.
func FuzzReader(f *testing.F) {
	f.Add(workbook(f, "", []string{"a", "b"}, []string{"1", "x"}))
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, x []byte) {
		_, _, err := readRows(t, bytes.NewReader(x), sliced.ReaderOptions{})
		var ie *sliced.InputError
		if err != nil && !errors.As(err, &ie) {
			t.Fatalf("error %v (%T) is not an *InputError", err, err)
		}
	})
}

// Through the database: an XLSX upload converts to CSV, a CSV upload to
// XLSX, the header kept.
func TestUploadConvert(t *testing.T) {
	reg := rocketjob.NewRegistry()
	must(t, sliced.RegisterCSV(reg, "convert", func(_ context.Context, _, row []string) ([]string, error) { return row, nil }, nil))
	jobs, work := dbtest.DBNames(t)
	cfg := rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg}
	client, err := rocketjob.NewClient(context.Background(), cfg)
	must(t, err)
	defer client.Close(context.Background())
	srvClient, err := rocketjob.NewClient(context.Background(), cfg)
	must(t, err)
	defer srvClient.Close(context.Background())
	srv, err := server.New(srvClient, &server.Config{Workers: 1, PollInterval: 20 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); must(t, <-done) }()

	run := func(name string, in []byte, opts *sliced.UploadOptions) []byte {
		t.Helper()
		opts.Name = name
		job, err := sliced.Upload(ctx, client, "convert", bytes.NewReader(in), opts)
		must(t, err)
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		got, err := client.Wait(wctx, job.ID.Hex(), 20*time.Millisecond)
		must(t, err)
		if got.State != rocketjob.StateCompleted {
			t.Fatalf("job %s: %+v", got.State, got.Failure)
		}
		var out bytes.Buffer
		_, err = sliced.Download(ctx, client, job.ID.Hex(), &out)
		must(t, err)
		return out.Bytes()
	}
	header := []string{"id", "name", "note"}
	csvOut := run("in.xlsx", workbook(t, "", header, tricky...), &sliced.UploadOptions{OutputFormat: sliced.CSV})
	want := "id,name,note\n1,\"Smith, J\",\"say \"\"hi\"\"\"\n2,名前 🙂,\"line1\nline2\"\n3,,tab\there|pipe\n4,0012,\"  spaces  \"\n"
	if string(csvOut) != want {
		t.Fatalf("xlsx -> csv %q, want %q", csvOut, want)
	}
	xlsxOut := run("in.csv", csvOut, &sliced.UploadOptions{OutputFormat: sliced.XLSX})
	h, rows, err := readRows(t, bytes.NewReader(xlsxOut), sliced.ReaderOptions{})
	must(t, err)
	if !reflect.DeepEqual(h, header) || !reflect.DeepEqual(rows, tricky) {
		t.Fatalf("csv -> xlsx: header %q rows %q", h, rows)
	}
}
