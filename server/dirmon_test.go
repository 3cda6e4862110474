package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// dirmonSetup returns a client with the sliced types upcase (lines) and
// people (CSV), its store, a Dirmon root folder and the jobs database.
func dirmonSetup(t *testing.T) (c *rocketjob.Client, st *store.Store, root, jobsDB string) {
	t.Helper()
	reg := rocketjob.NewRegistry()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sliced.RegisterLines(reg, "upcase", func(_ context.Context, l string) (string, error) { return strings.ToUpper(l), nil }, nil))
	must(sliced.RegisterCSV(reg, "people", func(_ context.Context, _, row []string) ([]string, error) { return row, nil }, nil))
	c, st, jobsDB = retentionClient(t, reg)
	root, err := filepath.EvalSymlinks(t.TempDir())
	must(err)
	return c, st, root, jobsDB
}

// addInEntry adds the enabled entry "in" (upcase jobs) on ROOT/in, with
// Dirmon's collections, and returns its folder and the entry.
func addInEntry(t *testing.T, c *rocketjob.Client, st *store.Store, root string) (string, *sliced.DirmonEntry) {
	t.Helper()
	ctx := context.Background()
	in := filepath.Join(root, "in")
	e := sliced.DirmonEntry{Name: "in", Folder: in, Type: "upcase", Enabled: true}
	if err := sliced.AddDirmon(ctx, c, &e); err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureDirmon(ctx); err != nil {
		t.Fatal(err)
	}
	return in, &e
}

// takeAs writes the file name with content into the folder in of entry
// "in" and records it taken by server (attempt 1, a job id of its own), as
// a scan of that server would have.
func takeAs(t *testing.T, st *store.Store, in, name, content, server string) *store.DirmonFile {
	t.Helper()
	path := filepath.Join(in, name)
	writeFile(t, path, content)
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	f := &store.DirmonFile{Key: dirmonKey("in", path, fi), Entry: "in", Path: path, Size: fi.Size(), ModTime: fi.ModTime(),
		Inode: inode(fi), JobID: bson.NewObjectID(), State: store.DirmonTaken, Server: server, Attempt: 1, TakenAt: time.Now()}
	if ok, err := st.TakeDirmonFile(context.Background(), f); !ok || err != nil {
		t.Fatalf("take %s: %v %v", name, ok, err)
	}
	return f
}

// beat registers a live server named name (Dirmon finishes the files of
// dead takers only).
func beat(t *testing.T, st *store.Store, name string) {
	t.Helper()
	if _, err := st.Heartbeat(context.Background(), &model.Server{Name: name, State: model.ServerRunning, HeartbeatAt: time.Now(), DeadAfter: time.Hour}); err != nil {
		t.Fatal(err)
	}
}

func startDirmon(t *testing.T, c *rocketjob.Client, st *store.Store, name string, roots ...string) *dirmon {
	t.Helper()
	d, err := newDirmon(dirmonConfig{Name: name, Roots: roots, Interval: 100 * time.Millisecond}, c, st, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	d.scanned = make(chan struct{}, 1)
	startStop(t, d)
	return d
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or 60 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileRecords(t *testing.T, st *store.Store, entry string) map[string]store.DirmonFile {
	t.Helper()
	list, err := st.DirmonFiles(context.Background(), entry, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.DirmonFile{}
	for _, f := range list {
		out[filepath.Base(f.Path)] = f
	}
	return out
}

func allJobs(t *testing.T, c *rocketjob.Client) []rocketjob.Job {
	t.Helper()
	jobs, err := c.List(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

// TestDirmonService: a file matching an entry is left alone at its first
// sighting, then uploaded as one job of the entry's type and options and
// moved to the archive folder as JOBID_NAME; files that do not match, hidden
// files, links and folders stay; a refused upload goes to the failed
// folder with a one-line reason and makes no job; a disabled entry and an
// entry outside the server's roots are not scanned.
func TestDirmonService(t *testing.T) {
	ctx := context.Background()
	c, st, root, _ := dirmonSetup(t)
	in := filepath.Join(root, "in")
	outside := t.TempDir()
	writeFile(t, filepath.Join(in, "a.txt"), "one\ntwo\nthree\n")
	writeFile(t, filepath.Join(in, "b.csv"), "x\n")
	writeFile(t, filepath.Join(in, ".c.txt"), "hidden\n")
	writeFile(t, filepath.Join(outside, "secret.txt"), "secret\n")
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(in, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(in, "dir.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "csv", "people.csv"), "name,age\nann,3\n")
	writeFile(t, filepath.Join(root, "off", "x.txt"), "x\n")
	writeFile(t, filepath.Join(outside, "y.txt"), "y\n")
	writeFile(t, filepath.Join(root, "ao", "z.txt"), "z\n")
	stop := false
	for _, e := range []sliced.DirmonEntry{
		{Name: "lines", Folder: in, Pattern: "*.txt", Type: "upcase", Enabled: true,
			Options: sliced.DirmonOptions{Priority: 7, Description: "partner drop", SliceSize: 2, StopOnError: &stop}},
		{Name: "csv", Folder: filepath.Join(root, "csv"), Type: "people", Enabled: true,
			Options: sliced.DirmonOptions{RequireColumns: []string{"id"}}},
		{Name: "off", Folder: filepath.Join(root, "off"), Type: "upcase"},
		{Name: "outside", Folder: outside, Type: "upcase", Enabled: true},
		{Name: "archive-outside", Folder: filepath.Join(root, "ao"), Archive: outside, Type: "upcase", Enabled: true},
	} {
		if err := sliced.AddDirmon(ctx, c, &e); err != nil {
			t.Fatal(err)
		}
	}
	d := startDirmon(t, c, st, "s1", root)
	passes(t, d.scanned, 1)
	// The first sighting never takes a file.
	if _, err := os.Stat(filepath.Join(in, "a.txt")); err != nil {
		t.Fatalf("a.txt was taken at its first sighting: %v", err)
	}

	var archived string
	waitFor(t, "a.txt archived and people.csv failed", func() bool {
		recs := fileRecords(t, st, "")
		a, b := recs["a.txt"], recs["people.csv"]
		archived = a.MovedTo
		return a.State == store.DirmonArchived && b.State == store.DirmonFailed
	})
	recs := fileRecords(t, st, "")
	a := recs["a.txt"]
	if want := filepath.Join(in, "archive", a.JobID.Hex()+"_a.txt"); archived != want {
		t.Errorf("archived to %q, want %q", archived, want)
	}
	if b, err := os.ReadFile(archived); err != nil || string(b) != "one\ntwo\nthree\n" {
		t.Errorf("archive holds %q, %v", b, err)
	}
	job, err := c.Get(ctx, a.JobID.Hex())
	if err != nil {
		t.Fatal(err)
	}
	if job.Type != "upcase" || job.Priority != 7 || job.Description != "partner drop" || job.SliceSize != 2 ||
		job.RecordCount != 3 || !job.CollectOutput {
		t.Errorf("job: type %s priority %d description %q slice size %d records %d collect %v",
			job.Type, job.Priority, job.Description, job.SliceSize, job.RecordCount, job.CollectOutput)
	}

	p := recs["people.csv"]
	failedPath := filepath.Join(root, "csv", "failed", p.JobID.Hex()+"_people.csv")
	if p.MovedTo != failedPath {
		t.Errorf("refused file moved to %q, want %q", p.MovedTo, failedPath)
	}
	reason, err := os.ReadFile(failedPath + ".reason")
	if err != nil || !strings.Contains(string(reason), "id") || strings.Count(string(reason), "\n") != 1 {
		t.Errorf("reason file: %q, %v", reason, err)
	}
	if _, err := c.Get(ctx, p.JobID.Hex()); err == nil {
		t.Error("a refused file made a job")
	}

	// Exactly one job; the others left alone.
	passes(t, d.scanned, 2)
	if jobs := allJobs(t, c); len(jobs) != 1 {
		t.Errorf("%d jobs, want 1", len(jobs))
	}
	for _, p := range []string{"in/b.csv", "in/.c.txt", "in/link.txt", "in/dir.txt", "off/x.txt", "ao/z.txt"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "y.txt")); err != nil {
		t.Errorf("a file outside the roots moved: %v", err)
	}
	if len(recs) != 2 {
		t.Errorf("file records: %v", recs)
	}
	entries, err := sliced.DirmonEntries(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name {
		case "lines", "csv":
			if e.Status == nil || e.Status.Server != "s1" || e.Status.Error != "" {
				t.Errorf("entry %s status %+v", e.Name, e.Status)
			}
		case "outside", "archive-outside":
			if e.Status != nil {
				t.Errorf("an entry outside the roots was scanned: %+v", e.Status)
			}
		}
	}
}

// TestDirmonResumesDeadTakers: files taken by a server that died are
// finished by another: one taken but not uploaded is uploaded under the
// job id chosen when it was taken (leftover slices of the dead upload
// dropped), one whose job exists is only archived, never uploaded again;
// a file taken by a live server is left to it.
func TestDirmonResumesDeadTakers(t *testing.T) {
	ctx := context.Background()
	c, st, root, _ := dirmonSetup(t)
	in, e := addInEntry(t, c, st, root)
	beat(t, st, "alive")
	take := func(name, content, server string) *store.DirmonFile { return takeAs(t, st, in, name, content, server) }
	// Died while uploading: a partial upload's slices are left.
	half := take("half.txt", "a\nb\n", "dead:1")
	if err := st.Slices().Prepare(ctx, half.JobID); err != nil {
		t.Fatal(err)
	}
	if err := st.Slices().InsertInput(ctx, half.JobID, []store.InputSlice{{Num: 1, First: 1, Count: 1, Records: []byte("junk")}}); err != nil {
		t.Fatal(err)
	}
	// Died after its job was written.
	done := take("done.txt", "c\n", "dead:2")
	opts := &sliced.UploadOptions{ID: done.JobID}
	if _, err := sliced.Upload(ctx, c, "upcase", strings.NewReader("c\n"), opts); err != nil {
		t.Fatal(err)
	}
	// Died after its job was committed and recorded (state uploaded), and
	// died after it had also moved the file: the file is archived under
	// that job's name, whoever finishes it.
	committed := func(name, content, server string) *store.DirmonFile {
		f := take(name, content, server)
		if _, err := sliced.Upload(ctx, c, "upcase", strings.NewReader(content), &sliced.UploadOptions{ID: f.JobID}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CommitDirmonFile(ctx, f.Key, f.JobID); err != nil {
			t.Fatal(err)
		}
		f.State = store.DirmonUploaded
		if err := st.UpdateDirmonFile(ctx, f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	recorded := committed("recorded.txt", "e\n", "dead:3")
	moved := committed("moved.txt", "f\n", "dead:4")
	if err := os.MkdirAll(filepath.Join(in, "archive"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved.Path, filepath.Join(in, "archive", moved.JobID.Hex()+"_moved.txt")); err != nil {
		t.Fatal(err)
	}
	// Archived under its committed job by a taker judged dead, its record
	// then written back to taken (a late takeover's write), and the job
	// gone since (destroyed): archived under the committed job, not
	// uploaded again or failed as gone.
	rewound := take("rewound.txt", "g\n", "dead:5")
	if _, err := st.CommitDirmonFile(ctx, rewound.Key, rewound.JobID); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(rewound.Path, filepath.Join(in, "archive", rewound.JobID.Hex()+"_rewound.txt")); err != nil {
		t.Fatal(err)
	}
	// Taken by a live server.
	busy := take("busy.txt", "d\n", "alive")

	d := startDirmon(t, c, st, "s2", root)
	waitFor(t, "the dead servers' files archived", func() bool {
		recs := fileRecords(t, st, "in")
		return recs["half.txt"].State == store.DirmonArchived && recs["done.txt"].State == store.DirmonArchived &&
			recs["recorded.txt"].State == store.DirmonArchived && recs["moved.txt"].State == store.DirmonArchived &&
			recs["rewound.txt"].State != store.DirmonTaken && recs["rewound.txt"].State != store.DirmonUploaded
	})
	passes(t, d.scanned, 2)
	recs := fileRecords(t, st, "in")
	if r := recs["busy.txt"]; r.State != store.DirmonTaken || r.Server != "alive" {
		t.Errorf("a live server's file: %+v", r)
	}
	resumed := recs["half.txt"]
	if resumed.Server != "s2" || resumed.Attempt != 2 || resumed.JobID == half.JobID || len(resumed.Jobs) != 2 {
		t.Errorf("resumed file: server %s attempt %d job %s (first attempt's %s)", resumed.Server, resumed.Attempt, resumed.JobID.Hex(), half.JobID.Hex())
	}
	for _, f := range []*store.DirmonFile{recorded, moved, rewound} {
		r := recs[filepath.Base(f.Path)]
		want := filepath.Join(in, "archive", f.JobID.Hex()+"_"+filepath.Base(f.Path))
		if r.State != store.DirmonArchived || r.JobID != f.JobID || r.MovedTo != want || !exists(want) {
			t.Errorf("%s, committed as job %s: %s as job %s, moved to %q (want archived to %q) %s", filepath.Base(f.Path), f.JobID.Hex(), r.State, r.JobID.Hex(), r.MovedTo, want, r.Reason)
		}
	}
	jobs := allJobs(t, c)
	ids := []string{}
	for _, j := range jobs {
		ids = append(ids, j.ID.Hex())
		if time.Until(j.RunAt) > time.Minute {
			t.Errorf("job %s is still held (run at %v)", j.ID.Hex(), j.RunAt)
		}
	}
	slices.Sort(ids)
	want := []string{resumed.JobID.Hex(), done.JobID.Hex(), recorded.JobID.Hex(), moved.JobID.Hex()}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("jobs %v, want %v", ids, want)
	}
	job, err := c.Get(ctx, resumed.JobID.Hex())
	if err != nil || job.RecordCount != 2 {
		t.Fatalf("resumed upload: %v records, %v", job.RecordCount, err)
	}
	// The live taker of busy.txt finishes it even in periods whose scan
	// another server wins.
	alive, err := newDirmon(dirmonConfig{Name: "alive", Roots: []string{root}, Interval: time.Hour}, c, st, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	alive.resumeOwn(ctx, e)
	if r := fileRecords(t, st, "in")["busy.txt"]; r.State != store.DirmonArchived || r.Server != "alive" {
		t.Errorf("the live taker's own file after resumeOwn: %+v", r)
	}
	if _, err := c.Get(ctx, busy.JobID.Hex()); err != nil {
		t.Errorf("busy.txt's job: %v", err)
	}

	// The first taker of half.txt was only paused, not dead: it finishes
	// its upload (held) and tries to commit it: it loses, its job is
	// destroyed, and its record writes are refused.
	stale := *half
	if _, err := sliced.Upload(ctx, c, "upcase", strings.NewReader("a\nb\n"), &sliced.UploadOptions{ID: half.JobID, RunAt: time.Now().Add(dirmonHold)}); err != nil {
		t.Fatal(err)
	}
	if !d.commit(ctx, &stale, half.JobID, quietLog) || stale.JobID != resumed.JobID {
		t.Errorf("the paused taker's commit: kept %s, want %s", stale.JobID.Hex(), resumed.JobID.Hex())
	}
	if _, err := c.Get(ctx, half.JobID.Hex()); err == nil {
		t.Error("the paused taker's job was not destroyed")
	}
	stale.State = store.DirmonFailed
	if err := st.UpdateDirmonFile(ctx, &stale); !errors.Is(err, store.ErrDirmonTakenOver) {
		t.Errorf("a stale record write: %v", err)
	}
	if n := len(allJobs(t, c)); n != 5 {
		t.Errorf("%d jobs after the paused taker woke up, want 5", n)
	}
}

// TestDirmonServersTakeEachFileOnce: two servers scanning the same folder
// make exactly one job per file.
func TestDirmonServersTakeEachFileOnce(t *testing.T) {
	ctx := context.Background()
	c, st, root, _ := dirmonSetup(t)
	in := filepath.Join(root, "in")
	const n = 12
	for i := range n {
		writeFile(t, filepath.Join(in, fmt.Sprintf("f%02d.txt", i)), fmt.Sprintf("line %d\n", i))
	}
	e := sliced.DirmonEntry{Name: "in", Folder: in, Type: "upcase", Enabled: true}
	if err := sliced.AddDirmon(ctx, c, &e); err != nil {
		t.Fatal(err)
	}
	beat(t, st, "s1")
	beat(t, st, "s2")
	startDirmon(t, c, st, "s1", root)
	startDirmon(t, c, st, "s2", root)
	waitFor(t, "every file archived", func() bool {
		recs := fileRecords(t, st, "in")
		done := 0
		for _, r := range recs {
			if r.State == store.DirmonArchived {
				done++
			}
		}
		return done == n
	})
	if jobs := allJobs(t, c); len(jobs) != n {
		t.Fatalf("%d jobs for %d files", len(jobs), n)
	}
	left, _ := filepath.Glob(filepath.Join(in, "*.txt"))
	archived, _ := filepath.Glob(filepath.Join(in, "archive", "*_f*.txt"))
	if len(left) != 0 || len(archived) != n {
		t.Fatalf("left %v, archived %d", left, len(archived))
	}
}

// W won the takeover claim of a dead taker's file but its record write
// failed. W then loses the entry's scan to L every period (the same server
// may win every period): L's scan, losing the takeover claim, writes W
// into the record and skips the file (W is alive). W must finish it from
// its passes that lose the scan (before, it only looked when it had marked
// the entry pending, and the file stayed taken for good).
func TestDirmonWonUnrecordedTakeoverIsFinished(t *testing.T) {
	ctx := context.Background()
	c, st, root, jobsDB := dirmonSetup(t)
	in, _ := addInEntry(t, c, st, root)
	beat(t, st, "W")
	beat(t, st, "L")
	f := takeAs(t, st, in, "f.txt", "a\n", "dead:1")
	claims := dbtest.Client(t).Database(jobsDB).Collection("job_claims")
	// W's won claim of attempt 2 (its record write then failed).
	if _, err := claims.InsertOne(ctx, bson.D{{Key: "_id", Value: "dirmon-file:" + f.Key + ":2"},
		{Key: "server", Value: "W"}, {Key: "job", Value: bson.NewObjectID()}, {Key: "at", Value: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	w, err := newDirmon(dirmonConfig{Name: "W", Roots: []string{root}, Interval: time.Hour}, c, st, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	// L wins every scan of the entry this hour and the next.
	p := time.Now().UnixNano() / int64(time.Hour)
	for _, k := range []int64{p, p + 1} {
		if _, err := claims.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("dirmon:in:%d:%d", time.Hour.Milliseconds(), k)}, {Key: "at", Value: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	w.pass(ctx) // loses the scan: resumeOwn
	l, err := newDirmon(dirmonConfig{Name: "L", Roots: []string{root}, Interval: time.Hour}, c, st, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := sliced.DirmonEntries(ctx, c)
	if err != nil || len(entry) != 1 {
		t.Fatal(entry, err)
	}
	l.scan(ctx, &entry[0], func(n string) bool { return n == "W" || n == "L" })
	for range 3 {
		w.pass(ctx)
		l.scan(ctx, &entry[0], func(n string) bool { return n == "W" || n == "L" })
	}
	r := fileRecords(t, st, "in")["f.txt"]
	if !r.Done() {
		t.Fatalf("file left %s by %s (attempt %d) while W and L run", r.State, r.Server, r.Attempt)
	}
}
