package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
)

// TestNewestListingReadsTheNewestSegments: a newest-first listing of queued
// jobs reads the run-queue segments newest first (by the largest job id
// their names hold, or for an earlier build's segment without info by
// their born time) and stops once no unread segment can hold a newer job;
// it reads on when the segments it read hold too few jobs still queued or
// of the type asked for, and pages past them. The segments are written as
// a bulk enqueue writes them (without their info), born ten seconds apart,
// each job's id made the second before its segment. A listing of any type
// reads no segment info when every segment's name holds its bound.
func TestNewestListingReadsTheNewestSegments(t *testing.T) {
	for _, earlier := range []bool{false, true} {
		t.Run(fmt.Sprintf("earlier build %v", earlier), func(t *testing.T) { newestOverSegments(t, earlier) })
	}
}

func newestOverSegments(t *testing.T, earlier bool) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	const segs, per = 6, 70
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var all []*model.Job // oldest first
	for k := range segs {
		born := base.Add(time.Duration(k) * 10 * time.Second)
		jobs := make([]*model.Job, per)
		docs := make([]any, per)
		for i := range jobs {
			j := queuedSimple(50)
			j.ID = bson.NewObjectIDFromTimestamp(born.Add(-time.Second))
			if k == 2 {
				j.Type = "rare"
			}
			jobs[i], docs[i] = j, j
		}
		if _, _, err := insertMany(ctx, s.jobs(), docs); err != nil {
			t.Fatal(err)
		}
		ids := sortedIDs(jobs)
		name := segmentName(50, ids[0], ids[len(ids)-1], born)
		if earlier {
			name = earlierSegmentName(50, ids[0], born)
		}
		coll := s.runQueueColl(name)
		if _, _, err := insertMany(ctx, coll, append(docs, bson.D{{Key: "_id", Value: sealID}})); err != nil {
			t.Fatal(err)
		}
		all = append(all, jobs...)
	}
	newest := func(jobs []*model.Job) []bson.ObjectID {
		ids := sortedIDs(jobs)
		slices.Reverse(ids)
		return ids
	}
	check := func(name string, f JobFilter, want []bson.ObjectID, maxReads int64) {
		t.Helper()
		f.Newest, f.States = true, []model.State{model.StateQueued}
		before := s.segmentListReads.Load()
		got, err := s.ListJobs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []bson.ObjectID // in the listing's order
		for _, j := range got {
			ids = append(ids, j.ID)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("%s: %d jobs %v, want %d %v", name, len(ids), ids, len(want), want)
		}
		if reads := s.segmentListReads.Load() - before; reads > maxReads {
			t.Errorf("%s: read %d segments, want at most %d", name, reads, maxReads)
		}
	}
	infoReads := s.segmentInfoReads.Load()
	check("limit 10", JobFilter{Limit: 10}, newest(all)[:10], 2)
	if n := s.segmentInfoReads.Load() - infoReads; earlier != (n > 0) {
		t.Errorf("a newest-first listing of any type read the segments' info %d times (earlier build's segments: %v)", n, earlier)
	}
	check("limit 10 past the newest segment", JobFilter{Skip: per, Limit: 10}, newest(all)[per:per+10], 3)
	check("the rare type", JobFilter{Type: "rare", Limit: 5}, newest(all[2*per : 3*per])[:5], 5)
	check("every job", JobFilter{Limit: segs * per}, newest(all), segs)

	// The newest segment's jobs completed (their offers taken, the segment
	// not yet dropped): the listing reads on to the next.
	for _, j := range all[(segs-1)*per:] {
		if _, err := s.jobs().UpdateOne(ctx, bson.D{{Key: "_id", Value: j.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: model.StateCompleted}, {Key: "version", Value: j.Version + 1}}}}); err != nil {
			t.Fatal(err)
		}
	}
	check("limit 10, the newest segment's jobs ended", JobFilter{Limit: 10}, newest(all[:(segs-1)*per])[:10], 3)
}

// compareNewest checks a newest-first listing against a query of the jobs
// collection (empty answers allowed).
func compareNewest(t *testing.T, s *Store, name string, f JobFilter) {
	t.Helper()
	f.Newest = true
	compareListing(t, s, name, f)
}

// compareListing checks a listing against a query of the jobs collection
// (empty answers allowed): newest first, or most urgent first where the
// listing is in id order within a priority (queued jobs).
func compareListing(t *testing.T, s *Store, name string, f JobFilter) {
	t.Helper()
	got, err := s.ListJobs(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.queryJobsMerged(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	n := min(len(got), len(want))
	for i := range n {
		if got[i].ID != want[i].ID {
			t.Errorf("%s: job %d is %s (%s), the jobs collection gives %s (%s)", name, i, got[i].ID.Hex(), got[i].State, want[i].ID.Hex(), want[i].State)
			return
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d jobs, the jobs collection gives %d", name, len(got), len(want))
	}
}

// TestNewestListingMatchesTheJobs mixes segments (written by InsertJobs,
// and by hand with their born time after their ids), main-collection
// copies, completed jobs, taken offers and a window floor, and compares
// many newest-first listings (states, type, pages) with a query of the
// jobs collection.
func TestNewestListingMatchesTheJobs(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	typed := func(jobs []*model.Job, every int, typ string) []*model.Job {
		for i, j := range jobs {
			if i%every == 0 {
				j.Type = typ
			}
		}
		return jobs
	}
	mk := func(n, prio int) []*model.Job {
		jobs := make([]*model.Job, n)
		for i := range jobs {
			jobs[i] = queuedSimple(prio)
		}
		return jobs
	}
	insert := func(jobs []*model.Job) {
		if _, err := s.InsertJobs(ctx, jobs); err != nil {
			t.Fatal(err)
		}
	}
	// A segment written by hand: its jobs stored, then its copies, born
	// after the ids.
	oldSeg := func(jobs []*model.Job) {
		docs := make([]any, len(jobs))
		for i, j := range jobs {
			docs[i] = j
		}
		if _, _, err := insertMany(ctx, s.jobs(), docs); err != nil {
			t.Fatal(err)
		}
		name := earlierSegmentName(jobs[0].Priority, jobs[0].ID, time.Now())
		if _, _, err := insertMany(ctx, s.jobsDB.Collection(name), append(docs, bson.D{{Key: "_id", Value: sealID}})); err != nil {
			t.Fatal(err)
		}
	}
	insert(typed(mk(100, 50), 5, "b"))
	insert(newJobsIn(30, model.StateCompleted))
	oldSeg(typed(mk(70, 40), 3, "b"))
	for range 5 {
		insertQueued(t, s, 60)
	}
	c := typed(mk(90, 50), 4, "b")
	insert(c)
	insert(newJobsIn(20, model.StateCompleted))
	oldSeg(mk(64, 50))
	insert(mk(70, 30))
	for range 3 {
		insertQueued(t, s, 50)
	}
	// Half of c run: their offers taken, the segment not dropped.
	var offered []model.Job
	for _, j := range c[:45] {
		offered = append(offered, *j)
	}
	runAll(t, s, offered, "srv")

	filters := func(tag string) {
		for _, states := range [][]model.State{{model.StateQueued}, {model.StateQueued, model.StateCompleted}, nil} {
			for _, typ := range []string{"", "b"} {
				for _, page := range [][2]int64{{0, 1}, {0, 10}, {0, 75}, {30, 40}, {100, 60}, {250, 100}, {0, 1000}} {
					f := JobFilter{States: states, Type: typ, Skip: page[0], Limit: page[1]}
					compareNewest(t, s, fmt.Sprintf("%s states %v type %q skip %d limit %d", tag, states, typ, page[0], page[1]), f)
					if slices.Equal(states, []model.State{model.StateQueued}) {
						compareListing(t, s, fmt.Sprintf("most urgent, %s type %q skip %d limit %d", tag, typ, page[0], page[1]), f)
					}
				}
			}
		}
	}
	filters("no floor")
	// A floor in the completed window, between the segments.
	if err := s.markEveryType(ctx, model.StateCompleted, c[50].ID); err != nil {
		t.Fatal(err)
	}
	filters("floor")
}
