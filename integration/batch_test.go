package integration

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 16: kill -9 of a server while it runs a triage job (output
// categories and statistics): the other server requeues its slices, some
// slices run twice, and yet each category's output and each statistic is
// exactly what a run without crashes gives (counted once), the counts add
// up (output + failed + dropped = records), and the records come in input
// order.
func TestKill9TriageCategoriesAndStatisticsExactlyOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	logA, logB := c.logPath("runA.log"), c.logPath("runB.log")
	// A's records past its 2,250th wait, so that A stops inside a slice:
	// every record is logged (empty lines too), slices hold 500, and 2,250
	// is no multiple of 500. Records run fast: polling the log for a half
	// done slice without the stall missed them on a busy machine.
	a := c.server("A", 2, serverOpts{log: logA, stallAfter: 2250})
	b := c.server("B", 2, serverOpts{log: logB})

	const n, sliceSize = 30000, 500
	var in, even, odd bytes.Buffer
	var evens, odds, empty, bad int64
	for i := 1; i <= n; i++ {
		switch {
		case i%7 == 0:
			in.WriteString("\n")
			empty++
		case i%11 == 0:
			fmt.Fprintf(&in, "x%d\n", i)
			bad++
		case i%2 == 0:
			fmt.Fprintf(&in, "%d\n", i)
			fmt.Fprintf(&even, "%d\n", i)
			evens++
		default:
			fmt.Fprintf(&in, "%d\n", i)
			fmt.Fprintf(&odd, "%d\n", i)
			odds++
		}
	}
	id := c.upload("triage", writeFile(t, c.dir, "in.txt", in.Bytes()), "--slice-size", fmt.Sprint(sliceSize))
	// Kill A in the middle of a slice: when its run log has some of a
	// slice's records but not all (records are numbered by their value),
	// which the stall above makes certain.
	perSlice := map[int]int{} // slice -> records with a value (not empty lines)
	for i := 1; i <= n; i++ {
		if i%7 != 0 {
			perSlice[(i-1)/sliceSize]++
		}
	}
	midSlice := func() (bool, string) {
		got := map[int]int{}
		lines := readRunLog(t, logA).lines
		for _, l := range lines {
			if i, err := strconv.Atoi(strings.TrimPrefix(l.what, "x")); err == nil {
				got[(i-1)/sliceSize]++
			}
		}
		for k, m := range got {
			if m < perSlice[k] && len(lines) >= 2000 { // some slices done, one half done
				return true, ""
			}
		}
		return false, fmt.Sprintf("A processed %d records, no slice half done (records with a value per slice: %v)", len(lines), got)
	}
	eventuallyEvery(t, 60*time.Second, 10*time.Millisecond, "A is in the middle of a slice", midSlice)
	a.kill9()
	atKill := len(readRunLog(t, logA).lines)
	c.jobWait(id).expect(t, 1) // the x lines fail the job

	sameBytes(t, "output even", c.download(id, "even.txt", "--category", "even"), even.Bytes())
	sameBytes(t, "output odd", c.download(id, "odd.txt", "--category", "odd"), odd.Bytes())
	var v struct {
		State             string           `json:"state"`
		RecordCount       int64            `json:"record_count"`
		FailedRecordCount int64            `json:"failed_record_count"`
		DroppedCount      int64            `json:"dropped_count"`
		Statistics        map[string]int64 `json:"statistics"`
		Categories        map[string]int64 `json:"categories"`
	}
	if err := json.Unmarshal([]byte(c.cliOK("job", "show", id, "--json")), &v); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"even": evens, "odd": odds}
	if v.State != "failed" || v.RecordCount != n || v.FailedRecordCount != bad || v.DroppedCount != empty ||
		!reflect.DeepEqual(v.Statistics, want) || !reflect.DeepEqual(v.Categories, want) {
		t.Errorf("job show: %+v; want %d records, %d failed, %d dropped, statistics and categories %v", v, n, bad, empty, want)
	}
	b.stop(15 * time.Second)
	if !strings.Contains(b.stderr(), "slices requeued") {
		t.Errorf("server B requeued no slice of A: were slices running on A at the kill?")
	}
	// Some records ran twice (the slices in flight on A), which the
	// statistics and outputs above did not count twice.
	runs := readRunLog(t, logA).counts(func(l logLine) string { return l.what })
	for what, k := range readRunLog(t, logB).counts(func(l logLine) string { return l.what }) {
		runs[what] += k
	}
	again := 0
	for what, k := range runs {
		if what != "" && !strings.HasPrefix(what, "x") && k > 1 {
			again++
		}
	}
	t.Logf("%d records processed at the kill; %d integer records ran more than once", atKill, again)
	if again == 0 {
		t.Errorf("no record ran twice: the kill hit no slice in flight, so this run proves nothing")
	}
}

// Issue 16, the shipped prefix example from the command line: an upload
// without its required parameter exits 2 with one line and stores nothing;
// with --param text=... and --notify the output is text and the line, and a
// server started with --webhook-secret POSTs the job's end once, signed.
func TestPrefixParamAndSignedWebhook(t *testing.T) {
	t.Parallel()
	const secret = "integration-secret"
	type post struct {
		body     []byte
		sig, key string
	}
	posts := make(chan post, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		posts <- post{body, r.Header.Get("X-Rocketjob-Signature"), r.Header.Get("X-Rocketjob-Delivery")}
	}))
	defer hook.Close()

	c := newCluster(t)
	in := writeFile(t, c.dir, "in.txt", []byte("a\nb\n"))
	r := c.cli("upload", "--job", "prefix", in)
	r.expect(t, 2)
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "text is required") || r.stdout != "" {
		t.Errorf("upload without text: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if n := c.jobCount(t); n != 0 {
		t.Errorf("%d jobs after a refused upload", n)
	}
	if colls := sliceCollections(t, c.uri); len(colls) != 0 {
		t.Errorf("slice collections after a refused upload: %v", colls)
	}

	c.server("A", 2, serverOpts{args: []string{"--webhook-secret", secret, "--public-url", "https://jobs.example"}})
	id := c.upload("prefix", in, "--param", "text=>> ", "--notify", hook.URL+"/end")
	c.jobWait(id).expect(t, 0)
	sameBytes(t, "output", c.download(id, "out.txt"), []byte(">> a\n>> b\n"))
	var p post
	select {
	case p = <-posts:
	case <-time.After(60 * time.Second):
		t.Fatal("no webhook within a minute")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(p.body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); p.sig != want {
		t.Errorf("signature %q, want %q", p.sig, want)
	}
	var n struct {
		ID, State   string
		RecordCount int64 `json:"record_count"`
		Results     map[string]string
	}
	if err := json.Unmarshal(p.body, &n); err != nil {
		t.Fatal(err)
	}
	if n.ID != id || n.State != "completed" || n.RecordCount != 2 || n.Results["output"] != "https://jobs.example/api/jobs/"+id+"/output" || !strings.HasPrefix(p.key, id+":completed:") {
		t.Errorf("webhook %s (delivery %q)", p.body, p.key)
	}
	select {
	case again := <-posts:
		t.Errorf("a second webhook for one end: %s", again.body)
	case <-time.After(2 * time.Second): // a few ender passes
	}
}
