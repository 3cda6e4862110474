package cli

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The command line refuses to serve a non-loopback address without
// authentication, and a TLS-proxy setting that is not a boolean, before it
// connects to anything.
func TestUIRefusesBadSettings(t *testing.T) {
	t.Setenv("ROCKETJOB_UI_TOKEN", "")
	t.Setenv("ROCKETJOB_UI_USERS_FILE", "")
	for _, args := range [][]string{
		{"ui", "--listen", "0.0.0.0:0"},
		{"server", "--ui", "0.0.0.0:0", "--uri", "mongodb://127.0.0.1:1/"},
	} {
		r := run(t, context.Background(), args...)
		if r.code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, r.code, ExitUsage)
		}
		oneErrorLine(t, r, "refusing to listen on 0.0.0.0:0 without authentication: set ROCKETJOB_UI_TOKEN or --users-file")
	}
	t.Setenv(uiBehindTLSProxyEnv, "yes please")
	r := run(t, context.Background(), "server", "--ui", "127.0.0.1:0", "--uri", "mongodb://127.0.0.1:1/")
	if r.code != ExitUsage {
		t.Errorf("bad $%s: exit %d, want %d", uiBehindTLSProxyEnv, r.code, ExitUsage)
	}
	oneErrorLine(t, r, `$ROCKETJOB_UI_BEHIND_TLS_PROXY: want true or false, got "yes please"`)
}

// `rocketjob ui` serves until interrupted, with the token from the
// environment named by --token-env.
func TestUIServesUntilInterrupted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	const token = "cli-test-token-0123456789"
	t.Setenv("MY_UI_TOKEN", token)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	args := append([]string{"ui", "--listen", addr, "--token-env", "MY_UI_TOKEN"}, db(t)...)
	go func() { done <- run(t, ctx, args...) }()
	get := func(path, bearer string) int {
		r, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	deadline := time.Now().Add(20 * time.Second)
	for get("/healthz", "") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("rocketjob ui did not answer /healthz within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := get("/api/jobs", ""); s != http.StatusUnauthorized {
		t.Errorf("without the token: %d", s)
	}
	if s := get("/api/jobs", token); s != http.StatusOK {
		t.Errorf("with the token: %d", s)
	}
	cancel()
	select {
	case r := <-done:
		if r.code != ExitOK || !strings.Contains(r.stderr, "web UI, REST API and /metrics on http://"+addr) {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("rocketjob ui did not stop")
	}
}
