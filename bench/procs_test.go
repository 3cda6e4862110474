package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary serve as a bench server process: runs with
// --processes re-execute the running program, which under go test is this
// binary.
func TestMain(m *testing.M) {
	if spec, ok := os.LookupEnv(serveEnv); ok {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := serveMain(ctx, spec, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestRunProcesses runs the batch workload with two server processes (this
// test binary re-executed), plain and sealed (the key goes to the processes).
func TestRunProcesses(t *testing.T) {
	const n = 1500
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{N: n, SliceSize: 40, Workers: 3, Servers: 2, Processes: true, Sealed: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Side{rep.RocketJob, *rep.Sealed, rep.Baseline} {
		if s.Records != n {
			t.Errorf("%s verified %d records, want %d", s.Name, s.Records, n)
		}
	}
}

// TestServerProcessDies: a server process that exits on its own fails the
// run, with the process's status and stderr in the error.
func TestServerProcessDies(t *testing.T) {
	t.Setenv(serveFailEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := Run(ctx, Config{N: 300, SliceSize: 50, Workers: 2, Servers: 2, Processes: true, Logf: t.Logf})
	if err == nil {
		t.Fatal("the run succeeded with dead server processes")
	}
	if msg := err.Error(); !strings.Contains(msg, "exit status 3") || !strings.Contains(msg, "on purpose") {
		t.Errorf("the error does not say which process died and why: %v", err)
	}
}
