package store

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
)

// TestMongoDurabilityIsStated checks what the store asks of MongoDB for the
// jobs and work databases: majority writes and majority reads, whatever the
// server's defaults.
func TestMongoDurabilityIsStated(t *testing.T) {
	var opts options.DatabaseOptions
	for _, set := range mongoDurability().List() {
		if err := set(&opts); err != nil {
			t.Fatal(err)
		}
	}
	if opts.WriteConcern == nil || opts.WriteConcern.W != "majority" {
		t.Errorf("write concern %+v, want w: majority", opts.WriteConcern)
	}
	if opts.ReadConcern == nil || opts.ReadConcern.Level != "majority" {
		t.Errorf("read concern %+v, want level majority", opts.ReadConcern)
	}
}

// TestOnMongoDB checks, on a MongoDB of $ROCKETJOB_TEST_MONGODB_URI, that
// the store takes MongoDB's paths for both databases (conditional job
// updates, findAndModify slice claims), that Open created every job index,
// and that a write with the stated durability is acknowledged (on a
// standalone mongod majority means the one node; a replica set without a
// majority of its members up would block here).
func TestOnMongoDB(t *testing.T) {
	dbtest.RequireMongoDB(t)
	ctx := context.Background()
	jobs, work := dbtest.DBNames(t)
	s, err := Open(ctx, Config{URI: dbtest.URI(), DB: jobs, WorkDB: work})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if s.ferret || s.workFerret {
		t.Fatalf("FerretDB detected on MongoDB: jobs %v, work %v", s.ferret, s.workFerret)
	}
	if _, ok := s.slices.(*mongoSlices); !ok {
		t.Errorf("slice strategy %T, want findAndModify (mongoSlices) on MongoDB", s.slices)
	}
	missing, err := s.MissingJobIndexes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("indexes missing after Open: %v", missing)
	}
	if _, err := s.jobsDB.Collection("durability_probe").InsertOne(ctx, map[string]int{"x": 1}); err != nil {
		t.Fatalf("majority write: %v", err)
	}
}
