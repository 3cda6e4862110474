package main

import (
	"context"
	"strings"
	"testing"
)

func TestBenchSimple(t *testing.T) {
	r := run(t, context.Background(), "bench", "--simple", "--n", "30", "--workers", "2", "--uri", "")
	if r.code != 0 {
		t.Fatalf("bench --simple: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"30 no-op jobs, 1 server(s) x 2 workers", "end-to-end jobs/s", "each ran exactly once (30 runs)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, args := range [][]string{
		{"bench", "--simple", "--trace"},
		{"bench", "--simple", "--slice-size", "5"},
		{"bench", "--simple", "--n", "0"},
		{"bench", "--servers", "2"},
	} {
		if r := run(t, context.Background(), args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, r.code, exitUsage, r.stderr)
		}
	}
}
