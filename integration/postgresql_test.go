package integration

// `rocketjob db --postgresql`: the embedded FerretDB keeping its data in
// PostgreSQL. These tests need a PostgreSQL server: set
// ROCKETJOB_TEST_POSTGRESQL (see internal/dbtest); .ci/run starts one.
//
// FerretDB v1.24.2 reads the list of collections once per process, so two
// front ends on one PostgreSQL database would not see each other's
// collections; `rocketjob db` takes a lock in the database, refuses to be
// the second front end, and lets the next one take over once the first has
// stopped (on this host or another: the data is all in PostgreSQL).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// dbURI waits until a `rocketjob db` process prints its URI and returns it.
func dbURI(t *testing.T, p *proc) string {
	t.Helper()
	var uri string
	eventually(t, 30*time.Second, p.name+" prints its URI", func() (bool, string) {
		if !p.running() {
			t.Fatalf("%s exited early (%s):\n%s", p.name, describeExit(p.waitErr), p.stderr())
		}
		b, _ := os.ReadFile(p.outPath)
		line, _, found := strings.Cut(string(b), "\n")
		uri = strings.TrimSpace(line)
		return found, fmt.Sprintf("stdout so far: %q", b)
	})
	if !strings.HasPrefix(uri, "mongodb://127.0.0.1:") {
		t.Fatalf("%s printed %q, want a mongodb://127.0.0.1:PORT/ URI", p.name, uri)
	}
	return uri
}

// TestPostgreSQLBadURL: a wrong password or an unreachable server is one
// line on stderr and exit 1, at once, without the password.
func TestPostgreSQLBadURL(t *testing.T) {
	base := dbtest.RequirePostgreSQL(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	const pw = "Wrong-Secret-42"
	wrong := *u
	wrong.User = url.UserPassword(u.User.Username(), pw)
	closed := wrong
	closed.Host = "127.0.0.1:1"
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"wrong password", nil, []string{"--postgresql", wrong.String()}, 1, "password authentication failed"},
		{"wrong password in the environment", []string{"ROCKETJOB_DB_POSTGRESQL=" + wrong.String()}, nil, 1, "password authentication failed"},
		{"nothing listening", nil, []string{"--postgresql", closed.String()}, 1, "on 127.0.0.1:1: connect:"},
		{"not a URL", nil, []string{"--postgresql", "host=127.0.0.1 password=" + pw}, 2, "--postgresql: the PostgreSQL URL is not a URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, runOpts{env: tc.env, timeout: 30 * time.Second}, append([]string{"db", "--listen", "127.0.0.1:0"}, tc.args...)...)
			r.expect(t, tc.code)
			line := r.oneLine(t)
			if !strings.HasPrefix(line, "rocketjob: ") || !strings.Contains(line, tc.want) {
				t.Errorf("stderr %q, want one line with %q", line, tc.want)
			}
			if strings.Contains(r.stderr+r.stdout, pw) || strings.Contains(r.stderr, "goroutine ") {
				t.Errorf("the output shows the password or a stack:\n%s", r)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if r.took > 20*time.Second {
				t.Errorf("failing took %s", r.took)
			}
		})
	}
}

// TestPostgreSQLFrontEnds: two `rocketjob db --postgresql` on one database,
// on two ports. While the first runs, the second is refused and names it.
// Once the first is gone (kill -9), the second starts and serves everything
// the first wrote: a queued job, and an uploaded job whose slice collections
// the first created, which a server on the second then processes.
func TestPostgreSQLFrontEnds(t *testing.T) {
	dbtest.RequirePostgreSQL(t)
	c := newCluster(t) // rocketjob db --postgresql (a fresh database)
	data := filepath.Join(c.dir, "data")
	queued := c.cliOK("job", "enqueue", "nap", "--run-at", "1h")
	in := []byte("one\ntwo\nthree\n")
	uploaded := c.upload("reverse", writeFile(t, c.dir, "in.txt", in), "--slice-size", "1")

	second := startProc(t, c.dir, "db-second", baseEnv(), "db", "--data", data, "--listen", "127.0.0.1:0")
	if code := second.wait(30 * time.Second); code != 1 {
		t.Fatalf("a second front end on the database: exit %d, want 1:\n%s", code, second.stderr())
	}
	lines := strings.Split(strings.TrimSpace(second.stderr()), "\n")
	if last := lines[len(lines)-1]; len(lines) != 1 || !strings.Contains(last, "is in use by another embedded database") ||
		!strings.Contains(last, fmt.Sprintf(" pid %d", c.db.cmd.Process.Pid)) {
		t.Errorf("the refused front end said %q, want one line naming pid %d", second.stderr(), c.db.cmd.Process.Pid)
	}
	if b, _ := os.ReadFile(second.outPath); len(b) != 0 {
		t.Errorf("the refused front end printed %q", b)
	}

	c.db.kill9()
	c.db = startProc(t, c.dir, "db-takeover", baseEnv(), "db", "--data", data, "--listen", "127.0.0.1:0")
	old := c.uri
	c.uri = dbURI(t, c.db)
	if c.uri == old {
		t.Fatalf("the takeover front end listens on %s too", old)
	}
	reg := rocketjob.NewRegistry()
	if err := examples.Register(reg); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := rocketjob.NewClient(cctx, rocketjob.Config{URI: c.uri, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	c.client = client
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Close(ctx)
	})

	var job struct{ State string }
	if err := json.Unmarshal([]byte(c.cliOK("job", "show", queued, "--json")), &job); err != nil || job.State != "queued" {
		t.Errorf("the queued job via the takeover front end: %+v, %v", job, err)
	}
	srv := c.server("S1", 2, serverOpts{})
	if j := c.waitJob(uploaded, time.Minute); j.State != rocketjob.StateCompleted {
		t.Fatalf("the uploaded job ended %s, want completed", j.State)
	}
	sameBytes(t, "output via the takeover front end", c.download(uploaded, "out.txt"), []byte("eno\nowt\neerht\n"))
	srv.stop(15 * time.Second)
}
