package cli

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// A download on a terminal shows the lines written of the records the job
// holds, the bytes and, once there is a rate, the time left; on anything
// else it shows nothing and writes the same bytes.
func TestDownloadProgress(t *testing.T) {
	const want = 5
	body := "a\nb\nc\nd\ne\n"
	fn := func(_ context.Context, _ *rocketjob.Client, _ string, w io.Writer) (int64, error) {
		for _, line := range strings.SplitAfter(body, "\n") {
			if _, err := io.WriteString(w, line); err != nil {
				return 0, err
			}
		}
		return want, nil
	}
	var term, out strings.Builder
	p := &progressLine{w: &term, on: true}
	n, err := withProgress(fn, p, want)(context.Background(), nil, "id", &out)
	if err != nil || n != want || out.String() != body {
		t.Fatalf("download through the progress bar: %d, %v, %q", n, err, out.String())
	}
	if got := term.String(); !strings.Contains(got, "100.0%") || !strings.Contains(got, "5 of 5 lines, 10 B") || !strings.HasSuffix(got, "\n") {
		t.Errorf("terminal shows %q", got)
	}

	var silent, out2 strings.Builder
	off := &progressLine{w: &silent}
	if _, err := withProgress(fn, off, want)(context.Background(), nil, "id", &out2); err != nil || out2.String() != body || silent.Len() != 0 {
		t.Errorf("off a terminal: %v, %q, showed %q", err, out2.String(), silent.String())
	}
}

func TestRateAndETA(t *testing.T) {
	start := time.Now().Add(-2 * time.Second)
	got := rateAndETA(start, 1000, 3000, "lines", commas)
	if !strings.HasPrefix(got, "49") && !strings.HasPrefix(got, "50") {
		t.Errorf("rate: %q, want about 500 lines/s", got)
	}
	if !strings.Contains(got, "lines/s, 4") || !strings.HasSuffix(got, "left") {
		t.Errorf("rate and time left: %q, want about 4s left", got)
	}
	if got := rateAndETA(time.Now(), 10, 100, "lines", commas); got != "" {
		t.Errorf("no rate yet, got %q", got)
	}
	if got := rateAndETA(start, 3000, 3000, "", humanBytes); strings.Contains(got, "left") || !strings.HasSuffix(got, "B/s") {
		t.Errorf("done: %q", got)
	}
}
