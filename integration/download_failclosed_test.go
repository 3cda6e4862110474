package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
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

	t.Run("an interrupted download exits 130 or 143 and leaves no file", func(t *testing.T) {
		for _, tc := range []struct {
			sig      syscall.Signal
			code     int
			existing bool // the download replaces an existing file
		}{
			{syscall.SIGINT, 130, false},
			{syscall.SIGTERM, 143, true},
		} {
			interruptDownload(t, c, id, in, out, tc.sig, tc.code, tc.existing)
		}
	})

	// Last: it loses the work database.
	t.Run("a lost work database is exit 1 and no file", func(t *testing.T) {
		mc, err := mongo.Connect(options.Client().ApplyURI(c.uri))
		fatalIf(t, err)
		defer mc.Disconnect(context.Background())
		fatalIf(t, mc.Database(workDB(c.uri)).Drop(ctx(t)))
		r := cli(t, "download", id, file("lost.txt"))
		r.expect(t, 1)
		if line := r.oneLine(t); !strings.Contains(line, "only 0 of its 20,000 output records") {
			t.Errorf("error line: %q", line)
		}
		onlyFilesIn(t, out)
	})
}

// Issue 13: a work database that lost some of a completed job's slices (one
// document deleted) fails every download the same typed way: the CLI exits
// 1 with one line naming the slice, REST answers 500 "incomplete" before
// the first byte (or aborts the transfer once streaming), and the Go API
// returns *sliced.IncompleteError.
func TestDownloadWithLostSlicesFailsTyped(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.server("s1", 2, serverOpts{})
	in := numbered(20000) // 200 slices of 100 records, 11-15 bytes each
	id := c.upload("copy", writeFile(t, c.dir, "in.txt", in))
	sq := c.upload("square", writeFile(t, c.dir, "sq.txt", []byte("1\nx\n3\ny\n")), "--slice-size", "2")
	if j := c.waitJob(id, 3*time.Minute); j.State != rocketjob.StateCompleted || j.ProcessedCount != 20000 {
		t.Fatalf("copy job %s, %d processed", j.State, j.ProcessedCount)
	}
	if j := c.waitJob(sq, time.Minute); j.State != rocketjob.StateFailed || j.FailedRecordCount != 2 {
		t.Fatalf("square job %s, %d failed", j.State, j.FailedRecordCount)
	}
	base := c.startUI(t, 1<<20)
	mc, err := mongo.Connect(options.Client().ApplyURI(c.uri))
	fatalIf(t, err)
	defer mc.Disconnect(context.Background())
	work := mc.Database(workDB(c.uri))
	out := filepath.Join(c.dir, "out")
	fatalIf(t, os.Mkdir(out, 0o755))
	dest := filepath.Join(out, "out.txt")

	// get requests path without gzip (so the body is exactly what the
	// server wrote) and returns the status, the error code of a JSON error
	// answer, and the error reading the body (a transfer aborted midway).
	get := func(t *testing.T, path string) (status int, code string, readErr error, body []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		fatalIf(t, err)
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := http.DefaultClient.Do(req)
		fatalIf(t, err)
		defer resp.Body.Close()
		body, readErr = io.ReadAll(resp.Body)
		var e struct {
			Error struct{ Code, Message string }
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && json.Unmarshal(body, &e) == nil {
			code = e.Error.Code
			t.Logf("GET %s: %d %s: %s", path, resp.StatusCode, code, e.Error.Message)
		}
		return resp.StatusCode, code, readErr, body
	}
	expectIncompleteAnswer := func(t *testing.T, path, message string) {
		t.Helper()
		status, code, readErr, body := get(t, path)
		if status != http.StatusInternalServerError || code != "incomplete" || readErr != nil || !strings.Contains(string(body), message) {
			t.Errorf("GET %s: %d %q (%v), want 500 incomplete saying %q: %s", path, status, code, readErr, message, clip(string(body)))
		}
	}
	goDownload := func(t *testing.T, failed bool, want, got, slice int64) {
		t.Helper()
		download, job := sliced.Download, id
		if failed {
			download, job = sliced.DownloadFailed, sq
		}
		var buf bytes.Buffer
		_, err := download(ctx(t), c.client, job, &buf)
		var ie *sliced.IncompleteError
		if !errors.As(err, &ie) || !errors.Is(err, sliced.ErrIncomplete) {
			t.Fatalf("Go download: %v (%T), want an *IncompleteError", err, err)
		}
		if ie.Want != want || ie.Got != got || ie.Slice != slice {
			t.Errorf("Go download: %+v, want %d of %d records, slice %d", *ie, got, want, slice)
		}
	}

	t.Run("the last output slice lost", func(t *testing.T) {
		deleteSliceDoc(t, work.Collection("slices_"+id+"_output"), 200)
		r := c.cli("download", id, dest)
		r.expect(t, 1)
		line := r.oneLine(t)
		want := `only 19,900 of its 20,000 output records are in work database "` + workDB(c.uri) + `": it lost the output of finished slice 200`
		if !strings.Contains(line, want) {
			t.Errorf("error line %q lacks %q", line, want)
		}
		noStack(t, "download error", line)
		onlyFilesIn(t, out)
		r = c.cli("download", id, "-")
		r.expect(t, 1)
		if len(r.stdout) >= len(in) {
			t.Errorf("stdout got %d bytes of %d, but the last slice is lost", len(r.stdout), len(in))
		}
		goDownload(t, false, 20000, 19900, 200)
		// Streaming had started: the transfer is cut, never a short 200.
		status, _, readErr, body := get(t, "/api/jobs/"+id+"/output")
		if status != http.StatusOK || readErr == nil || len(body) >= len(in) {
			t.Errorf("streamed download: %d, %d bytes, read error %v; want 200 cut short with an error", status, len(body), readErr)
		}
		// A page before the loss is whole; one across it is incomplete.
		if status, _, readErr, body := get(t, "/api/jobs/"+id+"/output?offset=0&limit=10"); status != http.StatusOK || readErr != nil {
			t.Errorf("first page: %d (%v): %s", status, readErr, clip(string(body)))
		}
		expectIncompleteAnswer(t, "/api/jobs/"+id+"/output?offset=19950&limit=100", "it lost the output of finished slice 200")
	})

	t.Run("the first output slice lost too", func(t *testing.T) {
		deleteSliceDoc(t, work.Collection("slices_"+id+"_output"), 1)
		r := c.cli("download", id, dest)
		r.expect(t, 1)
		if line := r.oneLine(t); !strings.Contains(line, "only 19,800 of its 20,000 output records") || !strings.Contains(line, "the output of 2 finished slices (the first: slice 1)") {
			t.Errorf("error line %q", line)
		}
		onlyFilesIn(t, out)
		goDownload(t, false, 20000, 19800, 1)
		// Nothing can be sent before the first slice: a 500 before the first byte.
		expectIncompleteAnswer(t, "/api/jobs/"+id+"/output", "only 19800 of its 20000 output records")
		expectIncompleteAnswer(t, "/api/jobs/"+id+"/output?offset=0&limit=10", "the output of 2 finished slices (the first: slice 1)")
	})

	t.Run("failed records lost", func(t *testing.T) {
		deleteSliceDoc(t, work.Collection("slices_"+sq+"_failed"), 2)
		r := c.cli("download", "--failed", sq, dest)
		r.expect(t, 1)
		if line := r.oneLine(t); !strings.Contains(line, "only 1 of its 2 failed records") || !strings.Contains(line, "it lost the failed records of finished slice 2") {
			t.Errorf("error line %q", line)
		}
		onlyFilesIn(t, out)
		goDownload(t, true, 2, 1, 2)
		expectIncompleteAnswer(t, "/api/jobs/"+sq+"/failures", "it lost the failed records of finished slice 2")
		expectIncompleteAnswer(t, "/api/jobs/"+sq+"/failures?format=csv", "it lost the failed records of finished slice 2")
		// Its output was not lost.
		cli := c.cli("download", sq, dest)
		cli.expect(t, 0)
		sameBytes(t, "the square job's output", readFile(t, dest), []byte("1\n9\n"))
	})
}

// deleteSliceDoc deletes the document of slice num ("<slice>:<attempt>" on
// FerretDB) from coll with the raw driver: the work database lost it.
func deleteSliceDoc(t *testing.T, coll *mongo.Collection, num int64) {
	t.Helper()
	cur, err := coll.Find(ctx(t), bson.D{})
	fatalIf(t, err)
	var docs []struct {
		ID string `bson:"_id"`
	}
	fatalIf(t, cur.All(ctx(t), &docs))
	for _, d := range docs {
		if n, _, _ := strings.Cut(d.ID, ":"); n == fmt.Sprintf("%09d", num) {
			res, err := coll.DeleteOne(ctx(t), bson.D{{Key: "_id", Value: d.ID}})
			fatalIf(t, err)
			if res.DeletedCount == 1 {
				return
			}
		}
	}
	t.Fatalf("slice %d not found in %s (%d documents)", num, coll.Name(), len(docs))
}

// interruptDownload starts `download id FILE` into the empty folder out
// (FILE exists beforehand when existing is set) and sends sig once the
// temporary file exists: the command must exit code with one line saying
// it was interrupted, and leave out as it was. A download that finishes
// before the signal lands is tried again (up to 5 times).
func interruptDownload(t *testing.T, c *cluster, id string, in []byte, out string, sig syscall.Signal, code int, existing bool) {
	t.Helper()
	dest := filepath.Join(out, "interrupted.txt")
	before := []string(nil)
	old := []byte("yesterday's output\n")
	for attempt := 1; ; attempt++ {
		if existing {
			writeFile(t, out, "interrupted.txt", old)
			before = []string{"interrupted.txt"}
		}
		p := startProc(t, c.dir, fmt.Sprintf("download-%v-%d", sig, attempt), baseEnv("ROCKETJOB_URI="+c.uri), "download", id, dest)
		// Signal once the temporary file exists: the download is under way.
		caught := false
		for p.running() && !caught {
			entries, _ := os.ReadDir(out)
			caught = len(entries) > len(before)
		}
		if caught {
			p.signal(sig)
		}
		got := p.wait(time.Minute)
		if got == 0 {
			// It finished before the signal: the whole file.
			sameBytes(t, "download finished despite the signal", readFile(t, dest), in)
			fatalIf(t, os.Remove(dest))
			if attempt == 5 {
				t.Fatalf("the download finished before the %v, %d times", sig, attempt)
			}
			continue
		}
		stderr := strings.TrimSuffix(p.stderr(), "\n")
		wantLine := fmt.Sprintf("rocketjob: download interrupted by %v: the partial file was removed", map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[sig])
		if existing {
			wantLine += ", " + dest + " is unchanged"
		}
		if got != code || stderr != wantLine {
			t.Fatalf("download stopped by %v: exit %d, stderr %q; want exit %d, %q", sig, got, stderr, code, wantLine)
		}
		onlyFilesIn(t, out, before...)
		if existing {
			sameBytes(t, "the existing file after an interrupted download", readFile(t, dest), old)
			fatalIf(t, os.Remove(dest))
		}
		return
	}
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
