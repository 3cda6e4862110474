package sliced_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// Invoice is what the typed type writes: its own columns.
type Invoice struct {
	ID    string  `rocketjob:"id"`
	Total float64 `rocketjob:"total"`
	Late  bool    `rocketjob:"late"`
}

func rowTypes(reg *rocketjob.Registry) error {
	return errors.Join(
		sliced.RegisterRows(reg, "invoice", func(_ context.Context, o Order) (Invoice, error) {
			if o.ID == "boom" {
				return Invoice{}, errors.New("boom")
			}
			return Invoice{ID: o.ID, Total: o.Amount * 2, Late: !o.Paid}, nil
		}, &sliced.Options{SliceSize: 2}),
		sliced.RegisterRows(reg, "invoice_psv_jsonl", func(_ context.Context, o Order) (Order, error) { return o, nil },
			&sliced.Options{Format: sliced.PSV, OutputFormat: sliced.JSONL}),
	)
}

// A typed-rows type reads columns by name, writes its declared columns,
// fails only the record whose field does not convert (naming the column),
// and refuses a file that lacks a required column before storing anything.
func TestRegisterRows(t *testing.T) {
	b := setupWith(t, rowTypes)
	ctx := context.Background()
	in := "Paid,ID,Amount,Day,Extra\nyes,a,1.5,2026-01-02,x\nno,b,12x,2026-01-02,y\nno,c,2,2026-01-03,z\nmaybe,d,1,2026-01-03,w\n"
	job, err := sliced.Upload(ctx, b.client, "invoice", strings.NewReader(in), &sliced.UploadOptions{Name: "orders.csv"})
	must(t, err)
	got := b.run(t, job)
	if got.State != rocketjob.StateFailed || got.FailedRecordCount != 2 {
		t.Fatalf("job %s with %d failed records, want failed with 2", got.State, got.FailedRecordCount)
	}
	if out, want := b.download(t, job), "id,total,late\na,3,false\nc,4,true\n"; out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
	var failed strings.Builder
	_, err = sliced.DownloadFailed(ctx, b.client, job.ID.Hex(), &failed)
	must(t, err)
	for _, want := range []string{`2,"column ""amount"": ""12x"" is not a number"`, `4,"column ""paid"": ""maybe"" is not a boolean`} {
		if !strings.Contains(failed.String(), want) {
			t.Errorf("failed records %q lack %q", failed.String(), want)
		}
	}

	// Missing a required column: refused, nothing stored.
	before, err := b.client.List(ctx, nil)
	must(t, err)
	_, err = sliced.Upload(ctx, b.client, "invoice", strings.NewReader("id,amount,day\na,1,2026-01-01\n"), &sliced.UploadOptions{Name: "orders.csv"})
	var ce *sliced.ColumnError
	if !errors.As(err, &ce) || len(ce.Missing) != 1 || ce.Missing[0] != "paid" {
		t.Fatalf("missing column: %v", err)
	}
	after, err := b.client.List(ctx, nil)
	must(t, err)
	if len(after) != len(before) {
		t.Fatal("a refused upload left a job")
	}

	// PSV in, JSONL out, the optional column empty.
	job, err = sliced.Upload(ctx, b.client, "invoice_psv_jsonl", strings.NewReader("id|amount|paid|day\nz|0.25|1|2026-02-03\n"), &sliced.UploadOptions{Name: "o.psv"})
	must(t, err)
	if got := b.run(t, job); got.State != rocketjob.StateCompleted {
		t.Fatalf("job %s: %+v", got.State, got.Failure)
	}
	if out, want := b.download(t, job), `{"id":"z","amount":"0.25","paid":"true","day":"2026-02-03","note":""}`+"\n"; out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
}
