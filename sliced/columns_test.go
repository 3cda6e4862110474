package sliced_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// columnsClient returns a client (no server: nothing needs to run) whose
// registry has CSV types with column checks.
func columnsClient(t *testing.T) *rocketjob.Client {
	t.Helper()
	reg := rocketjob.NewRegistry()
	echo := func(ctx context.Context, header, row []string) ([]string, error) { return row, nil }
	must(t, sliced.RegisterCSV(reg, "payments", echo, &sliced.Options{Columns: &sliced.Columns{
		Required: []string{"ID", "Amount"},
		Allowed:  []string{"note"},
	}}))
	must(t, sliced.RegisterCSV(reg, "lenient", echo, &sliced.Options{Columns: &sliced.Columns{
		Required: []string{"id"},
		Allowed:  []string{"amount"},
		Unknown:  sliced.IgnoreUnknown,
	}}))
	must(t, sliced.RegisterCSV(reg, "exact", echo, &sliced.Options{Columns: &sliced.Columns{
		Required: []string{"ID"},
		Exact:    true,
	}}))
	must(t, sliced.RegisterCSV(reg, "open", echo, nil))
	must(t, sliced.RegisterLines(reg, "plain", func(ctx context.Context, l string) (string, error) { return l, nil }, nil))
	jobs, work := dbtest.DBNames(t)
	c, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: dbtest.URI(), DB: jobs, WorkDB: work, Registry: reg})
	must(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestColumnChecksAccept(t *testing.T) {
	c := columnsClient(t)
	ctx := context.Background()
	for _, tc := range []struct {
		typ, in string
		opts    *sliced.UploadOptions
		records int64
	}{
		// Cleansed names: trimmed, case folded; the header is kept as it was.
		{"payments", " id ,AMOUNT,Note\n1,2,x\n3,4,y\n", nil, 2},
		{"payments", "\uFEFFamount,id\n1,2\n", nil, 1},
		// The header alone: no records, still checked and accepted.
		{"payments", "id,amount\n", nil, 0},
		{"lenient", "ID,extra,other\n1,2,3\n", nil, 1},
		{"exact", "ID,x\n1,2\n", nil, 1},
		{"open", "a,b\n1,2\n", &sliced.UploadOptions{Columns: &sliced.Columns{Required: []string{"B"}}}, 1},
		// A lines type read as CSV for this upload can be checked too.
		{"plain", "a,b\n1,2\n", &sliced.UploadOptions{Format: sliced.CSV, Columns: &sliced.Columns{Required: []string{"a"}}}, 1},
	} {
		job, err := sliced.Upload(ctx, c, tc.typ, strings.NewReader(tc.in), tc.opts)
		if err != nil {
			t.Fatalf("%s %q: %v", tc.typ, tc.in, err)
		}
		if job.RecordCount != tc.records {
			t.Fatalf("%s %q: %d records, want %d", tc.typ, tc.in, job.RecordCount, tc.records)
		}
		got, err := c.Get(ctx, job.ID.Hex())
		must(t, err)
		want, _, _ := strings.Cut(strings.TrimPrefix(tc.in, "\uFEFF"), "\n")
		if h := strings.Join(got.Header, ","); h != want {
			t.Fatalf("%s: stored header %q, want %q", tc.typ, h, want)
		}
	}
}

func TestColumnChecksRefuseBeforeStoring(t *testing.T) {
	c := columnsClient(t)
	ctx := context.Background()
	for _, tc := range []struct {
		typ, in          string
		opts             *sliced.UploadOptions
		line             int64
		missing, unknown []string
		msg              string
	}{
		{typ: "payments", in: "id,note\n1,x\n", line: 1, missing: []string{"Amount"},
			msg: `line 1: missing required column "Amount"`},
		{typ: "payments", in: "\n\nid,amount,colour,size\n1,2,3,4\n", line: 3, unknown: []string{"colour", "size"},
			msg: `line 3: unknown columns "colour", "size"`},
		{typ: "payments", in: "name,\"a\nb\"\n", line: 1, missing: []string{"ID", "Amount"}, unknown: []string{"name", "a\nb"},
			msg: `line 1: missing required columns "ID", "Amount"; unknown columns "name", "a\nb"`},
		{typ: "payments", in: "", missing: []string{"ID", "Amount"},
			msg: `missing required columns "ID", "Amount" (the file has no header row)`},
		{typ: "exact", in: "id\n1\n", line: 1, missing: []string{"ID"}},
		// An upload's checks add to the type's: both are reported at once.
		{typ: "payments", in: "id,amount,note\n1,2,3\n", opts: &sliced.UploadOptions{Columns: &sliced.Columns{Required: []string{"currency"}}},
			line: 1, missing: []string{"currency"}},
		{typ: "lenient", in: "amount\n1\n", opts: &sliced.UploadOptions{Columns: &sliced.Columns{Allowed: []string{"id"}}},
			line: 1, missing: []string{"id"}, unknown: []string{"amount"}},
	} {
		// gzip too: the check reads the decompressed header.
		for _, in := range []string{tc.in, gzipped(t, tc.in)} {
			_, err := sliced.Upload(ctx, c, tc.typ, strings.NewReader(in), tc.opts)
			var ce *sliced.ColumnError
			var ie *sliced.InputError
			if !errors.As(err, &ce) || !errors.Is(err, sliced.ErrColumns) || !errors.As(err, &ie) {
				t.Fatalf("%s %q: got %v, want a *ColumnError in an *InputError", tc.typ, tc.in, err)
			}
			if ie.Line != tc.line || !slices.Equal(ce.Missing, tc.missing) || !slices.Equal(ce.Unknown, tc.unknown) {
				t.Fatalf("%s %q: line %d missing %q unknown %q; want line %d missing %q unknown %q",
					tc.typ, tc.in, ie.Line, ce.Missing, ce.Unknown, tc.line, tc.missing, tc.unknown)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Fatalf("%s: message %q, want %q", tc.typ, err, tc.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("message is not one line: %q", err)
			}
		}
	}
	// Options that cannot be checked are refused too.
	for _, tc := range []struct {
		typ  string
		opts *sliced.UploadOptions
	}{
		{"payments", &sliced.UploadOptions{Format: sliced.Lines}},
		{"plain", &sliced.UploadOptions{Columns: &sliced.Columns{Required: []string{"a"}}}},
		{"open", &sliced.UploadOptions{Columns: &sliced.Columns{Required: []string{"  "}}}},
		{"open", &sliced.UploadOptions{Columns: &sliced.Columns{Required: []string{"a"}, Unknown: 7}}},
	} {
		if _, err := sliced.Upload(ctx, c, tc.typ, strings.NewReader("a\n1\n"), tc.opts); !errors.Is(err, sliced.ErrBadOptions) {
			t.Fatalf("%s %+v: %v, want ErrBadOptions", tc.typ, tc.opts, err)
		}
	}
	if _, err := sliced.UploadRecords(ctx, c, "payments", slices.Values([][]byte{[]byte("x")}), nil); !errors.Is(err, sliced.ErrBadOptions) {
		t.Fatalf("records without a header for a checked type: %v", err)
	}
	jobs, err := c.List(ctx, nil)
	must(t, err)
	if len(jobs) != 0 {
		t.Fatalf("%d jobs left behind by refused uploads", len(jobs))
	}
	names, err := clientstore.Of(c).WorkCollections(ctx)
	must(t, err)
	if len(names) != 0 {
		t.Fatalf("slice collections left behind: %v", names)
	}
}

func TestColumnErrorListsAtMostTwentyNames(t *testing.T) {
	var unknown []string
	for i := range 25 {
		unknown = append(unknown, string(rune('a'+i)))
	}
	msg := (&sliced.ColumnError{Unknown: unknown}).Error()
	if !strings.HasSuffix(msg, `"t" and 5 more`) || strings.Contains(msg, `"u"`) {
		t.Fatalf("message %q", msg)
	}
}

func TestRegisterColumnsChecked(t *testing.T) {
	reg := rocketjob.NewRegistry()
	fn := func(ctx context.Context, l string) (string, error) { return l, nil }
	if err := sliced.RegisterLines(reg, "l", fn, &sliced.Options{Columns: &sliced.Columns{Required: []string{"a"}}}); err == nil {
		t.Fatal("column checks accepted on a lines type")
	}
	row := func(ctx context.Context, h, r []string) ([]string, error) { return r, nil }
	if err := sliced.RegisterCSV(reg, "c", row, &sliced.Options{Columns: &sliced.Columns{Allowed: []string{""}}}); err == nil {
		t.Fatal("empty column name accepted")
	}
	cols := &sliced.Columns{Required: []string{"a"}}
	must(t, sliced.RegisterCSV(reg, "d", row, &sliced.Options{Columns: cols}))
	cols.Required[0] = "changed" // the type keeps its own copy
	if got := sliced.TypeColumns(reg, "d"); got == nil || !slices.Equal(got.Required, []string{"a"}) {
		t.Fatalf("TypeColumns = %+v", got)
	}
	if got := sliced.TypeColumns(rocketjob.NewRegistry(), "d"); got != nil {
		t.Fatalf("another registry's type has columns %+v", got)
	}

}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write([]byte(s))
	must(t, err)
	must(t, zw.Close())
	return b.String()
}
