//go:build riverbench

package riverbench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestRun runs a small workload on the PostgreSQL server of RIVERBENCH_DSN
// (scripts/bench-peers.sh starts one). It builds only with the riverbench
// tag, so `go test ./...` and CI, which have no PostgreSQL, do not run it:
//
//	RIVERBENCH_DSN=postgres://... go -C bench test -tags riverbench ./riverbench
func TestRun(t *testing.T) {
	dsn := os.Getenv("RIVERBENCH_DSN")
	if dsn == "" {
		t.Fatal("RIVERBENCH_DSN not set: this test (build tag riverbench) needs PostgreSQL; see scripts/bench-peers.sh")
	}
	const n = 500
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "line-%04d\n", i)
	}
	var got int
	res, err := Run(context.Background(), Config{
		DSN: dsn, N: n, Input: strings.NewReader(in.String()),
		Record: func(rec []byte) error {
			want := []byte(fmt.Sprintf("line-%04d", got))
			for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
				want[i], want[j] = want[j], want[i]
			}
			if !bytes.Equal(rec, want) {
				return fmt.Errorf("record %d is %q, want %q", got, rec, want)
			}
			got++
			return nil
		},
		Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != n || res.Records != n || res.Jobs != n {
		t.Fatalf("got %d records (result %d, jobs %d), want %d", got, res.Records, res.Jobs, n)
	}
}

// TestRunSimple runs a small simple-jobs workload on RIVERBENCH_DSN.
func TestRunSimple(t *testing.T) {
	dsn := os.Getenv("RIVERBENCH_DSN")
	if dsn == "" {
		t.Fatal("RIVERBENCH_DSN not set: this test (build tag riverbench) needs PostgreSQL; see scripts/bench-peers.sh")
	}
	const n = 500
	res, err := RunSimple(context.Background(), SimpleConfig{DSN: dsn, N: n, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if res.Jobs != n || res.Runs != n || res.Completed != n || res.Insert <= 0 || res.Process <= 0 {
		t.Fatalf("result %+v: want %d jobs, runs and completed, and both phases timed", res, n)
	}
}
