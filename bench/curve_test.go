package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCurveSmall runs a small scale-out curve with server processes: every
// point asked for (servers <= workers) has a row, run twice, the limit has
// a row per worker count, and every run is verified.
func TestCurveSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := run(t, ctx, "bench", "--n", "600", "--slice-size", "20", "--servers", "2,1", "--workers", "2,1", "--processes")
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	t.Log("\n" + r.stdout)
	for _, row := range []string{`1\s+1`, `1\s+2`, `2\s+2`, `raw driver\s+1`, `raw driver\s+2`} {
		if !regexp.MustCompile(`(?m)^\s*` + row + `\s+[0-9,]+\s`).MatchString(r.stdout) {
			t.Errorf("no row %q in:\n%s", row, r.stdout)
		}
	}
	if regexp.MustCompile(`(?m)^\s*2\s+1\s`).MatchString(r.stdout) {
		t.Errorf("a row for 2 servers sharing 1 worker:\n%s", r.stdout)
	}
	for _, want := range []string{"servers each a process of its own", "2 run(s) per point", "verified: every run read back 600 records, in input order",
		"1 server(s), 1 to 2 workers: processing rate never falls as workers grow", "2 servers / 1 server at 2 workers"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	// In order, then reversed: (1,1) (1,2) (2,2), the limits, (2,2) (1,2) (1,1).
	order := regexp.MustCompile(`curve run \d+ of 8: (rocketjob, (\d) server\(s\), (\d) workers|raw driver, (\d) workers)`).FindAllStringSubmatch(r.stderr, -1)
	var got []string
	for _, m := range order {
		if m[4] != "" {
			got = append(got, "raw"+m[4])
		} else {
			got = append(got, m[2]+"x"+m[3])
		}
	}
	if want := "1x1 1x2 2x2 raw1 raw2 2x2 1x2 1x1"; strings.Join(got, " ") != want {
		t.Errorf("runs in order %q, want %q", strings.Join(got, " "), want)
	}
}

func TestCurveUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--servers", "1,2", "--trace"},
		{"bench", "--workers", "1,2", "--river-dsn", "postgres://x"},
		{"bench", "--workers", "1,2", "--cpuprofile", "x"},
		{"bench", "--servers", "4,8", "--workers", "2"},
		{"bench", "--workers", "0,2"},
		{"bench", "--rounds", "3"},
		{"bench", "--simple", "--workers", "1,2"},
		{"bench", "--simple", "--processes"},
	} {
		if r := run(t, context.Background(), args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, r.code, exitUsage, r.stderr)
		}
	}
}

// TestServerProcessDiesExitCode: through the command line, a dead server
// process is exit code 1 with the reason on stderr, and no report.
func TestServerProcessDiesExitCode(t *testing.T) {
	t.Setenv(serveFailEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := run(t, ctx, "bench", "--n", "300", "--slice-size", "50", "--servers", "1,2", "--workers", "2", "--processes")
	if r.code != exitFailure || r.stdout != "" || !strings.Contains(r.stderr, "exit status 3") {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d, no report, the process's status", r.code, r.stdout, r.stderr, exitFailure)
	}
}
