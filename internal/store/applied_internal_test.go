package store

import (
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/model"
)

// TestApplied: a transition's set replaces fields the job has, adds those
// it lacks, and its unset removes fields; the rest is kept as it was.
func TestApplied(t *testing.T) {
	created := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	started := created.Add(time.Minute)
	job := &model.Job{ID: bson.NewObjectID(), Type: "nap", Kind: model.KindSimple, State: model.StateQueued,
		Priority: 50, CreatedAt: created, RunAt: created,
		Version: 4, Attempt: 1, Failure: &model.Failure{Message: "boom"}}
	params, err := bson.Marshal(bson.D{{Key: "ms", Value: int32(3)}})
	if err != nil {
		t.Fatal(err)
	}
	job.Params = params
	set := bson.D{{Key: "state", Value: model.StateRunning}, {Key: "started_at", Value: started},
		{Key: "version", Value: int64(5)}, {Key: "attempt", Value: 2}, {Key: "server", Value: "s1"}}
	got, err := applied(job, set, []string{"failure"})
	if err != nil {
		t.Fatal(err)
	}
	want := *job
	want.State, want.StartedAt, want.Version, want.Attempt, want.Server, want.Failure = model.StateRunning, &started, 5, 2, "s1", nil
	wantRaw, _ := bson.Marshal(&want)
	gotRaw, _ := bson.Marshal(got)
	var w, g bson.M
	if err := bson.Unmarshal(wantRaw, &w); err != nil {
		t.Fatal(err)
	}
	if err := bson.Unmarshal(gotRaw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g) != len(w) {
		t.Fatalf("applied has %d fields, want %d:\n got %v\nwant %v", len(g), len(w), g, w)
	}
	for k, v := range w {
		if gv, ok := g[k]; !ok || !reflect.DeepEqual(gv, v) {
			t.Errorf("field %s: got %v, want %v", k, gv, v)
		}
	}
	if job.State != model.StateQueued || job.Failure == nil || job.Version != 4 {
		t.Errorf("applied changed the job it was given: %+v", job)
	}
}

// TestAppendElements: the elements kept are copied whole, in order, and a
// document cut short is an error rather than a panic or a shorter job.
func TestAppendElements(t *testing.T) {
	doc, err := bson.Marshal(bson.D{{Key: "a", Value: int32(1)}, {Key: "bb", Value: "x"}, {Key: "c", Value: bson.D{{Key: "d", Value: true}}}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := appendElements([]byte{1, 2, 3, 4}, doc, func(key []byte) bool { return string(key) == "bb" })
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, 0)
	out[0], out[1], out[2], out[3] = byte(len(out)), 0, 0, 0
	var got bson.D
	if err := bson.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != "a" || got[1].Key != "c" {
		t.Fatalf("kept %v, want a and c", got)
	}
	for _, bad := range [][]byte{nil, doc[:3], append(append([]byte{}, doc[:len(doc)-4]...), 0)} {
		if _, err := appendElements(nil, bad, nil); err == nil {
			t.Errorf("appendElements(%x): no error", bad)
		}
	}
}
