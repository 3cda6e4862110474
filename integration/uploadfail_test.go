package integration

import (
	"bytes"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/internal/clientstore"
)

// Issue 8: the database dies in the middle of an upload: the upload fails
// with one clear line and exit 1, and no job exists afterwards (the job
// document is written only after the last slice).
func TestDatabaseLostMidUpload(t *testing.T) {
	t.Parallel()
	ownDatabase(t)
	c := newCluster(t)
	var in bytes.Buffer
	for i := range 1_500_000 {
		fmt.Fprintf(&in, "record %07d of a file that takes a while to upload\n", i)
	}
	path := writeFile(t, c.dir, "big.txt", in.Bytes())

	cmd := exec.Command(rjBin, "--uri", c.uri, "upload", "--job", "copy", path)
	cmd.Env = baseEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Kill the database once the upload has written its first slices.
	eventually(t, 30*time.Second, "the upload writing slices", func() (bool, string) {
		names, err := clientstore.Of(c.client).WorkCollections(ctx(t))
		if err != nil {
			return false, err.Error()
		}
		for _, n := range names {
			if strings.HasSuffix(n, "_input") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("collections %v", names)
	})
	u, err := url.Parse(c.uri)
	if err != nil {
		t.Fatal(err)
	}
	c.db.kill9()

	select {
	case err := <-done:
		if exitCode(err) != 1 {
			t.Fatalf("upload exited %d (%v), want 1; stderr %q", exitCode(err), err, stderr.String())
		}
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("upload hung after the database died; stderr %q", stderr.String())
	}
	if stdout.Len() != 0 {
		t.Fatalf("upload printed %q on stdout, want nothing (no job id)", stdout.String())
	}
	msg := strings.TrimSpace(stderr.String())
	if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "rocketjob: ") || strings.Contains(msg, "panic") {
		t.Fatalf("stderr is not one clear line: %q", msg)
	}
	t.Logf("upload failed with: %s", msg)

	c.db = startProc(t, c.dir, "db-restarted", baseEnv(), "db", "--data", filepath.Join(c.dir, "data"), "--listen", u.Host)
	eventually(t, 30*time.Second, "the database back", func() (bool, string) {
		jobs, err := c.client.List(ctx(t), nil)
		if err != nil {
			return false, err.Error()
		}
		if len(jobs) != 0 {
			t.Fatalf("%d jobs after a failed upload, want none", len(jobs))
		}
		return true, ""
	})
}
