package server

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// The rest of a block is taken from the list like its first job: queued
// simple jobs of its type and priority, oldest first, of this server's
// stripe, not skipped; never a less urgent job, never one of another type,
// kind or priority.
func TestNextLikeTakesJobsLikeIt(t *testing.T) {
	mk := func(typ string, kind model.Kind, priority int) model.Job {
		return model.Job{ID: bson.NewObjectID(), Type: typ, Kind: kind, State: model.StateQueued, Priority: priority}
	}
	like := mk("a", model.KindSimple, 50)
	jobs := []model.Job{
		mk("a", model.KindSimple, 10), // more urgent: another worker's
		mk("b", model.KindSimple, 50),
		mk("a", model.KindSliced, 50),
		mk("a", model.KindSimple, 50), // skipped (taken)
		mk("a", model.KindSimple, 50),
		mk("a", model.KindSimple, 50),
		mk("a", model.KindSimple, 60), // less urgent
	}
	jobs[5].State = model.StateRunning
	sel := newSelector(nil, time.Hour, time.Hour)
	sel.setList(jobs)
	sel.skipFor(&jobs[3], time.Hour)
	if j := sel.nextLike(&like); j == nil || j.ID != jobs[4].ID {
		t.Fatalf("first: %v, want job 4", j)
	}
	if j := sel.nextLike(&like); j != nil {
		t.Fatalf("second: %s (%s, %s, priority %d), want none", j.ID.Hex(), j.Type, j.State, j.Priority)
	}

	// Two stripes: only this server's.
	var own, other []model.Job
	for len(own) < 3 || len(other) < 3 {
		j := mk("a", model.KindSimple, 50)
		if stripe(j.ID, 2) == 0 {
			own = append(own, j)
		} else {
			other = append(other, j)
		}
	}
	sel = newSelector(nil, time.Hour, time.Hour)
	sel.setList([]model.Job{other[0], own[0], other[1], own[1]})
	sel.rank, sel.of = 0, 2
	for _, want := range []bson.ObjectID{own[0].ID, own[1].ID} {
		if j := sel.nextLike(&like); j == nil || j.ID != want {
			t.Fatalf("with stripes: %v, want %s of this server's stripe", j, want.Hex())
		}
	}
	if j := sel.nextLike(&like); j != nil {
		t.Fatalf("with stripes: %s of the other stripe taken into a block", j.ID.Hex())
	}
}

// A type's block holds as many of its jobs as run within blockBudget by
// their average, up to maxBlock; one before a first run is measured, and
// always one for types whose starts take a rate token or a running slot.
func TestBlockSize(t *testing.T) {
	s := &Server{}
	spec := &rocketjob.TypeSpec{Name: "a"}
	if n := s.blockSize(spec); n != 1 {
		t.Errorf("before a first run: %d, want 1", n)
	}
	s.runTimes.note("a", 100*time.Microsecond)
	if n := s.blockSize(spec); n != maxBlock {
		t.Errorf("runs of 0.1 ms: %d, want %d", n, maxBlock)
	}
	for range 100 {
		s.runTimes.note("a", 4*time.Millisecond)
	}
	if n := s.blockSize(spec); n != int(blockBudget/(4*time.Millisecond)) {
		t.Errorf("runs of 4 ms: %d, want %d", n, int(blockBudget/(4*time.Millisecond)))
	}
	for range 100 {
		s.runTimes.note("a", time.Second)
	}
	if n := s.blockSize(spec); n != 1 {
		t.Errorf("runs of 1 s: %d, want 1", n)
	}
	s.runTimes.note("b", 100*time.Microsecond)
	for _, sp := range []*rocketjob.TypeSpec{{Name: "b", RateLimit: 100}, {Name: "b", MaxRunningJobs: 10}} {
		if n := s.blockSize(sp); n != 1 {
			t.Errorf("%+v: %d, want 1", sp, n)
		}
	}
}

// A job taken from the list stays hidden for the poll interval, as its skip
// says, and no longer than its skip: a shorter skip set after the take
// (skipFor) ends it, and so does a new version of the job in a new list.
func TestTakenJobHiddenAsItsSkip(t *testing.T) {
	job := model.Job{ID: bson.NewObjectID(), Type: "a", Kind: model.KindSimple, State: model.StateQueued, Priority: 50, Version: 1}
	sel := newSelector(nil, time.Hour, time.Hour)
	sel.setList([]model.Job{job})
	if got := sel.next(); got == nil || got.ID != job.ID {
		t.Fatalf("first next = %v, want the job", got)
	}
	if got := sel.nextLike(&job); got != nil {
		t.Fatal("a job just taken was handed out again by nextLike")
	}
	if got := sel.next(); got != nil {
		t.Fatal("a job just taken was handed out again by next")
	}
	sel.skipFor(&job, 0) // nothing hides it any more
	if got := sel.next(); got == nil || got.ID != job.ID {
		t.Fatalf("after a skip that ended, next = %v, want the job again", got)
	}
	if got := sel.next(); got != nil {
		t.Fatal("taken again, the job was handed out once more")
	}
	changed := job
	changed.Version = 2 // resumed, retried, re-prioritised: a skip is of a version
	sel.setList([]model.Job{changed})
	if got := sel.next(); got == nil || got.Version != 2 {
		t.Fatalf("a new version of a taken job: next = %v, want it", got)
	}
}

// The skips of jobs taken and gone are forgotten once they run out: a
// server that ran a million simple jobs keeps no skip for each.
func TestSkipsThatRanOutAreForgotten(t *testing.T) {
	const poll = time.Millisecond
	sel := newSelector(nil, time.Hour, poll)
	jobs := make([]model.Job, 100)
	for i := range jobs {
		jobs[i] = model.Job{ID: bson.NewObjectID(), Type: "a", Kind: model.KindSimple, State: model.StateQueued, Priority: 50}
	}
	sel.setList(jobs)
	for range jobs {
		if sel.next() == nil {
			t.Fatal("a listed job was not handed out")
		}
	}
	if len(sel.skip) != len(jobs) {
		t.Fatalf("%d skips after taking %d jobs, want one each", len(sel.skip), len(jobs))
	}
	time.Sleep(2 * poll) // the skips run out (a deadline, not another goroutine)
	sel.setList(nil)     // the jobs ended: listed no more
	if len(sel.skip) != 0 {
		t.Fatalf("%d skips kept after they ran out", len(sel.skip))
	}
}
