package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// TestDirmonKill9ExactlyOnce (issue 18): two servers scan one Dirmon
// folder while files keep arriving and a random server is killed with
// SIGKILL (and replaced) every half second or so, at any point of a scan:
// taking, uploading, moving. Every file becomes exactly one job, holding
// exactly its records, and ends in the archive folder as JOBID_NAME.
func TestDirmonKill9ExactlyOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	root := filepath.Join(c.dir, "drop")
	in := filepath.Join(root, "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	c.cliOK("dirmon", "add", "in", "--folder", in, "--pattern", "*.txt", "--job", "copy", "--slice-size", "50")
	opts := serverOpts{args: []string{"--dirmon", root, "--dirmon-interval", "100ms"}}
	n := 0
	start := func() *proc {
		n++
		return c.server(fmt.Sprintf("S%d", n), 1, opts)
	}
	servers := []*proc{start(), start()}

	const files = 24
	const lines = 4000
	content := func(i int) []byte {
		var b bytes.Buffer
		for j := range lines {
			fmt.Fprintf(&b, "file-%02d line %d\n", i, j)
		}
		return b.Bytes()
	}
	drop := func(i int) {
		// Written under a hidden name, then renamed: Dirmon never takes
		// names starting with '.'.
		tmp := filepath.Join(in, fmt.Sprintf(".f%02d.tmp", i))
		if err := os.WriteFile(tmp, content(i), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(in, fmt.Sprintf("f%02d.txt", i))); err != nil {
			t.Fatal(err)
		}
	}
	kills := 0
	for i := range files {
		drop(i)
		time.Sleep(time.Duration(150+rand.IntN(250)) * time.Millisecond) // the chaos's pace, not a synchronisation
		if i%2 == 1 {
			k := rand.IntN(len(servers))
			servers[k].kill9()
			kills++
			servers[k] = start()
		}
	}
	t.Logf("%d files dropped, %d servers killed", files, kills)

	eventuallyEvery(t, 3*time.Minute, 250*time.Millisecond, "every file archived", func() (bool, string) {
		list, err := sliced.DirmonFiles(ctx(t), c.client, "in", 0)
		if err != nil {
			return false, err.Error()
		}
		done, others := 0, ""
		for _, f := range list {
			if f.State == "archived" {
				done++
				continue
			}
			others += fmt.Sprintf("; %s %s by %s (job %s) %s", filepath.Base(f.Path), f.State, f.Server, f.JobID, f.Reason)
		}
		return done == files, fmt.Sprintf("%d of %d files archived, %d recorded%s", done, files, len(list), others)
	})
	left, _ := filepath.Glob(filepath.Join(in, "*.txt"))
	if len(left) != 0 {
		t.Errorf("files left in the folder: %v", left)
	}
	archived, _ := filepath.Glob(filepath.Join(in, "archive", "*"))
	if len(archived) != files {
		t.Errorf("%d files in the archive, want %d: %v", len(archived), files, archived)
	}

	jobs, err := c.client.List(ctx(t), &rocketjob.ListOptions{Type: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != files {
		t.Fatalf("%d copy jobs for %d files", len(jobs), files)
	}
	byFile := map[string]string{}
	for _, j := range jobs {
		id := j.ID.Hex()
		job := c.waitJob(id, 2*time.Minute)
		if job.State != rocketjob.StateCompleted || job.RecordCount != lines {
			t.Errorf("job %s: %s with %d records, want completed with %d", id, job.State, job.RecordCount, lines)
			continue
		}
		var out bytes.Buffer
		if _, err := sliced.Download(ctx(t), c.client, id, &out); err != nil {
			t.Fatalf("download %s: %v", id, err)
		}
		file, _, _ := strings.Cut(out.String(), " ")
		if prev, dup := byFile[file]; dup {
			t.Errorf("%s became two jobs: %s and %s", file, prev, id)
		}
		byFile[file] = id
		var i int
		if _, err := fmt.Sscanf(file, "file-%02d", &i); err != nil {
			t.Errorf("job %s output starts %q", id, file)
			continue
		}
		if !bytes.Equal(out.Bytes(), content(i)) {
			t.Errorf("job %s: output is not the content of file %d", id, i)
		}
		a := filepath.Join(in, "archive", fmt.Sprintf("%s_f%02d.txt", id, i))
		if b, err := os.ReadFile(a); err != nil || !bytes.Equal(b, content(i)) {
			t.Errorf("archive of file %d (job %s): %v", i, id, err)
		}
	}
	if len(byFile) != files {
		t.Errorf("%d files made jobs, want %d", len(byFile), files)
	}
	for _, s := range servers {
		s.stop(30 * time.Second)
	}
}
