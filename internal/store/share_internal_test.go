package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
)

// A server's share of the run queue (RunnableShare): limit counts the jobs
// of its share alone, the oldest first across a segment and the main
// collection, and as many of the others are listed, by priority then age,
// so that a share behind the others' in age order is still listed whole
// up to limit; RunnableJobs lists the first limit of either.
func TestRunnableShareListsItsOwn(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	var urgent []*model.Job
	for range 5 {
		urgent = append(urgent, insertQueued(t, s, 10)) // the others', more urgent
	}
	bulk := bulkQueued(t, s, 300, 50) // one segment
	var single []*model.Job           // the main collection, younger than the segment's
	for range 20 {
		single = append(single, insertQueued(t, s, 50))
	}
	// The segment's first 200 are the others', the rest and the single
	// jobs this server's.
	mineIDs := map[bson.ObjectID]bool{}
	for _, j := range append(slices.Clone(sortedJobs(bulk)[200:]), single...) {
		mineIDs[j.ID] = true
	}
	mine := func(j *model.Job) bool { return mineIDs[j.ID] }

	const limit = 30
	got, err := s.RunnableShare(ctx, time.Now(), limit, nil, mine)
	if err != nil {
		t.Fatal(err)
	}
	bySegmentAge := sortedJobs(bulk)
	var want []bson.ObjectID
	want = append(want, sortedIDs(urgent)...)
	want = append(want, sortedIDs(bySegmentAge[:limit-len(urgent)])...) // the others' quota
	want = append(want, sortedIDs(bySegmentAge[200:200+limit])...)      // this server's
	if ids := jobIDs(got); !slices.Equal(ids, want) {
		t.Fatalf("share: %d jobs listed %v\nwant %d: %v", len(ids), ids, len(want), want)
	}

	// Past the segment: this server's oldest are then the segment's last
	// 100, then the single ones.
	got, err = s.RunnableShare(ctx, time.Now(), 110, nil, mine)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := range got {
		if mine(&got[i]) {
			n++
		}
	}
	if n != 110 || !mine(&got[len(got)-1]) || got[len(got)-1].ID != sortedIDs(single)[9] {
		t.Fatalf("share of 110: %d of this server's, the last %s, want 110 ending with the 10th single job %s", n, got[len(got)-1].ID.Hex(), sortedIDs(single)[9].Hex())
	}

	all, err := s.RunnableJobs(ctx, time.Now(), limit, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range all {
		if mine(&all[i]) {
			t.Fatalf("RunnableJobs of %d listed job %s of the share: want the first %d of either, the others'", limit, all[i].ID.Hex(), limit)
		}
	}
}

// sortedJobs returns jobs by id (age).
func sortedJobs(jobs []*model.Job) []*model.Job {
	out := slices.Clone(jobs)
	slices.SortFunc(out, func(a, b *model.Job) int { return compareIDs(a.ID, b.ID) })
	return out
}

// A start that trips over another process's claim made moments ago (a held
// start) fails with ErrClaimed, a conflict; the job's offer is not offered
// to that Store again (no repair, no second try while the claim is young),
// and the others still are.
func TestClaimedElsewhereIsNotOfferedAgain(t *testing.T) {
	ctx := context.Background()
	a, b, jobs := twoStoresHoldingStarts(t)
	offeredB := offeredJobs(t, b)
	held, err := b.StartHeld(ctx, &offeredB[0], Change{Server: new("b")}, "b")
	if err != nil {
		t.Fatal(err)
	}
	offeredA := offeredJobs(t, a)
	if len(offeredA) != len(jobs) || offeredA[0].ID != held.ID {
		t.Fatalf("a is offered %d jobs, want the %d, b's held start first", len(offeredA), len(jobs))
	}
	_, err = a.StartHeld(ctx, &offeredA[0], Change{Server: new("a")}, "a")
	if !errors.Is(err, ErrClaimed) || !errors.Is(err, model.ErrConflict) {
		t.Fatalf("a's start of the job b holds: %v, want ErrClaimed, a conflict", err)
	}
	got := runnableIDs(t, a)
	if slices.Contains(got, held.ID) || len(got) != len(jobs)-1 {
		t.Fatalf("a is offered %d jobs after tripping over b's claim (b's among them: %v), want the %d others",
			len(got), slices.Contains(got, held.ID), len(jobs)-1)
	}
	if _, err := b.Transition(ctx, held, model.StateCompleted, Change{}, "b"); err != nil {
		t.Fatal(err)
	}
	if stored, err := a.GetJob(ctx, held.ID); err != nil || stored.State != model.StateCompleted {
		t.Fatalf("the job after b ended it: %+v, %v", stored, err)
	}
}
