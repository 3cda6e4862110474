package sliced_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// A .bz2 file uploads to the records of its content and downloads to the
// same bytes; a truncated one is refused and leaves nothing behind.
func TestUploadBzip2(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	plain, err := os.ReadFile("testdata/records.txt")
	must(t, err)
	bz, err := os.ReadFile("testdata/records.txt.bz2")
	must(t, err)

	job, err := sliced.Upload(ctx, b.client, "strict", bytes.NewReader(bz), &sliced.UploadOptions{Name: "records.txt.bz2", SliceSize: 250})
	must(t, err)
	if want := int64(bytes.Count(plain, []byte("\n"))); job.RecordCount != want {
		t.Fatalf("%d records, want %d", job.RecordCount, want)
	}
	if got := b.run(t, job); got.State != rocketjob.StateCompleted {
		t.Fatalf("job %s: %+v", got.State, got.Failure)
	}
	if got := b.download(t, job); got != string(plain) {
		t.Fatalf("download: %d bytes, want the %d of the input", len(got), len(plain))
	}

	// Column checks read the decompressed header.
	_, err = sliced.Upload(ctx, b.client, "strict", bytes.NewReader(bz), &sliced.UploadOptions{Name: "records.txt.bz2",
		Format: sliced.CSV, Columns: &sliced.Columns{Required: []string{"ID", "Amount", "currency"}}})
	if ce := new(sliced.ColumnError); !errors.As(err, &ce) || len(ce.Missing) != 1 || ce.Missing[0] != "currency" {
		t.Fatalf("column check on bzip2 CSV: %v", err)
	}

	before, err := b.client.List(ctx, nil)
	must(t, err)
	for _, cut := range []int{100, len(bz) / 2, 12_000, len(bz) - 5, len(bz) - 1} {
		_, err := sliced.Upload(ctx, b.client, "strict", bytes.NewReader(bz[:cut]), &sliced.UploadOptions{Name: "records.txt.bz2", SliceSize: 10})
		var ie *sliced.InputError
		if !errors.As(err, &ie) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("truncated at %d of %d: %v", cut, len(bz), err)
		}
	}
	after, err := b.client.List(ctx, nil)
	must(t, err)
	if len(after) != len(before) {
		t.Fatalf("truncated uploads left %d jobs", len(after)-len(before))
	}
	names, err := clientstore.Of(b.client).WorkCollections(ctx)
	must(t, err)
	prefix := "slices_" + job.ID.Hex() + "_"
	for _, n := range names {
		if len(n) < len(prefix) || n[:len(prefix)] != prefix {
			t.Fatalf("slice collections left behind: %v", names)
		}
	}
}
