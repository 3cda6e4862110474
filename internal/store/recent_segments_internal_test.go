package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/internal/model"
)

// TestNewestListingReadsTheNewestSegments: a newest-first listing of queued
// jobs reads the run-queue segments newest born first and stops once no
// unread segment can hold a newer job; it reads on when the segments it
// read hold too few jobs still queued or of the type asked for, and pages
// past them. The segments are written as a bulk enqueue writes them, born
// ten seconds apart, each job's id made the second before its segment.
func TestNewestListingReadsTheNewestSegments(t *testing.T) {
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
		coll := s.jobsDB.Collection(segmentName(50, jobs[0].ID, born))
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
		before := s.newestSegmentReads.Load()
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
		if reads := s.newestSegmentReads.Load() - before; reads > maxReads {
			t.Errorf("%s: read %d segments, want at most %d", name, reads, maxReads)
		}
	}
	check("limit 10", JobFilter{Limit: 10}, newest(all)[:10], 2)
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
