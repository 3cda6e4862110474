package sliced_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// setupWith is setup with the types register adds, and one server.
func setupWith(t *testing.T, register func(reg *rocketjob.Registry) error) *bundle {
	t.Helper()
	b := &bundle{}
	reg := rocketjob.NewRegistry()
	must(t, register(reg))
	jobs, work := dbtest.DBNames(t)
	cfg := rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg}
	var err error
	b.client, err = rocketjob.NewClient(context.Background(), cfg)
	must(t, err)
	srvClient, err := rocketjob.NewClient(context.Background(), cfg)
	must(t, err)
	srv, err := server.New(srvClient, &server.Config{Workers: 2, PollInterval: 20 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		must(t, <-done)
		_ = srvClient.Close(context.Background())
		_ = b.client.Close(context.Background())
	})
	return b
}

// tableTypes registers a lines copy, a tabular copy (CSV by default, any
// tabular format by upload), a fixed-width copy and a PSV type that
// outputs JSONL.
func tableTypes(reg *rocketjob.Registry) error {
	same := func(_ context.Context, _, row []string) ([]string, error) { return row, nil }
	return errors.Join(
		sliced.RegisterLines(reg, "lines_copy", func(_ context.Context, line string) (string, error) {
			if strings.HasSuffix(line, "\r") {
				return "", errors.New("the function saw a CR")
			}
			return strings.ToUpper(line), nil
		}, &sliced.Options{SliceSize: 2}),
		sliced.RegisterCSV(reg, "table_copy", same, &sliced.Options{SliceSize: 2}),
		sliced.RegisterCSV(reg, "fixed_copy", same, &sliced.Options{Format: sliced.Fixed,
			Header: []string{"id", "name"}, Widths: []int{3, 5}}),
		sliced.RegisterCSV(reg, "psv_to_jsonl", same, &sliced.Options{Format: sliced.PSV, OutputFormat: sliced.JSONL}),
	)
}

// Files come back byte for byte through the database: mixed line endings,
// CRLF in quoted fields, a BOM, each delimited format, fixed width.
func TestUploadDownloadExact(t *testing.T) {
	b := setupWith(t, tableTypes)
	ctx := context.Background()
	tests := []struct {
		name, typ, file, in, want string
		opts                      sliced.UploadOptions
	}{
		{"mixed line endings", "lines_copy", "in.txt", "a\r\nb\nc\r\nd\n", "A\r\nB\nC\r\nD\n", sliced.UploadOptions{}},
		{"lf then crlf", "lines_copy", "in.txt", "a\nb\r\nc", "A\nB\r\nC", sliced.UploadOptions{}},
		{"csv crlf in quotes and bom", "table_copy", "in.csv", "\xef\xbb\xbfid,note\r\n1,\"x\r\ny\"\r\n2,\r\n", "", sliced.UploadOptions{}},
		{"psv by name", "table_copy", "in.psv", "id|note\n1|a,b\n2|\"p|q\"\n", "", sliced.UploadOptions{}},
		{"tsv by option", "table_copy", "in.txt", "id\tnote\n1\t日本\n", "", sliced.UploadOptions{Format: sliced.TSV}},
		{"lenient quotes", "table_copy", "in.csv", "item,size\npipe,12\" pipe\n", "item,size\npipe,\"12\"\" pipe\"\n",
			sliced.UploadOptions{LenientQuotes: true}},
		{"fixed width", "fixed_copy", "in.txt", "1  Zoë  \n22 Bob  \n", "", sliced.UploadOptions{}},
		{"psv to jsonl", "psv_to_jsonl", "in.psv", "id|name\n1|Zoë\n", "{\"id\":\"1\",\"name\":\"Zoë\"}\n", sliced.UploadOptions{}},
		{"csv to tsv by upload", "table_copy", "in.csv", "id,name\n1,\"a\tb\"\n", "id\tname\n1\t\"a\tb\"\n",
			sliced.UploadOptions{OutputFormat: sliced.TSV}},
		{"headerless csv", "table_copy", "in.csv", "1,x\n", "id,name\n1,x\n", sliced.UploadOptions{Header: []string{"id", "name"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Name = tt.file
			job, err := sliced.Upload(ctx, b.client, tt.typ, strings.NewReader(tt.in), &opts)
			must(t, err)
			if got := b.run(t, job); got.State != rocketjob.StateCompleted {
				t.Fatalf("job %s: %+v", got.State, got.Failure)
			}
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if got := b.download(t, job); got != want {
				t.Fatalf("download %q, want %q", got, want)
			}
		})
	}
	// Without lenient quotes the file is refused, nothing stored.
	before, err := b.client.List(ctx, nil)
	must(t, err)
	_, err = sliced.Upload(ctx, b.client, "table_copy", strings.NewReader("item,size\npipe,12\" pipe\n"), &sliced.UploadOptions{Name: "in.csv"})
	var ie *sliced.InputError
	if !errors.As(err, &ie) || !errors.Is(err, sliced.ErrBareQuote) || ie.Line != 2 {
		t.Fatalf("strict upload: %v", err)
	}
	// Bad option combinations are refused up front.
	for _, o := range []sliced.UploadOptions{
		{Format: sliced.JSONL, OutputFormat: sliced.CSV},
		{OutputFormat: sliced.Fixed},
		{Format: sliced.Lines, LenientQuotes: true},
		{Format: sliced.Fixed},
	} {
		_, err := sliced.Upload(ctx, b.client, "table_copy", strings.NewReader("a\n1\n"), &o)
		if !errors.Is(err, sliced.ErrBadOptions) {
			t.Errorf("%+v: %v, want ErrBadOptions", o, err)
		}
	}
	after, err := b.client.List(ctx, nil)
	must(t, err)
	if len(after) != len(before) {
		t.Fatalf("refused uploads left %d jobs", len(after)-len(before))
	}
}

// DownloadAs writes a tabular job's output in another format; a lines job
// only in its own.
func TestDownloadAs(t *testing.T) {
	b := setupWith(t, tableTypes)
	ctx := context.Background()
	job, err := sliced.Upload(ctx, b.client, "table_copy", strings.NewReader("id,name\n1,\"a|b\"\n"), &sliced.UploadOptions{Name: "in.csv"})
	must(t, err)
	if got := b.run(t, job); got.State != rocketjob.StateCompleted {
		t.Fatalf("job %s", got.State)
	}
	for f, want := range map[sliced.Format]string{
		sliced.PSV: "id|name\n1|\"a|b\"\n", sliced.JSONL: "{\"id\":\"1\",\"name\":\"a|b\"}\n", sliced.CSV: "id,name\n1,a|b\n",
	} {
		var out strings.Builder
		_, err := sliced.DownloadAs(ctx, b.client, job.ID.Hex(), f, &out)
		must(t, err)
		if out.String() != want {
			t.Errorf("%s: %q, want %q", f, out.String(), want)
		}
	}
	lines, err := sliced.Upload(ctx, b.client, "lines_copy", strings.NewReader("a\n"), &sliced.UploadOptions{Name: "in.csv"})
	must(t, err)
	if got := b.run(t, lines); got.State != rocketjob.StateCompleted {
		t.Fatalf("job %s", got.State)
	}
	var out strings.Builder
	if _, err := sliced.DownloadAs(ctx, b.client, lines.ID.Hex(), sliced.CSV, &out); !errors.Is(err, sliced.ErrBadOptions) || out.Len() > 0 {
		t.Fatalf("lines as csv: %v, wrote %q", err, out.String())
	}
}

// A batch lines type (sliced.Register) sees lines without the CR of their
// CRLF, and its category outputs get it back: mixed line endings stay
// exact per category; an empty CRLF line is empty to it.
func TestBatchLinesKeepCR(t *testing.T) {
	b := setupWith(t, func(reg *rocketjob.Registry) error {
		return sliced.Register(reg, "parity", sliced.Type[struct{}]{Categories: []string{"even", "odd"},
			Perform: func(_ context.Context, _ struct{}, rec []byte) ([]rocketjob.Output, error) {
				switch {
				case len(rec) == 0:
					return nil, nil
				case bytes.HasSuffix(rec, []byte("\r")):
					return nil, errors.New("saw a CR")
				case (rec[len(rec)-1]-'0')%2 == 0:
					return sliced.To("even", rec), nil
				}
				return sliced.To("odd", rec), nil
			}})
	})
	ctx := context.Background()
	job, err := sliced.Upload(ctx, b.client, "parity", strings.NewReader("2\r\n3\n\r\n4\r\n5\n"), &sliced.UploadOptions{Name: "in.txt"})
	must(t, err)
	if got := b.run(t, job); got.State != rocketjob.StateCompleted {
		t.Fatalf("job %s: %+v", got.State, got.Failure)
	}
	for cat, want := range map[string]string{"even": "2\r\n4\r\n", "odd": "3\n5\n"} {
		var out bytes.Buffer
		_, err := sliced.DownloadCategory(ctx, b.client, job.ID.Hex(), cat, &out)
		must(t, err)
		if out.String() != want {
			t.Errorf("%s: %q, want %q", cat, out.String(), want)
		}
	}
}
