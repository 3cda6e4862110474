package sliced_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// TestKeyRotationOfCategoriesAndFixes: rotating the key of a failed batch
// job re-encrypts its output categories (kept inside the output documents)
// and an operator's fix of a failed record, so that with the old key gone
// the categories download and the retry applies the fix.
func TestKeyRotationOfCategoriesAndFixes(t *testing.T) {
	b := newEncBundle(t)
	must(t, sliced.Register(b.reg, "triage_sealed", sliced.Type[struct{}]{
		Categories: []string{"even", "odd"}, Perform: examples.Triage,
		Options: &sliced.Options{Encrypt: true, SliceSize: 2},
	}))
	ks := keys(t, 2)
	ctx := context.Background()
	old := b.client(t, ks[0])
	job, err := sliced.Upload(ctx, old, "triage_sealed", strings.NewReader("1\n2\nx\n"), nil)
	must(t, err)
	b.server(t, "old-key", ks[0])
	if got := wait(t, old, job); got.State != rocketjob.StateFailed {
		t.Fatalf("job %s, want failed (record 3 is not a number)", got.State)
	}
	if _, err := sliced.FixFailedRecord(ctx, old, job.ID.Hex(), 3, "4", "ops"); err != nil {
		t.Fatal(err)
	}

	rotated := b.client(t, ks[1]+","+ks[0])
	if _, err := sliced.Rekey(ctx, rotated, job.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	newOnly := b.client(t, ks[1])
	even := func() string {
		t.Helper()
		var out bytes.Buffer
		if _, err := sliced.DownloadCategory(ctx, newOnly, job.ID.Hex(), "even", &out); err != nil {
			t.Fatalf("category download with only the new key: %v", err)
		}
		return out.String()
	}
	if got := even(); got != "2\n" {
		t.Fatalf("even after the rotation: %q", got)
	}
	fixes, _, err := sliced.FailedRecords(ctx, newOnly, job.ID.Hex(), 0, 10)
	if err != nil {
		t.Fatalf("failed records and their fixes with only the new key: %v", err)
	}
	if len(fixes) != 1 {
		t.Fatalf("failed records: %+v", fixes)
	}

	if _, err := newOnly.Retry(ctx, job.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	b.server(t, "new-key", ks[1])
	if got := wait(t, newOnly, job); got.State != rocketjob.StateCompleted {
		t.Fatalf("retried job %s (%+v), want completed with the fix", got.State, got.Failure)
	}
	if got := even(); got != "2\n4\n" {
		t.Fatalf("even after the retry: %q, want the fixed record in it", got)
	}
	if _, err := sliced.DownloadCategory(ctx, old, job.ID.Hex(), "odd", new(bytes.Buffer)); !errors.Is(err, encryption.ErrNoKey) {
		t.Fatalf("the old key alone still opens the job after the rotation: %v", err)
	}
}
