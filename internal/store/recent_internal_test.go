package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
)

// openNewest opens a store on FerretDB databases of the test's own,
// marked new (its windows cover every job).
func openNewest(t *testing.T) *Store {
	t.Helper()
	dbtest.RequireFerretDB(t)
	return openInternal(t)
}

func newJobsIn(n int, state model.State) []*model.Job {
	now := time.Now().UTC()
	var jobs []*model.Job
	for i := range n {
		jobs = append(jobs, &model.Job{ID: bson.NewObjectID(), Type: "nap", Kind: model.KindSimple, State: state,
			Priority: 50 - i%2*10, RunAt: now, CreatedAt: now, Version: 1})
	}
	return jobs
}

// windowIDs returns the job ids in state's window, sorted.
func windowIDs(t *testing.T, s *Store, state model.State) []bson.ObjectID {
	t.Helper()
	entries, err := s.readWindow(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	var ids []bson.ObjectID
	for _, e := range entries {
		ids = append(ids, e.Job)
	}
	slices.SortFunc(ids, func(a, b bson.ObjectID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(ids)
}

// sameAsQuery checks that a newest-first listing gives what a query of the
// jobs collection gives.
func sameAsQuery(t *testing.T, s *Store, name string, f JobFilter) {
	t.Helper()
	f.Newest = true
	got, err := s.ListJobs(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.queryJobsMerged(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatalf("%s: the jobs collection gives no job: the check proves nothing", name)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d jobs, the jobs collection gives %d", name, len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID {
			t.Fatalf("%s: job %d is %s, the jobs collection gives %s", name, i, got[i].ID.Hex(), want[i].ID.Hex())
		}
	}
}

// TestNewestWindows writes more jobs of end states than a window keeps,
// moves jobs between states, and checks every newest-first listing
// against the jobs collection: from the windows, past them, after many
// old jobs come back to a state, and on a database written before the
// windows existed.
func TestNewestWindows(t *testing.T) {
	s := openNewest(t)
	ctx := context.Background()
	rare := newJobsIn(30, model.StateCompleted) // older than the window's jobs
	for _, j := range rare {
		j.Type = "rare"
	}
	completed := newJobsIn(2500, model.StateCompleted)
	failed := newJobsIn(1500, model.StateFailed)
	for _, batch := range [][]*model.Job{rare, completed, failed} {
		if _, err := s.InsertJobs(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(windowIDs(t, s, model.StateCompleted)); n > recentTrimAt+recentTailMax {
		t.Errorf("completed window holds %d jobs, want at most %d", n, recentTrimAt+recentTailMax)
	}
	marks, err := s.recentMarks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if marks[model.StateCompleted].all.IsZero() || !marks[model.StateAborted].all.IsZero() {
		t.Errorf("marks %v: want completed trimmed, aborted not", marks)
	}
	completedOnly := []model.State{model.StateCompleted}
	sameAsQuery(t, s, "completed, limit 50", JobFilter{States: completedOnly, Limit: 50})
	sameAsQuery(t, s, "all, limit 50", JobFilter{Limit: 50})
	sameAsQuery(t, s, "completed past the window", JobFilter{States: completedOnly, Skip: int64(len(completed) - 20), Limit: 50})
	// The rare type's jobs, older than the window's head, stay in its
	// tail: listed from the window.
	fallbacks := s.newestFallbacks.Load()
	sameAsQuery(t, s, "a type older than the window's head", JobFilter{Type: "rare", Limit: 20})
	if n := s.newestFallbacks.Load() - fallbacks; n != 0 {
		t.Errorf("the rare type's listing read every entry %d times, want its window's tail", n)
	}
	sameAsQuery(t, s, "a type, past the window", JobFilter{Type: "nap", States: completedOnly, Skip: 2400, Limit: 200})
	if s.newestFallbacks.Load() == fallbacks {
		t.Errorf("a page past the window was listed without reading every entry: the count proves nothing")
	}
	// A cut that kept no tails (as a failed window write marks) bounds
	// typed listings too: the rare jobs below it come from every entry.
	if err := s.putMarker(ctx, lwmMarker+string(model.StateCompleted)+"_"+rare[len(rare)-1].ID.Hex(), nil); err != nil {
		t.Fatal(err)
	}
	fallbacks = s.newestFallbacks.Load()
	sameAsQuery(t, s, "a type below a cut without tails", JobFilter{Type: "rare", Limit: 20})
	if s.newestFallbacks.Load() == fallbacks {
		t.Errorf("the rare type's listing trusted a tail below a cut that kept none")
	}

	// A new queued job, then a thousand old failed jobs retried (queued
	// again) and failed again: old ids re-enter the failed window.
	newest := newJobsIn(1, model.StateQueued)
	if _, err := s.InsertJobs(ctx, newest); err != nil {
		t.Fatal(err)
	}
	for i, j := range failed[:1000] {
		q, err := s.Transition(ctx, j, model.StateQueued, Change{}, "test")
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if failed[i], err = s.Transition(ctx, q, model.StateRunning, Change{}, "test"); err != nil {
				t.Fatal(err)
			}
			if failed[i], err = s.Transition(ctx, failed[i], model.StateFailed, Change{}, "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	sameAsQuery(t, s, "queued after the retries", JobFilter{States: []model.State{model.StateQueued}, Limit: 5})
	sameAsQuery(t, s, "failed after the retries", JobFilter{States: []model.State{model.StateFailed}, Limit: 50})
	sameAsQuery(t, s, "failed and queued, page 3", JobFilter{States: []model.State{model.StateFailed, model.StateQueued}, Skip: 50, Limit: 25})
	sameAsQuery(t, s, "all, after the retries", JobFilter{Limit: 50})
	// Most of the window's failed jobs retried too: the few left, then
	// failed jobs older than the window's mark, trimmed from it, come
	// before the old ones whose retries failed again (in the window).
	for _, j := range failed[1100:1490] {
		if _, err := s.Transition(ctx, j, model.StateQueued, Change{}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	sameAsQuery(t, s, "failed, the window's left few", JobFilter{States: []model.State{model.StateFailed}, Limit: 50})

	// A database written before the windows existed: the first listing
	// fills them from the state index.
	if _, err := s.jobsDB.Collection(stateIndexColl).DeleteMany(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []model.State{model.StateCompleted, model.StateFailed, model.StateAborted} {
		if err := s.windowColl(st).Drop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sameAsQuery(t, s, "completed, windows filled", JobFilter{States: completedOnly, Limit: 50})
	sameAsQuery(t, s, "failed, windows filled", JobFilter{States: []model.State{model.StateFailed}, Limit: 50})
	if n := len(windowIDs(t, s, model.StateCompleted)); n != recentKeep+len(rare) {
		t.Errorf("the filled completed window holds %d jobs, want %d (the head and the rare type's tail)", n, recentKeep+len(rare))
	}
	fallbacks = s.newestFallbacks.Load()
	sameAsQuery(t, s, "a rare type, windows filled", JobFilter{Type: "rare", Limit: 20})
	if n := s.newestFallbacks.Load() - fallbacks; n != 0 {
		t.Errorf("the rare type's listing read every entry %d times after the fill, want its window's tail", n)
	}
}

// TestNewestStaleEntriesGo retries failed jobs and checks that a
// newest-first listing of failed jobs removes their window entries.
func TestNewestStaleEntriesGo(t *testing.T) {
	s := openNewest(t)
	ctx := context.Background()
	failed := newJobsIn(10, model.StateFailed)
	if _, err := s.InsertJobs(ctx, failed); err != nil {
		t.Fatal(err)
	}
	for _, j := range failed[:5] {
		if _, err := s.Transition(ctx, j, model.StateQueued, Change{}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteJob(ctx, failed[5].ID); err != nil {
		t.Fatal(err)
	}
	sameAsQuery(t, s, "failed", JobFilter{States: []model.State{model.StateFailed}, Limit: 50})
	var want []bson.ObjectID
	for _, j := range failed[6:] {
		want = append(want, j.ID)
	}
	if got := windowIDs(t, s, model.StateFailed); !slices.Equal(got, want) {
		t.Errorf("failed window after the listing: %v, want %v", got, want)
	}
}

// TestNewestWindowTrim adds entries to a window a hundred at a time, as
// transitions do, and checks that trims keep it between recentKeep and
// recentTrimAt jobs, the newest ones, above the window's mark.
func TestNewestWindowTrim(t *testing.T) {
	s := openNewest(t)
	ctx := context.Background()
	all := newJobsIn(2*recentTrimAt+4*recentTrimEvery, model.StateCompleted) // three trims
	// Entered in an order other than creation: the window keeps the
	// newest by id, whatever the order of entry.
	slices.Reverse(all[:recentTrimAt])
	for chunk := range slices.Chunk(all, 100) {
		s.noteRecent(ctx, chunk...)
	}
	window := windowIDs(t, s, model.StateCompleted)
	if len(window) < recentKeep || len(window) > recentTrimAt {
		t.Fatalf("window of %d jobs after %d, want %d to %d", len(window), len(all), recentKeep, recentTrimAt)
	}
	ids := make([]bson.ObjectID, len(all))
	for i, j := range all {
		ids[i] = j.ID
	}
	slices.SortFunc(ids, func(a, b bson.ObjectID) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(window, ids[len(ids)-len(window):]) {
		t.Errorf("the window does not hold the newest jobs")
	}
	marks, err := s.recentMarks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := marks[model.StateCompleted].all; m.IsZero() || bytes.Compare(m[:], window[0][:]) >= 0 {
		t.Errorf("mark %s, want below the window's oldest %s and not nil", m.Hex(), window[0].Hex())
	}
	// The trims left a marker each; reading the marks prunes all but the
	// highest (listings read every marker).
	n, err := s.jobsDB.Collection(stateIndexColl).CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^" + lwmMarker}}}})
	if err != nil || n != 1 {
		t.Errorf("%d low-water markers after a read of the marks (%v), want 1", n, err)
	}
}

// TestNewestOnAnOlderDatabase lists newest first on a database written
// before windows existed, with fewer jobs than a window keeps: the first
// listing fills the windows before it reads them.
func TestNewestOnAnOlderDatabase(t *testing.T) {
	s := openNewest(t)
	ctx := context.Background()
	if _, err := s.InsertJobs(ctx, newJobsIn(100, model.StateCompleted)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.jobsDB.Collection(stateIndexColl).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$ne", Value: stateIndexDone}}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.windowColl(model.StateCompleted).Drop(ctx); err != nil {
		t.Fatal(err)
	}
	sameAsQuery(t, s, "completed, first listing", JobFilter{States: []model.State{model.StateCompleted}, Limit: 50})
}

// TestPlanWindowTails checks what a cut keeps: the head's every entry,
// each type's newest jobs below it (every version of a job together), no
// tail for entries without a type, and no more than recentTailMax below
// the head.
func TestPlanWindowTails(t *testing.T) {
	var entries []recentEntry
	add := func(typ string, n int) []bson.ObjectID {
		ids := make([]bson.ObjectID, n)
		for i := range ids {
			ids[i] = bson.NewObjectID()
			entries = append(entries, newRecentEntry(ids[i], 1, typ))
		}
		return ids
	}
	untyped := add("", 5)
	var many [][]bson.ObjectID // 12 types of 60: more than the tails hold
	for i := range 12 {
		many = append(many, add(fmt.Sprintf("t%02d", i), 60))
	}
	twice := add("two", 3) // two versions each
	for _, id := range twice {
		entries = append(entries, newRecentEntry(id, 2, "two"))
	}
	head := add("nap", recentKeep+100)
	plan := planWindow(entries)

	kept := map[bson.ObjectID]int{}
	for _, e := range plan.keep {
		kept[e.Job]++
	}
	for _, id := range head[100:] {
		if kept[id] != 1 {
			t.Fatalf("a job of the head has %d entries kept, want 1", kept[id])
		}
	}
	if want := head[99]; plan.cut != want || plan.types["nap"] != want {
		t.Errorf("cut %s, nap's mark %s, want both %s (the newest job below the head)", plan.cut.Hex(), plan.types["nap"].Hex(), want.Hex())
	}
	for _, id := range twice {
		if kept[id] != 2 {
			t.Errorf("a job of two versions has %d entries kept, want both", kept[id])
		}
	}
	tail := len(plan.keep) - recentKeep
	if tail > recentTailMax || tail < recentTailMax-recentTypeKeep {
		t.Errorf("%d entries kept below the head, want close to %d and no more", tail, recentTailMax)
	}
	// Newest types first: the last type's 50 newest kept, its 10 oldest
	// marked; the oldest types, past the tails' bound, marked at their newest.
	last := many[11]
	for _, id := range last[10:] {
		if kept[id] != 1 {
			t.Fatalf("type t11's newest jobs are not all kept")
		}
	}
	if got := plan.types["t11"]; got != last[9] {
		t.Errorf("t11's mark %s, want %s (its newest job past its %d)", got.Hex(), last[9].Hex(), recentTypeKeep)
	}
	if got := plan.types["t00"]; got != many[0][59] {
		t.Errorf("t00's mark %s, want its newest job %s (no room left in the tails)", got.Hex(), many[0][59].Hex())
	}
	if got := plan.types[""]; got != untyped[4] || kept[untyped[4]] != 0 {
		t.Errorf("entries without a type: mark %s, want %s, none kept", got.Hex(), untyped[4].Hex())
	}
	if len(plan.keep)+len(plan.drop) != len(entries) {
		t.Errorf("%d kept and %d dropped of %d entries", len(plan.keep), len(plan.drop), len(entries))
	}
}

// TestNewestWindowTrimKeepsTails adds a rare type's jobs, then many jobs
// of another type, as transitions do: the trims keep the rare type's
// newest recentTypeKeep jobs and mark the rest.
func TestNewestWindowTrimKeepsTails(t *testing.T) {
	s := openNewest(t)
	ctx := context.Background()
	rare := newJobsIn(80, model.StateCompleted)
	for _, j := range rare {
		j.Type = "rare"
	}
	s.noteRecent(ctx, rare...)
	for chunk := range slices.Chunk(newJobsIn(2*recentTrimAt+4*recentTrimEvery, model.StateCompleted), 100) {
		s.noteRecent(ctx, chunk...)
	}
	// Each trim marks the types it cuts, and prunes: one mark per type
	// stays, however many trims ran, with no listing to prune them.
	n, err := s.jobsDB.Collection(stateIndexColl).CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^" + lwmTypeMarker}}}})
	if err != nil || n != 2 {
		t.Errorf("%d type marks after the trims (%v), want 2 (nap's and rare's)", n, err)
	}
	inWindow := map[bson.ObjectID]bool{}
	for _, id := range windowIDs(t, s, model.StateCompleted) {
		inWindow[id] = true
	}
	for i, j := range rare {
		if want := i >= len(rare)-recentTypeKeep; inWindow[j.ID] != want {
			t.Fatalf("rare job %d of %d in the window: %v, want %v", i, len(rare), inWindow[j.ID], want)
		}
	}
	marks, err := s.recentMarks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := marks[model.StateCompleted]
	if want := rare[len(rare)-recentTypeKeep-1].ID; m.floor("rare") != want {
		t.Errorf("the rare type's floor %s, want %s", m.floor("rare").Hex(), want.Hex())
	}
	if f := m.floor(""); bytes.Compare(f[:], rare[len(rare)-1].ID[:]) <= 0 {
		t.Errorf("the floor of every type %s is not above the rare jobs", f.Hex())
	}
}

// TestNewestFailedWriteAtACut marks a failed window write whose newest job
// is the job a trim cut at: the cut's marker, written with tails, must
// lose them, or a listing of the job's type trusts a tail that lacks it.
func TestNewestFailedWriteAtACut(t *testing.T) {
	s := openNewest(t)
	ctx := context.Background()
	st := model.StateFailed
	old := newJobsIn(recentTrimAt-recentKeep, st)
	x := newJobsIn(1, st)
	x[0].Type = "rare"
	newer := newJobsIn(recentKeep, st)
	for _, batch := range [][]*model.Job{old[:300], old[300:], x, newer} {
		if _, err := s.InsertJobs(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.trimRecent(ctx, st); err != nil {
		t.Fatal(err)
	}
	marks, err := s.recentMarks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := marks[st]; m.all != x[0].ID || !m.floor("rare").IsZero() {
		t.Fatalf("after the trim: cut %s, the rare type's floor %s; want the cut at the rare job %s, kept in its tail",
			m.all.Hex(), m.floor("rare").Hex(), x[0].ID.Hex())
	}
	// The rare job's entry is lost (a write of it failed), and marked so.
	all, err := s.readWindow(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	gone := slices.DeleteFunc(slices.Clone(all), func(e recentEntry) bool { return e.Job != x[0].ID })
	if err := s.removeEntries(ctx, st, gone, all); err != nil {
		t.Fatal(err)
	}
	s.markMissing(ctx, st, []recentEntry{newRecentEntry(x[0].ID, x[0].Version, x[0].Type)})
	sameAsQuery(t, s, "the rare type after a failed write at the cut", JobFilter{Type: "rare", States: []model.State{st}, Limit: 10})
}

// TestWindowDocuments checks how a window is stored: the entries of one
// write in one document; a removal rewrites a document's other entries
// before it deletes it; entries of the legacy window (an entry per
// document, written by earlier builds) are read with the others, trimmed
// with them and removed by _id.
func TestWindowDocuments(t *testing.T) {
	s := openNewest(t)
	ctx := context.Background()
	st := model.StateCompleted
	jobs := newJobsIn(5, st)
	s.noteRecent(ctx, jobs...)
	n, err := s.windowColl(st).CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Fatalf("one write of 5 entries: %d window documents (%v), want 1", n, err)
	}
	all, err := s.readWindow(ctx, st)
	if err != nil || len(all) != 5 {
		t.Fatalf("read %d entries (%v), want 5", len(all), err)
	}
	if err := s.removeEntries(ctx, st, all[1:2], all); err != nil {
		t.Fatal(err)
	}
	want := []bson.ObjectID{jobs[0].ID, jobs[2].ID, jobs[3].ID, jobs[4].ID}
	slices.SortFunc(want, func(a, b bson.ObjectID) int { return bytes.Compare(a[:], b[:]) })
	if got := windowIDs(t, s, st); !slices.Equal(got, want) {
		t.Fatalf("after removing one entry: %v, want %v", got, want)
	}

	// A legacy window beside it, as an earlier build left it.
	legacy := newJobsIn(recentTrimAt, st)
	docs := make([]any, len(legacy))
	for i, j := range legacy {
		docs[i] = newRecentEntry(j.ID, j.Version, j.Type)
	}
	if _, _, err := insertMany(ctx, s.legacyWindow(st), docs); err != nil {
		t.Fatal(err)
	}
	if got := len(windowIDs(t, s, st)); got != recentTrimAt+4 {
		t.Fatalf("with the legacy window: %d jobs, want %d", got, recentTrimAt+4)
	}
	if err := s.trimRecent(ctx, st); err != nil {
		t.Fatal(err)
	}
	left, err := s.legacyWindow(st).CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	// The head is the newest jobs: the 4 new ones are the oldest, so a
	// trim keeps recentKeep legacy entries and drops the new ones.
	if left != recentKeep {
		t.Errorf("the trim left %d legacy entries, want %d", left, recentKeep)
	}
	if got := len(windowIDs(t, s, st)); got != recentKeep {
		t.Errorf("after the trim: %d jobs in the window, want %d", got, recentKeep)
	}
	marks, err := s.recentMarks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cut := legacy[len(legacy)-recentKeep-1].ID; marks[st].all != cut {
		t.Errorf("the trim's cut is %s, want %s (the newest job below the head)", marks[st].all.Hex(), cut.Hex())
	}
}
