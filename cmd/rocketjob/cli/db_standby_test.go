package cli

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
)

// dbProc is `rocketjob db` run in this process until its context ends.
type dbProc struct {
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan struct{} // closed when it has exited
	code           int           // its exit code, once done is closed
}

func startDBCommand(t *testing.T, env map[string]string, args ...string) *dbProc {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &dbProc{cancel: cancel, done: make(chan struct{})}
	app := App(registry(t))
	app.Writer, app.ErrWriter = &p.stdout, &p.stderr
	go func() {
		defer close(p.done)
		p.code = Run(ctx, app, append([]string{"rocketjob", "db"}, args...))
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// waitFor waits until the process's stderr contains want.
func (p *dbProc) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.stderr.String(), want) {
		select {
		case <-p.done:
			t.Fatalf("rocketjob db exited %d before saying %q; stderr:\n%s", p.code, want, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rocketjob db did not say %q; stderr:\n%s", want, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// uri is the first line of stdout.
func (p *dbProc) uri(t *testing.T) string {
	t.Helper()
	line, _, _ := strings.Cut(p.stdout.String(), "\n")
	if !strings.HasPrefix(line, "mongodb://127.0.0.1:") {
		t.Fatalf("rocketjob db printed %q first, want its URI", p.stdout.String())
	}
	return line
}

// TestDBStandby: two `rocketjob db --postgresql` on one database. The
// first serves and advertises its address; the second prints its own URI
// and says on stderr that it forwards to the first; when the first stops,
// the second says it serves. Neither shows the password.
func TestDBStandby(t *testing.T) {
	base := dbtest.RequirePostgreSQL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	dsn, drop, err := dbtest.NewPostgreSQLDatabase(ctx, base, t.Name())
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	u, _ := url.Parse(dsn)
	pw, _ := u.User.Password()

	env := map[string]string{dbPostgreSQLEnv: dsn}
	a := startDBCommand(t, env, "--listen", "127.0.0.1:0", "--advertise", "127.0.0.1")
	a.waitFor(t, "stop with Ctrl-C")
	aAddr := strings.TrimSuffix(strings.TrimPrefix(a.uri(t), "mongodb://"), "/")
	a.waitFor(t, "serving (epoch 1); standbys forward to "+aAddr)

	b := startDBCommand(t, env, "--listen", "127.0.0.1:0", "--advertise", "127.0.0.1")
	b.waitFor(t, "stop with Ctrl-C")
	bAddr := strings.TrimSuffix(strings.TrimPrefix(b.uri(t), "mongodb://"), "/")
	b.waitFor(t, "standby, forwarding to "+aAddr)
	if strings.Count(b.stdout.String(), "\n") != 1 {
		t.Errorf("the standby's stdout is not one line: %q", b.stdout.String())
	}

	a.cancel()
	<-a.done
	if a.code != 0 {
		t.Errorf("the active front end exited %d; stderr:\n%s", a.code, a.stderr.String())
	}
	b.waitFor(t, "serving (epoch 2); standbys forward to "+bAddr)
	for _, p := range []*dbProc{a, b} {
		if s := p.stderr.String() + p.stdout.String(); len(pw) >= 4 && strings.Contains(s, pw) {
			t.Errorf("the output shows the password:\n%s", s)
		}
	}
}

// TestDBStandbyUsage: --advertise is for PostgreSQL and must name a host.
func TestDBStandbyUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", t.TempDir(), "--advertise", "db1.example.com"}, "--advertise needs --postgresql"},
		{[]string{"--postgresql", "postgres://rj:Secret-PW1@127.0.0.1:1/x", "--advertise", "0.0.0.0:27017"}, "--advertise: advertised address \"0.0.0.0:27017\""},
		{[]string{"--postgresql", "postgres://rj:Secret-PW1@127.0.0.1:1/x", "--advertise", "db1:port"}, "the port must be a number"},
	} {
		r := run(t, context.Background(), append([]string{"db", "--listen", "127.0.0.1:0"}, tc.args...)...)
		if r.code != ExitUsage || r.stdout != "" || strings.Contains(r.stderr, "Secret-PW1") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want a usage error", tc.args, r.code, r.stdout, r.stderr)
		}
		oneErrorLine(t, r, tc.want)
	}
}
