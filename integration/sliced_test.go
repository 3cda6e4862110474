package integration

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// mapLines is what a lines job with function fn outputs for input in when
// no record fails: the lines (split on "\n"; when the first line ends in
// "\r\n", the "\r" before each "\n" is part of the line ending) mapped by
// fn, joined with the input's line ending, with a final line ending only
// when the input has one.
func mapLines(in []byte, fn func(string) string) []byte {
	if len(in) == 0 {
		return nil
	}
	s := string(in)
	final := strings.HasSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\n")
	lines := strings.Split(s, "\n")
	eol := "\n"
	if first, _, found := strings.Cut(string(in), "\n"); found && strings.HasSuffix(first, "\r") {
		eol = "\r\n"
		for i := range lines {
			if i < len(lines)-1 || final { // a line that had a "\n" after it
				lines[i] = strings.TrimSuffix(lines[i], "\r")
			}
		}
	}
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteString(eol)
		}
		b.WriteString(fn(l))
	}
	if final {
		b.WriteString(eol)
	}
	return []byte(b.String())
}

func reverse(s string) string {
	r, err := examples.Reverse(context.Background(), s)
	if err != nil {
		panic(err)
	}
	return r
}

func identity(s string) string { return s }

// numbered returns n distinct lines "line 1\n" ... "line n\n".
func numbered(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.Bytes()
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// upload uploads path as a job of type typ and returns the job id.
func (c *cluster) upload(typ, path string, flags ...string) string {
	c.t.Helper()
	args := append([]string{"upload", "--job", typ}, flags...)
	id := c.cliOK(append(args, path)...)
	if !isJobID(id) {
		c.t.Fatalf("upload printed %q, want only a job id", id)
	}
	return id
}

// download downloads a job's output (or failed records) to a new file and
// returns its bytes.
func (c *cluster) download(id, name string, flags ...string) []byte {
	c.t.Helper()
	out := filepath.Join(c.dir, name)
	args := append([]string{"download"}, flags...)
	c.cliOK(append(args, id, out)...)
	return readFile(c.t, out)
}

// jobWait runs `rocketjob job wait ID` and returns its result. When the
// wait fails it logs the job as `job show --json` sees it then, and the
// servers' views of their work, so that a job that never ends says where
// it stopped.
func (c *cluster) jobWait(id string) result {
	c.t.Helper()
	r := c.cli("job", "wait", id, "--timeout", "2m")
	if r.code != 0 {
		c.t.Logf("the job when the wait failed:\n%s", c.cli("job", "show", "--json", id).stdout)
		c.t.Logf("the servers then:\n%s", c.cli("servers", "--json").stdout)
	}
	return r
}

// Issue 4, test 7: files of every awkward shape go through copy and reverse
// jobs (upload, wait, download) and come back byte for byte.
func TestUploadDownloadRoundTrips(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.server("A", 4, serverOpts{})

	rng := rand.New(rand.NewPCG(1, 2))
	long := make([]byte, 1<<20+12345) // one line over 1 MB
	for i := range long {
		long[i] = 'a' + byte(rng.IntN(26))
	}
	cases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"one line", []byte("hello\n")},
		{"one empty line", []byte("\n")},
		{"no trailing newline", []byte("first\nsecond\nno newline at the end")},
		{"crlf", []byte("one\r\ntwo\r\n\r\nfour\r\n")},
		{"crlf no trailing newline", []byte("one\r\ntwo")},
		{"unicode", []byte("héllo wörld\n日本語のテキスト\n🙂👍🏽 emoji\nÅngström\n")},
		{"invalid utf-8", []byte("bad \xff\xfe bytes\n\xc3\x28 half a rune\nend \xe2\x82\n")},
		{"nul bytes", []byte("a\x00b\n\x00\x00\nc\x00\n")},
		{"line over 1 MB", append(append([]byte("short\n"), long...), "\nafter\n"...)},
		{"2 lines", numbered(2)},
		{"3 lines", numbered(3)},
		{"4 lines", numbered(4)},
		{"6 lines", numbered(6)},
		{"7 lines", numbered(7)},
	}
	type job struct {
		name, typ, id string
		want          []byte
	}
	var jobs []job
	for i, tc := range cases {
		path := writeFile(t, c.dir, fmt.Sprintf("in-%d.txt", i), tc.in)
		for _, typ := range []string{"copy", "reverse"} {
			want := tc.in
			if typ == "reverse" {
				want = mapLines(tc.in, reverse)
			}
			if typ == "copy" && !bytes.Equal(mapLines(tc.in, identity), tc.in) {
				t.Fatalf("%s: mapLines is wrong", tc.name) // the helper itself
			}
			jobs = append(jobs, job{tc.name, typ, c.upload(typ, path, "--slice-size", "3"), want})
		}
	}
	// Compressed input, detected by the extension or by the magic bytes.
	plain := numbered(1000)
	gz := gzipBytes(t, plain)
	jobs = append(jobs,
		job{"gzip input", "copy", c.upload("copy", writeFile(t, c.dir, "in.txt.gz", gz)), plain},
		job{"gzip input without .gz", "copy", c.upload("copy", writeFile(t, c.dir, "in.data", gz)), plain},
		job{"gzip input reversed", "reverse", c.upload("reverse", writeFile(t, c.dir, "in2.txt.gz", gz), "--slice-size", "7"), mapLines(plain, reverse)},
	)
	// Standard input.
	stdin := run(t, runOpts{env: []string{"ROCKETJOB_URI=" + c.uri}, stdin: bytes.NewReader(plain)}, "upload", "--job", "reverse", "-")
	stdin.expect(t, 0)
	jobs = append(jobs, job{"stdin", "reverse", strings.TrimSpace(stdin.stdout), mapLines(plain, reverse)})

	for i, j := range jobs {
		t.Run(j.typ+" "+j.name, func(t *testing.T) {
			c := *c
			c.t = t
			c.jobWait(j.id).expect(t, 0)
			got := c.download(j.id, fmt.Sprintf("out-%d.txt", i))
			sameBytes(t, j.name, got, j.want)
		})
	}

	// Compressed output by extension, and output to stdout.
	id := jobs[len(jobs)-4].id // gzip input, copy
	zipped := c.download(id, "out.txt.gz")
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatalf("out.txt.gz is not gzip: %v", err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "gzip output", unzipped, plain)
	zst := c.download(id, "out.txt.zst")
	zd, err := zstd.NewReader(bytes.NewReader(zst))
	if err != nil {
		t.Fatal(err)
	}
	unzst, err := io.ReadAll(zd)
	zd.Close()
	if err != nil {
		t.Fatalf("out.txt.zst is not zstd: %v", err)
	}
	sameBytes(t, "zstd output", unzst, plain)
	r := c.cli("download", id, "-")
	r.expect(t, 0)
	sameBytes(t, "output to stdout", []byte(r.stdout), plain)
}

// lineCounts counts the records of one job in a run log.
func lineCounts(t *testing.T, path, typ, id string) map[string]int {
	t.Helper()
	l := readRunLog(t, path)
	m := map[string]int{}
	for _, ln := range l.lines {
		if ln.typ != typ || ln.job != id {
			t.Fatalf("run log line %q is not of the %s job %s", ln, typ, id)
		}
		m[ln.what]++
	}
	return m
}

// splitLines splits a file of "\n"-terminated lines.
func splitLines(in []byte) []string {
	return strings.Split(strings.TrimSuffix(string(in), "\n"), "\n")
}

// extraRuns compares the run log counts of a job with its input lines
// (distinct, sliceSize to a slice): it fails the test for a line that never
// ran or a line the log does not know, and returns the slices (numbered
// from 1) with lines that ran more than once, with their highest count.
func extraRuns(t *testing.T, counts map[string]int, lines []string, sliceSize int) map[int64]int {
	t.Helper()
	extra := map[int64]int{}
	bad := 0
	for i, l := range lines {
		n := counts[l]
		if n == 0 && bad < 10 {
			t.Errorf("line %d %q never ran", i+1, l)
			bad++
		}
		if n > 1 {
			num := int64(i/sliceSize) + 1
			extra[num] = max(extra[num], n)
		}
	}
	if len(counts) != len(lines) {
		t.Errorf("the run log has %d distinct lines, the input %d", len(counts), len(lines))
	}
	return extra
}

// lateClaims returns the slices claimed after the job completed. Servers
// whose claim pass started before the completion go on reading from their
// open cursor with a stale snapshot; the claims collection outlives the
// input (it is dropped only with the job) so their claims must fail as
// duplicates and nothing may be claimed, or run, again. Call it after the
// servers stopped.
func lateClaims(t *testing.T, uri, id string) map[int64]bool {
	t.Helper()
	mc, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(context.Background())
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	var job struct {
		CompletedAt time.Time `bson:"completed_at"`
	}
	if err := mc.Database(jobsDBName(uri)).Collection("jobs").FindOne(ctx(t), bson.D{{Key: "_id", Value: oid}}).Decode(&job); err != nil {
		t.Fatal(err)
	}
	cur, err := mc.Database(workDB(uri)).Collection("slices_"+id+"_claims").Find(ctx(t),
		bson.D{{Key: "at", Value: bson.D{{Key: "$gt", Value: job.CompletedAt}}}})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx(t), &docs); err != nil {
		t.Fatal(err)
	}
	late := map[int64]bool{}
	for _, d := range docs {
		var num int64
		var attempt int
		if _, err := fmt.Sscanf(d.ID, "%d:%d", &num, &attempt); err != nil {
			t.Fatalf("claim id %q: %v", d.ID, err)
		}
		late[num] = true
	}
	return late
}

// lateClaimsFound fails the test: a slice claimed after its job completed.
func lateClaimsFound(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Errorf(format, args...)
}

// checkOnce checks a job's run log for exactly-once processing after a run
// without crashes: every slice ran once, except slices claimed again after
// the job completed (the known bug of lateClaims). The servers must have
// stopped.
func (c *cluster) checkOnce(logf, typ, id string, in []byte, sliceSize int) {
	c.t.Helper()
	extra := extraRuns(c.t, lineCounts(c.t, logf, typ, id), splitLines(in), sliceSize)
	late := lateClaims(c.t, c.uri, id)
	var known []int64
	for num, n := range extra {
		if late[num] && n == 2 {
			known = append(known, num)
			continue
		}
		c.t.Errorf("slice %d ran %d times without any crash (claimed after completion: %t)", num, n, late[num])
	}
	if len(late) > 0 {
		slices.Sort(known)
		lateClaimsFound(c.t, "job %s: %d slices claimed again after the job completed; of them %d ran a second time: %v",
			id, len(late), len(known), known)
	}
}

// Issue 4, test 8: 16 workers in 4 processes on one job: the output is the
// input, and no slice is processed twice.
func TestFourServersOneCopyJob(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	logf := c.logPath("run.log")
	var servers []*proc
	for _, name := range []string{"A", "B", "C", "D"} {
		servers = append(servers, c.server(name, 4, serverOpts{log: logf}))
	}
	var b bytes.Buffer
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&b, "record %05d of twenty thousand\n", i)
	}
	in := b.Bytes()
	id := c.upload("copy", writeFile(t, c.dir, "in.txt", in), "--slice-size", "100")
	start := time.Now()
	c.jobWait(id).expect(t, 0)
	t.Logf("20,000 records in 200 slices on 4x4 workers: %s", time.Since(start).Round(time.Millisecond))
	sameBytes(t, "output", c.download(id, "out.txt"), in)
	for _, p := range servers {
		p.stop(15 * time.Second)
	}
	c.checkOnce(logf, "copy", id, in, 100)
}

// Issue 4, test 9: kill -9 of a server while it runs slices: the other
// server requeues them; the output has every line exactly once, in order;
// only the slices in flight on the killed server may have run twice.
func TestKill9ServerMidSlicedJob(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	logf := c.logPath("run.log")
	a := c.server("A", 2, serverOpts{log: logf})
	b := c.server("B", 2, serverOpts{log: logf})

	// 2,000 distinct lines that each sleep 5 ms: leading zeros and trailing
	// blanks make them distinct, the sleep job trims and parses them.
	const n, sliceSize = 2000, 10
	// A generous bound of what a killed server can have in flight: two
	// blocks of claimed slices (16 each, internal/store/slices_ferret.go).
	const maxInFlight = 32
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, "%s5%s\n", strings.Repeat("0", i%50), strings.Repeat(" ", i/50))
	}
	in := buf.Bytes()
	lines := strings.Split(strings.TrimSuffix(string(in), "\n"), "\n")
	id := c.upload("sleep", writeFile(t, c.dir, "in.txt", in), "--slice-size", fmt.Sprint(sliceSize))

	eventually(t, 60*time.Second, "slices are running", func() (bool, string) {
		n := len(readRunLog(t, logf).lines)
		return n >= 200, fmt.Sprintf("%d records processed", n)
	})
	a.kill9()
	processedAtKill := len(readRunLog(t, logf).lines)
	c.jobWait(id).expect(t, 0)

	sameBytes(t, "output", c.download(id, "out.txt"), in)
	b.stop(15 * time.Second)
	if !strings.Contains(b.stderr(), "dead=A") {
		t.Errorf("server B's log does not mention rescuing A")
	}
	if !strings.Contains(b.stderr(), "slices requeued") {
		t.Errorf("server B requeued no slice of A: were slices running on A at the kill?")
	}

	// Slices in flight on A ran twice: claimed (servers claim blocks of
	// slices) or processed but not yet written (completions are written in
	// batches). All others ran once, but for the known bug of slices
	// claimed again after completion.
	extra := extraRuns(t, lineCounts(t, logf, "sleep", id), lines, sliceSize)
	late := lateClaims(t, c.uri, id)
	var twice, known []int64
	for num, n := range extra {
		switch {
		case late[num] && n <= 3:
			known = append(known, num)
		case n == 2:
			twice = append(twice, num)
		default:
			t.Errorf("slice %d ran %d times", num, n)
		}
	}
	slices.Sort(twice)
	t.Logf("%d records processed at the kill; slices that ran twice: %v", processedAtKill, twice)
	if len(twice) > maxInFlight {
		t.Errorf("%d slices ran twice, more than a server can have in flight (%d): %v", len(twice), maxInFlight, twice)
	}
	if len(late) > 0 {
		slices.Sort(known)
		lateClaimsFound(t, "job %s: %d slices claimed again after the job completed; of them %d ran again: %v", id, len(late), len(known), known)
	}
}

// Issue 4, test 10: failed records fail the job, the good records are
// downloadable, the failed ones come with their errors, and a retry runs the
// failed records again without duplicating anything.
func TestFailedRecordsAndRetry(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	logf := c.logPath("run.log")
	c.server("A", 2, serverOpts{log: logf})

	in := writeFile(t, c.dir, "in.txt", []byte("1\n2\nx\n4\ny\n"))
	id := c.upload("square", in, "--slice-size", "2") // slices: [1 2] [x 4] [y]

	check := func(round int) {
		t.Helper()
		r := c.jobWait(id)
		r.expect(t, 1)
		if line := r.oneLine(t); !strings.Contains(line, "2 of 5 records failed") {
			t.Errorf("round %d: job wait says %q", round, line)
		}
		j := c.job(id)
		if j.State != rocketjob.StateFailed || j.Failure == nil || j.Failure.Message != "2 of 5 records failed" || j.FailedRecordCount != 2 {
			t.Fatalf("round %d: job is %s, failure %+v, failed_record_count %d", round, j.State, j.Failure, j.FailedRecordCount)
		}
		var show struct {
			ID                string `json:"id"`
			Type              string `json:"type"`
			State             string `json:"state"`
			Priority          int    `json:"priority"`
			RecordCount       int64  `json:"record_count"`
			ProcessedCount    int64  `json:"processed_count"`
			FailedRecordCount int64  `json:"failed_record_count"`
			Slices            *struct {
				Queued, Claimed, Running, Failed, Done int64
			} `json:"slices"`
		}
		if err := json.Unmarshal([]byte(c.cliOK("job", "show", id, "--json")), &show); err != nil {
			t.Fatalf("round %d: job show --json: %v", round, err)
		}
		if show.ID != id || show.Type != "square" || show.State != "failed" || show.Priority != 50 ||
			show.RecordCount != 5 || show.ProcessedCount != 5 || show.FailedRecordCount != 2 ||
			show.Slices == nil || *show.Slices != (struct{ Queued, Claimed, Running, Failed, Done int64 }{0, 0, 0, 2, 1}) {
			t.Errorf("round %d: job show --json: %+v slices %+v", round, show, show.Slices)
		}
		sameBytes(t, "output", c.download(id, fmt.Sprintf("out-%d.txt", round)), []byte("1\n4\n16\n"))

		rows, err := csv.NewReader(bytes.NewReader(c.download(id, fmt.Sprintf("failed-%d.csv", round), "--failed"))).ReadAll()
		if err != nil {
			t.Fatalf("round %d: the failed records are not CSV: %v", round, err)
		}
		want := [][]string{
			{"record", "error", "input"},
			{"3", `not an integer: "x"`, "x"},
			{"5", `not an integer: "y"`, "y"},
		}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("round %d: failed records\n got: %q\nwant: %q", round, rows, want)
		}
	}
	check(1)

	c.cliOK("job", "retry", id)
	check(2)
	// The retry ran the failed records again, and only them: "4", the good
	// record of the slice [x 4], kept its output from the first run.
	counts := lineCounts(t, logf, "square", id)
	want := map[string]int{"1": 1, "2": 1, "x": 2, "4": 1, "y": 2}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("records processed: %v, want %v", counts, want)
	}
}

// Issue 4, test 11: bad input is one clear error line, exit 1, and leaves
// no job and no slices behind.
func TestBadUploadsLeaveNothing(t *testing.T) {
	t.Parallel()
	c := newCluster(t)

	// Enough good records before the error that the upload has stored
	// slices (a batch is 1,000 slices) that it must remove again.
	var csvIn bytes.Buffer
	csvIn.WriteString("a,b\n")
	for i := 2; i <= 1501; i++ {
		fmt.Fprintf(&csvIn, "%d,x\n", i)
	}
	csvIn.WriteString("1502,\"unbalanced\n1503,y\n")

	var jsonl bytes.Buffer
	for i := 1; i <= 1500; i++ {
		fmt.Fprintf(&jsonl, "{\"n\":%d}\n", i)
	}
	jsonl.WriteString("{\"n\":\n{\"n\":1502}\n")

	var nums bytes.Buffer
	for i := range 100000 {
		fmt.Fprintf(&nums, "%d\n", i)
	}
	gz := gzipBytes(t, nums.Bytes())
	truncated := gz[:len(gz)/2]

	var zipBuf bytes.Buffer
	zw := zip.NewWriter(&zipBuf)
	for _, name := range []string{"a.txt", "b.txt"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "%s\n", name)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		file  string
		data  []byte
		flags []string
		want  []string // in the error line
	}{
		{"unbalanced csv quote", "bad.csv", csvIn.Bytes(), []string{"--format", "csv", "--slice-size", "1"}, []string{"bad.csv", "line 1502"}},
		{"invalid jsonl", "bad.jsonl", jsonl.Bytes(), []string{"--format", "jsonl", "--slice-size", "1"}, []string{"bad.jsonl", "line 1501"}},
		{"truncated gzip", "nums.txt.gz", truncated, []string{"--slice-size", "1"}, []string{"nums.txt.gz", "byte offset"}},
		{"zip with two entries", "two.zip", zipBuf.Bytes(), nil, []string{"two.zip", "2"}},
	}
	for _, tc := range cases {
		path := writeFile(t, c.dir, tc.file, tc.data)
		r := c.cli(append(append([]string{"upload", "--job", "copy"}, tc.flags...), path)...)
		r.expect(t, 1)
		line := r.oneLine(t)
		for _, w := range tc.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: the error does not mention %q: %q", tc.name, w, line)
			}
		}
		if r.stdout != "" {
			t.Errorf("%s: a failed upload printed %q on stdout", tc.name, r.stdout)
		}
	}

	// An unknown job type is refused before standard input is read: this
	// stdin never ends.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	defer pr.Close()
	r := run(t, runOpts{env: []string{"ROCKETJOB_URI=" + c.uri}, stdin: pr, timeout: 10 * time.Second}, "upload", "--job", "nosuch", "-")
	r.expect(t, 1)
	if line := r.oneLine(t); !strings.Contains(line, `"nosuch"`) {
		t.Errorf("unknown job type: %q", line)
	}
	t.Logf("unknown job type refused in %s", r.took.Round(time.Millisecond))

	if out := c.cliOK("job", "list", "--json"); out != "[]" {
		t.Errorf("failed uploads left jobs behind: %s", out)
	}
	if colls := sliceCollections(t, c.uri); len(colls) > 0 {
		t.Errorf("failed uploads left slice collections behind: %v", colls)
	}
}

// sliceCollections lists the slice collections in the work database.
func sliceCollections(t *testing.T, uri string) []string {
	t.Helper()
	mc, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(context.Background())
	names, err := mc.Database(workDB(uri)).ListCollectionNames(ctx(t), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, "slices_") {
			out = append(out, n)
		}
	}
	return out
}

// Issue 4, test 12: the FerretDB claim strategy across processes: three
// servers on one job of one-record slices process each slice once.
func TestThreeServersSliceSizeOne(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	logf := c.logPath("run.log")
	var servers []*proc
	for _, name := range []string{"A", "B", "C"} {
		servers = append(servers, c.server(name, 2, serverOpts{log: logf}))
	}
	in := numbered(500)
	id := c.upload("copy", writeFile(t, c.dir, "in.txt", in), "--slice-size", "1")
	start := time.Now()
	c.jobWait(id).expect(t, 0)
	t.Logf("500 one-record slices on 3x2 workers: %s", time.Since(start).Round(time.Millisecond))
	sameBytes(t, "output", c.download(id, "out.txt"), in)
	for _, p := range servers {
		p.stop(15 * time.Second)
	}
	c.checkOnce(logf, "copy", id, in, 1)
}
