package integration

// Several `rocketjob db --postgresql` front ends on one PostgreSQL database:
// the one holding the database's lock serves it and advertises its address
// (--advertise); the others are standbys that forward their clients to it
// and take over when it dies.

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// startFrontEnd starts `rocketjob db` on the PostgreSQL database dsn on
// listen, advertising 127.0.0.1 and its port, and waits for its URI.
func startFrontEnd(t *testing.T, dir, name, dsn, listen string) (*proc, string) {
	t.Helper()
	p := startProc(t, dir, name, baseEnv("ROCKETJOB_DB_POSTGRESQL="+dsn), "db", "--listen", listen, "--advertise", "127.0.0.1")
	return p, dbURI(t, p)
}

// waitSays waits until the stderr of p contains want.
func waitSays(t *testing.T, p *proc, want string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, p.name+" says "+want, func() (bool, string) {
		if !p.running() {
			t.Fatalf("%s exited (%s):\n%s", p.name, describeExit(p.waitErr), p.stderr())
		}
		s := p.stderr()
		return strings.Contains(s, want), "stderr: " + s
	})
}

// hostOf is the host:port of a mongodb:// URI.
func hostOf(t *testing.T, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestPostgreSQLStandbyFailover: two front ends on one PostgreSQL database,
// a server connected to each. A sliced job uploaded through the active
// front end runs on both servers; its active front end is SIGKILLed in the
// middle, the standby takes over, a new front end on the dead one's
// address becomes a standby that forwards to it (so the first server gets
// back in), and the job completes with its exact output, downloaded
// through the other front end: no record lost, none doubled.
func TestPostgreSQLStandbyFailover(t *testing.T) {
	base := dbtest.RequirePostgreSQL(t)
	ownDatabase(t)
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	dsn, drop, err := dbtest.NewPostgreSQLDatabase(cctx, base, t.Name())
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the front ends start: runs after they are gone.
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	dir := t.TempDir()
	pw := ""
	if u, err := url.Parse(dsn); err == nil {
		pw, _ = u.User.Password()
	}

	dbA, uriA := startFrontEnd(t, dir, "db-a", dsn, "127.0.0.1:0")
	hostA := hostOf(t, uriA)
	waitSays(t, dbA, "serving (epoch 1); standbys forward to "+hostA, 30*time.Second)
	dbB, uriB := startFrontEnd(t, dir, "db-b", dsn, "127.0.0.1:0")
	hostB := hostOf(t, uriB)
	waitSays(t, dbB, "standby, forwarding to "+hostA, 30*time.Second)

	a := &cluster{t: t, dir: dir, db: dbA, uri: uriA}
	a.connect()
	b := &cluster{t: t, dir: dir, db: dbB, uri: uriB}
	b.connect()
	s1 := a.server("S1", 2, serverOpts{})
	s2 := b.server("S2", 2, serverOpts{})
	for _, c := range []*cluster{a, b} { // each sees both servers
		eventually(t, 30*time.Second, "both servers are listed through "+c.uri, func() (bool, string) {
			list, err := c.client.Servers(ctx(t))
			return err == nil && len(list) == 2, fmt.Sprint(serverNames(list), err)
		})
	}

	// Distinct lines that each sleep ms (the sleep job outputs the line).
	const n, ms, sliceSize = 3000, 12, 20
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "%d%s\n", ms, strings.Map(func(r rune) rune {
			if r == '1' {
				return '\t'
			}
			return ' '
		}, fmt.Sprintf("%011b", i)))
	}
	id := a.upload("sleep", writeFile(t, dir, "in.txt", in.Bytes()), "--slice-size", fmt.Sprint(sliceSize))
	eventually(t, time.Minute, "the job is under way, seen through the standby", func() (bool, string) {
		j, err := b.client.Get(ctx(t), id)
		if err != nil {
			return false, err.Error()
		}
		p, err := b.client.Progress(ctx(t), j)
		if err != nil {
			return false, err.Error()
		}
		return p.Slices.Done >= 4, fmt.Sprintf("%s, %d slices done", j.State, p.Slices.Done)
	})
	if j := b.job(id); j.State == rocketjob.StateCompleted {
		t.Fatalf("the job completed before the front end was killed: make it slower")
	}

	killed := time.Now()
	dbA.kill9()
	waitSays(t, dbB, "serving (epoch 2); standbys forward to "+hostB, 30*time.Second)
	t.Logf("the standby served %s after the active front end was killed", time.Since(killed).Round(time.Millisecond))
	// The dead front end's host starts it again: now a standby.
	dbA2 := startProc(t, dir, "db-a2", baseEnv("ROCKETJOB_DB_POSTGRESQL="+dsn), "db", "--listen", hostA, "--advertise", "127.0.0.1")
	if uri := dbURI(t, dbA2); uri != uriA {
		t.Fatalf("the restarted front end printed %s, want %s", uri, uriA)
	}
	waitSays(t, dbA2, "standby, forwarding to "+hostB, 30*time.Second)

	job := b.waitJob(id, 2*time.Minute)
	if job.State != rocketjob.StateCompleted || job.FailedRecordCount != 0 {
		t.Fatalf("the job ended %s with %d failed records, want completed with none", job.State, job.FailedRecordCount)
	}
	if j := a.job(id); j.State != rocketjob.StateCompleted {
		t.Errorf("through the restarted front end the job is %s", j.State)
	}
	sameBytes(t, "output downloaded through the other front end", b.download(id, "out.txt"), in.Bytes())
	sameBytes(t, "output downloaded through the restarted standby", a.download(id, "out-a.txt"), in.Bytes())

	s1.stop(30 * time.Second)
	s2.stop(30 * time.Second)
	for _, p := range []*proc{dbA, dbB, dbA2} {
		if pw != "" && strings.Contains(p.stderr(), pw) {
			t.Errorf("%s shows the PostgreSQL password on stderr", p.name)
		}
	}
	dbA2.stop(15 * time.Second)
	dbB.stop(15 * time.Second)
}
