package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

type result struct {
	code           int
	stdout, stderr string
}

// run runs the command line argv (argv[0] is the program name, "bench").
func run(t *testing.T, ctx context.Context, argv ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runCommand(ctx, argv, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestUsageErrors: a wrong command line exits 2 with one line on stderr.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--simple", "--trace"},
		{"bench", "--no-such-flag"},
		{"bench", "--n", "many"},
		{"bench", "extra"},
	} {
		r := run(t, context.Background(), args...)
		if r.code != exitUsage || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q; want %d and no output", args, r.code, r.stdout, exitUsage)
		}
		if !strings.HasPrefix(r.stderr, "bench: ") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: stderr %q, want one line \"bench: ...\"", args, r.stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	r := run(t, context.Background(), "bench", "--help")
	if r.code != exitOK || !strings.Contains(r.stdout, "go -C bench run . --simple") || !strings.Contains(r.stdout, "--river-dsn") {
		t.Errorf("--help: exit %d, stdout:\n%s", r.code, r.stdout)
	}
}
