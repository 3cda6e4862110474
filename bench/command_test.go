package main

import (
	"context"
	"strings"
	"testing"
)

func TestBenchSimple(t *testing.T) {
	r := run(t, context.Background(), "bench", "--simple", "--n", "30", "--workers", "2", "--servers", "1,2", "--uri", "")
	if r.code != 0 {
		t.Fatalf("bench --simple: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"30 no-op jobs, 1 server(s) x 2 workers, then 2 server(s) x 2 workers", "end-to-end jobs/s",
		"rocketjob 1x2 / baseline rate", "rocketjob 2x2 / rocketjob 1x2 rate", "priority probe, rocketjob 2x2",
		"baseline x2 30 jobs completed", "each ran exactly once (30 runs)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, args := range [][]string{
		{"bench", "--simple", "--trace"},
		{"bench", "--simple", "--slice-size", "5"},
		{"bench", "--simple", "--n", "0"},
		{"bench", "--servers", "1,2", "--trace"},
		{"bench", "--trace-calls"},
		{"bench", "--simple", "--servers", "1,0"},
		{"bench", "--simple", "--servers", "two"},
	} {
		if r := run(t, context.Background(), args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, r.code, exitUsage, r.stderr)
		}
	}
}
