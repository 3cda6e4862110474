package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	a := c.server("A", 2, serverOpts{log: logA})
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
	// slice's records but not all (records are numbered by their value).
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
		return false, fmt.Sprintf("A processed %d records, no slice half done", len(lines))
	}
	eventuallyEvery(t, 60*time.Second, time.Millisecond, "A is in the middle of a slice", midSlice)
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
