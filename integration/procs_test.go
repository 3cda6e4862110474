// Package integration builds the rocketjob binary once and runs it as real
// processes: an embedded database (`rocketjob db`), several servers, and the
// command line against them, with kill -9 and SIGTERM in the middle of work.
//
// This file holds the helpers: building the binary, starting and stopping
// processes (their stderr goes to a file that is printed when the test
// fails, or always when RJ_INTEGRATION_LOGS is set), running CLI commands,
// and polling conditions with deadlines.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/embedded"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// rjBin is the rocketjob binary built by TestMain.
var rjBin string

func TestMain(m *testing.M) {
	if out := os.Getenv(rssWrapperEnv); out != "" {
		os.Exit(rssWrapper(out))
	}
	dir, err := os.MkdirTemp("", "rocketjob-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		os.Exit(1)
	}
	rjBin = filepath.Join(dir, "rocketjob")
	build := exec.Command(goTool(), "build", "-o", rjBin, "./cmd/rocketjob")
	build.Dir = ".." // the module root (tests run in integration/)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: building ./cmd/rocketjob:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goTool is the go command: the one on PATH, else the one of this toolchain.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Timing of the servers the tests start: fast heartbeats so zombies are
// found within seconds.
const (
	heartbeat = 200 * time.Millisecond
	deadAfter = 1500 * time.Millisecond
)

// baseEnv is the test's environment without any ROCKETJOB_ variable, so a
// developer's own settings cannot leak into the processes.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROCKETJOB_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// proc is a long-running rocketjob process (db or server).
type proc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	errPath string // stderr
	outPath string // stdout
	done    chan struct{}
	waitErr error // valid once done is closed
}

// startProc starts rocketjob with args; its stdout and stderr go to files in
// dir. The process is killed at the end of the test if still running, and
// its stderr printed if the test failed.
func startProc(t *testing.T, dir, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{
		t:       t,
		name:    name,
		errPath: filepath.Join(dir, name+".stderr"),
		outPath: filepath.Join(dir, name+".stdout"),
		done:    make(chan struct{}),
	}
	stderr, err := os.Create(p.errPath)
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := os.Create(p.outPath)
	if err != nil {
		t.Fatal(err)
	}
	args, env = onPostgreSQL(args, env)
	env = onExternal(args, env)
	p.cmd = exec.Command(rjBin, args...)
	p.cmd.Env = env
	p.cmd.SysProcAttr = procAttr() // dies with the test binary (Linux)
	p.cmd.Stdout, p.cmd.Stderr = stdout, stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	stdout.Close()
	stderr.Close()
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Logf("started %s (pid %d): rocketjob %s", name, p.cmd.Process.Pid, strings.Join(args, " "))
	t.Cleanup(func() {
		quit := false
		if p.running() {
			// A test that failed with the process still running (a job
			// that never ended, say) gets its goroutines: Go prints them
			// all on SIGQUIT and exits.
			if t.Failed() {
				_ = p.cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-p.done:
					quit = true
				case <-time.After(10 * time.Second):
				}
			}
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() || os.Getenv("RJ_INTEGRATION_LOGS") != "" {
			p.dump(quit)
		}
	})
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signalling %s: %v", p.name, err)
	}
}

// kill9 kills the process with SIGKILL and waits until it is gone.
func (p *proc) kill9() {
	p.t.Helper()
	p.signal(syscall.SIGKILL)
	<-p.done
	p.t.Logf("killed %s with SIGKILL", p.name)
}

// wait waits up to timeout for the process to exit and returns its exit
// code; it fails the test on a timeout.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %s", p.name, timeout)
	}
	return exitCode(p.waitErr)
}

// stop sends SIGTERM and expects exit code 0 within timeout.
func (p *proc) stop(timeout time.Duration) {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	if code := p.wait(timeout); code != 0 {
		p.t.Fatalf("%s exited with code %d after SIGTERM, want 0", p.name, code)
	}
}

func (p *proc) stderr() string {
	b, _ := os.ReadFile(p.errPath)
	return string(b)
}

// dump prints the process's stderr (its tail when long); after a SIGQUIT
// (quit), the goroutine dump whole and the log lines before it.
func (p *proc) dump(quit bool) {
	s := p.stderr()
	const max = 16 << 10
	dump := ""
	if i := strings.LastIndex(s, "SIGQUIT: quit"); quit && i >= 0 {
		s, dump = s[:i], s[i:]
	}
	if len(s) > max {
		s = "...\n" + s[len(s)-max:]
	}
	s += dump
	state := "running"
	if !p.running() {
		state = "exited: " + describeExit(p.waitErr)
	}
	p.t.Logf("---- stderr of %s (%s) ----\n%s---- end of %s ----", p.name, state, s, p.name)
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode() // -1 when killed by a signal
	}
	return -1
}

func describeExit(err error) string {
	if err == nil {
		return "code 0"
	}
	return err.Error()
}

// cluster is one embedded database process with the servers started on it.
type cluster struct {
	t      *testing.T
	dir    string
	db     *proc // nil on $ROCKETJOB_TEST_MONGODB_URI
	uri    string
	names  [2]string // jobs and work database; empty: the defaults
	client *rocketjob.Client
}

// newCluster starts `rocketjob db` on a new data folder and a free port
// (127.0.0.1:0: the database prints the URI of the port it bound) and
// connects a Go client to it.
//
// With $ROCKETJOB_TEST_POSTGRESQL (see internal/dbtest) the cluster's data
// is a fresh PostgreSQL database instead, dropped at the end of the test:
// every `rocketjob db --data DIR/data` that startProc starts for it, the
// first and any restart, runs as `rocketjob db --postgresql` on that
// database (the URL goes in $ROCKETJOB_DB_POSTGRESQL, so that the logged
// command line shows no password).
func newCluster(t *testing.T) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{t: t, dir: dir}
	if base := dbtest.PostgreSQL(); base != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		dsn, drop, err := dbtest.NewPostgreSQLDatabase(ctx, base, t.Name())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// Registered before the db process starts: runs after it is gone.
		t.Cleanup(func() {
			pgClusters.Delete(filepath.Join(dir, "data"))
			if err := drop(); err != nil {
				t.Error(err)
			}
		})
		pgClusters.Store(filepath.Join(dir, "data"), dsn)
		t.Logf("cluster data in PostgreSQL: %s", embedded.RedactDSN(dsn))
	}
	c.db = startProc(t, dir, "db", baseEnv(), "db", "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0")
	eventually(t, 30*time.Second, "the database prints its URI", func() (bool, string) {
		if !c.db.running() {
			t.Fatalf("rocketjob db exited early (%s):\n%s", describeExit(c.db.waitErr), c.db.stderr())
		}
		b, _ := os.ReadFile(c.db.outPath)
		line, _, found := strings.Cut(string(b), "\n")
		if !found {
			return false, fmt.Sprintf("stdout so far: %q", b)
		}
		c.uri = strings.TrimSpace(line)
		return true, ""
	})
	if !strings.HasPrefix(c.uri, "mongodb://127.0.0.1:") {
		t.Fatalf("rocketjob db printed %q, want a mongodb://127.0.0.1:PORT/ URI", c.uri)
	}
	// At the end of a test that passed, the database must stop cleanly on
	// SIGTERM (the servers, started later, are gone by then).
	t.Cleanup(func() {
		if t.Failed() || !c.db.running() {
			return
		}
		_ = c.db.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.db.done:
			if code := exitCode(c.db.waitErr); code != 0 {
				t.Errorf("rocketjob db exited %d after SIGTERM, want 0", code)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("rocketjob db did not exit within 15s of SIGTERM")
		}
	})
	c.connect()
	return c
}

// connect connects the cluster's Go client and closes it at the end of the
// test (before the database is stopped).
func (c *cluster) connect() {
	t := c.t
	t.Helper()
	reg := rocketjob.NewRegistry()
	if err := examples.Register(reg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := rocketjob.NewClient(ctx, rocketjob.Config{URI: c.uri, DB: c.names[0], WorkDB: c.names[1], Registry: reg})
	if err != nil {
		t.Fatalf("connecting to %s: %v", c.uri, err)
	}
	c.client = client
	// Registered after the db's cleanup, so it runs before the db is killed.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Close(ctx)
	})
}

// pgClusters maps the data folder of a cluster on PostgreSQL to the URL of
// its database.
var pgClusters sync.Map

// onPostgreSQL rewrites `rocketjob db --data DIR ...` for a cluster whose
// data is in PostgreSQL (see newCluster) into `rocketjob db ...` with the
// database's URL in $ROCKETJOB_DB_POSTGRESQL. Other commands pass as they
// are.
func onPostgreSQL(args, env []string) ([]string, []string) {
	if len(args) < 3 || args[0] != "db" {
		return args, env
	}
	i := slices.Index(args, "--data")
	if i < 0 || i+1 >= len(args) {
		return args, env
	}
	dsn, ok := pgClusters.Load(args[i+1])
	if !ok {
		return args, env
	}
	out := append(slices.Clone(args[:i]), args[i+2:]...)
	return out, append(slices.Clone(env), "ROCKETJOB_DB_POSTGRESQL="+dsn.(string))
}

// serverOpts are the less common settings of a server process.
type serverOpts struct {
	log        string   // ROCKETJOB_EXAMPLE_LOG for the job code
	stallAfter int      // ROCKETJOB_EXAMPLE_STALL_AFTER: records past this many wait (0: none)
	args       []string // more flags, e.g. --shutdown-timeout
}

// server starts `rocketjob server` named name with the given number of
// workers and waits until it is registered in the servers collection.
func (c *cluster) server(name string, workers int, o serverOpts) *proc {
	c.t.Helper()
	var env []string
	if o.log != "" {
		env = append(env, examples.RunLogEnv+"="+o.log)
	}
	if o.stallAfter > 0 {
		env = append(env, examples.StallAfterEnv+"="+fmt.Sprint(o.stallAfter))
	}
	args := []string{"server", "--uri", c.uri, "--name", name, "--workers", fmt.Sprint(workers),
		"--heartbeat", heartbeat.String(), "--dead-after", deadAfter.String(), "--poll", "50ms", "--re-check", "200ms"}
	args = append(args, o.args...)
	p := startProc(c.t, c.dir, "server-"+name, baseEnv(env...), args...)
	eventually(c.t, 30*time.Second, "server "+name+" registers", func() (bool, string) {
		if !p.running() {
			c.t.Fatalf("server %s exited early (%s):\n%s", name, describeExit(p.waitErr), p.stderr())
		}
		list, err := c.client.Servers(ctx(c.t))
		if err != nil {
			return false, err.Error()
		}
		for _, s := range list {
			if s.Name == name {
				return true, ""
			}
		}
		return false, fmt.Sprintf("servers: %v", serverNames(list))
	})
	return p
}

func serverNames(list []rocketjob.Server) []string {
	var names []string
	for _, s := range list {
		names = append(names, s.Name+"("+s.State+")")
	}
	return names
}

// cli runs a rocketjob command against the cluster (ROCKETJOB_URI is set).
func (c *cluster) cli(args ...string) result {
	c.t.Helper()
	return run(c.t, runOpts{env: []string{"ROCKETJOB_URI=" + c.uri}}, args...)
}

// cliAsync is cli for goroutines other than the test's.
func (c *cluster) cliAsync(args ...string) (result, error) {
	return execRJ(runOpts{env: []string{"ROCKETJOB_URI=" + c.uri}}, args...)
}

// cliOK runs a command that must exit 0 and returns its trimmed stdout.
func (c *cluster) cliOK(args ...string) string {
	c.t.Helper()
	r := c.cli(args...)
	r.expect(c.t, 0)
	return strings.TrimSpace(r.stdout)
}

// logPath returns a new run-log path in the cluster's folder.
func (c *cluster) logPath(name string) string { return filepath.Join(c.dir, name) }

// job reads a job with the Go client.
func (c *cluster) job(id string) *rocketjob.Job {
	c.t.Helper()
	j, err := c.client.Get(ctx(c.t), id)
	if err != nil {
		c.t.Fatalf("reading job %s: %v", id, err)
	}
	return j
}

// waitJob waits until a job completed, failed or was aborted and returns it.
func (c *cluster) waitJob(id string, timeout time.Duration) *rocketjob.Job {
	c.t.Helper()
	var job *rocketjob.Job
	eventually(c.t, timeout, "job "+id+" ends", func() (bool, string) {
		j, err := c.client.Get(ctx(c.t), id)
		if err != nil {
			return false, err.Error()
		}
		job = j
		switch j.State {
		case rocketjob.StateCompleted, rocketjob.StateFailed, rocketjob.StateAborted:
			return true, ""
		}
		return false, fmt.Sprintf("state %s step %s server %q", j.State, j.Step, j.Server)
	})
	return job
}

// ctx is a context bounded by a minute, for single calls to the database.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// result is what a CLI command did.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
	took   time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("rocketjob %s: exit %d after %s\nstdout: %s\nstderr: %s",
		strings.Join(r.args, " "), r.code, r.took.Round(time.Millisecond), clip(r.stdout), clip(r.stderr))
}

// expect fails the test unless the command exited with code.
func (r result) expect(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got:\n%s", code, r)
	}
}

// oneLine returns the only line of stderr, failing when there are more.
func (r result) oneLine(t *testing.T) string {
	t.Helper()
	s := strings.TrimSuffix(r.stderr, "\n")
	if s == "" || strings.Contains(s, "\n") {
		t.Fatalf("want exactly one line on stderr, got:\n%s", r)
	}
	return s
}

func clip(s string) string {
	const max = 4000
	if len(s) > max {
		return fmt.Sprintf("%s... (%d bytes)", s[:max], len(s))
	}
	return s
}

type runOpts struct {
	env     []string
	stdin   io.Reader
	timeout time.Duration // default 2 minutes
}

// run runs the rocketjob binary to completion; a command that cannot run or
// outlives its timeout fails the test.
func run(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	r, err := execRJ(o, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// execRJ is run for goroutines other than the test's: it returns the
// problem instead of failing the test.
func execRJ(o runOpts, args ...string) (result, error) {
	if o.timeout == 0 {
		o.timeout = 2 * time.Minute
	}
	cctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, rjBin, args...)
	cmd.Env = onExternal(args, baseEnv(o.env...))
	cmd.Stdin = o.stdin
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String(), code: exitCode(err), took: time.Since(start)}
	if cctx.Err() != nil {
		return r, fmt.Errorf("timed out after %s:\n%s", o.timeout, r)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return r, fmt.Errorf("running rocketjob %s: %v", strings.Join(args, " "), err)
	}
	return r, nil
}

// eventually polls cond every 50ms until it holds, failing the test with
// cond's last explanation after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	eventuallyEvery(t, timeout, 50*time.Millisecond, what, cond)
}

// eventuallyEvery is eventually with a polling interval, for conditions
// that are costly to check (listing many jobs loads the database that the
// servers under test use).
func eventuallyEvery(t *testing.T, timeout, every time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s: %s", timeout, what, why)
		}
		time.Sleep(every)
	}
}

// runLog reads a ROCKETJOB_EXAMPLE_LOG file: one line per run or record,
// "<type> <job id> <what>". A missing file is an empty log.
type runLog struct {
	lines []logLine
}

type logLine struct {
	typ, job, what string
}

func readRunLog(t *testing.T, path string) runLog {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return runLog{}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var l runLog
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		typ, rest, _ := strings.Cut(sc.Text(), " ")
		job, what, _ := strings.Cut(rest, " ")
		l.lines = append(l.lines, logLine{typ, job, what})
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading run log %s: %v", path, err)
	}
	return l
}

// counts maps key(line) to how often it occurs.
func (l runLog) counts(key func(logLine) string) map[string]int {
	m := map[string]int{}
	for _, ln := range l.lines {
		m[key(ln)]++
	}
	return m
}

// sortedKeys returns m's keys in order (for stable messages).
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// writeFile writes b to name in dir and returns its path.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameBytes fails the test with the first difference of got and want.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-40)
	t.Fatalf("%s: got %d bytes, want %d; first difference at byte %d:\n got: %q\nwant: %q",
		what, len(got), len(want), i, snippet(got, from, i+40), snippet(want, from, i+40))
}

func snippet(b []byte, from, to int) []byte {
	return b[min(from, len(b)):min(to, len(b))]
}
