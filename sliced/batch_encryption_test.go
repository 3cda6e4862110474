package sliced_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// TestEncryptedCategoriesLeaveNoPlaintextAtRest: the category outputs of an
// encrypted job are sealed like its output (no record bytes in the database
// files), and download decrypted, in input order.
func TestEncryptedCategoriesLeaveNoPlaintextAtRest(t *testing.T) {
	b := newEncBundle(t)
	must(t, sliced.Register(b.reg, "split", sliced.Type[struct{}]{
		Categories: []string{"low", "high"},
		Perform: func(ctx context.Context, _ struct{}, rec []byte) ([]rocketjob.Output, error) {
			cat := "low"
			if strings.HasSuffix(string(rec), "9") {
				cat = "high"
			}
			rocketjob.Inc(ctx, cat, 1)
			return sliced.To(cat, bytes.ToUpper(rec)), nil
		},
		Options: &sliced.Options{Encrypt: true, SliceSize: 7},
	}))
	k := keys(t, 1)[0]
	c := b.client(t, k)
	b.server(t, "s1", k)
	marker := fmt.Sprintf("catmarker%d", time.Now().UnixNano())
	var in, low, high strings.Builder
	for i := range 100 {
		fmt.Fprintf(&in, "%s %03d\n", marker, i)
		if i%10 == 9 {
			fmt.Fprintf(&high, "%s %03d\n", strings.ToUpper(marker), i)
		} else {
			fmt.Fprintf(&low, "%s %03d\n", strings.ToUpper(marker), i)
		}
	}
	ctx := context.Background()
	job, err := sliced.Upload(ctx, c, "split", strings.NewReader(in.String()), nil)
	must(t, err)
	if got := wait(t, c, job); got.State != rocketjob.StateCompleted || got.Categories["high"] != 10 || got.Statistics["low"] != 90 {
		t.Fatalf("job %s: categories %v, statistics %v, %+v", got.State, got.Categories, got.Statistics, got.Failure)
	}
	for cat, want := range map[string]string{"low": low.String(), "high": high.String()} {
		var out bytes.Buffer
		_, err := sliced.DownloadCategory(ctx, c, job.ID.Hex(), cat, &out)
		must(t, err)
		if out.String() != want {
			t.Errorf("category %s: %d bytes, want %d", cat, out.Len(), len(want))
		}
	}
	if scanData(t, strings.ToUpper(marker)) || scanData(t, marker) {
		t.Fatal("record bytes of an encrypted job are in the database files")
	}
	// Without the key the categories do not open: an error, never garbage.
	if _, err := sliced.DownloadCategory(ctx, b.client(t, keys(t, 1)[0]), job.ID.Hex(), "low", &bytes.Buffer{}); err == nil {
		t.Fatal("downloaded an encrypted category with another key")
	}
}
