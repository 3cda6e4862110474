package integration

import (
	"bytes"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 8: a server rides out a restart of the database process mid-job
// (the driver reconnects, store calls retry with backoff): no crash, no lost
// or duplicated record.
func TestServerRidesOutDatabaseRestart(t *testing.T) {
	t.Parallel()
	ownDatabase(t)
	c := newCluster(t)
	a := c.server("A", 2, serverOpts{})
	var in bytes.Buffer
	for i := range 300 {
		fmt.Fprintf(&in, "%d\n", 10+i%3) // the sleep job: milliseconds; output is the line
	}
	path := writeFile(t, c.dir, "in.txt", in.Bytes())
	id := c.upload("sleep", path)
	eventually(t, 30*time.Second, "some slices done", func() (bool, string) {
		j := c.job(id)
		p, err := c.client.Progress(ctx(t), j)
		if err != nil {
			return false, err.Error()
		}
		return p.Slices.Done >= 3, fmt.Sprintf("%d slices done", p.Slices.Done)
	})

	u, err := url.Parse(c.uri)
	if err != nil {
		t.Fatal(err)
	}
	c.db.kill9()
	time.Sleep(2 * time.Second) // the outage: servers see connection errors meanwhile
	c.db = startProc(t, c.dir, "db-restarted", baseEnv(), "db", "--data", filepath.Join(c.dir, "data"), "--listen", u.Host)

	if r := c.jobWait(id); r.code != 0 {
		a.dump(false)
		t.Fatalf("job wait after the restart: %s", r)
	}
	if !a.running() {
		t.Fatalf("the server died with the database:\n%s", a.stderr())
	}
	out := c.download(id, "out.txt")
	sameBytes(t, "output after a database restart", out, in.Bytes())
	if strings.Contains(a.stderr(), "panic") {
		t.Fatalf("server log shows a panic:\n%s", a.stderr())
	}
}
