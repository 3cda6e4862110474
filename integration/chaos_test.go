package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// TestChaos runs one sliced `sleep` job (slice size 100) on 3 server
// processes of 2 workers each and, while it runs, SIGKILLs a random server
// every 1-2 s and starts a new one under a new name; once during the run it
// also SIGKILLs the `rocketjob db` process and restarts it on the same port
// and data folder. At the end: the job completed without failed records,
// its output is its input byte for byte (every record exactly once, in
// order), no job is left unfinished, every claim's slice is done, only the
// job's output/done/claims/requeue/failed collections remain, and the run
// log shows every record at least once, with re-runs only for slices that
// got a new attempt (requeued after a kill) and no more of them than the
// kills can have had in flight.
//
// By default (CI) it runs 20,000 records with about 15 s of chaos, well
// under 90 s in all on 2 cores. For a soak test set, for example:
//
//	ROCKETJOB_CHAOS_N=200000 ROCKETJOB_CHAOS_DURATION=10m \
//	    go test ./integration -run TestChaos -v -timeout 30m
//
// ROCKETJOB_CHAOS_N is the number of records, ROCKETJOB_CHAOS_DURATION how
// long the kills go on; the per-record sleep is chosen so the job outlasts
// the chaos (about 1.5 times the duration without kills).
func TestChaos(t *testing.T) {
	const (
		sliceSize  = 100
		workers    = 2
		nServers   = 3
		claimAhead = 20 // slices a server holds claimed and not handed out, at most: a block of 16 plus the 4 left when it claims the next (internal/store/slices_ferret.go)
	)
	n := envInt(t, "ROCKETJOB_CHAOS_N", 20000, 1000)
	chaosFor := envDuration(t, "ROCKETJOB_CHAOS_DURATION", 15*time.Second, 5*time.Second)
	maxEvents := int(chaosFor/time.Second) + 1 // kills come every 1-2 s
	// Milliseconds per record so that the job takes ~1.5x the chaos
	// duration on nServers*workers workers without any kill.
	ms := max(1, int((3*chaosFor/2)*nServers*workers/time.Duration(n)/time.Millisecond))

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	t.Logf("chaos: %d records, %d ms each, slice size %d, %d servers x %d workers, chaos for %s, seed %d",
		n, ms, sliceSize, nServers, workers, chaosFor, seed)

	// Distinct lines that all sleep ms: the number, then the record's index
	// in binary as trailing blanks and tabs (the sleep job trims them and
	// outputs the line unchanged).
	bits := 1
	for 1<<bits < n {
		bits++
	}
	var buf bytes.Buffer
	for i := range n {
		buf.WriteString(strconv.Itoa(ms))
		for b := bits - 1; b >= 0; b-- {
			if i>>b&1 == 1 {
				buf.WriteByte('\t')
			} else {
				buf.WriteByte(' ')
			}
		}
		buf.WriteByte('\n')
	}
	in := buf.Bytes()
	lines := splitLines(in)

	ownDatabase(t)
	c := newCluster(t)
	u, err := url.Parse(c.uri)
	if err != nil {
		t.Fatal(err)
	}
	logf := c.logPath("run.log")
	next := 0
	newServer := func() (string, *proc) {
		next++
		name := fmt.Sprintf("S%d", next)
		return name, c.server(name, workers, serverOpts{log: logf})
	}
	live := map[string]*proc{}
	for range nServers {
		name, p := newServer()
		live[name] = p
	}

	id := c.upload("sleep", writeFile(t, c.dir, "in.txt", in), "--slice-size", fmt.Sprint(sliceSize))
	start := time.Now()
	completed := func() bool {
		j, err := c.client.Get(ctx(t), id)
		return err == nil && j.State == rocketjob.StateCompleted
	}

	// The chaos: a random server killed and replaced every 1-2 s; the
	// second event is a database restart instead.
	kills, dbRestarts := 0, 0
	var outage time.Duration
	for ev := 0; ev < maxEvents && time.Since(start) < chaosFor; ev++ {
		time.Sleep(time.Second + time.Duration(rng.Int64N(int64(time.Second))))
		if completed() {
			break
		}
		if ev == 1 {
			dbRestarts++
			outage = c.restartDB(t, u.Host, dbRestarts)
			continue
		}
		names := sortedKeys(live)
		victim := names[rng.IntN(len(names))]
		live[victim].kill9()
		delete(live, victim)
		kills++
		name, p := newServer()
		live[name] = p
	}
	if kills == 0 || dbRestarts == 0 {
		t.Errorf("the job ended before the chaos did anything (%d kills, %d database restarts): make the records slower", kills, dbRestarts)
	}

	job := c.waitJob(id, 2*time.Minute+chaosFor)
	took := time.Since(start)
	for name, p := range live {
		if !p.running() {
			t.Errorf("server %s died on its own (%s):\n%s", name, describeExit(p.waitErr), p.stderr())
			continue
		}
		if strings.Contains(p.stderr(), "panic") {
			t.Errorf("server %s logged a panic", name)
		}
		p.stop(15 * time.Second)
	}

	// The job and its output: every record exactly once, in order.
	if job.State != rocketjob.StateCompleted {
		t.Fatalf("job %s ended %s, want completed (failed records %d)", id, job.State, job.FailedRecordCount)
	}
	if job.FailedRecordCount != 0 {
		t.Errorf("job %s has %d failed records, want none", id, job.FailedRecordCount)
	}
	out := c.download(id, "out.txt")
	if !bytes.Equal(out, in) {
		missing, dup := outputDiff(lines, splitLines(out))
		t.Errorf("OUTPUT LOSS/DUPLICATION: %d input records missing from the output, %d output records more than once or unknown",
			missing, dup)
	}
	sameBytes(t, "output after the chaos", out, in)

	// No job stuck.
	all, err := c.client.List(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range all {
		if j.State != rocketjob.StateCompleted {
			t.Errorf("job %s (%s) is %s, want completed", j.ID.Hex(), j.Type, j.State)
		}
	}

	// No orphaned claims, no leftover slice collections.
	attempts := checkSliceState(t, c.uri, id)

	// The run log: every record ran; re-runs only for slices that were
	// claimed again (a new attempt after a requeue), or claimed after the
	// job completed (the known late-claims bug, see lateClaims).
	counts := lineCounts(t, logf, "sleep", id)
	extra := extraRuns(t, counts, lines, sliceSize)
	late := lateClaims(t, c.uri, id)
	rerunRecords := 0
	for _, l := range lines {
		rerunRecords += max(0, counts[l]-1)
	}
	var rerun, lateRerun []int64
	for num, times := range extra {
		switch {
		case attempts[num] > 1:
			rerun = append(rerun, num)
			if times > attempts[num]+1 { // +1: a late claim of the last attempt
				t.Errorf("slice %d ran %d times in %d attempts", num, times, attempts[num])
			}
		case late[num]:
			lateRerun = append(lateRerun, num)
		default:
			t.Errorf("slice %d ran %d times but was claimed in one attempt only (not in flight at a kill)", num, times)
		}
	}
	slices.Sort(rerun)
	slices.Sort(lateRerun)
	// Each server kill loses what the server had in flight: the slices it
	// claimed ahead plus a slice per worker; a database restart may make
	// every server look dead to the others.
	bound := (kills + dbRestarts*nServers) * (claimAhead + workers)
	if len(rerun) > bound {
		t.Errorf("%d slices ran again, more than %d kills and %d database restarts can have had in flight (%d): %v",
			len(rerun), kills, dbRestarts, bound, rerun)
	}
	if len(late) > 0 {
		t.Logf("known bug (late claims): %d slices claimed again after the job completed; %d of them ran again: %v",
			len(late), len(lateRerun), lateRerun)
	}
	t.Logf("CHAOS REPORT: %d records in %d slices; %d server kills, %d database restarts (outage %s); job took %s; "+
		"%d record runs in all, %d records re-run, in %d slices re-run after a requeue (bound %d) and %d after completion",
		n, job.SliceCount, kills, dbRestarts, outage.Round(time.Millisecond), took.Round(time.Millisecond),
		len(readRunLog(t, logf).lines), rerunRecords, len(rerun), bound, len(lateRerun))
}

// outputDiff counts input lines missing from the output and output lines
// beyond their count in the input.
func outputDiff(in, out []string) (missing, extra int) {
	want := map[string]int{}
	for _, l := range in {
		want[l]++
	}
	for _, l := range out {
		if want[l] > 0 {
			want[l]--
		} else {
			extra++
		}
	}
	for _, n := range want {
		missing += n
	}
	return missing, extra
}

// checkSliceState checks a completed job's slice collections in the work
// database: every claim is of a slice that is done, and only the job's
// output, done, claims, requeue and failed collections remain. It returns
// the highest attempt claimed of each slice.
func checkSliceState(t *testing.T, uri, id string) map[int64]int {
	t.Helper()
	mc, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(context.Background())
	work := mc.Database(workDB(uri))
	ids := func(kind string) []string {
		cur, err := work.Collection("slices_"+id+"_"+kind).Find(ctx(t), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var docs []struct {
			ID string `bson:"_id"`
		}
		if err := cur.All(ctx(t), &docs); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range docs {
			out = append(out, d.ID)
		}
		return out
	}
	done := map[int64]bool{}
	for _, s := range ids("done") {
		num, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("done id %q: %v", s, err)
		}
		done[num] = true
	}
	attempts := map[int64]int{}
	var orphans []string
	for _, s := range ids("claims") {
		var num int64
		var attempt int
		if _, err := fmt.Sscanf(s, "%d:%d", &num, &attempt); err != nil {
			t.Fatalf("claim id %q: %v", s, err)
		}
		attempts[num] = max(attempts[num], attempt)
		if !done[num] {
			orphans = append(orphans, s)
		}
	}
	if len(orphans) > 0 {
		t.Errorf("%d claims of slices that are not done: %v", len(orphans), orphans)
	}
	allowed := map[string]bool{}
	for _, kind := range []string{"output", "done", "claims", "requeue", "failed"} {
		allowed["slices_"+id+"_"+kind] = true
	}
	for _, name := range sliceCollections(t, uri) {
		if !allowed[name] {
			t.Errorf("slice collection %s remains after the job completed", name)
		}
	}
	return attempts
}

// restartDB SIGKILLs the cluster's database, leaves it down for 2 s (servers
// see connection errors meanwhile), starts it again on the same address and
// data folder (the n-th restart) and waits until it answers. It returns how
// long the outage lasted.
func (c *cluster) restartDB(t *testing.T, host string, n int) time.Duration {
	t.Helper()
	down := time.Now()
	c.db.kill9()
	time.Sleep(2 * time.Second) // the outage itself, not a wait for a condition
	c.db = startProc(t, c.dir, fmt.Sprintf("db-restart-%d", n), baseEnv(),
		"db", "--data", filepath.Join(c.dir, "data"), "--listen", host)
	eventually(t, 30*time.Second, "the restarted database answers", func() (bool, string) {
		if !c.db.running() {
			t.Fatalf("the restarted database exited (%s):\n%s", describeExit(c.db.waitErr), c.db.stderr())
		}
		_, err := c.client.Servers(ctx(t))
		return err == nil, fmt.Sprint(err)
	})
	return time.Since(down)
}

// envInt is the integer in the environment variable name (at least min),
// or def when it is unset; anything else fails the test.
func envInt(t *testing.T, name string, def, min int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < min {
		t.Fatalf("%s=%q: want an integer of at least %d", name, s, min)
	}
	return v
}

// envDuration is the duration in the environment variable name (at least
// min), or def when it is unset; anything else fails the test.
func envDuration(t *testing.T, name string, def, min time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < min {
		t.Fatalf("%s=%q: want a duration of at least %s", name, s, min)
	}
	return d
}
