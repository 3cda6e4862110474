package store

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
)

// idAt is the n-th id of a run whose ids were all made in the second of at.
func idAt(at time.Time, n int) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[:4], uint32(at.Unix()))
	binary.BigEndian.PutUint64(id[4:], uint64(n))
	return id
}

// TestSegmentInfoBoundsListings: four segments whose ids were all made in
// one second an hour before they were written (the second of their born
// time bounds none of them apart), the third of another type. Their info
// (largest id, types) lets a newest-first listing read only the segment
// that holds the newest jobs, or those of the type asked for, and a
// most-urgent-first listing of a type skip the segments without it.
func TestSegmentInfoBoundsListings(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	made := time.Now().Add(-time.Hour)
	var all [][]*model.Job
	for k := range 4 {
		jobs := make([]*model.Job, segmentMin)
		for i := range jobs {
			jobs[i] = queuedSimple(50)
			jobs[i].ID = idAt(made, k*segmentMin+i)
			if k == 2 {
				jobs[i].Type = "rare"
			}
		}
		if _, err := s.InsertJobs(ctx, jobs); err != nil {
			t.Fatal(err)
		}
		all = append(all, jobs)
	}
	if segs := segmentNames(t, s); len(segs) != 4 {
		t.Fatalf("segments: %v, want 4", segs)
	}
	infos, err := s.segmentInfos(ctx)
	if err != nil || len(infos) != 4 {
		t.Fatalf("segment info: %d documents (%v), want 4", len(infos), err)
	}
	check := func(name string, f JobFilter, want []*model.Job, maxReads int64) {
		t.Helper()
		f.States = []model.State{model.StateQueued}
		before := s.segmentListReads.Load()
		got, err := s.ListJobs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		wantIDs := make([]bson.ObjectID, len(want))
		for i, j := range want {
			wantIDs[i] = j.ID
		}
		gotIDs := make([]bson.ObjectID, len(got))
		for i, j := range got {
			gotIDs[i] = j.ID
		}
		if !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("%s: %d jobs, not the %d expected in order", name, len(got), len(want))
		}
		if reads := s.segmentListReads.Load() - before; reads > maxReads {
			t.Fatalf("%s read %d segments, want at most %d", name, reads, maxReads)
		}
	}
	reversed := func(jobs []*model.Job) []*model.Job {
		out := slices.Clone(jobs)
		slices.Reverse(out)
		return out
	}
	check("newest first", JobFilter{Newest: true, Limit: 5}, reversed(all[3])[:5], 1)
	check("newest first, rare", JobFilter{Newest: true, Limit: 5, Type: "rare"}, reversed(all[2])[:5], 1)
	check("newest first, across two", JobFilter{Newest: true, Limit: segmentMin + 3},
		append(reversed(all[3]), reversed(all[2])[:3]...), 2)
	check("most urgent, rare", JobFilter{Limit: 5, Type: "rare"}, all[2][:5], 1)
	check("most urgent", JobFilter{Limit: 5}, all[0][:5], 1)
}

// TestSegmentInfoGoesWithItsSegment: a segment's info is deleted when the
// segment is dropped; the info of a segment dropped by a server of an
// earlier build (which leaves it) is deleted by the reconcile once settled,
// and a young one is kept (its segment may be being written).
func TestSegmentInfoGoesWithItsSegment(t *testing.T) {
	dbtest.RequireFerretDB(t)
	ctx := context.Background()
	s := openInternal(t)
	bulkQueued(t, s, segmentMin, 50)
	offered := offeredJobs(t, s)
	runAll(t, s, offered, "srv")
	offeredJobs(t, s) // drops the segment
	if segs := segmentNames(t, s); len(segs) != 0 {
		t.Fatalf("segments: %v, want none", segs)
	}
	if infos, err := s.segmentInfos(ctx); err != nil || len(infos) != 0 {
		t.Fatalf("segment info after its segment was dropped: %v (%v), want none", infos, err)
	}

	old := segmentName(50, bson.NewObjectID(), bson.NewObjectID(), time.Now().Add(-2*segmentSettle))
	young := segmentName(50, bson.NewObjectID(), bson.NewObjectID(), time.Now())
	for _, name := range []string{old, young} {
		if _, err := s.jobsDB.Collection(segmentInfoColl).InsertOne(ctx, segmentInfo{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ReconcileQueue(ctx); err != nil {
		t.Fatal(err)
	}
	infos, err := s.segmentInfos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := infos[old]; ok || len(infos) != 1 {
		t.Fatalf("segment info after the reconcile: %v, want only the young one's", infos)
	}
}
