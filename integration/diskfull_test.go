package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/examples"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// smallDisk mounts a tmpfs of the given size (e.g. "64m") on a new folder
// and unmounts it at the end of the test (register it before starting
// processes that use it, so it is unmounted after they are gone). Without
// the right to mount, the test fails under CI=true and is skipped otherwise.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		msg := fmt.Sprintf("cannot mount a %s tmpfs on %s (%v): this test needs root (or CAP_SYS_ADMIN) to fill a small disk", size, dir, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// smallDiskCluster starts `rocketjob db` on the data folder data (on a
// small disk) and connects a Go client to it; the cluster's files go to dir.
func smallDiskCluster(t *testing.T, dir, data string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: dir}
	c.db = startProc(t, dir, "db", baseEnv(), "db", "--data", data, "--listen", "127.0.0.1:0")
	c.uri = waitURI(t, c.db)
	reg := rocketjob.NewRegistry()
	if err := examples.Register(reg); err != nil {
		t.Fatal(err)
	}
	client, err := rocketjob.NewClient(ctx(t), rocketjob.Config{URI: c.uri, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	c.client = client
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Close(cctx)
	})
	return c
}

// diskUse returns the bytes used and available on the file system of dir.
func diskUse(t *testing.T, dir string) (used, free int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize, int64(st.Bavail) * st.Bsize
}

// fillDisk writes a file of real bytes (a sparse file would take nothing)
// at path so that at most leave bytes stay free on its file system.
func fillDisk(t *testing.T, path string, leave int64) {
	t.Helper()
	_, free := diskUse(t, filepath.Dir(path))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte{0xff}, 1<<20)
	for n := free - leave; n > 0; {
		w, err := f.Write(chunk[:min(int64(len(chunk)), n)])
		n -= int64(w)
		if err != nil {
			t.Fatalf("filling the disk with %s: %v", path, err)
		}
	}
}

// Issue 13: an upload that fills the disk of the embedded database fails
// with one line that says the disk is full and where, without source
// locations; its slices are dropped at once (the database frees its reserve
// so that SQLite can delete); the database stays usable for work that fits.
func TestUploadOnAFullDisk(t *testing.T) {
	t.Parallel()
	disk := smallDisk(t, "64m")
	dir := t.TempDir()
	data := filepath.Join(disk, "data")
	c := smallDiskCluster(t, dir, data)

	// Larger than the disk.
	var big bytes.Buffer
	for i := range 1_500_000 {
		fmt.Fprintf(&big, "record %07d of a file larger than the disk of the database\n", i)
	}
	bigPath := writeFile(t, dir, "big.txt", big.Bytes())
	r := run(t, runOpts{env: []string{"ROCKETJOB_URI=" + c.uri}, timeout: 3 * time.Minute}, "upload", "--job", "copy", bigPath)
	r.expect(t, 1)
	line := r.oneLine(t)
	t.Logf("the upload failed with: %s", line)
	noStack(t, "the error line", line)
	for _, want := range []string{"disk is full", "data folder " + data, "the partial upload was removed"} {
		if !strings.Contains(line, want) {
			t.Errorf("the error line lacks %q: %q", want, line)
		}
	}
	if r.stdout != "" {
		t.Errorf("a failed upload printed %q on stdout", r.stdout)
	}
	// Dropped at once: by the time the command has exited.
	if colls := sliceCollections(t, c.uri); len(colls) > 0 {
		t.Fatalf("the failed upload left slice collections behind: %v", colls)
	}
	if n := c.jobCount(t); n != 0 {
		t.Fatalf("%d jobs after a failed upload, want none", n)
	}
	if !strings.Contains(c.db.stderr(), "is full: freed its") {
		t.Errorf("the database did not report freeing its reserve:\n%s", c.db.stderr())
	}

	// Work that fits still runs, twice over, and comes back exact.
	c.server("s1", 2, serverOpts{})
	for i := range 2 {
		small := numbered(20_000 + i)
		p := writeFile(t, dir, fmt.Sprintf("small-%d.txt", i), small)
		id := c.upload("copy", p)
		c.jobWait(id).expect(t, 0)
		sameBytes(t, fmt.Sprintf("output %d after the disk filled", i), c.download(id, fmt.Sprintf("out-%d.txt", i)), small)
		c.cliOK("job", "destroy", id)
	}
}

// Issue 13: the disk of the embedded database fills while a sliced job is
// processing (its output does not fit, even with the database's reserve);
// the job waits, and once space is freed it goes on by itself and
// completes with exact output, with no slice left claimed.
func TestDiskFillsWhileProcessing(t *testing.T) {
	t.Parallel()
	disk := smallDisk(t, "96m")
	dir := t.TempDir()
	data := filepath.Join(disk, "data")
	c := smallDiskCluster(t, dir, data)
	eventually(t, 30*time.Second, "the database takes its disk reserve", func() (bool, string) {
		fi, err := os.Stat(filepath.Join(data, "rocketjob.reserve"))
		return err == nil && fi.Size() == 16<<20, fmt.Sprintf("%v %v", fi, err)
	})

	// An input that fits with room to spare.
	var in bytes.Buffer
	for i := range 300_000 {
		fmt.Fprintf(&in, "record %07d of a job whose output will not fit on the disk\n", i)
	}
	usedBefore, _ := diskUse(t, disk)
	id := c.upload("copy", writeFile(t, dir, "in.txt", in.Bytes()))
	usedAfter, free := diskUse(t, disk)
	stored := usedAfter - usedBefore
	t.Logf("%d input bytes take %d MiB on the disk; %d MiB free", in.Len(), stored>>20, free>>20)
	// The output takes about as much again: leave 1 MiB free, so that it
	// cannot fit even in the 16 MiB reserve the database frees.
	if stored < 24<<20 {
		t.Fatalf("the input takes only %d MiB on the disk: the output would fit in the database's 16 MiB reserve", stored>>20)
	}
	filler := filepath.Join(disk, "filler")
	fillDisk(t, filler, 1<<20)

	srv := c.server("s1", 2, serverOpts{})
	eventually(t, 2*time.Minute, "the disk fills and the database's reserve is used up", func() (bool, string) {
		return strings.Contains(c.db.stderr(), "is full, and its reserve is already used"), "database stderr: " + clip(c.db.stderr())
	})
	if !strings.Contains(c.db.stderr(), "is full: freed its 16 MiB reserve") {
		t.Errorf("the database did not report freeing its reserve:\n%s", c.db.stderr())
	}
	j := c.job(id)
	if j.State != rocketjob.StateRunning {
		t.Fatalf("job %s while the disk is full, want running", j.State)
	}
	p, err := c.client.Progress(ctx(t), j)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("disk full: job %s, %d of %d records processed", j.State, p.Processed, j.RecordCount)
	if p.Processed == 0 || p.Processed >= j.RecordCount {
		t.Fatalf("%d of %d records processed when the disk filled: want it to fill during processing", p.Processed, j.RecordCount)
	}

	// Space returns: the job goes on by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	_, free = diskUse(t, disk)
	t.Logf("filler removed: %d MiB free", free>>20)
	freed := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			logDiskAndSlices(t, c.uri, id, disk, data)
		}
	})
	for end := freed.Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if halfCreated.MatchString(srv.stderr()) {
			// Uploads create a job's slice collections while there is room
			// (SliceStore.Prepare), so this must not happen.
			logDiskAndSlices(t, c.uri, id, disk, data)
			t.Fatalf("a slice collection was half created on the full disk: %s", halfCreated.FindString(srv.stderr()))
		}
		if j = c.job(id); j.State == rocketjob.StateCompleted || j.State == rocketjob.StateFailed || j.State == rocketjob.StateAborted {
			break
		}
		if time.Now().After(end) {
			unfinished, orphaned := logDiskAndSlices(t, c.uri, id, disk, data)
			const claimFailed = "claiming slices: the database's disk is full"
			for _, line := range strings.Split(srv.stderr(), "\n") {
				if strings.Contains(line, claimFailed) {
					t.Logf("server log: %s", line)
				}
			}
			t.Logf("%d slices unfinished, %d of them claimed by no live worker", unfinished, orphaned)
			t.Fatalf("job %s step %s %s after space returned, want it ended", j.State, j.Step, time.Since(freed).Round(time.Second))
		}
	}
	t.Logf("the job ended (%s) %s after space returned", j.State, time.Since(freed).Round(100*time.Millisecond))
	if j.State != rocketjob.StateCompleted || j.ProcessedCount != 300_000 || j.FailedRecordCount != 0 {
		t.Fatalf("job %s: %d processed, %d failed (%+v); want completed, 300,000 processed", j.State, j.ProcessedCount, j.FailedRecordCount, j.Failure)
	}
	sameBytes(t, "output after the disk filled", c.download(id, "out.txt"), in.Bytes())
	checkSliceState(t, c.uri, id) // every claim is of a finished slice
	eventually(t, 30*time.Second, "no server works on the job's slices", func() (bool, string) {
		return c.idle(t, id), "a server's heartbeat still counts slices of the job in processing"
	})
}

// halfCreated is the error of a write to a collection whose creation a full
// disk interrupted in FerretDB v1.24.2: the SQLite table exists, the
// collection's metadata does not.
var halfCreated = regexp.MustCompile(`SQL logic error: table \\?"[^"\\]+\\?" already exists`)

// idle reports whether no live server's workers are on the job's slices.
func (c *cluster) idle(t *testing.T, id string) bool {
	list, err := c.client.Servers(ctx(t))
	if err != nil {
		t.Logf("listing servers: %v", err)
		return false
	}
	for _, s := range list {
		if s.Processing[id] > 0 {
			return false
		}
	}
	return true
}

// logDiskAndSlices logs the disk's free space, the data folder's files and
// the job's unfinished slices with their claims (by whom, when) and
// requeues. It returns how many slices are unfinished, and how many of
// them are claimed at their current attempt (no requeue after the claim).
func logDiskAndSlices(t *testing.T, uri, id, disk, data string) (unfinished, claimed int) {
	_, free := diskUse(t, disk)
	var files []string
	entries, _ := os.ReadDir(data)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			files = append(files, fmt.Sprintf("%s %d KiB", e.Name(), fi.Size()>>10))
		}
	}
	t.Logf("disk: %d KiB free; data folder: %s", free>>10, strings.Join(files, ", "))
	mc, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Logf("connecting: %v", err)
		return 0, 0
	}
	defer mc.Disconnect(context.Background())
	work := mc.Database("rocketjob_work")
	docs := func(kind string) []bson.M {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cur, err := work.Collection("slices_"+id+"_"+kind).Find(cctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "records", Value: 0}}))
		if err != nil {
			t.Logf("reading %s: %v", kind, err)
			return nil
		}
		var out []bson.M
		if err := cur.All(cctx, &out); err != nil {
			t.Logf("reading %s: %v", kind, err)
		}
		return out
	}
	at := func(d bson.M) string {
		if dt, ok := d["at"].(bson.DateTime); ok {
			return dt.Time().UTC().Format("15:04:05.000")
		}
		return fmt.Sprint(d["at"])
	}
	// ids are "<slice>" or "<slice>:<attempt>"
	split := func(d bson.M) (string, int) {
		s, _ := d["_id"].(string)
		n, a, _ := strings.Cut(s, ":")
		attempt, _ := strconv.Atoi(a)
		return n, attempt
	}
	done := map[string]bool{}
	for _, d := range docs("done") {
		n, _ := split(d)
		done[n] = true
	}
	claims, requeues := map[string][]string{}, map[string][]string{}
	lastClaim, lastRequeue := map[string]int{}, map[string]int{}
	for _, d := range docs("claims") {
		n, a := split(d)
		claims[n] = append(claims[n], fmt.Sprintf("%v by %v at %s", d["_id"], d["server"], at(d)))
		lastClaim[n] = max(lastClaim[n], a)
	}
	for _, d := range docs("requeue") {
		n, a := split(d)
		requeues[n] = append(requeues[n], fmt.Sprintf("%v at %s", d["_id"], at(d)))
		lastRequeue[n] = max(lastRequeue[n], a)
	}
	input := docs("input")
	for _, d := range input {
		n, _ := split(d)
		if done[n] {
			continue
		}
		unfinished++
		if lastClaim[n] >= max(1, lastRequeue[n]) {
			claimed++
		}
		if unfinished <= 40 {
			t.Logf("unfinished slice %s: claims %v; requeues %v", n, claims[n], requeues[n])
		}
	}
	t.Logf("%d input slices, %d done, %d unfinished, %d of them claimed at their current attempt", len(input), len(done), unfinished, claimed)
	return unfinished, claimed
}
