package integration

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// Issue 13: a download succeeds only with every record the job recorded,
// and writes its file as a careful Unix tool does.
func TestDownloadFailsClosedAndKeepsPermissions(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.server("s1", 4, serverOpts{})
	in := numbered(20000)
	id := c.upload("copy", writeFile(t, c.dir, "in.txt", in))
	sq := c.upload("square", writeFile(t, c.dir, "sq.txt", []byte("1\nx\n3\ny\n")), "--slice-size", "2")
	if j := c.waitJob(id, 3*time.Minute); j.State != rocketjob.StateCompleted || j.ProcessedCount != 20000 {
		t.Fatalf("copy job %s, %d processed", j.State, j.ProcessedCount)
	}
	if j := c.waitJob(sq, time.Minute); j.State != rocketjob.StateFailed || j.FailedRecordCount != 2 {
		t.Fatalf("square job %s, %d failed", j.State, j.FailedRecordCount)
	}
	out := filepath.Join(c.dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	file := func(name string) string { return filepath.Join(out, name) }
	// cli runs a command against the cluster, failing t (a subtest) if it
	// cannot run.
	cli := func(t *testing.T, args ...string) result {
		t.Helper()
		return run(t, runOpts{env: []string{"ROCKETJOB_URI=" + c.uri}}, args...)
	}

	t.Run("a mistyped --work-db is exit 1 and no file", func(t *testing.T) {
		r := cli(t, "download", "--work-db", "rocketjob_wrk", id, file("typo.txt"))
		r.expect(t, 1)
		line := r.oneLine(t)
		t.Logf("stderr: %s", line)
		for _, want := range []string{"only 0 of its 20,000 output records", `work database "rocketjob_wrk"`, "--work-db"} {
			if !strings.Contains(line, want) {
				t.Errorf("error line %q lacks %q", line, want)
			}
		}
		noStack(t, "download error", line)
		onlyFilesIn(t, out)
		// To stdout: exit 1 and not a byte.
		r = cli(t, "download", "--work-db", "rocketjob_wrk", id, "-")
		r.expect(t, 1)
		if r.stdout != "" {
			t.Errorf("stdout got %d bytes", len(r.stdout))
		}
		// The failed records too.
		r = cli(t, "download", "--failed", "--work-db", "rocketjob_wrk", sq, "-")
		r.expect(t, 1)
		if line := r.oneLine(t); !strings.Contains(line, "only 0 of its 2 failed records") || r.stdout != "" {
			t.Errorf("--failed from the wrong work database: %s", r)
		}
		// An existing file is left as it was.
		old := writeFile(t, out, "old.txt", []byte("yesterday\n"))
		cli(t, "download", "--work-db", "rocketjob_wrk", id, old).expect(t, 1)
		if got := readFile(t, old); string(got) != "yesterday\n" {
			t.Errorf("a failed download changed the existing file to %d bytes", len(got))
		}
		onlyFilesIn(t, out, "old.txt")
		fatalIf(t, os.Remove(old))
	})

	t.Run("the right work database: every record", func(t *testing.T) {
		cli(t, "download", id, file("right.txt")).expect(t, 0)
		sameBytes(t, "download", readFile(t, file("right.txt")), in)
		fatalIf(t, os.Remove(file("right.txt")))
	})

	t.Run("a new file is 0600 by default and honours the umask", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			umask string
			flags []string
			want  fs.FileMode
		}{
			{"default.txt", "022", nil, 0o600},
			{"umask077.txt", "077", []string{"--mode", "666"}, 0o600},
			{"umask027.txt", "027", []string{"--mode", "0666"}, 0o640},
			{"shared.txt", "022", []string{"--mode", "644"}, 0o644},
		} {
			r := cliUmask(t, c, tc.umask, append(append([]string{"download"}, tc.flags...), id, file(tc.name))...)
			r.expect(t, 0)
			if m := fileMode(t, file(tc.name)); m != tc.want {
				t.Errorf("%s (umask %s, %v): mode %v, want %v", tc.name, tc.umask, tc.flags, m, tc.want)
			}
			sameBytes(t, tc.name, readFile(t, file(tc.name)), in)
			fatalIf(t, os.Remove(file(tc.name)))
		}
		cli(t, "download", "--mode", "999", id, file("bad.txt")).expect(t, 2)
		onlyFilesIn(t, out)
	})

	t.Run("an existing file keeps its mode", func(t *testing.T) {
		for _, m := range []fs.FileMode{0o600, 0o640, 0o644} {
			p := writeFile(t, out, "existing.txt", []byte("old\n"))
			fatalIf(t, os.Chmod(p, m))
			cliUmask(t, c, "000", "download", "--mode", "666", id, p).expect(t, 0)
			if got := fileMode(t, p); got != m {
				t.Errorf("existing %v file became %v", m, got)
			}
			sameBytes(t, "existing file", readFile(t, p), in)
			onlyFilesIn(t, out, "existing.txt")
			fatalIf(t, os.Remove(p))
		}
	})

	t.Run("/dev/null stays a character device", func(t *testing.T) {
		before, err := os.Stat(os.DevNull)
		if err != nil || before.Mode()&fs.ModeCharDevice == 0 {
			t.Skipf("%s is not a character device here", os.DevNull)
		}
		r := cli(t, "download", id, os.DevNull)
		r.expect(t, 0)
		after, err := os.Stat(os.DevNull)
		if err != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
			t.Fatalf("%s was replaced: %v -> %v (%v)", os.DevNull, before.Mode(), after.Mode(), err)
		}
		if !strings.Contains(r.stderr, "wrote 20,000 records to "+os.DevNull) {
			t.Errorf("stderr: %q", r.stderr)
		}
	})

	t.Run("a FIFO is written to, not replaced", func(t *testing.T) {
		fifo := file("pipe")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		got := make(chan []byte, 1)
		go func() {
			b, _ := os.ReadFile(fifo) // the reading end, to EOF
			got <- b
		}()
		cli(t, "download", id, fifo).expect(t, 0)
		sameBytes(t, "through the FIFO", <-got, in)
		if m := fileMode(t, fifo); m&fs.ModeNamedPipe == 0 {
			t.Errorf("the FIFO became %v", m)
		}
		onlyFilesIn(t, out, "pipe")
		fatalIf(t, os.Remove(fifo))
	})

	t.Run("an interrupted download leaves no file", func(t *testing.T) {
		for attempt := 1; ; attempt++ {
			dest := file("interrupted.txt")
			p := startProc(t, c.dir, fmt.Sprintf("download-%d", attempt), baseEnv("ROCKETJOB_URI="+c.uri), "download", id, dest)
			// Signal once the temporary file exists: the download is under way.
			caught := false
			for p.running() && !caught {
				entries, _ := os.ReadDir(out)
				caught = len(entries) > 0
			}
			if !caught {
				if p.wait(time.Minute) != 0 || attempt == 5 {
					t.Fatalf("the download finished before it could be interrupted, %d times", attempt)
				}
				fatalIf(t, os.Remove(dest))
				continue
			}
			p.signal(os.Interrupt)
			code := p.wait(time.Minute)
			if code == 0 {
				// It finished between the check and the signal: whole file.
				sameBytes(t, "download finished despite the signal", readFile(t, dest), in)
				fatalIf(t, os.Remove(dest))
				if attempt == 5 {
					t.Fatalf("the download finished before the signal, %d times", attempt)
				}
				continue
			}
			if code != 1 || !strings.Contains(p.stderr(), "interrupted") {
				t.Fatalf("interrupted download: exit %d, stderr %q", code, p.stderr())
			}
			onlyFilesIn(t, out)
			return
		}
	})

	// Last: it loses the work database.
	t.Run("a lost work database is exit 1 and no file", func(t *testing.T) {
		mc, err := mongo.Connect(options.Client().ApplyURI(c.uri))
		fatalIf(t, err)
		defer mc.Disconnect(context.Background())
		fatalIf(t, mc.Database("rocketjob_work").Drop(ctx(t)))
		r := cli(t, "download", id, file("lost.txt"))
		r.expect(t, 1)
		if line := r.oneLine(t); !strings.Contains(line, "only 0 of its 20,000 output records") {
			t.Errorf("error line: %q", line)
		}
		onlyFilesIn(t, out)
	})
}

// cliUmask runs a rocketjob command against c under umask mask (through sh).
func cliUmask(t *testing.T, c *cluster, mask string, args ...string) result {
	t.Helper()
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "sh", append([]string{"-c", `umask ` + mask + ` && exec "$0" "$@"`, rjBin}, args...)...)
	cmd.Env = baseEnv("ROCKETJOB_URI=" + c.uri)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cctx.Err() != nil {
		t.Fatalf("rocketjob %v under umask %s timed out", args, mask)
	}
	return result{args: args, stdout: stdout.String(), stderr: stderr.String(), code: exitCode(err)}
}

func fileMode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

// onlyFiles fails unless dir holds exactly names: no temporary or partial
// file left behind.
func onlyFilesIn(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func fatalIf(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
