package store

import (
	"testing"
	"time"
)

// A lingering batcher waits for lingerFill items at the pace its items
// came, at least its linger and at most three times that, and not at all
// while writes come alone.
func TestLingerFollowsThePace(t *testing.T) {
	const linger = 5 * time.Millisecond
	for _, tc := range []struct {
		name string
		last int
		gap  time.Duration // between items
		want time.Duration
	}{
		{"alone", 1, time.Millisecond, 0},
		{"fast: the linger", 40, 100 * time.Microsecond, linger},
		{"half the pace: a fill's worth", 16, 250 * time.Microsecond, lingerFill * 250 * time.Microsecond},
		{"slow: three lingers at most", 10, 2 * time.Millisecond, 3 * linger},
	} {
		b := &batcher[int, int]{linger: linger, last: tc.last, gap: tc.gap.Seconds()}
		if got := b.lingerFor(); got.Round(time.Microsecond) != tc.want {
			t.Errorf("%s: lingers %s, want %s", tc.name, got, tc.want)
		}
	}
	// The pace of batches taken: 20 items 2 ms after the last batch.
	b := &batcher[int, int]{linger: linger, lastAt: time.Now().Add(-2 * time.Millisecond)}
	b.taken(20)
	if b.last != 20 || b.gap < 100e-6 || b.gap > 1e-3 {
		t.Fatalf("after 20 items in 2 ms: last %d, gap %.6f s, want 20 and about 0.0001 s", b.last, b.gap)
	}
}
