package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// smallDisk mounts a tmpfs of the given size (e.g. "64m") on a new folder
// and unmounts it at the end of the test (register it before starting
// processes that use it, so it is unmounted after they are gone). Without
// the right to mount, the test fails under CI=true and is skipped otherwise.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		msg := fmt.Sprintf("cannot mount a %s tmpfs on %s (%v): this test needs root (or CAP_SYS_ADMIN) to fill a small disk", size, dir, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// Issue 13: an upload that fills the disk of the embedded database fails
// with one line that says the disk is full and where, without source
// locations; its slices are dropped at once (the database frees its reserve
// so that SQLite can delete); the database stays usable for work that fits.
func TestUploadOnAFullDisk(t *testing.T) {
	t.Parallel()
	disk := smallDisk(t, "64m")
	dir := t.TempDir()
	data := filepath.Join(disk, "data")
	c := &cluster{t: t, dir: dir}
	c.db = startProc(t, dir, "db", baseEnv(), "db", "--data", data, "--listen", "127.0.0.1:0")
	c.uri = waitURI(t, c.db)
	reg := rocketjob.NewRegistry()
	if err := examples.Register(reg); err != nil {
		t.Fatal(err)
	}
	client, err := rocketjob.NewClient(ctx(t), rocketjob.Config{URI: c.uri, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	c.client = client
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Close(cctx)
	})

	// Larger than the disk.
	var big bytes.Buffer
	for i := range 1_500_000 {
		fmt.Fprintf(&big, "record %07d of a file larger than the disk of the database\n", i)
	}
	bigPath := writeFile(t, dir, "big.txt", big.Bytes())
	r := run(t, runOpts{env: []string{"ROCKETJOB_URI=" + c.uri}, timeout: 3 * time.Minute}, "upload", "--job", "copy", bigPath)
	r.expect(t, 1)
	line := r.oneLine(t)
	t.Logf("the upload failed with: %s", line)
	noStack(t, "the error line", line)
	for _, want := range []string{"disk is full", "data folder " + data, "the partial upload was removed"} {
		if !strings.Contains(line, want) {
			t.Errorf("the error line lacks %q: %q", want, line)
		}
	}
	if r.stdout != "" {
		t.Errorf("a failed upload printed %q on stdout", r.stdout)
	}
	// Dropped at once: by the time the command has exited.
	if colls := sliceCollections(t, c.uri); len(colls) > 0 {
		t.Fatalf("the failed upload left slice collections behind: %v", colls)
	}
	if n := c.jobCount(t); n != 0 {
		t.Fatalf("%d jobs after a failed upload, want none", n)
	}
	if !strings.Contains(c.db.stderr(), "is full: freed its") {
		t.Errorf("the database did not report freeing its reserve:\n%s", c.db.stderr())
	}

	// Work that fits still runs, twice over, and comes back exact.
	c.server("s1", 2, serverOpts{})
	for i := range 2 {
		small := numbered(20_000 + i)
		p := writeFile(t, dir, fmt.Sprintf("small-%d.txt", i), small)
		id := c.upload("copy", p)
		c.jobWait(id).expect(t, 0)
		sameBytes(t, fmt.Sprintf("output %d after the disk filled", i), c.download(id, fmt.Sprintf("out-%d.txt", i)), small)
		c.cliOK("job", "destroy", id)
	}
}
