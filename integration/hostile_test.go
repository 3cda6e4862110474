package integration

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// hostileCase is one hostile input. Exactly one of args (a CLI command),
// api (a Go API call) or rest (an HTTP request) is set.
type hostileCase struct {
	name  string
	args  []string                    // CLI: the command (arguments file:NAME name files in the cluster folder)
	stdin []byte                      // CLI: standard input
	env   []string                    // CLI: more environment
	api   func(context.Context) error // Go API: must return an error unless code is 0
	rest  func() (*http.Response, error)
	code  int                            // exit code, HTTP status, or 0/1 for api (1: must fail)
	want  []string                       // substrings of the error line (or body message)
	jobs  int                            // how many jobs the case leaves behind
	check func(t *testing.T, out string) // more checks on stdout (CLI)
	skip  string                         // "BUG: ..." when the case reveals a product bug
}

// noStack fails when s looks like a panic or a stack trace.
func noStack(t *testing.T, what, s string) {
	t.Helper()
	for _, bad := range []string{"panic", "goroutine ", "runtime error", ".go:"} {
		if strings.Contains(s, bad) {
			t.Errorf("%s contains %q:\n%s", what, bad, clip(s))
		}
	}
}

// jobCount counts the jobs with `job list --json`.
func (c *cluster) jobCount(t *testing.T) int {
	t.Helper()
	r := run(t, runOpts{env: []string{"ROCKETJOB_URI=" + c.uri}, timeout: 30 * time.Second}, "job", "list", "--json")
	r.expect(t, 0)
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("job list --json: %v: %q", err, clip(r.stdout))
	}
	return len(list)
}

// startUI runs `rocketjob ui` on a free loopback port and returns its base URL.
func (c *cluster) startUI(t *testing.T, maxUpload int64) string {
	t.Helper()
	p := startProc(t, c.dir, "ui", baseEnv("ROCKETJOB_URI="+c.uri), "ui", "--listen", "127.0.0.1:0", "--max-upload", fmt.Sprint(maxUpload))
	re := regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+`)
	var base string
	eventually(t, 30*time.Second, "the web UI prints its address", func() (bool, string) {
		if !p.running() {
			t.Fatalf("rocketjob ui exited early (%s):\n%s", describeExit(p.waitErr), p.stderr())
		}
		base = re.FindString(p.stderr())
		return base != "", p.stderr()
	})
	return base
}

// execRSS runs the binary and returns its result and peak memory (bytes).
//
// The peak is measured by a small wrapper (this test binary in rssWrapper
// mode), not read from this process's wait4: Go starts children with
// vfork semantics (CLONE_VM), and Linux records the parent's peak RSS in a
// child's ru_maxrss when the child execs, so a child of a test process that
// once held 400 MiB reports 400 MiB whatever it used. The wrapper's own
// peak is that of a freshly started test binary (tens of MiB).
func execRSS(t *testing.T, env []string, timeout time.Duration, args ...string) (result, int64) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rssFile := filepath.Join(t.TempDir(), "rss")
	cctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, self, append([]string{rjBin}, args...)...)
	cmd.Env = baseEnv(append(env, rssWrapperEnv+"="+rssFile)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String(), code: exitCode(err), took: time.Since(start)}
	if cctx.Err() != nil {
		t.Fatalf("timed out after %s:\n%s", timeout, r)
	}
	b, err := os.ReadFile(rssFile)
	if err != nil {
		t.Fatalf("the RSS wrapper wrote no peak (%v):\n%s", err, r)
	}
	var rss int64
	if _, err := fmt.Sscan(string(b), &rss); err != nil {
		t.Fatalf("the RSS wrapper wrote %q: %v", b, err)
	}
	return r, rss
}

// rssWrapperEnv names the file to which the test binary, started with it
// set, writes the peak RSS of the command given as its arguments.
const rssWrapperEnv = "ROCKETJOB_TEST_RSS_FILE"

// rssWrapper runs os.Args[1:] with this process's standard streams, writes
// the child's peak RSS in bytes to the file named by rssWrapperEnv and
// returns the child's exit code. The child dies with the wrapper.
func rssWrapper(out string) int {
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, rssWrapperEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "rss wrapper:", err)
		return 125
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = int64(ru.Maxrss) * 1024 // kilobytes on Linux
	}
	if err := os.WriteFile(out, []byte(fmt.Sprint(rss)), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "rss wrapper:", err)
		return 125
	}
	return exitCode(err)
}

func zipOf(t *testing.T, entries ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.Create(e[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, e[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipBomb is a zip whose one entry is n zero bytes (no newline).
func zipBomb(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	w, err := zw.Create("zeros.txt")
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range n >> 20 {
		if _, err := w.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// errAfter yields r, then fails with err.
type errAfter struct {
	r   io.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, e.err
	}
	return n, err
}

// Hostile input, everywhere input enters: the command line, the Go API,
// the REST API and the file readers. Every refusal is one clear line and
// the right exit code or status, nothing hangs, and the database is left
// as it should be (no job, no slice collection for a refused upload).
func TestHostileInputCorpus(t *testing.T) {
	c := newCluster(t)
	srv := c.server("A", 2, serverOpts{})
	base := c.startUI(t, 1<<20)
	dir := c.dir
	file := func(name string, b []byte) string { return writeFile(t, dir, name, b) }

	// Inputs.
	var csvBad bytes.Buffer
	csvBad.WriteString("a,b\n1,x\n2,\"unbalanced\n3,y\n")
	invalidUTF8 := []byte("bad \xff\xfe bytes\n\xc3\x28 half\nend \xe2\x82\n")
	nul := []byte("a\x00b\n\x00\x00\nc\x00\n")
	newlines := []byte("\n\n\n\n\n")
	long := append([]byte("ok 1\nok 2\n"), bytes.Repeat([]byte("x"), sliced.MaxRecordSize+1)...)
	long = append(long, "\nafter\n"...)
	gz := gzipBytes(t, numbered(20000))
	concat := append(gzipBytes(t, []byte("first member\n")), gzipBytes(t, []byte("second member\n"))...)
	twoZip := zipOf(t, [2]string{"a.txt", "a\n"}, [2]string{"b.txt", "b\n"})
	passwd := "root:x:0:0:root:/root:/bin/sh\n"
	evilZip := zipOf(t, [2]string{"../../etc/passwd", passwd})
	bomb := zipBomb(t, 50<<20)
	t.Logf("zip bomb: %d bytes for 50 MiB", len(bomb))
	escaped := filepath.Join("..", "..", "etc", "passwd") // relative to the CLI's folder
	if _, err := os.Stat(escaped); err == nil {
		t.Fatalf("%s exists before the test", escaped)
	}

	missingID := "6b057eb2c6343cf832d80faf"
	roundTrip := func(want []byte) func(t *testing.T, out string) {
		return func(t *testing.T, out string) {
			id := strings.TrimSpace(out)
			if !isJobID(id) {
				t.Fatalf("stdout %q is not a job id", out)
			}
			cc := *c
			cc.t = t
			cc.jobWait(id).expect(t, 0)
			sameBytes(t, "output", cc.download(id, "out-"+id+".txt"), want)
		}
	}

	// A job to aim actions at.
	napID := c.cliOK("job", "enqueue", "nap", "--param", "ms=1", "--run-at", "1h")

	upload := func(typ string, r io.Reader, o *sliced.UploadOptions) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := sliced.Upload(ctx, c.client, typ, r, o)
			return err
		}
	}
	post := func(path, ctype string, body io.Reader) func() (*http.Response, error) {
		return func() (*http.Response, error) {
			req, err := http.NewRequest(http.MethodPost, base+path, body)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", ctype)
			return http.DefaultClient.Do(req)
		}
	}
	method := func(m, path string) func() (*http.Response, error) {
		return func() (*http.Response, error) {
			req, err := http.NewRequest(m, base+path, nil)
			if err != nil {
				return nil, err
			}
			return http.DefaultClient.Do(req)
		}
	}
	bigJSON := func() io.Reader {
		var b bytes.Buffer
		b.WriteString(`{"type":"copy","records":[`)
		for i := 0; b.Len() < 2<<20; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q", strings.Repeat("y", 1000))
		}
		b.WriteString("]}")
		return &b
	}

	cases := []hostileCase{
		// Files through the CLI.
		{name: "csv unbalanced quote", args: []string{"upload", "--job", "copy", "--format", "csv", "file:bad.csv"}, code: 1, want: []string{"bad.csv", "line 3"}},
		{name: "jsonl invalid", args: []string{"upload", "--job", "copy", "--format", "jsonl", "file:bad.jsonl"}, code: 1, want: []string{"bad.jsonl", "line 2"}},
		{name: "invalid utf-8 round-trips", args: []string{"upload", "--job", "copy", "file:utf8.txt"}, code: 0, jobs: 1, check: roundTrip(invalidUTF8)},
		{name: "nul bytes round-trip", args: []string{"upload", "--job", "copy", "file:nul.txt"}, code: 0, jobs: 1, check: roundTrip(nul)},
		{name: "empty file", args: []string{"upload", "--job", "copy", "file:empty.txt"}, code: 0, jobs: 1, check: roundTrip(nil)},
		{name: "only newlines", args: []string{"upload", "--job", "copy", "file:newlines.txt"}, code: 0, jobs: 1, check: roundTrip(newlines)},
		{name: "line over 15 MiB", args: []string{"upload", "--job", "copy", "--slice-size", "1", "file:long.txt"}, code: 1, want: []string{"long.txt", "line 3"}},
		{name: "truncated gzip", args: []string{"upload", "--job", "copy", "file:trunc.txt.gz"}, code: 1, want: []string{"trunc.txt.gz"}},
		{name: "concatenated gzip members", args: []string{"upload", "--job", "copy", "file:concat.gz"}, code: 0, jobs: 1, check: roundTrip([]byte("first member\nsecond member\n"))},
		{name: "zip with two entries", args: []string{"upload", "--job", "copy", "file:two.zip"}, code: 1, want: []string{"two.zip"}},
		{name: "zip entry ../../etc/passwd", args: []string{"upload", "--job", "copy", "file:evil.zip"}, code: 0, jobs: 1, check: func(t *testing.T, out string) {
			roundTrip([]byte(passwd))(t, out)
			if _, err := os.Stat(escaped); err == nil {
				t.Errorf("the upload wrote %s", escaped)
			}
		}},
		{name: "gz extension on plain text", args: []string{"upload", "--job", "copy", "file:plain.gz"}, code: 1, want: []string{"plain.gz"}},
		{name: "zstd magic then garbage", args: []string{"upload", "--job", "copy", "file:garbage.zst"}, code: 1, want: []string{"garbage.zst"}},
		{name: "missing file", args: []string{"upload", "--job", "copy", filepath.Join(dir, "no-such-file.txt")}, code: 1, want: []string{"no-such-file.txt"}},
		{name: "directory as file", args: []string{"upload", "--job", "copy", dir}, code: 1},
		{name: "stdin with invalid utf-8", args: []string{"upload", "--job", "copy", "-"}, stdin: invalidUTF8, code: 0, jobs: 1, check: roundTrip(invalidUTF8)},
		// Options.
		{name: "encrypt without a key", args: []string{"upload", "--job", "copy", "--encrypt", "file:plain.txt"}, code: 1, want: []string{"ROCKETJOB_KEYS"}},
		{name: "malformed key", args: []string{"upload", "--job", "copy", "--encrypt", "file:plain.txt"}, env: []string{"ROCKETJOB_KEYS=not-a-key"}, code: 1, want: []string{"ROCKETJOB_KEYS"}},
		{name: "unknown job type", args: []string{"job", "enqueue", "nosuch"}, code: 1, want: []string{`"nosuch"`}},
		{name: "upload of a simple job type", args: []string{"upload", "--job", "nap", "file:plain.txt"}, code: 1, want: []string{"nap"}},
		{name: "negative priority", args: []string{"job", "enqueue", "nap", "--priority", "-5"}, code: 2, want: []string{"priority"}},
		{name: "priority zero on upload", args: []string{"upload", "--job", "copy", "--priority", "0", "file:plain.txt"}, code: 2, want: []string{"priority"}},
		{name: "huge priority", args: []string{"job", "enqueue", "nap", "--priority", "99999999999999999999"}, code: 2, want: []string{"priority"}},
		{name: "non-numeric priority", args: []string{"job", "enqueue", "nap", "--priority", "high"}, code: 2, want: []string{"priority"}},
		{name: "job priority 101", args: []string{"job", "priority", napID, "101"}, code: 2, want: []string{"101"}},
		{name: "job priority not a number", args: []string{"job", "priority", napID, "1e3"}, code: 2, want: []string{"1e3"}},
		{name: "bad cron", args: []string{"job", "enqueue", "nap", "--cron", "61 * * * *"}, code: 2, want: []string{"cron"}},
		{name: "cron garbage", args: []string{"job", "enqueue", "nap", "--cron", "@every-now-and-then"}, code: 2, want: []string{"cron"}},
		{name: "bad window", args: []string{"job", "enqueue", "nap", "--window", "25:00,3h"}, code: 2, want: []string{"window"}},
		{name: "bad window zone", args: []string{"job", "enqueue", "nap", "--window", "22:00,3h,Mars/Olympus"}, code: 2, want: []string{"window"}},
		{name: "bad --run-at", args: []string{"job", "enqueue", "nap", "--run-at", "yesterday"}, code: 2, want: []string{"run-at"}},
		{name: "bad --run-at on upload", args: []string{"upload", "--job", "copy", "--run-at", "2026-13-45", "file:plain.txt"}, code: 2, want: []string{"run-at"}},
		{name: "bad --param", args: []string{"job", "enqueue", "nap", "--param", "noequals"}, code: 2, want: []string{"param"}},
		{name: "bad --param empty key", args: []string{"job", "enqueue", "nap", "--param", "=1"}, code: 2, want: []string{"param"}},
		{name: "slice size zero", args: []string{"upload", "--job", "copy", "--slice-size", "0", "file:plain.txt"}, code: 2, want: []string{"slice-size"}},
		{name: "unknown format", args: []string{"upload", "--job", "copy", "--format", "xml", "file:plain.txt"}, code: 2, want: []string{"xml"}},
		// Ids.
		{name: "id too short", args: []string{"job", "show", "abc123"}, code: 1, want: []string{"abc123"}},
		{name: "id not hex", args: []string{"job", "show", "zzzzzzzzzzzzzzzzzzzzzzzz"}, code: 1, want: []string{"zzzz"}},
		{name: "id unknown", args: []string{"job", "show", missingID}, code: 1, want: []string{missingID}},
		{name: "destroy unknown id", args: []string{"job", "destroy", missingID}, code: 1, want: []string{missingID}},
		{name: "download unknown id", args: []string{"download", missingID, filepath.Join(dir, "never.txt")}, code: 1, want: []string{missingID}},
		{name: "id with NUL", args: []string{"job", "abort", "6b057eb2c6343cf832d8\x01faf"}, code: 1},

		// The Go API.
		{name: "api: enqueue unknown type", api: func(ctx context.Context) error {
			_, err := c.client.Enqueue(ctx, "nosuch", nil, nil)
			return err
		}, code: 1, want: []string{"nosuch"}},
		{name: "api: upload unknown type", api: upload("nosuch", strings.NewReader("a\n"), nil), code: 1, want: []string{"nosuch"}},
		{name: "api: upload reader fails midway", api: upload("copy", &errAfter{bytes.NewReader(numbered(5000)), errors.New("disk on fire")}, &sliced.UploadOptions{SliceSize: 1}), code: 1, want: []string{"disk on fire"}},
		{name: "api: upload cancelled midway", api: func(ctx context.Context) error {
			pr, pw := io.Pipe()
			ctx, cancel := context.WithCancel(ctx)
			go func() {
				pw.Write(numbered(3000))
				cancel()
				time.Sleep(time.Second)
				pw.Close()
			}()
			_, err := sliced.Upload(ctx, c.client, "copy", pr, &sliced.UploadOptions{SliceSize: 1})
			pr.Close() // unblocks the writer
			return err
		}, code: 1},
		{name: "api: upload line over 15 MiB", api: upload("copy", bytes.NewReader(long), &sliced.UploadOptions{Name: "long.txt"}), code: 1, want: []string{"line 3"}},
		{name: "api: upload bad format", api: upload("copy", strings.NewReader("a\n"), &sliced.UploadOptions{Format: "xml"}), code: 1, want: []string{"xml"}},
		{name: "api: upload priority 500", api: upload("copy", strings.NewReader("a\n"), &sliced.UploadOptions{Priority: 500}), code: 1, want: []string{"priority"}},
		{name: "api: upload negative slice size", api: upload("copy", strings.NewReader("a\n"), &sliced.UploadOptions{SliceSize: -1}), code: 1},
		{name: "api: set priority 0", api: func(ctx context.Context) error {
			_, err := c.client.SetPriority(ctx, napID, 0)
			return err
		}, code: 1, want: []string{"priority"}},
		{name: "api: get malformed id", api: func(ctx context.Context) error {
			_, err := c.client.Get(ctx, "not-an-id")
			return err
		}, code: 1},
		{name: "api: destroy unknown id", api: func(ctx context.Context) error {
			return c.client.Destroy(ctx, missingID)
		}, code: 1},

		// The REST API.
		{name: "rest: bad json", rest: post("/api/jobs", "application/json", strings.NewReader(`{"type":"copy","records":[`)), code: 400},
		{name: "rest: json not an object", rest: post("/api/jobs", "application/json", strings.NewReader(`[1,2,3]`)), code: 400},
		{name: "rest: body too large", rest: post("/api/jobs", "application/json", bigJSON()), code: 413},
		{name: "rest: wrong content type", rest: post("/api/jobs", "text/plain", strings.NewReader("a\n")), code: 415},
		{name: "rest: unknown option", rest: post("/api/jobs?colour=red", "application/json", strings.NewReader(`{"type":"copy","records":["a"]}`)), code: 400},
		{name: "rest: bad priority", rest: post("/api/jobs/"+napID+"/priority", "application/x-www-form-urlencoded", strings.NewReader("priority=0")), code: 400},
		{name: "rest: non-numeric priority", rest: post("/api/jobs/"+napID+"/priority", "application/x-www-form-urlencoded", strings.NewReader("priority=abc")), code: 400},
		{name: "rest: unknown id", rest: method(http.MethodGet, "/api/jobs/"+missingID), code: 404},
		{name: "rest: malformed id", rest: method(http.MethodGet, "/api/jobs/..%2f..%2fetc"), code: 404},
		{name: "rest: destroy unknown id", rest: method(http.MethodDelete, "/api/jobs/"+missingID), code: 404},
		{name: "rest: unknown action", rest: method(http.MethodPost, "/api/jobs/"+napID+"/explode"), code: 404},
	}

	// Files the CLI cases name with file:NAME.
	files := map[string][]byte{
		"bad.csv":      csvBad.Bytes(),
		"bad.jsonl":    []byte("{\"n\":1}\n{\"n\":\n{\"n\":3}\n"),
		"utf8.txt":     invalidUTF8,
		"nul.txt":      nul,
		"empty.txt":    nil,
		"newlines.txt": newlines,
		"long.txt":     long,
		"trunc.txt.gz": gz[:len(gz)/2],
		"concat.gz":    concat,
		"two.zip":      twoZip,
		"evil.zip":     evilZip,
		"plain.gz":     []byte("just text\n"),
		"garbage.zst":  append([]byte{0x28, 0xb5, 0x2f, 0xfd}, bytes.Repeat([]byte{0xff, 0x00, 0x13}, 100)...),
		"plain.txt":    []byte("plain\n"),
	}
	for name, b := range files {
		file(name, b)
	}

	jobs := c.jobCount(t) // the nap job
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			switch {
			case tc.args != nil:
				args := make([]string, len(tc.args))
				for i, a := range tc.args {
					if name, ok := strings.CutPrefix(a, "file:"); ok {
						a = filepath.Join(dir, name)
					}
					args[i] = a
				}
				o := runOpts{env: append([]string{"ROCKETJOB_URI=" + c.uri}, tc.env...), timeout: 30 * time.Second}
				if tc.stdin != nil {
					o.stdin = bytes.NewReader(tc.stdin)
				}
				r := run(t, o, args...)
				if tc.skip != "" && r.code != tc.code {
					// Everything else is checked; the exit code is the bug.
					line := r.oneLine(t)
					noStack(t, "stderr", line)
					if n := c.jobCount(t); n != jobs {
						t.Errorf("%d jobs after the case, want %d", n, jobs)
					}
					t.Skipf("%s (exit %d: %s)", tc.skip, r.code, line)
				}
				r.expect(t, tc.code)
				if tc.code != 0 {
					line := r.oneLine(t)
					t.Logf("exit %d: %s", r.code, line)
					noStack(t, "stderr", line)
					for _, w := range tc.want {
						if !strings.Contains(line, w) {
							t.Errorf("the error does not mention %q: %q", w, line)
						}
					}
					if r.stdout != "" {
						t.Errorf("a refused command printed %q on stdout", r.stdout)
					}
				} else {
					noStack(t, "stderr", r.stderr)
				}
				if tc.check != nil {
					tc.check(t, r.stdout)
				}
			case tc.api != nil:
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				err := tc.api(ctx)
				if (err != nil) != (tc.code != 0) {
					t.Fatalf("want failure=%v, got error %v", tc.code != 0, err)
				}
				if err != nil {
					msg := err.Error()
					t.Logf("error: %s", msg)
					if strings.Contains(msg, "\n") {
						t.Errorf("the error is more than one line: %q", msg)
					}
					noStack(t, "error", msg)
					for _, w := range tc.want {
						if !strings.Contains(msg, w) {
							t.Errorf("the error does not mention %q: %q", w, msg)
						}
					}
				}
			case tc.rest != nil:
				resp, err := tc.rest()
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				if resp.StatusCode != tc.code {
					t.Fatalf("want HTTP %d, got %d: %s", tc.code, resp.StatusCode, clip(string(body)))
				}
				var e struct {
					Error struct {
						Message string `json:"message"`
					} `json:"error"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
					t.Fatalf("the body is not a JSON error (%v): %s", err, clip(string(body)))
				}
				t.Logf("HTTP %d: %s", resp.StatusCode, e.Error.Message)
				if strings.Contains(e.Error.Message, "\n") {
					t.Errorf("the message is more than one line: %q", e.Error.Message)
				}
				noStack(t, "body", string(body))
			}
			jobs += tc.jobs
			if n := c.jobCount(t); n != jobs {
				t.Errorf("%d jobs after the case, want %d", n, jobs)
				jobs = n
			}
		})
	}
	// Every slice collection belongs to a job that exists (refused
	// uploads leave none), and completed jobs have no input left.
	live, err := c.client.List(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, j := range live {
		ids[j.ID.Hex()] = true
	}
	for _, n := range sliceCollections(t, c.uri) {
		parts := strings.SplitN(n, "_", 3)
		if len(parts) != 3 || !ids[parts[1]] {
			t.Errorf("slice collection %s belongs to no job", n)
		} else if parts[2] == "input" {
			t.Errorf("completed job kept its input: %s", n)
		}
	}

	t.Run("zip bomb streams or is refused in bounded memory", func(t *testing.T) {
		path := file("bomb.zip", bomb)
		r, rss := execRSS(t, []string{"ROCKETJOB_URI=" + c.uri}, 60*time.Second, "upload", "--job", "copy", path)
		t.Logf("zip bomb: exit %d in %s, peak RSS %d MiB: %s", r.code, r.took.Round(time.Millisecond), rss>>20, strings.TrimSpace(r.stderr))
		r.expect(t, 1) // one 50 MiB line: over the record limit
		line := r.oneLine(t)
		noStack(t, "stderr", line)
		if !strings.Contains(line, "line 1") {
			t.Errorf("the error does not name line 1: %q", line)
		}
		if rss > 200<<20 {
			t.Errorf("peak RSS %d MiB for a 50 MiB entry: not streamed", rss>>20)
		}
		if n := c.jobCount(t); n != jobs {
			t.Errorf("%d jobs after the zip bomb, want %d", n, jobs)
		}
	})

	t.Run("concurrent destroy while processing", func(t *testing.T) {
		var in bytes.Buffer
		for range 400 {
			in.WriteString("20\n")
		}
		id := c.upload("sleep", file("sleep.txt", in.Bytes()), "--slice-size", "1")
		eventually(t, 30*time.Second, "the sleep job processes", func() (bool, string) {
			j, err := c.client.Get(ctx(t), id)
			if err != nil {
				return false, err.Error()
			}
			return j.State == rocketjob.StateRunning && j.Step == "processing", string(j.State) + " " + string(j.Step)
		})
		time.Sleep(300 * time.Millisecond)
		var wg sync.WaitGroup
		results := make([]result, 3)
		errs := make([]error, 3)
		for i := range results {
			wg.Go(func() {
				results[i], errs[i] = execRJ(runOpts{env: []string{"ROCKETJOB_URI=" + c.uri}, timeout: 30 * time.Second}, "job", "destroy", id)
			})
		}
		apiErrs := make([]error, 2)
		for i := range apiErrs {
			wg.Go(func() { apiErrs[i] = c.client.Destroy(context.Background(), id) })
		}
		var status int
		wg.Go(func() {
			resp, err := method(http.MethodDelete, "/api/jobs/"+id)()
			if err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
		})
		wg.Wait()
		ok := 0
		for i, r := range results {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			noStack(t, "stderr", r.stderr)
			switch r.code {
			case 0:
				ok++
			case 1:
				r.oneLine(t)
			default:
				t.Errorf("destroy: %s", r)
			}
		}
		if status == http.StatusOK || status == http.StatusNoContent {
			ok++
		} else if status != http.StatusNotFound {
			t.Errorf("REST destroy: HTTP %d", status)
		}
		for _, err := range apiErrs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, rocketjob.ErrJobNotFound):
				t.Errorf("Go API destroy: %v", err)
			}
		}
		t.Logf("destroys: CLI exits %d %d %d, REST HTTP %d, Go API %v", results[0].code, results[1].code, results[2].code, status, apiErrs)
		if ok == 0 {
			t.Errorf("no destroy succeeded")
		}
		if _, err := c.client.Get(ctx(t), id); !errors.Is(err, rocketjob.ErrJobNotFound) {
			t.Errorf("the destroyed job: %v, want not found", err)
		}
		eventually(t, 20*time.Second, "the job's slice collections are gone", func() (bool, string) {
			var left []string
			for _, n := range sliceCollections(t, c.uri) {
				if strings.Contains(n, id) {
					left = append(left, n)
				}
			}
			return len(left) == 0, fmt.Sprint(left)
		})
		time.Sleep(time.Second) // the workers notice the job is gone
		if !srv.running() {
			t.Fatalf("the server died: %s\n%s", describeExit(srv.waitErr), srv.stderr())
		}
		noStack(t, "server stderr", srv.stderr())
		var servers []serverJSON
		if err := json.Unmarshal([]byte(c.cliOK("servers", "list", "--json")), &servers); err != nil {
			t.Fatal(err)
		}
		if len(servers) != 1 || servers[0].Name != "A" || servers[0].State != "running" {
			t.Errorf("servers after the destroy: %+v", servers)
		}
		// No collection of the destroyed job came back, and the server still works.
		after := c.upload("copy", file("after.txt", []byte("still alive\n")))
		c.jobWait(after).expect(t, 0)
		if n := c.jobCount(t); n != jobs+1 {
			t.Errorf("%d jobs after the destroy and one more upload, want %d", n, jobs+1)
		}
		for _, n := range sliceCollections(t, c.uri) {
			if strings.Contains(n, id) {
				t.Errorf("%s came back after the destroy", n)
			}
		}
	})
}
