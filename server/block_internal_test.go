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
	sel.jobs = jobs
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
	sel.jobs = []model.Job{other[0], own[0], other[1], own[1]}
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
