package cli

import (
	"context"
	"strings"
	"testing"
)

// TestBenchMoved: "rocketjob bench" (with any flags) points to the benchmark
// module with one line and exit 2, and the help no longer lists it.
func TestBenchMoved(t *testing.T) {
	for _, args := range [][]string{{"bench"}, {"bench", "--simple", "--n", "30"}} {
		r := run(t, context.Background(), args...)
		if r.code != ExitUsage || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q; want %d and nothing on stdout", args, r.code, r.stdout, ExitUsage)
		}
		oneErrorLine(t, r, "go -C bench run .")
	}
	if r := run(t, context.Background(), "--help"); strings.Contains(r.stdout, "bench") {
		t.Errorf("--help lists bench:\n%s", r.stdout)
	}
}
