package cli

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestDBPostgreSQLFailsCleanly: `rocketjob db --postgresql` with a bad URL
// is a usage error, with PostgreSQL out of reach a failure; either way one
// line on stderr, nothing on stdout, and never the password. (Runs without
// PostgreSQL; integration/postgresql_test.go runs it on a real one.)
func TestDBPostgreSQLFailsCleanly(t *testing.T) {
	const pw = "Secret-PW1"
	for _, tc := range []struct {
		name string
		env  string // $ROCKETJOB_DB_POSTGRESQL
		args []string
		code int
		want string
	}{
		{"key-value DSN", "", []string{"--postgresql", "host=127.0.0.1 user=rj password=" + pw}, ExitUsage, "--postgresql: the PostgreSQL URL is not a URL: want postgres://"},
		{"not postgres", "", []string{"--postgresql", "mongodb://rj:" + pw + "@127.0.0.1/x"}, ExitUsage, "mongodb://rj:xxxxx@127.0.0.1/x: want postgres://"},
		{"bad port", "", []string{"--postgresql", "postgres://rj:" + pw + "@127.0.0.1:port/x"}, ExitUsage, `--postgresql: the PostgreSQL URL does not parse: invalid port ":port" after host`},
		{"bad sslmode", "", []string{"--postgresql", "postgres://rj:" + pw + "@127.0.0.1/x?sslmode=maybe"}, ExitUsage, "--postgresql: PostgreSQL URL postgres://rj:xxxxx@127.0.0.1/x?sslmode=maybe: failed to configure TLS"},
		{"with --data", "", []string{"--data", t.TempDir(), "--postgresql", "postgres://rj:" + pw + "@127.0.0.1:1/x"}, ExitUsage, "--data and --postgresql exclude each other"},
		{"env with --data", "postgres://rj:" + pw + "@127.0.0.1:1/x", []string{"--data", t.TempDir()}, ExitUsage, "$ROCKETJOB_DB_POSTGRESQL, which is set"},
		{"unreachable", "", []string{"--postgresql", "postgres://rj:" + pw + "@127.0.0.1:1/x"}, ExitFailure, "PostgreSQL database x on 127.0.0.1:1: connect:"},
		{"unreachable from env", "postgres://rj:" + pw + "@127.0.0.1:1/x", nil, ExitFailure, "PostgreSQL database x on 127.0.0.1:1: connect:"},
		{"unknown host", "", []string{"--postgresql", "postgres://rj:" + pw + "@nosuchhost.invalid/x?connect_timeout=5"}, ExitFailure, "PostgreSQL database x on nosuchhost.invalid:5432: connect:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(dbPostgreSQLEnv, tc.env)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := run(t, ctx, append([]string{"db", "--listen", "127.0.0.1:0"}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit code %d, want %d; stderr %q", r.code, tc.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", r.stderr)
			}
			if strings.Contains(r.stderr, pw) {
				t.Errorf("stderr shows the password: %q", r.stderr)
			}
			oneErrorLine(t, r, tc.want)
		})
	}
}
