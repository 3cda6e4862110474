package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/embedded"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// result is one run of the command line.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func registry(t testing.TB) *rocketjob.Registry {
	t.Helper()
	reg := rocketjob.NewRegistry()
	if err := examples.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

// run runs the command line in-process with args (without the program name).
func run(t testing.TB, ctx context.Context, args ...string) result {
	t.Helper()
	app := App(registry(t))
	var stdout, stderr syncBuffer
	app.Writer, app.ErrWriter = &stdout, &stderr
	start := time.Now()
	code := Run(ctx, app, append([]string{"rocketjob"}, args...))
	return result{code: code, stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
}

// db returns the global flags of a fresh pair of databases on the test server.
func db(t testing.TB) []string {
	t.Helper()
	jobs, work := dbtest.DBNames(t)
	return []string{"--uri", dbtest.URI(), "--db", jobs, "--work-db", work}
}

// oneErrorLine checks that stderr is one "rocketjob: " line containing want.
func oneErrorLine(t *testing.T, r result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "rocketjob: ") || !strings.Contains(last, want) {
		t.Errorf("stderr = %q, want a line \"rocketjob: ...%s...\"", r.stderr, want)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
		t.Errorf("stderr has a stack trace: %s", r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	ctx := context.Background()
	id := "65a1b2c3d4e5f60718293a4b"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuchcmd"}, `unknown command "nosuchcmd"`},
		{[]string{"--nosuchflag"}, "unknown flag --nosuchflag"},
		{[]string{}, "missing command"},
		{[]string{"job"}, "job: missing command"},
		{[]string{"job", "nosuch"}, `job: unknown command "nosuch"`},
		{[]string{"servers", "nosuch"}, `servers: unknown command "nosuch"`},
		{[]string{"help", "nosuch"}, `no help topic for "nosuch"`},
		{[]string{"job", "show"}, "job show: missing argument: ID"},
		{[]string{"job", "show", id, "extra"}, "too many arguments"},
		{[]string{"job", "list", "--bogus"}, "job list: unknown flag --bogus"},
		{[]string{"job", "list", "--state", "sleeping"}, `unknown state "sleeping"`},
		{[]string{"job", "enqueue", "nap", "--priority", "abc"}, `invalid value "abc" for flag --priority`},
		{[]string{"job", "enqueue", "nap", "--run-at", "tomorrow"}, "--run-at"},
		{[]string{"job", "wait", id, "--timeout", "soon"}, "--timeout"},
		{[]string{"job", "priority", id, "high"}, `priority "high" is not a number`},
		{[]string{"upload", "x.txt"}, "missing --job TYPE"},
		{[]string{"upload", "--job", "reverse", "--priority", "abc", "x.txt"}, "--priority"},
		{[]string{"upload", "--job", "reverse", "--format", "xml", "x.txt"}, `unknown format "xml"`},
		{[]string{"upload", "--job", "reverse"}, "missing argument: FILE|-"},
		{[]string{"download", id}, "missing argument"},
		{[]string{"servers", "pause"}, "NAME or --all"},
		{[]string{"servers", "stop", "s1", "--all"}, "not both"},
		{[]string{"db"}, "missing --data DIR"},
		{[]string{"server", "--workers", "0"}, "--workers must be at least 1"},
		{[]string{"server", "--poll", "fast"}, "--poll"},
		{[]string{"server", "--include", "nap,nosuch"}, `server: --include: unknown job type "nosuch"`},
		{[]string{"server", "--exclude", "nosuch"}, `server: --exclude: unknown job type "nosuch"`},
		{[]string{"demo", "--records", "0"}, "--records must be at least 1"},
		{[]string{"job", "list", "--claim-strategy", "fast"}, `--claim-strategy "fast": want auto, insert or findandmodify`},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			r := run(t, ctx, tc.args...)
			if r.code != ExitUsage {
				t.Errorf("exit code %d, want %d; stderr %q", r.code, ExitUsage, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			oneErrorLine(t, r, tc.want)
		})
	}
}

func TestHelp(t *testing.T) {
	r := run(t, context.Background(), "job", "enqueue", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "rocketjob job enqueue nap --param ms=500") {
		t.Errorf("help: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, context.Background(), "--help")
	for _, cmd := range []string{"demo", "db", "server", "upload", "download", "job", "servers"} {
		if !strings.Contains(r.stdout, "   "+cmd+" ") {
			t.Errorf("--help does not list %s:\n%s", cmd, r.stdout)
		}
	}
}

func TestFailuresBeforeTheDatabase(t *testing.T) {
	// None of these may need a database: the URI points nowhere and each
	// must fail at once: exit 2 for a flag or argument value out of range
	// (a usage error), exit 1 for the rest.
	ctx := context.Background()
	noDB := []string{"--uri", "mongodb://127.0.0.1:1/"}
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"job", "enqueue", "no_such_type"}, `unknown job type "no_such_type"`, ExitFailure},
		{[]string{"job", "enqueue", "reverse"}, "is a sliced job", ExitFailure},
		{[]string{"job", "enqueue", "nap", "--priority", "0"}, "priority must be between 1 and 100", ExitUsage},
		{[]string{"job", "enqueue", "nap", "--priority", "101"}, "priority must be between 1 and 100", ExitUsage},
		{[]string{"job", "enqueue", "nap", "--param", "minutes=3"}, `has no parameter "minutes"`, ExitFailure},
		{[]string{"job", "enqueue", "nap", "--param", "ms=abc"}, "not an integer", ExitFailure},
		{[]string{"job", "enqueue", "nap", "--param", "ms=-5"}, "ms must not be negative", ExitFailure},
		{[]string{"job", "show", "123"}, "not a job id", ExitFailure},
		{[]string{"job", "priority", "65a1b2c3d4e5f60718293a4b", "-3"}, "priority must be between 1 and 100", ExitUsage},
		// The unknown type is refused before the file is opened.
		{[]string{"upload", "--job", "no_such_type", "/no/such/file"}, `unknown job type "no_such_type"`, ExitFailure},
		{[]string{"upload", "--job", "nap", "/no/such/file"}, "is a simple job", ExitFailure},
		{[]string{"upload", "--job", "reverse", "--priority", "0", "/no/such/file"}, "priority must be between 1 and 100", ExitUsage},
		{[]string{"upload", "--job", "reverse", "/no/such/file"}, "no such file", ExitFailure},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			r := run(t, ctx, append(noDB, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit code %d, want %d; stderr %q", r.code, tc.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			oneErrorLine(t, r, tc.want)
			if r.took > 2*time.Second {
				t.Errorf("took %s: it waited for the database", r.took)
			}
		})
	}
}

func TestUnreachableDatabase(t *testing.T) {
	uri := "mongodb://ann:s3cret@127.0.0.1:1/"
	r := run(t, context.Background(), "--uri", uri, "job", "list")
	if r.code != ExitFailure {
		t.Errorf("exit code %d, want 1; stderr %q", r.code, r.stderr)
	}
	oneErrorLine(t, r, "127.0.0.1:1")
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr has more than one line: %q", r.stderr)
	}
	if strings.Contains(r.stderr, "s3cret") {
		t.Errorf("stderr shows the password: %q", r.stderr)
	}
	if r.took > 10*time.Second {
		t.Errorf("took %s to give up", r.took)
	}
}

func TestReorderArgs(t *testing.T) {
	app := App(registry(t))
	for _, tc := range []struct{ in, want string }{
		{"job show ID --json", "job show --json ID"},
		{"job wait ID --timeout 5s", "job wait --timeout 5s ID"},
		{"job list --uri U --json", "--uri U job list --json"},
		{"download ID out.txt --failed", "download --failed ID out.txt"},
		{"upload - --job reverse --param a=b", "upload --job reverse --param a=b -"},
		{"job priority ID -5", "job priority -- ID -5"},
		{"job enqueue nap --priority -5", "job enqueue --priority -5 nap"},
		{"nosuchcmd --json", "--json nosuchcmd"},
		{"help job", "help job"},
		{"servers pause --all", "servers pause --all"},
		{"upload --job reverse -- -odd-name", "upload --job reverse -- -odd-name"},
	} {
		got := strings.Join(reorderArgs(app, append([]string{"rocketjob"}, strings.Fields(tc.in)...))[1:], " ")
		if got != tc.want {
			t.Errorf("reorderArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// startServer runs a server on the databases of global until the test
// ends. It uses the server package directly, not the command line: two
// urfave/cli v2 apps running at the same time in one process race on the
// library's global help flag and help command (TestServerCommand runs the
// server command on its own).
func startServer(t *testing.T, global []string) {
	t.Helper()
	client, err := rocketjob.NewClient(context.Background(), rocketjob.Config{
		URI: global[1], DB: global[3], WorkDB: global[5], Registry: registry(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(client, &server.Config{
		Name: "test-" + t.Name(), Workers: 2, PollInterval: 50 * time.Millisecond,
		HeartbeatInterval: 500 * time.Millisecond, ReCheck: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		_ = client.Close(context.Background())
	})
}

func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := run(t, context.Background(), args...)
	if r.code != 0 {
		t.Fatalf("rocketjob %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// The first process on a work database records its claim strategy; one
// that would claim slices the other way is refused with one line, exit 1.
func TestClaimStrategyFlag(t *testing.T) {
	g := db(t)
	mustRun(t, append(g, "job", "list", "--claim-strategy", "insert")...)
	mustRun(t, append(g, "job", "list")...) // auto is insert on the embedded database
	t.Setenv("ROCKETJOB_CLAIM_STRATEGY", "findandmodify")
	r := run(t, context.Background(), append(g, "job", "list")...)
	if r.code != ExitFailure {
		t.Errorf("findandmodify on an insert work database: exit %d, want 1; stderr %q", r.code, r.stderr)
	}
	want := "uses the insert claim strategy and this process asked for findandmodify"
	if !dbtest.OnMongoDB() {
		want = "use the insert or auto claim strategy" // FerretDB refuses findandmodify before the mismatch
	}
	oneErrorLine(t, r, want)
}

func TestSimpleJobs(t *testing.T) {
	g := db(t)
	startServer(t, g)
	id := strings.TrimSpace(mustRun(t, append(g, "job", "enqueue", "nap", "--param", "ms=50", "--description", "short nap")...).stdout)
	if _, err := rocketjob.ParseID(id); err != nil {
		t.Fatalf("enqueue printed %q, not just an id", id)
	}
	mustRun(t, append(g, "job", "wait", id, "--timeout", "30s")...)

	failing := strings.TrimSpace(mustRun(t, append(g, "job", "enqueue", "nap", "--param", "fail=true")...).stdout)
	r := run(t, context.Background(), append(g, "job", "wait", failing, "--timeout", "30s")...)
	if r.code != ExitFailure {
		t.Errorf("wait on a failing job: exit %d, want 1", r.code)
	}
	oneErrorLine(t, r, "nap failed as asked")

	later := strings.TrimSpace(mustRun(t, append(g, "job", "enqueue", "nap", "--run-at", "1h", "--priority", "7")...).stdout)
	r = run(t, context.Background(), append(g, "job", "wait", later, "--timeout", "300ms")...)
	if r.code != ExitFailure {
		t.Errorf("wait with a timeout: exit %d, want 1", r.code)
	}
	oneErrorLine(t, r, "timed out after 300ms")
	mustRun(t, append(g, "job", "priority", later, "3")...)
	mustRun(t, append(g, "job", "pause", later)...)
	mustRun(t, append(g, "job", "resume", later)...)

	var v jobView
	if err := json.Unmarshal([]byte(mustRun(t, append(g, "job", "show", later, "--json")...).stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.ID != later || v.State != "queued" || v.Priority != 3 || v.Type != "nap" {
		t.Errorf("show --json = %+v", v)
	}

	var list []jobView
	if err := json.Unmarshal([]byte(mustRun(t, append(g, "job", "list", "--json")...).stdout), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].ID != later {
		t.Errorf("list --json: %d jobs, first %+v; want 3, most urgent first", len(list), list[0])
	}
	list = nil
	if err := json.Unmarshal([]byte(mustRun(t, append(g, "job", "list", "--json", "--newest", "--limit", "2")...).stdout), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != later || list[1].ID != failing {
		t.Errorf("list --newest --limit 2: %+v; want the last two enqueued, newest first", list)
	}
	table := mustRun(t, append(g, "job", "list", "--state", "completed")...).stdout
	if !strings.Contains(table, id) || !strings.Contains(table, "short nap") || strings.Contains(table, failing) {
		t.Errorf("job list --state completed:\n%s", table)
	}

	mustRun(t, append(g, "job", "abort", later)...)
	mustRun(t, append(g, "job", "destroy", later)...)
	r = run(t, context.Background(), append(g, "job", "show", later)...)
	if r.code != ExitFailure {
		t.Errorf("show of a destroyed job: exit %d", r.code)
	}
	oneErrorLine(t, r, "job not found")

	var servers []rocketjob.Server
	if err := json.Unmarshal([]byte(mustRun(t, append(g, "servers", "list", "--json")...).stdout), &servers); err != nil {
		t.Fatal(err)
	}
	if len(servers) != 1 || servers[0].Name != "test-"+t.Name() {
		t.Errorf("servers list --json = %+v", servers)
	}
	mustRun(t, append(g, "servers", "pause", "--all")...)
	mustRun(t, append(g, "servers", "resume", "test-"+t.Name())...)
	r = run(t, context.Background(), append(g, "servers", "stop", "nosuch")...)
	if r.code != ExitFailure {
		t.Errorf("stop of an unknown server: exit %d", r.code)
	}
}

func TestUploadDownload(t *testing.T) {
	g := db(t)
	startServer(t, g)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	var lines []string
	for i := range 250 {
		lines = append(lines, strings.Repeat("x", i%7)+"é"+string(rune('a'+i%26)))
	}
	lines = append(lines, "not a number")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// reverse: every line comes back reversed, in order, compressed by extension.
	id := strings.TrimSpace(mustRun(t, append(g, "upload", in, "--job", "reverse", "--slice-size", "20", "--priority", "10")...).stdout)
	mustRun(t, append(g, "job", "wait", id, "--timeout", "60s")...)
	var v jobView
	if err := json.Unmarshal([]byte(mustRun(t, append(g, "job", "show", id, "--json")...).stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.State != "completed" || v.RecordCount != 251 || v.ProcessedCount != 251 || v.Slices == nil || v.Slices.Done != 13 || v.Percent != 100 {
		t.Errorf("show --json = %+v, slices %+v", v, v.Slices)
	}
	human := mustRun(t, append(g, "job", "show", id)...).stdout
	for _, want := range []string{"state:", "completed", "percent:", "100.0%", "records_per_hour:", "record_count:", "251"} {
		if !strings.Contains(human, want) {
			t.Errorf("job show lacks %q:\n%s", want, human)
		}
	}
	out := filepath.Join(dir, "out.txt")
	mustRun(t, append(g, "download", id, out)...)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(lines))
	for i, l := range lines {
		want[i] = reverseRunes(l)
	}
	if string(got) != strings.Join(want, "\n")+"\n" {
		t.Errorf("download: got %q...", string(got[:min(len(got), 80)]))
	}
	stdout := mustRun(t, append(g, "download", id, "-")...).stdout
	if stdout != string(got) {
		t.Error("download to - differs from the file")
	}
	mustRun(t, append(g, "download", id, out+".gz")...)
	if b, _ := os.ReadFile(out + ".gz"); len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Error("download to .gz is not gzip")
	}

	// square: one record fails; the job fails, wait exits 1, --failed lists it.
	sq := strings.TrimSpace(mustRun(t, append(g, "upload", "--job", "square", in)...).stdout)
	r := run(t, context.Background(), append(g, "job", "wait", sq, "--timeout", "60s")...)
	if r.code != ExitFailure {
		t.Errorf("wait on a job with failed records: exit %d", r.code)
	}
	oneErrorLine(t, r, "failed")
	failed := mustRun(t, append(g, "download", "--failed", sq, "-")...).stdout
	if !strings.HasPrefix(failed, "record,error,input\n") || strings.Count(failed, "\n") != 252 {
		t.Errorf("download --failed: %d lines, starts %q", strings.Count(failed, "\n"), failed[:min(len(failed), 60)])
	}

	// A failed download leaves no file behind.
	before, _ := os.ReadDir(dir)
	r = run(t, context.Background(), append(g, "download", "65a1b2c3d4e5f60718293a4b", filepath.Join(dir, "none.txt"))...)
	if r.code != ExitFailure {
		t.Errorf("download of an unknown job: exit %d", r.code)
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		t.Errorf("a failed download left files: %v", after)
	}

	// Unknown type: refused without reading anything (stdin is never touched).
	r = run(t, context.Background(), append(g, "upload", "--job", "nope", "-")...)
	if r.code != ExitFailure {
		t.Errorf("upload of an unknown type: exit %d", r.code)
	}
	var list []jobView
	if err := json.Unmarshal([]byte(mustRun(t, append(g, "job", "list", "--json", "--type", "reverse")...).stdout), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Errorf("job list --type reverse: %d jobs", len(list))
	}
}

func TestDBCommand(t *testing.T) {
	// A data folder owned by another database.
	dir := t.TempDir()
	other, err := embedded.Start(context.Background(), embedded.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	r := run(t, context.Background(), "db", "--data", dir, "--listen", "127.0.0.1:0")
	if r.code != ExitFailure {
		t.Errorf("db on a folder in use: exit %d", r.code)
	}
	oneErrorLine(t, r, "in use")

	// A port in use.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r = run(t, context.Background(), "db", "--data", t.TempDir(), "--listen", l.Addr().String())
	if r.code != ExitFailure {
		t.Errorf("db on a port in use: exit %d", r.code)
	}
	oneErrorLine(t, r, "address already in use")

	// Runs until cancelled (SIGINT/SIGTERM in Main), prints only the URI, exits 0.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	app := App(registry(t))
	var stdout, stderr syncBuffer
	app.Writer, app.ErrWriter = &stdout, &stderr
	go func() {
		code := Run(ctx, app, []string{"rocketjob", "db", "--data", t.TempDir(), "--listen", "127.0.0.1:0"})
		done <- result{code: code}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "\n") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	uri := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(uri, "mongodb://127.0.0.1:") {
		t.Fatalf("db printed %q; stderr %q", uri, stderr.String())
	}
	client, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: uri, Registry: registry(t)})
	if err != nil {
		t.Fatalf("connecting to %s: %v", uri, err)
	}
	if jobs, err := client.List(context.Background(), nil); err != nil || len(jobs) != 0 {
		t.Errorf("jobs on a new database: %v, %v", jobs, err)
	}
	_ = client.Close(context.Background())
	cancel()
	if res := <-done; res.code != 0 {
		t.Errorf("db exit code %d after cancel; stderr %q", res.code, stderr.String())
	}
}

func TestDemo(t *testing.T) {
	r := run(t, context.Background(), "demo", "--records", "3000", "--workers", "2")
	if r.code != 0 {
		t.Fatalf("demo: exit %d; stderr %s", r.code, r.stderr)
	}
	for _, want := range []string{"rocketjob demo: OK", "3,000 lines reversed", "5 of 5 completed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo summary lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestVerifyDemoOutput(t *testing.T) {
	dir := t.TempDir()
	write := func(lines []string) string {
		p := filepath.Join(dir, "out.txt")
		if err := os.WriteFile(p, []byte(strings.Join(lines, "")), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var good []string
	for i := 1; i <= 20; i++ {
		good = append(good, reverseRunes(demoLine(i))+"\n")
	}
	if err := verifyDemoOutput(write(good), 20); err != nil {
		t.Errorf("good output: %v", err)
	}
	swapped := slices.Clone(good)
	swapped[3], swapped[4] = swapped[4], swapped[3]
	for name, lines := range map[string][]string{
		"short":     good[:19],
		"long":      append(slices.Clone(good), "x\n"),
		"swapped":   swapped,
		"unchanged": {demoLine(1) + "\n"},
	} {
		if err := verifyDemoOutput(write(lines), 20); err == nil {
			t.Errorf("%s output passed verification", name)
		}
	}
}

func TestServerCommand(t *testing.T) {
	g := db(t)
	client, err := rocketjob.NewClient(context.Background(), rocketjob.Config{
		URI: g[1], DB: g[3], WorkDB: g[5], Registry: registry(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app := App(registry(t))
	var stdout, stderr syncBuffer
	app.Writer, app.ErrWriter = &stdout, &stderr
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, app, append([]string{"rocketjob"}, append(g, "server", "--name", "cmd-server", "--workers", "3", "--heartbeat", "200ms", "--poll", "50ms")...))
	}()
	job, err := client.Enqueue(context.Background(), "nap", examples.NapArgs{MS: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if job, err = client.Wait(wctx, job.ID.Hex(), 50*time.Millisecond); err != nil || job.State != rocketjob.StateCompleted {
		t.Fatalf("nap job: %v, %v; server stderr: %s", job, err, stderr.String())
	}
	servers, err := client.Servers(context.Background())
	if err != nil || len(servers) != 1 || servers[0].Name != "cmd-server" || servers[0].Workers != 3 {
		t.Errorf("servers: %+v, %v", servers, err)
	}
	cancel() // what SIGINT/SIGTERM do in Main
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("server exit code %d; stderr %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
	}
	if stdout.String() != "" {
		t.Errorf("server wrote to stdout: %q", stdout.String())
	}
}

func TestServerEmbedded(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app := App(registry(t))
	var stdout, stderr syncBuffer
	app.Writer, app.ErrWriter = &stdout, &stderr
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, app, []string{"rocketjob", "server", "--embedded", dir, "--workers", "1", "--poll", "50ms"})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "server started") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var uri string
	for _, f := range strings.Fields(stderr.String()) {
		if strings.HasPrefix(f, "mongodb://") {
			uri = f
			break
		}
	}
	if uri == "" {
		t.Fatalf("no URI on stderr: %s", stderr.String())
	}
	client, err := rocketjob.NewClient(context.Background(), rocketjob.Config{URI: uri, Registry: registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	job, err := client.Enqueue(context.Background(), "nap", examples.NapArgs{MS: 1}, nil)
	if err == nil {
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		job, err = client.Wait(wctx, job.ID.Hex(), 50*time.Millisecond)
		wcancel()
	}
	if err != nil || job.State != rocketjob.StateCompleted {
		t.Errorf("nap job on the embedded server: %v, %v", job, err)
	}
	_ = client.Close(context.Background())
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("server --embedded exit code %d; stderr %s", code, stderr.String())
	}
	// The data folder is free again.
	db, err := embedded.Start(context.Background(), embedded.Options{Dir: dir})
	if err != nil {
		t.Fatalf("data folder still locked after the server stopped: %v", err)
	}
	_ = db.Close()
}

// `server --drain` is a batch run: it exits 0 once nothing due is left, 1
// with --fail-on-job-failure when a job failed, and 1 when --drain-timeout
// ends it with work left.
func TestServerDrain(t *testing.T) {
	g := db(t)
	fast := []string{"--poll", "50ms", "--heartbeat", "200ms", "--re-check", "200ms"}
	ok := strings.TrimSpace(mustRun(t, append(g, "job", "enqueue", "nap", "--param", "ms=10")...).stdout)
	drain := append(append(append([]string{}, g...), "server", "--drain", "--workers", "2", "--name", "batch"), fast...)
	mustRun(t, drain...)
	if r := mustRun(t, append(g, "job", "show", ok, "--json")...); !strings.Contains(r.stdout, `"state": "completed"`) {
		t.Errorf("after the drain the job is not completed: %s", r.stdout)
	}

	mustRun(t, append(g, "job", "enqueue", "nap", "--param", "fail=true", "--retry-limit", "0")...)
	r := run(t, context.Background(), append(drain, "--fail-on-job-failure")...)
	if r.code != ExitFailure {
		t.Errorf("drain with a failing job: exit %d, want 1; stderr %q", r.code, r.stderr)
	}
	oneErrorLine(t, r, "server: 1 jobs this server ran failed")

	mustRun(t, append(g, "job", "enqueue", "nap", "--param", "ms=60000")...)
	r = run(t, context.Background(), append(drain, "--drain-timeout", "1s", "--shutdown-timeout", "100ms")...)
	if r.code != ExitFailure {
		t.Errorf("drain past its timeout: exit %d, want 1; stderr %q", r.code, r.stderr)
	}
	oneErrorLine(t, r, "drain timed out after 1s with work left")

	r = run(t, context.Background(), append(g, "server", "--drain-timeout", "1s")...)
	if r.code != ExitUsage {
		t.Errorf("--drain-timeout without --drain: exit %d, want 2", r.code)
	}
}
