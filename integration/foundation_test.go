package integration

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// napRuns counts the runs of each nap job in a run log.
func napRuns(t *testing.T, path string) map[string]int {
	t.Helper()
	l := readRunLog(t, path)
	for _, ln := range l.lines {
		if ln.typ != "nap" || ln.what != "run" {
			t.Fatalf("unexpected run log line %q", ln)
		}
	}
	return l.counts(func(ln logLine) string { return ln.job })
}

func isJobID(s string) bool {
	_, err := rocketjob.ParseID(s)
	return err == nil
}

// Issue 3, test 1: two server processes share 200 simple jobs; every job
// completes and runs exactly once.
func TestTwoServersRunEveryNapJobOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	logf := c.logPath("run.log")
	// Two workers each: with four each the run takes twice as long, as
	// every worker of both servers races for the same most urgent job (see
	// the report).
	a := c.server("A", 2, serverOpts{log: logf})
	b := c.server("B", 2, serverOpts{log: logf})

	const total = 200
	ids := map[string]bool{}
	for range 5 { // through the command line
		id := c.cliOK("job", "enqueue", "nap", "--param", "ms=5")
		if !isJobID(id) {
			t.Fatalf("job enqueue printed %q, want only a job id", id)
		}
		ids[id] = true
	}
	for len(ids) < total { // the bulk through the Go client
		j, err := c.client.Enqueue(ctx(t), "nap", examples.NapArgs{MS: 5}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[j.ID.Hex()] = true
	}

	eventuallyEvery(t, 2*time.Minute, 500*time.Millisecond, "all jobs complete", func() (bool, string) {
		jobs, err := c.client.List(ctx(t), nil)
		if err != nil {
			return false, err.Error()
		}
		states := map[rocketjob.State]int{}
		for _, j := range jobs {
			states[j.State]++
		}
		return states[rocketjob.StateCompleted] == total, fmt.Sprintf("%d jobs: %v", len(jobs), states)
	})
	jobs, err := c.client.List(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != total {
		t.Fatalf("%d jobs in the database, want %d", len(jobs), total)
	}
	ranOn := map[string]int{}
	for _, j := range jobs {
		if !ids[j.ID.Hex()] || j.State != rocketjob.StateCompleted || j.Attempt != 1 {
			t.Errorf("job %s: state %s attempt %d (known id: %t)", j.ID.Hex(), j.State, j.Attempt, ids[j.ID.Hex()])
		}
		ranOn[j.Server]++
	}
	t.Logf("jobs per server: %v", ranOn)
	if ranOn["A"] == 0 || ranOn["B"] == 0 {
		t.Errorf("both servers should have run jobs: %v", ranOn)
	}

	runs := napRuns(t, logf)
	for _, id := range sortedKeys(ids) {
		if runs[id] != 1 {
			t.Errorf("job %s ran %d times, want exactly once", id, runs[id])
		}
	}
	for _, id := range sortedKeys(runs) {
		if !ids[id] {
			t.Errorf("run log names unknown job %s", id)
		}
	}

	a.stop(15 * time.Second)
	b.stop(15 * time.Second)
	if out := c.cliOK("servers", "list", "--json"); out != "[]" {
		t.Errorf("servers list after both stopped: %s, want []", out)
	}
}

// Issue 3, test 2: kill -9 of a server with jobs in flight. Its jobs show
// running on it until the other server declares it dead and requeues them;
// everything completes; only the jobs it held may have run twice, once on
// each server.
func TestKill9ServerRequeuesItsJobs(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	logA, logB := c.logPath("run-a.log"), c.logPath("run-b.log")
	const workersA = 2
	// A runs one job through, then its jobs stall until it dies: at the
	// kill it is certainly running some, and it is killed only once its
	// first job is written completed (a server killed between the claim of
	// a job's end and its update leaves the job running on it until the
	// claim is old enough to roll forward: 10 s, and then until the
	// minute's sweep, as the dead server is gone by then; see the stop
	// note of 2026-12-03).
	a := c.server("A", workersA, serverOpts{log: logA, stallAfter: 1})
	b := c.server("B", 2, serverOpts{log: logB})

	const total = 40
	for range total {
		if _, err := c.client.Enqueue(ctx(t), "nap", examples.NapArgs{MS: 400}, nil); err != nil {
			t.Fatal(err)
		}
	}
	runningOn := func(server string) map[string]bool {
		jobs, err := c.client.List(ctx(t), &rocketjob.ListOptions{States: []rocketjob.State{rocketjob.StateRunning}})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, j := range jobs {
			if j.Server == server {
				m[j.ID.Hex()] = true
			}
		}
		return m
	}
	eventually(t, 30*time.Second, "server A runs only stalled jobs", func() (bool, string) {
		ran := napRuns(t, logA)
		for id := range ran {
			first, err := c.client.Get(ctx(t), id)
			if err != nil {
				return false, err.Error()
			}
			if first.State != rocketjob.StateCompleted {
				return false, "A's first job is " + string(first.State)
			}
		}
		for id := range runningOn("A") {
			if ran[id] == 0 {
				return len(ran) == 1, fmt.Sprintf("A ran %d jobs", len(ran))
			}
		}
		return false, "no stalled job runs on A yet"
	})
	a.kill9()
	killed := time.Now()

	// A's jobs stay running on A until the rescuer on B requeues them.
	onA := runningOn("A")
	if len(onA) == 0 {
		t.Fatal("right after the kill no job shows running on server A")
	}
	t.Logf("running on A at the kill: %d jobs", len(onA))
	eventually(t, 30*time.Second, "A's jobs are requeued", func() (bool, string) {
		still := runningOn("A")
		for id := range still {
			if !onA[id] {
				// A claimed it just before the kill and the claim was rolled
				// forward by another process later: it counts as A's.
				t.Logf("job %s shows running on the dead server A after the kill (claim rolled forward)", id)
				onA[id] = true
			}
		}
		return len(still) == 0, fmt.Sprintf("%d still running on A", len(still))
	})
	if d := time.Since(killed); d < deadAfter-2*heartbeat {
		t.Errorf("A's jobs were requeued %s after the kill, before A could be dead (dead-after %s)", d, deadAfter)
	}

	eventuallyEvery(t, 90*time.Second, 250*time.Millisecond, "all jobs complete", func() (bool, string) {
		jobs, err := c.client.List(ctx(t), &rocketjob.ListOptions{States: []rocketjob.State{rocketjob.StateCompleted}})
		if err != nil {
			return false, err.Error()
		}
		return len(jobs) == total, fmt.Sprintf("%d of %d completed", len(jobs), total)
	})
	jobs, err := c.client.List(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	runsA, runsB := napRuns(t, logA), napRuns(t, logB)
	reruns := 0
	for _, j := range jobs {
		id := j.ID.Hex()
		if j.State != rocketjob.StateCompleted {
			t.Errorf("job %s is %s, want completed", id, j.State)
		}
		switch {
		case runsA[id]+runsB[id] == 1:
			// Once, completed where it ran. A job listed running on A at
			// the kill that A completed is one whose end A had claimed but
			// not written: another process rolled the claim forward.
			if ranOn := map[bool]string{true: "A", false: "B"}[runsA[id] == 1]; j.Server != ranOn {
				t.Errorf("job %s ran once on %s, completed on %q", id, ranOn, j.Server)
			}
		case runsA[id] == 1 && runsB[id] == 1:
			// A died holding it (running, or its start still held back:
			// such a job shows queued), and B ran it again.
			reruns++
			if j.Server != "B" {
				t.Errorf("job %s ran on A, then on B, completed on %q", id, j.Server)
			}
		default:
			t.Errorf("job %s ran %d times on A and %d on B, want once, or once on each after the kill", id, runsA[id], runsB[id])
		}
		if onA[id] && j.Server == "B" && j.Attempt != 2 {
			t.Errorf("job %s (running on A at the kill): completed on B at attempt %d, want 2", id, j.Attempt)
		}
	}
	if reruns > workersA {
		t.Errorf("%d jobs ran again, more than A's %d workers could hold", reruns, workersA)
	}
	t.Logf("%d jobs ran on A and again on B", reruns)
	if !strings.Contains(b.stderr(), "dead=A") {
		t.Errorf("server B's log does not mention rescuing A")
	}
	eventually(t, 10*time.Second, "the dead server leaves the list", func() (bool, string) {
		list, err := c.client.Servers(ctx(t))
		if err != nil {
			return false, err.Error()
		}
		return len(list) == 1 && list[0].Name == "B", fmt.Sprint(serverNames(list))
	})
	b.stop(15 * time.Second)
}

// Issue 3, test 3: one process owns a data folder; a busy port is refused.
func TestDataFolderAndPortOwnedByOneProcess(t *testing.T) {
	t.Parallel()
	ownDatabase(t)
	c := newCluster(t)
	data := filepath.Join(c.dir, "data")

	r := run(t, runOpts{timeout: 30 * time.Second}, "db", "--data", data, "--listen", "127.0.0.1:0")
	r.expect(t, 1)
	if line := r.oneLine(t); !strings.Contains(line, data) {
		t.Errorf("the error does not name the folder %s: %q", data, line)
	}
	if r.stdout != "" {
		t.Errorf("a db that did not start printed %q on stdout", r.stdout)
	}

	u, err := url.Parse(c.uri)
	if err != nil {
		t.Fatal(err)
	}
	r = run(t, runOpts{timeout: 30 * time.Second}, "db", "--data", filepath.Join(c.dir, "other"), "--listen", u.Host)
	r.expect(t, 1)
	if line := r.oneLine(t); !strings.Contains(line, u.Host) {
		t.Errorf("the error does not name the address %s: %q", u.Host, line)
	}

	// The first database is unharmed and still owns its folder.
	c.cliOK("job", "list")
	r = run(t, runOpts{timeout: 30 * time.Second}, "db", "--data", data, "--listen", "127.0.0.1:0")
	r.expect(t, 1)
	c.db.stop(15 * time.Second)
}

// Issue 3, test 4: usage errors exit 2; an unreachable database exits 1
// quickly with the URI in the message, and a password is never printed.
func TestCLIBadInput(t *testing.T) {
	t.Parallel()
	t.Run("unknown command", func(t *testing.T) {
		r := run(t, runOpts{}, "frobnicate")
		r.expect(t, 2)
		if line := r.oneLine(t); !strings.Contains(line, "frobnicate") || !strings.Contains(line, "--help") {
			t.Errorf("want the command and a pointer to the usage, got %q", line)
		}
		r = run(t, runOpts{}, "job", "frobnicate")
		r.expect(t, 2)
		if line := r.oneLine(t); !strings.Contains(line, "frobnicate") || !strings.Contains(line, "enqueue") {
			t.Errorf("want the command and the valid ones, got %q", line)
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		for _, tc := range []struct {
			bad  string
			args []string
		}{
			{"--frobnicate", []string{"job", "list", "--frobnicate"}},
			{"--frobnicate", []string{"--frobnicate", "job", "list"}},
			{"--wrkers", []string{"server", "--wrkers", "3"}},
			{"--slice-sise", []string{"upload", "--job", "copy", "--slice-sise", "3", "in.txt"}},
		} {
			args, bad := tc.args, tc.bad
			r := run(t, runOpts{}, args...)
			r.expect(t, 2)
			line := r.oneLine(t)
			if !strings.Contains(line, bad) || !strings.Contains(line, "--help") {
				t.Errorf("rocketjob %s: want the flag %s and a pointer to the usage, got %q", strings.Join(args, " "), bad, line)
			}
			if r.stdout != "" {
				t.Errorf("rocketjob %s: usage error printed %q on stdout", strings.Join(args, " "), r.stdout)
			}
		}
	})
	t.Run("unreachable database", func(t *testing.T) {
		t.Parallel()
		uri := "mongodb://127.0.0.1:1/"
		r := run(t, runOpts{timeout: 15 * time.Second}, "job", "list", "--uri", uri)
		r.expect(t, 1)
		if line := r.oneLine(t); !strings.Contains(line, uri) {
			t.Errorf("the error does not name %s: %q", uri, line)
		}
	})
	t.Run("password never printed", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		in := writeFile(t, dir, "in.txt", []byte("a\n"))
		uri := "mongodb://u:secret@127.0.0.1:1/"
		cases := []struct {
			env  []string
			args []string
		}{
			{nil, []string{"job", "list", "--uri", uri}},
			{nil, []string{"servers", "list", "--json", "--uri", uri}},
			{nil, []string{"job", "enqueue", "nap", "--uri", uri}},
			{nil, []string{"upload", "--job", "copy", "--uri", uri, in}},
			{nil, []string{"server", "--uri", uri, "--name", "x"}},
			{[]string{"ROCKETJOB_URI=" + uri}, []string{"job", "show", "6b057eb2c6343cf832d80faf"}},
			{nil, []string{"job", "list", "--uri", "mongodb://127.0.0.1:1/", "--work-uri", uri}},
		}
		var wg sync.WaitGroup
		results := make([]result, len(cases))
		errs := make([]error, len(cases))
		for i, tc := range cases {
			wg.Go(func() { results[i], errs[i] = execRJ(runOpts{env: tc.env, timeout: 15 * time.Second}, tc.args...) })
		}
		wg.Wait()
		for i, r := range results {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if r.code != 1 {
				t.Errorf("want exit 1, got:\n%s", r)
			}
			if strings.Contains(r.stdout+r.stderr, "secret") {
				t.Errorf("the password was printed:\n%s", r)
			}
			if !strings.Contains(r.stderr, "127.0.0.1:1") {
				t.Errorf("the error does not name the database:\n%s", r)
			}
		}
	})
}

type serverJSON struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	PID     int    `json:"pid"`
	Workers int    `json:"workers"`
}

// Issue 3, test 5: servers list, pause, resume and stop from the command line.
func TestServersListPauseResumeStop(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.server("A", 2, serverOpts{})
	b := c.server("B", 3, serverOpts{})

	var list []serverJSON
	if err := json.Unmarshal([]byte(c.cliOK("servers", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	byName := map[string]serverJSON{}
	for _, s := range list {
		byName[s.Name] = s
	}
	if len(list) != 2 ||
		byName["A"] != (serverJSON{"A", "running", a.cmd.Process.Pid, 2}) ||
		byName["B"] != (serverJSON{"B", "running", b.cmd.Process.Pid, 3}) {
		t.Fatalf("servers list --json: %+v", list)
	}

	// Stop one server by name: it exits 0 and leaves the list.
	c.cliOK("servers", "stop", "B")
	if code := b.wait(15 * time.Second); code != 0 {
		t.Fatalf("server B exited %d after servers stop, want 0", code)
	}
	serverStates := func() map[string]string {
		list, err := c.client.Servers(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, s := range list {
			m[s.Name] = s.State
		}
		return m
	}
	if st := serverStates(); len(st) != 1 || st["A"] != "running" {
		t.Fatalf("servers after B stopped: %v", st)
	}
	r := c.cli("servers", "pause", "nosuch")
	r.expect(t, 1)
	r.oneLine(t)

	// A paused server takes no new work.
	c.cliOK("servers", "pause", "A")
	eventually(t, 10*time.Second, "A is paused", func() (bool, string) {
		st := serverStates()
		return st["A"] == "paused", fmt.Sprint(st)
	})
	id := c.cliOK("job", "enqueue", "nap", "--param", "ms=5")
	hold := 1500 * time.Millisecond // > 3 heartbeats
	polls := 0
	for start := time.Now(); time.Since(start) < hold; polls++ {
		if j := c.job(id); j.State != rocketjob.StateQueued {
			t.Fatalf("job %s is %s on %q while the only server is paused, want queued", id, j.State, j.Server)
		}
		time.Sleep(100 * time.Millisecond) // spacing between polls, not synchronisation
	}
	if st := serverStates(); st["A"] != "paused" {
		t.Fatalf("A is %q after %d polls, want paused", st["A"], polls)
	}
	c.cliOK("servers", "resume", "A")
	if j := c.waitJob(id, 20*time.Second); j.State != rocketjob.StateCompleted || j.Server != "A" {
		t.Fatalf("after resume job %s is %s on %q, want completed on A", id, j.State, j.Server)
	}
	eventually(t, 10*time.Second, "A shows running after resume", func() (bool, string) {
		st := serverStates()
		return st["A"] == "running", fmt.Sprint(st)
	})

	// stop --all stops every server.
	cc := c.server("C", 1, serverOpts{})
	c.cliOK("servers", "stop", "--all")
	for _, p := range []*proc{a, cc} {
		if code := p.wait(15 * time.Second); code != 0 {
			t.Errorf("%s exited %d after servers stop --all, want 0", p.name, code)
		}
	}
	if out := c.cliOK("servers", "list", "--json"); out != "[]" {
		t.Errorf("servers list after stop --all: %s, want []", out)
	}
}

// Issue 3, test 6: SIGTERM during a long job: the server gives the job back
// within its shutdown timeout and exits 0; another server completes it.
func TestSigtermRequeuesRunningJob(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	logf := c.logPath("run.log")
	a := c.server("A", 1, serverOpts{log: logf, args: []string{"--shutdown-timeout", "500ms"}})
	id := c.cliOK("job", "enqueue", "nap", "--param", "ms=3000")
	eventually(t, 20*time.Second, "the job runs on A", func() (bool, string) {
		j := c.job(id)
		return j.State == rocketjob.StateRunning && j.Server == "A" && napRuns(t, logf)[id] == 1,
			fmt.Sprintf("state %s server %q", j.State, j.Server)
	})
	start := time.Now()
	a.signal(syscall.SIGTERM)
	if code := a.wait(5 * time.Second); code != 0 {
		t.Fatalf("server A exited %d after SIGTERM, want 0", code)
	}
	t.Logf("server A exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	if j := c.job(id); j.State != rocketjob.StateQueued || j.Server != "" {
		t.Fatalf("after A stopped, job %s is %s on %q, want queued on no server", id, j.State, j.Server)
	}

	b := c.server("B", 1, serverOpts{log: logf})
	j := c.waitJob(id, 20*time.Second)
	if j.State != rocketjob.StateCompleted || j.Server != "B" || j.Attempt != 2 {
		t.Fatalf("job %s: %s on %q at attempt %d, want completed on B at attempt 2", id, j.State, j.Server, j.Attempt)
	}
	if n := napRuns(t, logf)[id]; n != 2 {
		t.Errorf("job %s ran %d times, want 2 (cut short on A, then on B)", id, n)
	}
	b.stop(15 * time.Second)
}

// Commands sent by other processes right after a server started, all in
// the same clock second, all reach it. (An earlier version read commands
// with ObjectIDs greater than bson.NewObjectIDFromTimestamp(start), which in
// driver v2 carries the server's own random process bytes, and missed about
// half of such commands.)
func TestServerCommandsSentInItsFirstSecond(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	// Start the server just after a clock second begins, so that it
	// registers and the commands arrive within that second.
	eventually(t, 3*time.Second, "a clock second begins", func() (bool, string) {
		ms := time.Now().Nanosecond() / 1e6
		return ms >= 20 && ms < 120, ""
	})
	a := c.server("A", 1, serverOpts{})
	const n = 6
	var wg sync.WaitGroup
	results := make([]result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = c.cliAsync("servers", "resume", "A") }) // harmless on a running server
	}
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		r.expect(t, 0)
	}
	eventually(t, 20*heartbeat, "server A receives every command", func() (bool, string) {
		got := strings.Count(a.stderr(), `msg="command received"`)
		return got == n, fmt.Sprintf("%d of %d received", got, n)
	})
	a.stop(15 * time.Second)
}
