package rocketjobweb_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/cmd/rocketjob/cli"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// runCLI runs the rocketjob command line and returns its exit code and stderr.
func runCLI(ctx context.Context, args ...string) (int, string) {
	app := cli.App(rocketjob.NewRegistry())
	var stderr bytes.Buffer
	app.Writer, app.ErrWriter = io.Discard, &stderr
	code := cli.Run(ctx, app, append([]string{"rocketjob"}, args...))
	return code, stderr.String()
}

// The command line refuses to serve a non-loopback address without
// authentication, before it connects to anything.
func TestCLIRefusesUnauthenticatedListen(t *testing.T) {
	t.Setenv("ROCKETJOB_UI_TOKEN", "")
	t.Setenv("ROCKETJOB_UI_USERS_FILE", "")
	for _, args := range [][]string{
		{"ui", "--listen", "0.0.0.0:0"},
		{"server", "--ui", "0.0.0.0:0", "--uri", "mongodb://127.0.0.1:1/"},
	} {
		code, stderr := runCLI(context.Background(), args...)
		if code != cli.ExitUsage || !strings.Contains(stderr, "refusing to listen on 0.0.0.0:0 without authentication: set ROCKETJOB_UI_TOKEN or --users-file") {
			t.Errorf("%v: exit %d, %s", args, code, stderr)
		}
	}
}

// `rocketjob ui` serves until interrupted, with the token from the environment.
func TestCLIUI(t *testing.T) {
	jobs, work := dbtest.DBNames(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("MY_UI_TOKEN", testToken)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code   int
		stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, stderr := runCLI(ctx, "ui", "--listen", addr, "--token-env", "MY_UI_TOKEN", "--uri", dbtest.URI(), "--db", jobs, "--work-db", work)
		done <- result{code, stderr}
	}()
	get := func(path, token string) int {
		r, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	waitFor(t, 20*time.Second, "rocketjob ui to answer", func() bool { return get("/healthz", "") == http.StatusOK })
	if s := get("/api/jobs", ""); s != http.StatusUnauthorized {
		t.Errorf("without the token: %d", s)
	}
	if s := get("/api/jobs", testToken); s != http.StatusOK {
		t.Errorf("with the token: %d", s)
	}
	cancel()
	select {
	case r := <-done:
		if r.code != cli.ExitOK || !strings.Contains(r.stderr, "web UI, REST API and /metrics on http://"+addr) {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("rocketjob ui did not stop")
	}
}
